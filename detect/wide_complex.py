"""Wide-complex tachycardia from the waveform: ventricular tachycardia without beat labels.

Ventricular beats are wide (the impulse spreads through the myocardium, not
the conduction system), so a fast run of wide beats is ventricular
tachycardia until proven otherwise; bedside monitors alarm on it whatever a
beat classifier says (the "V-tach / wide QRS tachycardia" of IEC 60601-2-27
style monitors; the 120 ms QRS criterion is from Wellens, Bar & Lie, Am J Med
64:27-33, 1978). This tracker is the safety net under the beat model: it
needs no labels, so VT is not missed where the model is unsure.

Per beat, on the cleaned 250 Hz signal: the **width** is the time the signal
stays above 30 % of the R deflection (from the window median) around R. On
MIT-BIH DS1 at the reference beats it is 36 ms median (95th percentile 64)
for N beats and 80 ms (25th percentile 52) for V beats: it measures the
sharp core of the QRS, not its full duration. A beat is **wide** when that is
at least ``WIDE_MS`` and at least ``RATIO`` times the patient's usual width
(the median over recent beats at rates below 100 bpm), so that bundle branch
block in sinus tachycardia, wide but no wider than usual, does not count.
``RUN_BEATS`` consecutive wide beats with RR below ``FAST_RR_S`` (above 120
bpm, stricter than the labelled VT's 100 bpm since width alone is weaker
evidence) raise ``wide_complex_tachycardia``; the first beat that is narrow
or slow ends it.

Known limit: this width is crude. On MIT-BIH DS1 it finds 5 of 39 VT runs
(with no false alarm): slow VT (223, about 110 bpm) and VT whose core is no
wider than the patient's usual beat (203) escape it. QRS delineation (onset
and offset from slope thresholds) is the next step.

Like AF, beats wait until their quality window is judged; beats in unusable
signal end a run and never start one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from . import buffers
from .buffers import F64
from .conditions import Observation
from .types import Beat, Condition, Evidence, FloatArray, QualityWindow

WCT = Condition.WIDE_COMPLEX_TACHYCARDIA
WIDE_MS = 80.0
RATIO = 1.4
FAST_RR_S = 0.5
RUN_BEATS = 3            # as labelled VT; chosen on DS1 (3 found 5 of 39 runs, 4 found 3; 0 false)
BASELINE_BEATS = 32
HALF_S = 0.15            # width search +- around R
LEVEL = 0.3              # fraction of the R deflection that bounds the width
KEEP_S = 8.0             # signal kept for beats whose quality window is pending
# Look-back array allocated per device: the usual need during a push of 1 s is
# 0.4-2.2 s (held plus the block; bench fleet, 200 devices x 30 s), more only
# while the detector learns, when the array grows and later shrinks back.
CAPACITY_S = 2.2


def half_window(fs: float) -> int:
    """Samples searched on either side of R for the width at rate ``fs``."""
    return int(round(HALF_S * float(fs)))


def qrs_width_ms(segment: FloatArray, centre: int, fs: float) -> float:
    """Width (ms) of the deflection at ``centre`` (+-5 samples) above LEVEL of its size.

    The deflection is |x - median| in the segment's own precision; the stretch
    around its peak is walked in plain Python (a few dozen samples: numpy's
    per-call cost was most of the time), with the same comparisons, so the
    width is the one the array version gave."""
    seg = np.asarray(segment)
    if seg.dtype.kind != "f":
        seg = seg.astype(np.float64)
    n = seg.size
    m = n // 2
    if n % 2:
        med = np.partition(seg, m)[m]
    else:
        part = np.partition(seg, (m - 1, m))
        med = (part[m - 1] + part[m]) / 2                   # np.median's mean of the two
    e = np.abs(seg - med)
    x = e.tolist()
    lo, hi = max(centre - 5, 0), min(centre + 6, n)
    c = lo + int(e[lo:hi].argmax())
    level = float(LEVEL * e[c])                             # in the segment's precision
    # The contiguous stretch above the level around c.
    a = c
    while a > 0 and x[a - 1] > level:
        a -= 1
    b = c
    while b < n and x[b] > level:
        b += 1
    return 1000.0 * (b - a) / fs


def qrs_widths_many(segments: FloatArray, centre: int, fs: float) -> list[float]:
    """:func:`qrs_width_ms` of every row of ``segments`` (``(k, n)`` float64), in one pass.

    The batched signal pass (detect/batch.py) measures every R-peak candidate of a
    tick this way, before the trackers decide which are beats. Row by row the same
    comparisons on the same values: the median by a partial sort, the first
    largest deflection within +-5 samples of ``centre``, and the stretch around it
    whose samples all exceed the level (it stops at the first one that does not,
    as the walk does), so each width is the row's own."""
    seg = np.asarray(segments, dtype=np.float64)
    k, n = seg.shape
    if k == 0:
        return []
    m = n // 2
    part = seg.copy()
    if n % 2:
        part.partition(m, axis=1)
        med = part[:, m]
    else:
        part.partition((m - 1, m), axis=1)
        med = (part[:, m - 1] + part[:, m]) / 2
    e = np.abs(seg - med[:, None])
    lo, hi = max(centre - 5, 0), min(centre + 6, n)
    c = e[:, lo:hi].argmax(axis=1) + lo
    level = LEVEL * e[np.arange(k), c]
    stops = ~(e > level[:, None])
    cols = np.arange(n)
    a = np.where(stops & (cols < c[:, None]), cols, -1).max(axis=1) + 1
    b = np.where(stops & (cols >= c[:, None]), cols, n).min(axis=1)
    return (1000.0 * (b - a) / fs).tolist()


