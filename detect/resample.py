"""Streaming polyphase resampler: any input rate to the internal rate.

The same anti-aliasing FIR design as :func:`scipy.signal.resample_poly`
(Kaiser window, beta 5.0, cut-off at the lower Nyquist, 10 zero crossings per
side), evaluated causally one polyphase branch per output sample (Crochiere &
Rabiner, *Multirate Digital Signal Processing*, 1983). State is the last few
input samples, so the output does not depend on how the input was chunked.

The filter is linear-phase with a group delay of ``delay`` output samples;
:class:`Resampler` reports it so that callers can map output indices back to
input time exactly.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal

from .types import FloatArray


class Resampler:
    """``push(x_in) -> x_out`` converting ``fs_in`` to ``fs_out`` with carried state.

    Output sample ``m`` (counted from the stream start) is the band-limited
    input evaluated at time ``m / fs_out - delay_s``.
    """

    @staticmethod
    def delay_for(fs_in: float, fs_out: float, *, max_denominator: int = 1000) -> float:
        """The group delay in seconds a Resampler(fs_in, fs_out) will have, without building it."""
        ratio = Fraction(fs_out / fs_in).limit_denominator(max_denominator)
        up, down = ratio.numerator, ratio.denominator
        return 0.0 if up == down == 1 else 10 * max(up, down) / (up * float(fs_in))

    def __init__(self, fs_in: float, fs_out: float, *, max_denominator: int = 1000) -> None:
        ratio = Fraction(fs_out / fs_in).limit_denominator(max_denominator)
        self.fs_in, self.fs_out = float(fs_in), float(fs_out)
        self.up, self.down = ratio.numerator, ratio.denominator
        self.identity = self.up == self.down == 1
        up, down = self.up, self.down
        self._n_in = 0                         # inputs consumed so far
        self._m = 0                            # next output index
        if self.identity:
            self.delay_s = 0.0
            return
        half_len = 10 * max(up, down)
        taps = signal.firwin(2 * half_len + 1, 1.0 / max(up, down), window=("kaiser", 5.0)) * up
        # Polyphase matrix: branch p holds taps p, p+up, p+2up, ...
        n_branch = -(-taps.size // up)
        padded = np.zeros(n_branch * up)
        padded[:taps.size] = taps
        self._branches = padded.reshape(n_branch, up).T.copy()   # (up, n_branch)
        self._k = n_branch
        self._hist = np.zeros(n_branch - 1)   # last inputs (zero before the stream)
        # Group delay of the FIR in seconds (centre tap at half_len on the upsampled grid).
        self.delay_s = self.delay_for(fs_in, fs_out, max_denominator=max_denominator)

    @property
    def produced(self) -> int:
        """Output samples produced so far."""
        return self._m

    def push(self, x: FloatArray) -> FloatArray:
        x = np.asarray(x, dtype=np.float64)
        if self.identity:
            self._n_in += x.size
            self._m += x.size
            # A read-only array that owns its data (a Chunk's samples) does not change
            # under the caller, so it goes on as it is; anything else is copied, so
            # that the output never aliases an array someone may still write.
            return x if x.base is None and not x.flags.writeable else x.copy()
        up, down, k = self.up, self.down, self._k
        n_total = self._n_in + x.size
        # Output m uses upsampled index n = m*down, i.e. inputs up to floor(n/up).
        m_end = (n_total * up - 1) // down + 1 if n_total else 0
        ms = np.arange(self._m, m_end, dtype=np.int64)
        buf = np.concatenate([self._hist, x])
        base = self._n_in - self._hist.size     # global input index of buf[0]
        if ms.size:
            n = ms * down
            newest = n // up                     # newest input that contributes
            phase = n - newest * up
            idx = (newest - base)[:, None] - np.arange(k)[None, :]
            y = np.einsum("ij,ij->i", buf[idx], self._branches[phase])
        else:
            y = np.zeros(0)
        self._hist = buf[-(k - 1):] if k > 1 else np.zeros(0)
        self._n_in = n_total
        self._m = int(m_end)
        return y
