"""The R-peak detector's work on each block, for many detectors in one pass.

A service step hands every device's block to its :class:`detect.rpeaks.RPeakDetector`
at once (detect/batch.py). What the detector computes from the signal alone,
before any decision, runs here along a batch axis with each detector's own
state: Pan & Tompkins' (IEEE TBME 32(3):230-236, 1985) 5-point slope and
moving-window integral (:func:`qrs_energy`), and the scan for candidate
peaks of the integral with each candidate's fiducial point and slope
(:func:`scan_many`). Every row's result is the one its detector computes
alone, to the last bit; the decisions (thresholds, search-back, T-wave test)
stay in the detector, one device at a time.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from scipy import ndimage

from .buffers import Scratch, fresh
from .types import FloatArray

if TYPE_CHECKING:                       # rpeaks imports this module
    from .rpeaks import RPeakDetector

_DERIV = np.array([2.0, 1.0, 0.0, -1.0, -2.0]) / 8.0   # Pan-Tompkins 5-point slope
_TAPS = _DERIV.size - 1                                # band samples the slope looks back


# Named tuples, not dataclasses: a few are made per device and second, and a
# frozen dataclass costs several times as much to build.
class _Candidate(NamedTuple):
    peak: int          # index of the integrated-energy maximum
    height: float      # integrated energy at the peak
    r: int             # fiducial: largest |QRS band| before the peak
    slope: float       # largest |slope| in the QRS window (T-wave test)


class Scanned(NamedTuple):
    """A detector's candidate scan of its next block, done with other detectors'
    (:func:`scan_many`)."""

    candidates: tuple[_Candidate, ...]
    at: int                      # samples the detector had seen: the block starts here
    history: FloatArray          # (3, look-back): its QRS band, |slope| and energy after
                                 # the block (its last columns), for the detector to copy


# Built per candidate and per block of every device: ``tuple.__new__`` with the
# fields in order makes the same named tuple as its constructor, without the
# constructor's Python frame (about half the cost, counted by callgrind).
_new_candidate = functools.partial(tuple.__new__, _Candidate)
_new_scanned = functools.partial(tuple.__new__, Scanned)


def qrs_energy(detectors: Sequence[RPeakDetector], band: np.ndarray,
               scratch: Scratch | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pan-Tompkins' |slope| and moving-window integral of each detector's
    QRS-band row of ``band`` (``(len(detectors), n)``), in one pass.

    Both are FIR filters with each detector's carried state: its last band
    samples and its last integral terms, laid before the block. They were
    ``scipy.signal.lfilter`` calls, whose transposed direct form adds each
    output's terms one at a time, oldest first (``((b4 x[n-4] + b3 x[n-3]) + ...)
    + b0 x[n]``); here each addition is one numpy operation over the whole block
    in that same order, so every value is the one lfilter gave, to the last bit,
    under any chunking (a sum over one sample per column, never a running sum).
    For the integral's 38 equal taps that is 37 vector additions instead of
    lfilter's per-sample loop over 38 delays. ``scratch`` (the batched pass's)
    holds the working arrays when given. Returns ``(|slope|, integral)``, both
    fresh arrays shaped like ``band``.
    """
    if band.ndim != 2 or band.shape[0] != len(detectors):
        raise ValueError(f"qrs_energy needs one row per detector: {len(detectors)} "
                         f"detectors, a block of shape {band.shape}.")
    if band.shape[1] == 0 or not detectors:
        return np.abs(band), band.copy()
    width = detectors[0]._n_int
    if any(det._n_int != width for det in detectors):
        raise ValueError("qrs_energy detectors must share one rate (one integration window).")
    k, m = band.shape
    take = fresh if scratch is None else scratch.take
    # Slope: the last _TAPS band samples, then the block; the oldest tap's term first.
    xe = take("qrs.band", (k, _TAPS + m))
    xe[:, :_TAPS] = np.concatenate([det._band_tail for det in detectors]).reshape(k, _TAPS)
    xe[:, _TAPS:] = band
    d = np.multiply(xe[:, :m], _DERIV[_TAPS], out=take("qrs.d", (k, m)))
    term = take("qrs.term", (k, m))
    for j in range(1, _TAPS + 1):
        d += np.multiply(xe[:, j:j + m], _DERIV[_TAPS - j], out=term)
    # Integral: each term is (slope squared) times the tap 1 / width, as lfilter formed it.
    back = width - 1
    terms = take("qrs.terms", (k, back + m))
    terms[:, :back] = np.concatenate([det._energy_tail for det in detectors]).reshape(k, back)
    sq = np.multiply(d, d, out=terms[:, back:])
    sq *= 1.0 / width
    mwi = terms[:, :m].copy() if width == 1 else np.add(terms[:, :m], terms[:, 1:m + 1])
    for j in range(2, width):
        mwi += terms[:, j:j + m]
    # The detectors' new tails: one fresh array each for all rows (the working arrays are
    # reused by the next pass).
    band_tails, energy_tails = xe[:, m:].copy(), terms[:, m:].copy()
    for det, band_tail, energy_tail in zip(detectors, band_tails, energy_tails):
        det._band_tail, det._energy_tail = band_tail, energy_tail
    return np.abs(d), mwi