class WideComplexTracker:
    """``push(clean, beats, windows[, final]) -> [Observation]`` for one device's stream.

    ``clean`` continues the cleaned signal at ``fs`` from stream index
    ``start``; call :meth:`restart` when a new segment begins. ``horizon``
    (the R-peak detector's promise: no later beat comes before it) lets the
    tracker keep only the signal that pending and future beats can need.
    """

    def __init__(self, fs: float, index_to_time: Callable[[int], float]) -> None:
        self.fs = float(fs)
        self._time = index_to_time
        self._half = half_window(self.fs)
        self._keep = int(round(KEEP_S * self.fs))
        self._fast = FAST_RR_S * self.fs
        # Short queues as lists trimmed by hand: a deque costs 760 bytes however short.
        self._baseline: list[float] = []          # the last BASELINE_BEATS widths
        self._windows: list[QualityWindow] = []   # the last 16 judged
        self._covered = 0
        self._run: list[Beat] = []
        self._active = False
        self.frontier = 0
        # Cleaned signal from stream index _from to _pos in a history (one
        # preallocated array moved in place, no concatenate per chunk). With the
        # detector's horizon it holds about a second: sized for that, grown when a
        # push needs more (learning, long search-back) and shrunk back once it no
        # longer does. A pipeline shares its segment's history (VF and quality
        # read the same signal), see :meth:`restart`.
        self._capacity = int(round(CAPACITY_S * self.fs))
        self.restart(0)

    @property
    def _n(self) -> int:
        """Samples of look-back this tracker holds on to."""
        return self._pos - self._from

    def restart(self, start: int,
                history: buffers.History | None = None) -> list[Observation]:
        """A new segment begins at stream index ``start`` (after a gap): no run spans it.

        ``history``, when given, holds the segment's cleaned signal from ``start``
        for other readers too (a pipeline segment's VF and quality)."""
        out = self._end(self.frontier) if self._active else []
        if history is None:
            history = buffers.History(start, self._capacity)
        self._hist, self._reader = history, history.join(start)
        self._pos = self._from = start
        self._pending: list[Beat] = []
        self._prev: int | None = None
        self._run = []
        self._widths: dict[int, float] = {}        # measured ahead (see push), by index
        self.frontier = max(self.frontier, start)
        return out

    def push(self, clean: FloatArray, beats: Sequence[Beat], windows: Sequence[QualityWindow],
             final: bool = False, horizon: int | None = None,
             widths: Mapping[int, float] | None = None) -> list[Observation]:
        """Observations decided with this block known. ``widths`` are the widths of beats
        to come (stream index -> ms) measured beforehand on this same signal, many
        devices at once (:func:`qrs_widths_many`, detect/batch.py); the others are
        measured here."""
        if type(clean) is not np.ndarray or clean.dtype is not F64:   # (else asarray returns it)
            clean = np.asarray(clean, np.float64)
        if widths:
            self._widths.update(widths)
        end, hist = self._pos + clean.size, self._hist
        if end > hist.start + hist.n:             # in a pipeline VF has put this block already
            hist.put(self._pos, clean)
        self._pos = end
        pending, half = self._pending, self._half
        if beats:
            pending.extend(beats)
        if windows:
            self._windows.extend(windows)
            if len(self._windows) > 16:
                del self._windows[:-16]
            if windows[-1].end > self._covered:
                self._covered = windows[-1].end
        out: list[Observation] = []
        if pending:
            # Ready: its window judged and its width's signal all here (or the end).
            covered, reach = self._covered, end - half
            done = 0
            for b in pending:
                if not (final or (b.index < covered and b.index < reach)):
                    break
                done += 1
                out += self._on_beat(b)
                if b.index > self.frontier:
                    self.frontier = b.index
            del pending[:done]
        if final and self._active:
            out += self._end(self.frontier)
        # Keep what pending beats and beats reported later may still need: those
        # come no earlier than the horizon. Never more than KEEP_S back (a beat
        # reported later than that has no width), so without a horizon, or when
        # it lags further, the signal dropped is the same as before.
        cut = end - self._keep
        if horizon is not None and horizon - half > cut:      # (max(), without the call)
            cut = horizon - half
        for b in pending:                          # (a few: a loop, not a list and min)
            if b.index - half < cut:
                cut = b.index - half
        if cut > self._from:
            self._from = cut if cut < end else end
            self._hist.need(self._reader, self._from)
        widths_ahead = self._widths
        if widths_ahead:
            # Candidates that did not become beats, or whose beat can have no width now.
            # (A loop over a copy of the keys: a comprehension costs more for these few.)
            edge = self._from + self._half
            for index in list(widths_ahead):
                if index < edge:
                    del widths_ahead[index]
        return out

    # -------------------------------------------------------------- internals
    def _on_beat(self, b: Beat) -> list[Observation]:
        index = b.index
        prev, self._prev = self._prev, index
        for w in reversed(self._windows):           # usable_at(self._windows, index), inline
            if w.start <= index < w.end:
                if not w.quality.usable:
                    self._prev = None
                    return self._end(index) if self._active else self._reset()
                break
        # The width: from the batched pass, else measured here (None without its signal).
        half = self._half
        a = index - half
        if a < self._from or a + 2 * half + 1 > self._pos:
            width = None
        else:
            width = self._widths.pop(index, None)
            if width is None:
                width = qrs_width_ms(self._hist.view(a, a + 2 * half + 1), half, self.fs)
        rr = None if prev is None else index - prev
        # The usual width matters only for a beat past the absolute limit (most are not).
        wide = width is not None and width >= WIDE_MS and width >= RATIO * self._usual()
        if width is not None and rr is not None and rr >= 0.6 * self.fs:
            baseline = self._baseline
            baseline.append(width)
            if len(baseline) > BASELINE_BEATS:
                del baseline[0]
        if wide and rr is not None and rr < self._fast:
            self._run.append(b)
            if not self._active and len(self._run) >= RUN_BEATS:
                return [self._start(b)]
            return []
        if self._active:
            return self._end(b.index)
        if self._run:
            self._run = []
        return []

    def _usual(self) -> float:
        """The patient's usual width: median over recent beats below 100 bpm."""
        if len(self._baseline) < 8:
            return WIDE_MS / RATIO
        s = sorted(self._baseline)            # np.median's value, without the call
        m = len(s) // 2
        return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2

    def _start(self, b: Beat) -> Observation:
        self._active = True
        run = self._run
        span = (run[-1].index - run[0].index) / self.fs
        rate = 60.0 * (len(run) - 1) / span if span > 0 else None
        ev = Evidence(self._time(run[0].index), self._time(b.index), run[0].index, b.index,
                      heart_rate=rate, beats=len(run),
                      detail=f"{len(run)} wide QRS complexes at {rate or 0:.0f} bpm")
        return Observation(WCT, True, run[0].index, ev, b.index)

    def _end(self, index: int) -> list[Observation]:
        self._active = False
        self._run = []
        index = max(index, self.frontier)
        ev = Evidence(self._time(index), self._time(index), index, index,
                      detail="narrow or slower beats again")
        return [Observation(WCT, False, index, ev, index)]

    def _reset(self) -> list[Observation]:
        self._run = []
        return []
