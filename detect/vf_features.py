"""The features :mod:`detect.vf` reads from each window, for many windows at once.

Definitions and sources are in :mod:`detect.vf`: VF-filter leakage (Kuo &
Dillman, Computers in Cardiology 1978), the threshold-crossing sample count
TCSC (Arafat, Chowdhury & Hasan, Signal Image Video Process 5:1-10, 2011),
Barro's spectral shape (dominant frequency, normalised first moment M and
amplitude share A2; Barro et al., J Biomed Eng 11:320-328, 1989) and the
5th-95th percentile amplitude, as compared by Amann, Tratnig & Unterkofler
(BioMed Eng OnLine 4:60, 2005).
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from . import buffers
from .types import FloatArray


@dataclass(frozen=True, slots=True)
class VfFeatures:
    """Features of one window (see the module docstring for definitions)."""

    leakage: float
    tcsc: float          # percent
    dominant_hz: float
    moment: float        # Barro's M, in units of the dominant frequency
    a2: float
    amplitude_mv: float

    def rounded(self) -> VfFeatures:
        return VfFeatures(*(round(getattr(self, f.name), 4) for f in fields(self)))


@dataclass(frozen=True, slots=True)
class _WindowConstants:
    """What is the same for every window of ``n`` samples at ``fs``, computed once
    (building it per window was most of the cost)."""

    taper: FloatArray            # TCSC's cosine ramps
    hamming: FloatArray          # Barro's spectral window
    nfft: int
    freqs: FloatArray            # FFT bin frequencies up to ``bins``
    freq_list: list[float]       # the same as floats, for bisect
    search: tuple[int, int]      # bins of the dominant-frequency search, 0.5-9 Hz
    bins: int                    # bins any feature reads (up to 40 Hz)
    kth: tuple[int, ...]         # order statistics of the 5th and 95th percentiles
    pos: tuple[tuple[int, int, float], ...]   # (lower, upper, weight) of each


@functools.lru_cache(maxsize=8)
def _window_constants(n: int, fs: float) -> _WindowConstants:
    ramp = min(int(round(0.25 * fs)), n // 4)
    taper = np.ones(n)
    if ramp > 0:
        r = 0.5 * (1 - np.cos(np.pi * np.arange(ramp) / ramp))
        taper[:ramp], taper[n - ramp:] = r, r[::-1]
    nfft = max(2048, 1 << (n - 1).bit_length())
    f = np.fft.rfftfreq(nfft, 1.0 / fs)
    search = np.flatnonzero((f >= 0.5) & (f <= 9.0))
    # The grid ascends, so every band is one run of bins and a slice holds the
    # same values as the boolean mask did.
    bins = int(np.flatnonzero(f <= 40.0)[-1]) + 1
    f = f[:bins].copy()
    hamming = np.hamming(n)
    for arr in (taper, f, hamming):
        arr.setflags(write=False)
    pos = []
    for p in ((n - 1) * 0.05, (n - 1) * 0.95):
        lo = int(math.floor(p))
        pos.append((lo, min(lo + 1, n - 1), p - lo))
    kth = tuple(sorted({i for lo, hi, _ in pos for i in (lo, hi)}))
    return _WindowConstants(taper, hamming, nfft, f, f.tolist(),
                            (int(search[0]), int(search[-1]) + 1) if search.size else (0, 0),
                            bins, kth, tuple(pos))


def _percentiles_5_95_rows(x: FloatArray, c: _WindowConstants, work: FloatArray,
                           ) -> tuple[FloatArray, FloatArray]:
    """The 5th and 95th percentiles of each row of ``x`` by one partial sort (linear
    interpolation between order statistics), in ``work`` (shaped like ``x``, its
    contents lost). ``a + (b - a) * w`` throughout, where np.percentile switches to
    ``b - (b - a) * (1 - w)`` at ``w >= 0.5``: the two may differ in the last bit."""
    part = work
    part[...] = x                 # np.partition's copy, into the working array
    part.partition(c.kth, axis=1)
    out = []
    for lo, hi, w in c.pos:
        a = part[:, lo]
        out.append(a + (part[:, hi] - a) * w)
    return out[0], out[1]


def _tcsc(x: FloatArray, c: _WindowConstants, work: FloatArray,
          flags: npt.NDArray[np.bool_]) -> list[float]:
    """TCSC (Arafat 2011) of each row of the centred windows ``x``: cosine-tapered ends
    so a wave cut by the window edge does not count, then the share of samples above
    0.2 of the peak. ``work`` and ``flags`` are working arrays shaped like ``x``."""
    n = x.shape[1]
    tx = np.multiply(x, c.taper, out=work)
    np.abs(tx, out=tx)
    peaks = tx.max(axis=1)
    over = np.greater(tx, (0.2 * peaks)[:, None], out=flags)
    above = np.count_nonzero(over, axis=1).tolist()
    return [100.0 * float(a) / n if p > 0 else 0.0 for a, p in zip(above, peaks.tolist())]


def _window_rows(windows: np.ndarray, caller: str) -> tuple[np.ndarray, int, int]:
    """``windows`` as a float64 (windows, samples) array with its shape; refused otherwise."""
    x = np.asarray(windows, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{caller} needs a (windows, samples) array, got shape {x.shape}.")
    return x, x.shape[0], x.shape[1]


def vf_tcsc_many(windows: FloatArray, fs: float,
                 scratch: buffers.Scratch | None = None) -> list[float]:
    """The TCSC of every row of ``windows`` alone, the same to the last bit as
    :func:`vf_features_many` computes it (the windows are left as they are): the
    batched pass's screen, since a window whose TCSC rules VF out needs no other
    feature while no VF episode is open (:meth:`detect.vf.VfDetector.screens_out`)."""
    x, k, n = _window_rows(windows, "vf_tcsc_many")
    if k == 0:
        return []
    take = buffers.fresh if scratch is None else scratch.take
    centred = np.subtract(x, (x.sum(axis=1) / n)[:, None], out=take("vf.abs", (k, n)))
    return _tcsc(centred, _window_constants(n, float(fs)), take("vf.work", (k, n)),
                 take("vf.spectrum", (k, n), np.bool_))


def vf_features(x: FloatArray, fs: float) -> VfFeatures:
    """The four feature groups of one window of cleaned signal (any length >= 1 s)."""
    return vf_features_many(np.asarray(x, dtype=np.float64)[None, :], fs)[0]


def _rows_by(keys: list[int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return groups


def vf_features_many(windows: FloatArray, fs: float, scratch: buffers.Scratch | None = None,
                     overwrite: bool = False) -> list[VfFeatures]:
    """:func:`vf_features` of every row of ``windows`` (``(k, n)``), in one pass.

    Many devices' windows end in the same processing tick (detect/batch.py);
    one call over all of them replaces a few dozen numpy calls per window.
    Each row's features are the same to the last bit as for that row alone
    (``tests/test_batch.py``, ``bench/compare_windows.py``): elementwise
    operations, order statistics, maxima and argmaxima do not depend on the
    other rows; a row's ``rfft`` is its own transform; and every sum runs over
    one row of a C-ordered array, which numpy adds pairwise exactly as it adds
    that row alone. Sums whose bounds differ per window (the leakage's
    half-period shift, the spectral bands around the dominant frequency) run
    once per distinct bound over the rows that share it, never over padding.
    Written for speed without changing a bit: sums divided by n instead of
    np.mean, slices instead of boolean frequency masks, the spectrum's
    magnitude only up to 40 Hz (no feature reads beyond). With ``scratch``
    (the batched pass's) the working arrays are its, reused every tick, not
    fresh ones: the same operations write the same values into them; with
    ``overwrite`` the windows themselves (a float64 C-ordered array) are centred
    in place, as in a copy.
    """
    x, k, n = _window_rows(windows, "vf_features_many")
    if k == 0:
        return []
    take = buffers.fresh if scratch is None else scratch.take
    means = (x.sum(axis=1) / n)[:, None]
    if overwrite and x is windows and x.flags.c_contiguous:
        x -= means
    else:
        x = np.subtract(x, means, out=take("vf.x", (k, n)))
    c = _window_constants(n, float(fs))
    lo_p, hi_p = _percentiles_5_95_rows(x, c, take("vf.work", (k, n)))
    amplitude = (hi_p - lo_p).tolist()
    ax = np.abs(x, out=take("vf.abs", (k, n)))
    # VF-filter leakage (Kuo & Dillman 1978): half-period from the mean |x| / mean |dx|.
    dx = np.subtract(x[:, 1:], x[:, :-1], out=take("vf.work", (k, n - 1)))
    dsums = np.abs(dx, out=dx).sum(axis=1).tolist()
    asums = ax.sum(axis=1).tolist()
    halves = [int(math.floor(math.pi * a / d + 0.5)) if d > 0 else 0
              for a, d in zip(asums, dsums)]
    leakage = [1.0] * k
    for half, rows in _rows_by(halves).items():
        if not 0 < half < n:
            continue
        kg = len(rows)
        s = take("vf.spectrum", (kg, n - half))      # free until the spectrum
        if kg == k:
            axg, xg = ax, x
        else:
            axg = np.take(ax, rows, axis=0, out=take("vf.work", (kg, n)))
        dens = np.add(axg[:, half:], axg[:, :-half], out=s).sum(axis=1).tolist()
        if kg != k:
            xg = np.take(x, rows, axis=0, out=take("vf.work", (kg, n)))
        np.add(xg[:, half:], xg[:, :-half], out=s)
        nums = np.abs(s, out=s).sum(axis=1).tolist()
        for i, num, den in zip(rows, nums, dens):
            if den > 0:
                leakage[i] = num / den
    tcsc = _tcsc(x, c, take("vf.work", (k, n)), take("vf.abs", (k, n), np.bool_))
    s0, s1 = c.search
    if s1 <= s0:
        return [VfFeatures(leakage[i], tcsc[i], 0.0, math.inf, 0.0, amplitude[i])
                for i in range(k)]
    # Spectral shape (Barro 1989). Zero padding to 8 s gives 0.125 Hz bins.
    spectrum = np.fft.rfft(np.multiply(x, c.hamming, out=take("vf.work", (k, n))), c.nfft,
                           axis=1, out=take("vf.spectrum", (k, c.nfft // 2 + 1), np.complex128))
    a = np.abs(spectrum[:, :c.bins], out=take("vf.abs", (k, c.bins)))
    ks = (a[:, s0:s1].argmax(axis=1) + s0).tolist()
    peak_a = a[np.arange(k), ks]
    a[a < (0.05 * peak_a)[:, None]] = 0.0
    peaks_a = peak_a.tolist()
    out: list[VfFeatures | None] = [None] * k
    f, fl = c.freqs, c.freq_list
    for kb, rows in _rows_by(ks).items():
        dom = fl[kb]
        # upto: 0.5 Hz .. min(20 F, 40 Hz); near: 0.7 F .. 1.4 F (both ends included).
        u1 = bisect.bisect_right(fl, min(20.0 * dom, 40.0))
        n0, n1 = bisect.bisect_left(fl, 0.7 * dom), bisect.bisect_right(fl, 1.4 * dom)
        ag = a if len(rows) == k else a[rows]
        totals = ag[:, s0:u1].sum(axis=1).tolist()
        moments = (ag[:, s0:u1] * f[s0:u1]).sum(axis=1).tolist()
        nears = ag[:, n0:n1].sum(axis=1).tolist()
        for j, i in enumerate(rows):
            if peaks_a[i] <= 0:
                out[i] = VfFeatures(leakage[i], tcsc[i], 0.0, math.inf, 0.0, amplitude[i])
                continue
            total = totals[j]
            out[i] = VfFeatures(leakage[i], tcsc[i], dom, moments[j] / total / dom,
                                nears[j] / total, amplitude[i])
    return out  # type: ignore[return-value]


__all__ = ["VfFeatures", "vf_features", "vf_features_many", "vf_tcsc_many"]
