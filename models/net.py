"""The beat classifier network: a small 1-D CNN on the beat and its template, plus RR context.

Inputs are exactly :mod:`detect.beat_features`' ``stack_inputs``: ``window``
``(batch, 2, 160)`` (channel 0 the beat, channel 1 the patient's running
median template; cleaned, median-removed, amplitude-normalised) and ``rr``
``(batch, 11)`` in seconds and ratios (``rr_columns`` picks the ones a
configuration uses; the graph still takes all of them, so every model has
the service's input shape).

Inside the graph:

* the convolutions see three channels: beat, template and beat - template,
  so "unlike this patient's usual beat" is as easy to learn as a shape;
* two scalar morphology features compare beat and template over the QRS
  (-100 ms to +160 ms): their cosine similarity and the log RMS of their
  difference. Template matching of this kind is the core of patient-adaptive
  classifiers (Hu, Palreddy & Tompkins, IEEE TBME 44(9), 1997);
* the RR features enter as logarithms (intervals and their ratios are scale
  quantities; log makes "premature" and "late" symmetric).

So the exported graph consumes the featurizer's output unchanged. Output: 5
logits over ``aami.CLASSES``; argmax is the decision (tuned per-class
decision biases are folded into the last layer's bias before export, see
:func:`fold_decision_bias`).

Sized for the service's budget of <= 20 us per beat on one CPU thread.
Architecture in the spirit of Kiranyaz, Ince & Gabbouj, "Real-time
patient-specific ECG classification by 1-D convolutional neural networks",
IEEE TBME 63(3), 2016, with de Chazal's RR features alongside.
``template=False`` builds the beat-only network (channel 1 ignored), kept as
the baseline that model selection compares against.
"""

from __future__ import annotations

import torch
from torch import nn

from detect.beat_features import RR_FEATURES, WINDOW, WINDOW_BEFORE

N_CLASSES = 5
QRS = slice(WINDOW_BEFORE - 25, WINDOW_BEFORE + 40)    # -100 ms .. +160 ms at 250 Hz
N_MORPH = 2


class BeatNet(nn.Module):
    def __init__(self, width: int = 8, hidden: int = 32, template: bool = True,
                 rr_columns: tuple[int, ...] | None = None, s_from_rr: bool = False) -> None:
        super().__init__()
        w = width
        self.template = template
        columns = tuple(range(len(RR_FEATURES))) if rr_columns is None else tuple(rr_columns)
        if not columns or not all(0 <= c < len(RR_FEATURES) for c in columns):
            raise ValueError(f"rr_columns {columns} must index the {len(RR_FEATURES)} RR features.")
        self.register_buffer("rr_columns", torch.tensor(columns, dtype=torch.int64))
        self.conv = nn.Sequential(
            nn.Conv1d(3 if template else 1, w, 7, stride=2, padding=3), nn.ReLU(),  # 160 -> 80
            nn.Conv1d(w, 2 * w, 5, stride=2, padding=2), nn.ReLU(),                 # 80 -> 40
            nn.Conv1d(2 * w, 2 * w, 5, stride=2, padding=2), nn.ReLU(),             # 40 -> 20
            nn.MaxPool1d(2),                                                       # 20 -> 10
        )
        self.wave = nn.Sequential(nn.Flatten(), nn.Linear(2 * w * (WINDOW // 16), hidden),
                                  nn.ReLU())
        n_side = len(columns) + (N_MORPH if template else 0)
        self.rr = nn.Sequential(nn.Linear(n_side, 16), nn.ReLU())
        self.head = nn.Linear(hidden + 16, N_CLASSES)
        # s_from_rr: the S logit sees only the side branch (RR context and the
        # beat-template comparison), not the waveform features. A
        # supraventricular beat is told by its timing and by looking like the
        # patient's usual beat; with ~1,000 S beats from a handful of training
        # patients, letting it read raw morphology learns those patients.
        mask = torch.ones(N_CLASSES, hidden + 16)
        if s_from_rr:
            mask[1, :hidden] = 0.0
        self.register_buffer("head_mask", mask)

    def forward(self, window: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        beat = window[:, 0:1]
        side = torch.log(torch.clamp(rr.index_select(1, self.rr_columns), min=1e-3))
        if self.template:
            tmpl = window[:, 1:2]
            x = torch.cat([beat, tmpl, beat - tmpl], dim=1)
            b, t = beat[:, 0, QRS], tmpl[:, 0, QRS]
            cos = (b * t).sum(1) / (torch.sqrt((b * b).sum(1) * (t * t).sum(1)) + 1e-6)
            rms = torch.log(torch.sqrt(((b - t) ** 2).mean(1)) + 1e-3)
            side = torch.cat([side, cos[:, None], rms[:, None]], dim=1)
        else:
            x = beat
        z = self.wave(self.conv(x))
        features = torch.cat([z, self.rr(side)], dim=1)
        return nn.functional.linear(features, self.head.weight * self.head_mask, self.head.bias)


@torch.no_grad()
def fold_decision_bias(net: BeatNet, bias: torch.Tensor) -> None:
    """Add per-class decision biases to the final bias: argmax(logits + b) becomes argmax."""
    net.head.bias.add_(bias.to(net.head.bias.dtype))


def from_state(state: dict[str, torch.Tensor]) -> BeatNet:
    """Rebuild a saved network from its state dict alone."""
    hidden = state["wave.1.weight"].shape[0]
    net = BeatNet(width=state["conv.0.weight"].shape[0], hidden=hidden,
                  template=state["conv.0.weight"].shape[1] == 3,
                  rr_columns=tuple(state["rr_columns"].tolist()),
                  s_from_rr=bool((state["head_mask"][1, :hidden] == 0).all()))
    net.load_state_dict(state)
    return net.eval()
