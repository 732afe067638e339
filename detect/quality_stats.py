"""The numbers :mod:`detect.quality` judges a window by, for many windows at once.

A service step completes a quality window on many devices at the same time
(detect/batch.py). :func:`window_stats_many` computes what the judge reads of
each window (raw percentiles and longest steady run, band-passed amplitude,
rms and fourth moment, band powers of the spectrum) for all of them with one
numpy call per quantity instead of one per window, and the judge
(:func:`detect.quality.verdict`) then decides each window from its row.

Every row's numbers are those of that window alone to the last bit, which
``bench/compare_windows.py`` checks against the commit before batching on
every MIT-BIH and Noise Stress Test window, and ``tests/test_batch.py`` on
mixed batches. Why they can be: elementwise operations, order statistics,
minima and maxima do not depend on the other rows; each row's ``rfft`` is
its own transform; and each sum runs over one row of a C-ordered array,
which numpy adds pairwise exactly as it adds that row alone.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from . import buffers
from .types import FloatArray

Take = Callable[..., np.ndarray]     # buffers.Scratch.take, or buffers.fresh

RAW_PERCENTS = (0.5, 99.5)
# Frequency bands of the spectral indices (Hz, [low, high)): basSQI's 0-1 and 0-40,
# pSQI's 5-15 and 5-40.
BANDS = ((0.0, 40.0), (0.0, 1.0), (5.0, 15.0), (5.0, 40.0))


class WindowStats(NamedTuple):
    """What the quality judge reads of one window (all in mV, mV^2 or mV^4)."""

    n: int                     # samples in the window
    raw: FloatArray | None     # the raw window, kept only for the rare flat and plateau checks
    p_lo: float                # raw 0.5th percentile
    p_hi: float                # raw 99.5th percentile
    longest: int               # longest run of steady raw samples (1 if none)
    lo: float                  # raw minimum
    hi: float                  # raw maximum
    ptp: float                 # band-passed peak-to-peak
    rms: float                 # band-passed rms about the mean
    m4: float                  # sum of the fourth powers about the mean
    power: tuple[float, float, float, float]   # spectrum power in BANDS


def median(x: FloatArray) -> float:
    """np.median's value by partial sorting."""
    n = x.size
    if n % 2:
        return float(np.partition(x, n // 2)[n // 2])
    part = np.partition(x, (n // 2 - 1, n // 2))
    return (float(part[n // 2 - 1]) + float(part[n // 2])) / 2


@functools.lru_cache(maxsize=32)
def _percentile_plan(n: int, percents: tuple[float, ...]
                     ) -> tuple[tuple[int, ...], dict[int, tuple[bool, int]],
                                tuple[tuple[int, int, float], ...]]:
    """Order statistics and weights of np.percentile(x, percents) (method 'linear')
    for ``n`` samples: the same for every window, so worked out once.

    Returns the partition points, the order statistics read beside them, and per
    percent (lower, upper, weight). Each pair of neighbouring order statistics is
    found by one partition point, not two: each further point is another selection
    pass over the row. Below the middle the pair's upper one is the point and the
    lower one the largest value before it (a partition puts the ``k`` smallest
    before point ``k``); above the middle the other way round. The values are the
    same order statistics."""
    plan = []
    for p in percents:
        v = (n - 1) * (p / 100)
        lo = min(int(math.floor(v)), n - 1)
        plan.append((lo, min(lo + 1, n - 1), v - lo))
    points: set[int] = set()
    beside: dict[int, tuple[bool, int]] = {}   # statistic -> (largest before?, point)
    for lo, hi, _ in plan:
        if hi == lo + 1 and lo not in points and hi not in points:
            if lo < n - 1 - hi:                 # below the middle: hi is the point
                points.add(hi)
                beside[lo] = (True, hi)
            else:
                points.add(lo)
                beside[hi] = (False, lo)
        else:
            points.update((lo, hi))
    for i in points:
        beside.pop(i, None)
    return tuple(sorted(points)), beside, tuple(plan)


def percentiles_rows(x: FloatArray, percents: tuple[float, ...],
                     work: FloatArray | None = None) -> list[FloatArray]:
    """np.percentile(row, percents) of each row of finite ``x`` by one partial sort,
    with numpy's own interpolation (``_lerp``: from the upper neighbour when the
    weight is 0.5 or more), so the values are the same to the last bit. ``work``,
    shaped like ``x``, takes the partial sort's copy (its contents are lost)."""
    kth, beside, plan = _percentile_plan(x.shape[1], percents)
    if work is None:
        part = x.copy()
    else:
        part = work
        part[...] = x
    # One point at a time, each in what lies after the last: numpy's partition with
    # several points took three times as long (its later points' selections are slow).
    done = 0
    for k in kth:
        part[:, done:].partition(k - done, axis=1)
        done = k + 1
    stats: dict[int, FloatArray] = {}

    def stat(i: int) -> FloatArray:
        if i not in stats:
            if i in beside:
                before, point = beside[i]
                stats[i] = (part[:, :point].max(axis=1) if before
                            else part[:, point + 1:].min(axis=1))
            else:
                stats[i] = part[:, i]
        return stats[i]

    out = []
    for lo, hi, g in plan:
        a, b = stat(lo), stat(hi)
        d = b - a
        out.append(a + d * g if g < 0.5 else b - d * (1 - g))
    return out


def percentiles(x: FloatArray, percents: tuple[float, ...]) -> list[float]:
    """np.percentile(x, percents) of one 1-D array (:func:`percentiles_rows`)."""
    return [float(v[0]) for v in percentiles_rows(x[None, :], percents)]


@functools.lru_cache(maxsize=16)
def spectral_constants(n: int, fs: float) -> tuple[FloatArray, tuple[tuple[int, int], ...], int]:
    """Hann window, bin ranges of ``BANDS`` and the bins needed, for an ``n``-sample span.

    The same for every window of a stream (the window and the frequency masks
    were a large part of the cost when built per window)."""
    hann = np.hanning(n)
    hann.setflags(write=False)
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    ranges = []
    for f_lo, f_hi in BANDS:
        idx = np.flatnonzero((freqs >= f_lo) & (freqs < f_hi))
        # The grid ascends, so a band is one run of bins: a slice sums the same values.
        ranges.append((int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, 0))
    return hann, tuple(ranges), max(b for _, b in ranges)


def _steady(raw: FloatArray, tol_mv: float, tol_rel: float,
            take: Take = buffers.fresh) -> npt.NDArray[np.bool_]:
    """Per row, False + (step i within tolerance of the level) + False: ``(k, n + 1)``."""
    k, n = raw.shape
    later = raw[:, 1:]
    tolerance = np.abs(later, out=take("q.a", (k, n - 1)))
    tolerance *= tol_rel
    tolerance += tol_mv
    step = np.subtract(later, raw[:, :-1], out=take("q.b", (k, n - 1)))
    np.abs(step, out=step)
    padded = take("q.steady", (k, n + 1), np.bool_)
    padded[:, 0] = padded[:, -1] = False
    np.less_equal(step, tolerance, out=padded[:, 1:-1])
    return padded


def steady_run_bounds(raw: FloatArray, tol_mv: float, tol_rel: float
                      ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Sample ranges ``[start, stop)`` over which the 1-D ``raw`` stays constant within
    ``tol_mv + tol_rel * |level|``, as arrays of starts and stops."""
    padded = _steady(raw[None, :], tol_mv, tol_rel)[0]
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    # A run of k steady steps starting at step i spans samples i .. i+k.
    return edges[::2], edges[1::2] + 1


def window_stats_many(raw: FloatArray, clean: FloatArray, span: FloatArray, fs: float,
                      tol_mv: float, tol_rel: float, flat_mv: float, min_run: int,
                      scratch: buffers.Scratch | None = None) -> list[WindowStats]:
    """:class:`WindowStats` of each row: ``raw`` and ``clean`` are ``(k, n)`` windows,
    ``span`` ``(k, m)`` the band-passed spans their spectra are taken over (each
    row ending with the window's ``clean``). A window's raw samples are kept (a
    copy) only if the judge may read them: it looks flat (robust peak-to-peak
    under ``flat_mv``, or a steady run over half of it) or holds a steady run of
    ``min_run`` samples (a plateau to check). Every other row is let go at once,
    so a batch's arrays do not outlive it. With ``scratch`` (the batched pass's)
    the working arrays are its, reused every tick: the same values in them."""
    k, n = raw.shape
    if k == 0:
        return []
    take = buffers.fresh if scratch is None else scratch.take
    # Working arrays by name: q.a and q.b hold one quantity after another.
    p_lo, p_hi = (v.tolist() for v in percentiles_rows(raw, RAW_PERCENTS,
                                                         take("q.a", (k, n))))
    padded = _steady(raw, tol_mv, tol_rel, take)
    rows, cols = np.nonzero(padded[:, 1:] != padded[:, :-1])
    longest = np.ones(k, dtype=np.intp)
    # Each row's edges alternate start, stop: a row starts and ends unsteady.
    np.maximum.at(longest, rows[::2], cols[1::2] - cols[::2] + 1)
    centred = np.subtract(clean, (clean.sum(axis=1) / n)[:, None], out=take("q.a", (k, n)))
    ptp = clean.max(axis=1) - clean.min(axis=1)
    sq = np.multiply(centred, centred, out=take("q.b", (k, n)))
    rms = np.sqrt(sq.sum(axis=1) / n)
    # Fourth powers as squares of squares: numpy's ``** 4`` calls pow() per element,
    # which took a fifth of this function. The two differ by at most 2 ulp per
    # element (pow is the closer), so the kurtosis differs in its last bits; the
    # verdicts, which read it through a ramp and a score rounded to 4 decimals, are
    # the same on every MIT-BIH and Noise Stress Test window
    # (bench/compare_windows.py). Multiplications also give the same bits on every
    # machine, where pow() varies with numpy's SIMD build.
    m4 = np.multiply(sq, sq, out=centred).sum(axis=1)
    m = span.shape[1]
    hann, bands, bins = spectral_constants(m, fs)
    tapered = np.subtract(span, (span.sum(axis=1) / m)[:, None], out=take("q.span", (k, m)))
    tapered *= hann
    spectrum = np.abs(np.fft.rfft(tapered, axis=1, out=take("q.spectrum", (k, m // 2 + 1),
                                                             np.complex128))[:, :bins]) ** 2
    power = list(zip(*(spectrum[:, a:b].sum(axis=1).tolist() for a, b in bands)))
    longest_l = longest.tolist()
    keep = [hi - lo < flat_mv or run * 2 >= n or run >= min_run
            for lo, hi, run in zip(p_lo, p_hi, longest_l)]
    return [WindowStats(n, raw[i].copy() if keep[i] else None, *vals) for i, vals in enumerate(zip(
        p_lo, p_hi, longest_l, raw.min(axis=1).tolist(), raw.max(axis=1).tolist(),
        ptp.tolist(), rms.tolist(), m4.tolist(), power))]


__all__ = ["BANDS", "RAW_PERCENTS", "WindowStats", "median", "percentiles", "percentiles_rows",
           "spectral_constants", "steady_run_bounds", "window_stats_many"]
