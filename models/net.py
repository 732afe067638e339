"""The beat classifier network: a small 1-D CNN on the window plus an MLP on RR context.

Inputs are exactly :mod:`detect.beat_features`' ``BeatInput``: ``window``
``(batch, 1, 160)`` (cleaned, median-removed, amplitude-normalised) and
``rr`` ``(batch, 8)`` in seconds and ratios. The network takes the logarithm
of the RR features itself (intervals and their ratios are scale quantities;
log makes "premature" and "late" symmetric), so the exported graph consumes
the featurizer's output unchanged. Output: 5 logits over ``aami.CLASSES``;
argmax is the decision (the tuned per-class decision biases are folded into
the last layer's bias before export, see :func:`fold_decision_bias`).

Sized for the service's budget of <= 20 us per beat on one CPU thread.
Architecture in the spirit of Kiranyaz, Ince & Gabbouj, "Real-time
patient-specific ECG classification by 1-D convolutional neural networks",
IEEE TBME 63(3), 2016, with de Chazal's RR features alongside.
"""

from __future__ import annotations

import torch
from torch import nn

from detect.beat_features import RR_FEATURES, WINDOW

N_CLASSES = 5


class BeatNet(nn.Module):
    def __init__(self, width: int = 8, hidden: int = 32) -> None:
        super().__init__()
        w = width
        self.conv = nn.Sequential(
            nn.Conv1d(1, w, 7, stride=2, padding=3), nn.ReLU(),           # 160 -> 80
            nn.Conv1d(w, 2 * w, 5, stride=2, padding=2), nn.ReLU(),       # 80 -> 40
            nn.Conv1d(2 * w, 2 * w, 5, stride=2, padding=2), nn.ReLU(),   # 40 -> 20
            nn.MaxPool1d(2),                                             # 20 -> 10
        )
        self.wave = nn.Sequential(nn.Flatten(), nn.Linear(2 * w * (WINDOW // 16), hidden),
                                  nn.ReLU())
        self.rr = nn.Sequential(nn.Linear(len(RR_FEATURES), 16), nn.ReLU())
        self.head = nn.Linear(hidden + 16, N_CLASSES)

    def forward(self, window: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        z = self.wave(self.conv(window))
        r = self.rr(torch.log(torch.clamp(rr, min=1e-3)))
        return self.head(torch.cat([z, r], dim=1))


@torch.no_grad()
def fold_decision_bias(net: BeatNet, bias: torch.Tensor) -> None:
    """Add per-class decision biases to the final bias: argmax(logits + b) becomes argmax."""
    net.head.bias.add_(bias.to(net.head.bias.dtype))
