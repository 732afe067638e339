"""The beat classifier network: a small 1-D CNN on the window plus an MLP on RR context.

Inputs are exactly :mod:`detect.beat_features`' ``BeatInput``: ``window``
``(batch, 1, 160)`` (cleaned, median-removed, amplitude-normalised) and
``rr`` ``(batch, 8)`` in seconds and ratios. The network derives its RR
features itself, so the exported graph consumes the featurizer's output
unchanged:

* the logarithm of the eight given features (intervals and their ratios are
  scale quantities; log makes "premature" and "late" symmetric);
* ``log(post / pre)`` (the compensatory pause after a premature beat) and the
  differences ``pre - local`` and ``post - pre`` in seconds, the interval
  contrasts that carry inter-patient SVEB detection (de Chazal et al., IEEE
  TBME 51(7), 2004; Mar et al., IEEE TBME 58(8), 2011; Zhang et al., Comput
  Biol Med 48, 2014);
* all standardised with a shift and scale measured on the training beats
  (:meth:`BeatNet.fit_rr_norm`) and stored as buffers, so that a 15 %
  premature beat is a large input rather than a 0.15 nudge next to a raw
  log-interval.

The waveform branch is a strided 1-D CNN in the spirit of Kiranyaz, Ince &
Gabbouj, "Real-time patient-specific ECG classification by 1-D
convolutional neural networks", IEEE TBME 63(3), 2016; ``dilated=True`` adds
one dilated layer at 125 Hz (receptive field ~0.2 s, a wide QRS) to help tell
wide ventricular from narrow supraventricular complexes.

Output: 5 logits over ``aami.CLASSES``; argmax is the decision (the tuned
per-class decision biases are folded into the last layer's bias before
export, see :func:`fold_decision_bias`). Sized for the service's budget of
<= 20 us per beat on one CPU thread.
"""

from __future__ import annotations

import torch
from torch import nn

from detect.beat_features import RR_FEATURES, WINDOW

N_CLASSES = 5
N_RR_DERIVED = len(RR_FEATURES) + 3
_PRE, _POST, _LOCAL = (RR_FEATURES.index(k) for k in ("pre_rr", "post_rr", "local_rr"))


def rr_derived(rr: torch.Tensor) -> torch.Tensor:
    """The featurizer's 8 RR values -> 11 unstandardised model features (see module doc)."""
    logs = torch.log(torch.clamp(rr, min=1e-3))
    pre, post, local = rr[:, _PRE:_PRE + 1], rr[:, _POST:_POST + 1], rr[:, _LOCAL:_LOCAL + 1]
    return torch.cat([logs, logs[:, _POST:_POST + 1] - logs[:, _PRE:_PRE + 1],
                      pre - local, post - pre], dim=1)


class BeatNet(nn.Module):
    def __init__(self, width: int = 8, hidden: int = 32, rr_hidden: int = 32,
                 dilated: bool = True, dropout: float = 0.1) -> None:
        super().__init__()
        w = width
        layers: list[nn.Module] = [
            nn.Conv1d(1, w, 7, stride=2, padding=3), nn.ReLU(),           # 160 -> 80
            nn.Conv1d(w, 2 * w, 5, stride=2, padding=2), nn.ReLU(),       # 80 -> 40
        ]
        if dilated:
            layers += [nn.Conv1d(2 * w, 2 * w, 5, padding=4, dilation=2), nn.ReLU()]  # 40
        layers += [nn.Conv1d(2 * w, 2 * w, 5, stride=2, padding=2), nn.ReLU(),   # 40 -> 20
                   nn.MaxPool1d(2)]                                              # 20 -> 10
        self.conv = nn.Sequential(*layers)
        self.wave = nn.Sequential(nn.Flatten(), nn.Linear(2 * w * (WINDOW // 16), hidden),
                                  nn.ReLU())
        self.register_buffer("rr_shift", torch.zeros(N_RR_DERIVED))
        self.register_buffer("rr_scale", torch.ones(N_RR_DERIVED))
        self.rr = nn.Sequential(nn.Linear(N_RR_DERIVED, rr_hidden), nn.ReLU(),
                                nn.Linear(rr_hidden, rr_hidden), nn.ReLU())
        self.drop = nn.Dropout(dropout)          # identity in eval and in the export
        self.head = nn.Linear(hidden + rr_hidden, N_CLASSES)

    @torch.no_grad()
    def fit_rr_norm(self, rr: torch.Tensor) -> None:
        """Standardise the derived RR features with the training beats' mean and spread."""
        f = rr_derived(rr)
        self.rr_shift.copy_(f.mean(0))
        self.rr_scale.copy_(f.std(0).clamp(min=1e-3))

    def forward(self, window: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        z = self.wave(self.conv(window))
        r = self.rr((rr_derived(rr) - self.rr_shift) / self.rr_scale)
        return self.head(self.drop(torch.cat([z, r], dim=1)))


@torch.no_grad()
def fold_decision_bias(net: BeatNet, bias: torch.Tensor) -> None:
    """Add per-class decision biases to the final bias: argmax(logits + b) becomes argmax."""
    net.head.bias.add_(bias.to(net.head.bias.dtype))