def scan_many(detectors: Sequence[RPeakDetector], band: FloatArray, slope: FloatArray,
              energy: FloatArray, scratch: Scratch | None = None) -> list[Scanned | None]:
    """Each detector's candidate scan of its next block (rows of ``band`` and its
    :func:`qrs_energy` ``slope`` and ``energy``, ``(len(detectors), m)``), done
    for all :attr:`~RPeakDetector.steady` detectors of one rate in one pass;
    None for the others (a segment's first second), which scan when pushed.

    Row by row the same as ``RPeakDetector._scan``: each detector's look-back
    and new block are laid side by side, and the moving maximum, the peak tests
    and each candidate's fiducial (argmax of |band|) and slope (max) are the
    same comparisons on the same values, so the candidates are identical.
    ``scratch`` (the batched pass's) holds the working arrays when given.
    """
    k, m = band.shape
    out: list[Scanned | None] = [None] * k
    if m == 0 or not detectors:
        return out
    d0 = detectors[0]
    la, locate, back = d0._la, d0._locate, d0._keep + d0._la
    rows = [i for i, d in enumerate(detectors)
            if d.steady and (d._la, d._locate, d._keep) == (la, locate, d0._keep)]
    if not rows:
        return out
    # Look-back then block, per detector: (3, rows, back + m).
    take = fresh if scratch is None else scratch.take
    ext = take("scan.ext", (3, len(rows), back + m))
    # Every look-back gathered by one concatenate and laid in by one copy (a copy per
    # detector cost more in call overhead than in copying).
    looks = np.concatenate([detectors[i]._hist for i in rows]).reshape(len(rows), 3, back)
    ext[:, :, :back] = looks.transpose(1, 0, 2)
    whole = len(rows) == k
    for j, block in enumerate((band, slope, energy)):
        ext[j, :, back:] = block if whole else block[rows]
    mwi = ext[2]
    # Candidates lie in [lo, hi) = [n - la, n + m - la) of the stream, columns
    # back - la .. back + m - la; their +-la windows stay inside the row, so the
    # filter's edge mode never reaches them.
    c0, c1 = back - la, back + m - la
    # The moving maximum only where the candidates' windows reach, [c0 - la, end):
    # the same maxima there as over the whole row (no window meets the slice's edge).
    s0 = c0 - la
    mx = ndimage.maximum_filter1d(mwi[:, s0:], size=2 * la + 1, axis=1, mode="nearest",
                                  output=take("scan.max", (len(rows), back + m - s0)))
    core = mwi[:, c0:c1]
    is_peak = (core >= mx[:, la:la + m]) & (core > mwi[:, c0 - 1:c1 - 1]) & (core > 0)
    hits_r, hits_c = np.nonzero(is_peak)
    hits_c += c0
    found: list[list[_Candidate]] = [[] for _ in rows]
    if hits_r.size:
        # Fiducial window [peak - locate, peak], inside the look-back in steady state.
        # (by flat index: the band and |slope| rows of ext are (rows, back + m) each)
        span = np.arange(locate + 1)
        flat = (hits_r * (back + m) + (hits_c - locate))[:, None] + span
        ks = np.abs(ext[0].ravel()[flat]).argmax(axis=1).tolist()
        slopes = ext[1].ravel()[flat].max(axis=1).tolist()
        heights = mwi[hits_r, hits_c].tolist()
        for r, c, kk, sl, h in zip(hits_r.tolist(), hits_c.tolist(), ks, slopes, heights):
            d = detectors[rows[r]]
            peak = d._n - back + c
            found[r].append(_new_candidate((peak, h, max(0, peak - locate + kk - d._delay), sl)))
    # What each detector keeps after the block is the end of its row, laid out as
    # (detector, 3, look-back) in one fresh array (not the working one: the
    # detectors copy their rows when they resume, after every pass of the tick).
    after = np.empty((len(rows), 3, back))
    after[...] = ext[:, :, m:].transpose(1, 0, 2)
    for i, cands, look in zip(rows, found, after):
        out[i] = _new_scanned((tuple(cands), detectors[i]._n, look))
    return out


__all__ = ["Scanned", "qrs_energy", "scan_many"]
