"""Streaming R-peak detection: causal, bounded look-back, chunk-size invariant.

The detector follows Pan & Tompkins (IEEE TBME 32(3):230-236, 1985) with the
decision rules refined by Hamilton & Tompkins (IEEE TBME 33(12):1157-1165,
1986), and three changes that matter on ambulatory ECG:

* **Polarity-free.** Detection runs on the squared slope of the QRS band, so
  mostly-negative complexes (MIT-BIH 108, 203, 207) are found like positive
  ones, and the fiducial point is the largest absolute deflection of the QRS
  band, not the largest positive value.
* **No rate cap below 300 bpm.** The refractory period is 200 ms; between 200
  and 360 ms a candidate must show a QRS-like slope (at least half that of
  the previous beat) to be taken, which rejects T waves (Pan & Tompkins'
  rule) without capping the rate near 200 bpm as a 300 ms refractory would.
* **Streaming by decision time.** Every decision has a sample index at which
  it becomes decidable: a candidate peak once ``lookahead`` samples after it
  are known, a search-back once no beat has come for 1.66 mean RR. Decisions
  are taken strictly in that order, whatever the chunking, so feeding 0.1 s,
  1 s or 10 s chunks yields identical beats.

Look-back is bounded: only candidates since the last beat or the last
search-back are kept, and nothing is decided later than the search-back
interval after the data. The work on the signal alone (slope, integral,
candidate scan) is in :mod:`detect.rpeak_scan`, where a service step runs it
for all devices at once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .buffers import F64
from .filters import SosFilter, bandpass_sos
from .rpeak_scan import _DERIV, _TAPS, Scanned, _Candidate, qrs_energy, scan_many
from .types import FloatArray

@dataclass(frozen=True, slots=True)
class DetectorParams:
    """Tunable constants of the detector, in seconds where they are times."""

    band_hz: tuple[float, float] = (5.0, 15.0)   # QRS energy band (Pan-Tompkins)
    integration_s: float = 0.150                 # moving-window integration width
    lookahead_s: float = 0.100                   # a candidate is a max within +-this
    refractory_s: float = 0.200                  # 300 bpm: no two beats closer
    t_wave_s: float = 0.360                      # below this RR, test the slope
    searchback_rr: float = 1.4                   # search back after this many mean RRs
    threshold: float = 0.15                      # THR1 = NPK + threshold * (SPK - NPK)
    searchback_threshold: float = 0.5            # THR2 = this * THR1
    learn_s: float = 2.0                         # initial threshold learning period
    locate_s: float = 0.200                      # fiducial search window before the MWI peak
    decay_after_s: float = 3.0                   # no beat this long: let the signal level sink
    decay_tau_s: float = 3.0
    min_qrs_mv: float = 0.08                     # smallest QRS we still look for


class RPeakDetector:
    """``push(x) -> beats``: sample indices of R peaks at rate ``fs``.

    ``x`` is the ECG in mV at ``fs`` (no prior filtering needed). Returned
    indices count from the first sample ever pushed. :attr:`horizon` is the
    index before which every beat has been reported; no later push adds a
    beat before it.
    """

    # Slots: with over 30 attributes the instance dict stops sharing its keys
    # (a plain dict of about 1.6 KB, one per device).
    __slots__ = ("_band_tail", "_bp", "_delay", "_due", "_energy_tail", "_floor", "_hist",
                 "_keep", "_la", "_last_peak", "_last_r", "_last_slope", "_learn", "_learn_end",
                 "_learn_horizon", "_learn_start", "_learning", "_locate", "_mean", "_n", "_n_int",
                 "_next_cand", "_out", "_pending", "_refr", "_relearn_at", "_rr", "_rr_ok",
                 "_sb_from", "_start", "_twave", "fs", "npk", "p", "spk")

    def __init__(self, fs: float, params: DetectorParams | None = None) -> None:
        p = params or DetectorParams()
        self.fs = float(fs)
        self.p = p
        self._bp = SosFilter(bandpass_sos(fs, *p.band_hz))
        self._n_int = max(1, int(round(p.integration_s * fs)))
        self._la = max(1, int(round(p.lookahead_s * fs)))
        self._refr = int(round(p.refractory_s * fs))
        self._twave = int(round(p.t_wave_s * fs))
        self._learn = int(round(p.learn_s * fs))
        self._locate = int(round(p.locate_s * fs))
        # Delay of the fiducial behind the true R peak through the QRS band
        # filter (its group delay near 10 Hz); measured once on a template.
        self._delay = _template_delay(self)
        self._floor = _template_height(self, p.min_qrs_mv)
        # Stream buffers: enough history for the integrator, candidate search
        # and fiducial window; everything older is dropped.
        self._keep = self._locate + 2 * self._la + self._n_int + 8
        # Slope and integrator as FIR filters with carried state (zero before
        # the stream), so many detectors can run them in one call (qrs_energy):
        # the last band samples the slope reads and the integral's last terms.
        self._band_tail = np.zeros(_TAPS)
        self._energy_tail = np.zeros(self._n_int - 1)
        # Rows: QRS band, |slope|, integrated energy; one array so that one copy
        # moves all three (the batched scan reads it whole).
        self._hist = np.zeros((3, 0))
        self._start = 0                        # global index of _hist[:, 0]
        self._n = 0                            # samples received
        self._next_cand = 0                    # first index not yet scanned for candidates
        # Decision state.
        self._learning: list[_Candidate] | None = []
        self._learn_start, self._learn_end = 0, self._learn
        self._learn_horizon = 0
        self._relearn_at: list[int] = []
        self._pending: list[_Candidate] = []   # candidates decided but open to search-back
        self.spk = 0.0
        self.npk = 0.0
        self._rr: list[int] = []
        self._rr_ok: list[int] = []
        self._mean: float | None = None        # _mean_rr() of the lists above, cached
        self._due: int | None = None           # _searchback_due() while not learning, cached
        self._last_r: int | None = None
        self._last_peak: int | None = None
        self._last_slope = 0.0
        self._sb_from = 0                      # search-back considers candidates after this
        self._out: list[int] = []

    # ------------------------------------------------------------------ public
    @property
    def horizon(self) -> int:
        """Every beat with an index below this has been returned."""
        if self._learning is not None:
            return self._learn_horizon
        h = self._next_cand - self._locate - self._delay
        for c in self._pending:               # (min over them, without a list)
            if c.r < h:
                h = c.r
        return h if h > 0 else 0

    def relearn(self, index: int) -> None:
        """Learn the thresholds afresh from ``index`` on.

        For when the signal changed under the detector (noise that ended, an
        electrode moved): the old levels would make it deaf for seconds.
        ``index`` must not lie before samples already pushed.
        """
        if index < self._n:
            raise ValueError(f"Cannot relearn from sample {index}: {self._n} samples "
                             "were already analysed.")
        self._relearn_at.append(int(index))
        self._relearn_at.sort()

    @property
    def band_filter(self) -> SosFilter:
        """The QRS band-pass, for callers that filter many devices at once
        (:func:`detect.filters.push_many`) and hand the result to :meth:`push`."""
        return self._bp

    def push(self, x: FloatArray, band: FloatArray | None = None,
             energy: tuple[FloatArray, FloatArray] | None = None,
             scanned: Scanned | None = None) -> list[int]:
        """Beats decided with ``x`` known. ``band`` is ``x`` already through
        :attr:`band_filter` and ``energy`` its :func:`qrs_energy`, ``scanned``
        the candidates this push finds (:func:`scan_many`, which needs ``band``
        and ``energy``), all computed elsewhere for many detectors at once; else
        they are computed here."""
        if type(x) is not np.ndarray or x.dtype is not F64:   # (else asarray returns it)
            x = np.asarray(x, np.float64)
        if scanned is not None:
            if band is None or energy is None or (      # (1-D of one size: the same shape)
                    (band.ndim != 1 or x.ndim != 1 or band.size != x.size)
                    and band.shape != x.shape):
                raise ValueError("A batched R-peak scan comes with the block's QRS band "
                                 "and energy.")
            cands = self._take(scanned, band, *energy)
        else:
            if x.size:
                self._features(x, band, energy)
            cands = self._scan()
        self._out = out = []
        la = self._la
        for c in cands:
            # _advance_to only when a decision may fall due by the candidate's window.
            due = self._due
            if self._learning is not None or due is None or due <= c.peak + la or self._relearn_at:
                self._advance_to(c.peak + la)
            self._on_candidate(c)
        due = self._due
        if self._learning is not None or due is None or due <= self._n - 1 or self._relearn_at:
            self._advance_to(self._n - 1)
        return out

    # ---------------------------------------------------------------- features
    def _features(self, x: FloatArray, band: FloatArray | None,
                  energy: tuple[FloatArray, FloatArray] | None) -> None:
        """QRS band -> 5-point slope -> square -> moving-window integral, all causal."""
        bp = self._bp.push(x) if band is None else band
        if energy is None:
            slope, mwi = qrs_energy([self], bp[None, :])
            slope, mwi = slope[0], mwi[0]
        else:
            slope, mwi = energy
        if not bp.shape == slope.shape == mwi.shape == x.shape:
            raise ValueError(f"The QRS band, slope and energy blocks have shapes {bp.shape}, "
                             f"{slope.shape} and {mwi.shape}; the signal {x.shape}.")
        self._hist = np.concatenate([self._hist, (bp, slope, mwi)], axis=1)
        self._n += x.size

    def _take(self, scanned: Scanned, bp: FloatArray, slope: FloatArray,
              mwi: FloatArray) -> tuple[_Candidate, ...]:
        """What _features, _scan and _trim would do with this block, whose candidates
        :func:`scan_many` found: the history becomes its last look-back samples."""
        m, n = bp.size, self._n
        if (n - self._start != self._keep + self._la or self._next_cand != n - self._la
                or m == 0 or scanned.at != n):                      # (not self.steady, inline)
            raise RuntimeError("A batched R-peak scan was handed to a detector it was "
                               "not computed for.")
        # (bp.shape == slope.shape == mwi.shape == (m,), from ints: a shape is a new tuple)
        if not (bp.ndim == slope.ndim == mwi.ndim == 1 and slope.size == mwi.size == m):
            raise ValueError(f"The QRS band, slope and energy blocks have shapes {bp.shape}, "
                             f"{slope.shape} and {mwi.shape}.")
        back = self._hist.shape[1]
        if scanned.history.shape != (3, back):
            raise ValueError(f"A batched R-peak scan's look-back has shape "
                             f"{scanned.history.shape}, not (3, {back}).")
        # The look-back and the block side by side, less the first m columns: the
        # scan laid them out so; copied into this detector's own array (no stack
        # per device, nothing new allocated).
        self._hist[...] = scanned.history
        self._n += m
        self._next_cand = self._n - self._la
        self._start = self._n - back
        return scanned.candidates

    @property
    def steady(self) -> bool:
        """Past a segment's first samples: the history holds exactly the look-back and
        the next scan starts where the last ended, as :func:`scan_many` assumes."""
        return (self._n - self._start == self._keep + self._la
                and self._next_cand == self._n - self._la)

    def _scan(self) -> list[_Candidate]:
        """Local maxima of the integrated energy whose look-ahead is complete.

        A candidate is the highest point within +-lookahead and strictly above
        its left neighbour (so a plateau yields one candidate).
        """
        la, base = self._la, self._start
        lo, hi = self._next_cand, self._n - la
        out: list[_Candidate] = []
        if hi > lo:
            seg_lo = max(lo - la - 1, base)
            seg = self._hist[2, seg_lo - base: hi + la - base]
            # Before the stream the integrator is zero: pad on the left only.
            pad = (lo - la - 1) - seg_lo if lo - la - 1 < base else 0
            if pad < 0:
                seg = np.concatenate([np.zeros(-pad), seg])
                seg_lo += pad
            mx = ndimage.maximum_filter1d(seg, size=2 * la + 1, mode="nearest")
            off = lo - seg_lo
            core = seg[off: off + hi - lo]
            is_peak = (core >= mx[off: off + hi - lo]) & (core > seg[off - 1: off - 1 + hi - lo])
            for k in np.flatnonzero(is_peak & (core > 0)):
                out.append(self._candidate(lo + int(k)))
            self._next_cand = hi
        self._trim()
        return out

    def _candidate(self, peak: int) -> _Candidate:
        base = self._start
        a = max(peak - self._locate, base)
        win = self._hist[0, a - base: peak + 1 - base]
        k = int(np.argmax(np.abs(win)))
        r = max(0, a + k - self._delay)
        slope = float(self._hist[1, a - base: peak + 1 - base].max())
        return _Candidate(peak, float(self._hist[2, peak - base]), r, slope)

    def _trim(self) -> None:
        cut = min(self._next_cand - self._keep, self._n - self._keep)
        if cut > self._start:
            k = cut - self._start
            self._hist = self._hist[:, k:].copy()
            self._start = cut

    # --------------------------------------------------------------- decisions
    def _advance_to(self, index: int) -> None:
        """Take every decision that falls due up to ``index``, in index order."""
        while True:
            if self._learning is not None:
                if index < self._learn_end:
                    return
                self._finish_learning()
            # Asked once or twice per candidate and chunk; it moves only when a beat
            # is accepted or a search-back or learning ends (each clears the cache).
            due = self._due
            if due is None:
                due = self._due = self._searchback_due()
            if self._relearn_at:
                relearn = self._relearn_at[0]
                if relearn <= index and relearn <= due:
                    self._relearn_at.pop(0)
                    self._start_learning(relearn)
                    continue
            if due > index:
                return
            self._searchback(due)

    def _start_learning(self, at: int) -> None:
        # Beats found while learning lie at or after ``at`` less the fiducial
        # search and the filter delay; candidates already scanned past ``at``
        # are learnt again, so the horizon may not stay ahead of them.
        self._learn_horizon = max(0, min(self.horizon, at - self._locate - self._delay))
        self._learning = []
        self._learn_start, self._learn_end = at, at + self._learn
        self._pending = []
        self._due = None

    def _finish_learning(self) -> None:
        cands, self._learning = self._learning or [], None
        # np.max and np.median's values, from the sorted list (a few dozen floats:
        # numpy's per-call cost was most of a device's learning).
        heights = sorted([c.height for c in cands]) or [0.0]
        mid = len(heights) // 2
        median = heights[mid] if len(heights) % 2 else (heights[mid - 1] + heights[mid]) / 2
        self.spk = max(heights[-1] * 0.5, self._floor)
        self.npk = median * 0.5
        self._sb_from = self._learn_start
        self._due = None
        for c in cands:
            self._on_candidate(c)

    def _mean_rr(self) -> float:
        # Asked several times per candidate; the lists change only in _accept.
        if self._mean is None:
            src = self._rr_ok if len(self._rr_ok) >= 4 else self._rr
            # Integer sums are exact, so this equals np.mean to the last bit.
            self._mean = sum(src[-8:]) / len(src[-8:]) if src else self.fs   # 60 bpm at first
        return self._mean

    def _on_candidate(self, c: _Candidate) -> None:
        if self._learning is not None:
            self._learning.append(c)
            return
        if self._last_r is not None and c.r - self._last_r <= self._refr:
            return   # inside the refractory period: part of the last beat, not noise
        npk = self.npk
        if c.height > npk + self.p.threshold * (self.spk - npk) and self._is_beat(c):
            self._accept(c, searchback=False)
        else:
            self.npk = 0.125 * c.height + 0.875 * self.npk
            self._pending.append(c)

    def _is_beat(self, c: _Candidate) -> bool:
        if self._last_r is None:
            return True
        dist = c.r - self._last_r
        if dist <= self._refr:
            return False
        if dist < self._twave and c.slope < 0.5 * self._last_slope:
            return False   # a T wave: it rises less steeply than the QRS before it
        return True

    def _accept(self, c: _Candidate, *, searchback: bool) -> None:
        gain = 0.25 if searchback else 0.125
        # A single huge ectopic beat must not blind the detector to the
        # normal beats after it: cap how far one beat moves the signal level.
        spk, h = self.spk, c.height
        if spk > 0 and 4.0 * spk < h:          # min(height, 4 spk), without the call
            h = 4.0 * spk
        self.spk = gain * h + (1 - gain) * spk
        rrs, ok = self._rr, self._rr_ok
        if self._last_r is not None:
            rr = c.r - self._last_r
            rrs.append(rr)
            recent = (ok if len(ok) >= 4 else rrs)[-8:]     # _mean_rr() afresh, inline
            mean = sum(recent) / len(recent)
            if 0.92 * mean <= rr <= 1.16 * mean or len(ok) < 4:
                ok.append(rr)
            del rrs[:-8], ok[:-8]
        self._last_r, self._last_peak, self._last_slope = c.r, c.peak, c.slope
        self._out.append(c.r)
        if self._pending:
            kept, r, refr = [], c.r, self._refr      # (a loop: a comprehension costs more
            for q in self._pending:                  # than the one or two it filters)
                if q.r - r > refr:
                    kept.append(q)
            self._pending = kept
        self._sb_from = c.peak
        # _mean_rr() and _searchback_due() now (not learning; both anchors are this peak).
        src = ok if len(ok) >= 4 else rrs
        self._mean = mean = sum(src[-8:]) / len(src[-8:]) if src else self.fs
        self._due = c.peak + int(self.p.searchback_rr * mean)

    def _searchback_due(self) -> int | None:
        if self._learning is not None:
            return None
        anchor = self._sb_from if self._last_peak is None else max(self._sb_from, self._last_peak)
        return anchor + int(self.p.searchback_rr * self._mean_rr())

    def _searchback(self, due: int) -> None:
        npk = self.npk                         # THR2 = searchback_threshold * THR1
        t2 = self.p.searchback_threshold * (npk + self.p.threshold * (self.spk - npk))
        pool = [c for c in self._pending if c.peak + self._la <= due and self._is_beat(c)]
        best = max(pool, key=lambda c: c.height, default=None)
        if best is not None and best.height > t2:
            self._accept(best, searchback=True)
            # Candidates after the new beat stay open for the next search-back.
            return
        # Nothing there: what was seen so far is final noise; let the signal
        # level sink slowly if beats have been absent for long (amplitude
        # drop after electrode movement), never below the smallest QRS.
        self._pending = [c for c in self._pending if c.peak + self._la > due]
        silent = due - (self._last_peak if self._last_peak is not None else 0)
        if silent > self.p.decay_after_s * self.fs:
            step = (due - self._sb_from) / self.fs
            self.spk = max(self._floor, self.spk * float(np.exp(-step / self.p.decay_tau_s)))
        self._sb_from = due
        self._due = None


def _template(fs: float, amp_mv: float) -> FloatArray:
    """A 2 s trace with one 90 ms Gaussian QRS of ``amp_mv`` at 1 s."""
    t = np.arange(int(2 * fs)) / fs
    return amp_mv * np.exp(-0.5 * ((t - 1.0) / 0.018) ** 2)


def _template_delay(det: RPeakDetector) -> int:
    return _delay_of(det.fs, tuple(det.p.band_hz))


def _template_height(det: RPeakDetector, amp_mv: float) -> float:
    return _height_of(det.fs, tuple(det.p.band_hz), det._n_int, amp_mv)


# The same for every detector of one design: worked out once per process (it was
# a few percent of a benchmark's time, every device starting a detector).
@functools.lru_cache(maxsize=16)
def _delay_of(fs: float, band_hz: tuple[float, float]) -> int:
    f = SosFilter(bandpass_sos(fs, *band_hz))
    y = f.push(_template(fs, 1.0))
    return int(np.argmax(np.abs(y))) - int(fs)


@functools.lru_cache(maxsize=16)
def _height_of(fs: float, band_hz: tuple[float, float], n_int: int, amp_mv: float) -> float:
    f = SosFilter(bandpass_sos(fs, *band_hz))
    bp = f.push(_template(fs, amp_mv))
    d = np.convolve(np.concatenate([np.zeros(4), bp]), _DERIV, mode="valid")
    mwi = np.convolve(d * d, np.ones(n_int) / n_int)[: d.size]
    return float(mwi.max())


__all__ = ["DetectorParams", "RPeakDetector", "Scanned", "qrs_energy", "scan_many"]
