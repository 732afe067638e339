"""Causal IIR filters with carried ``sosfilt`` state (no ``filtfilt`` on the live path).

Because :func:`scipy.signal.sosfilt` runs its recurrence sample by sample,
feeding a stream in any chunking gives bit-identical output to one pass.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from .types import FloatArray


class SosFilter:
    """A second-order-sections filter that remembers its state between pushes.

    The state starts at the steady state for the first sample seen
    (``sosfilt_zi`` scaled), so a DC offset at stream start does not ring.
    """

    def __init__(self, sos: np.ndarray) -> None:
        self.sos = np.asarray(sos, dtype=np.float64)
        self._zi_unit = signal.sosfilt_zi(self.sos)
        self._zi: np.ndarray | None = None

    def push(self, x: FloatArray) -> FloatArray:
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0:
            return x.copy()
        if self._zi is None:
            self._zi = self._zi_unit * x[0]
        y, self._zi = signal.sosfilt(self.sos, x, zi=self._zi)
        return y

    def reset(self) -> None:
        self._zi = None


def bandpass_sos(fs: float, low: float, high: float, order: int = 2) -> np.ndarray:
    """Butterworth band-pass; order 2 per edge keeps the QRS ringing short."""
    return signal.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")


def notch_sos(fs: float, f0: float, q: float) -> np.ndarray:
    """Second-order IIR notch at the power-line frequency (Q sets its width)."""
    b, a = signal.iirnotch(f0, q, fs=fs)
    return signal.tf2sos(b, a)


class CleaningFilter(SosFilter):
    """Diagnostic-band cleaning: 0.5-40 Hz band-pass plus mains notches.

    The 0.5 Hz high-pass removes baseline wander and respiration (AHA
    monitoring-band recommendation, Kligfield et al. 2007); notches at 50 and
    60 Hz remove power-line interference where it lies below Nyquist.
    """

    def __init__(self, fs: float, band: tuple[float, float], mains: tuple[float, ...],
                 q: float = 30.0) -> None:
        parts = [bandpass_sos(fs, *band)]
        parts += [notch_sos(fs, f0, q) for f0 in mains if f0 < fs / 2]
        super().__init__(np.vstack(parts))
