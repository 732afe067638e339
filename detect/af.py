"""Atrial fibrillation from beat times: a streaming RR-irregularity detector.

    det = AfDetector(fs=250, config=AfConfig())
    events = det.push(beat_indices)            # any chunking, same events
    events += det.flush()                      # end of a finite record
    det.af_burden                              # fraction of observed time in AF

AF makes the ventricular response *irregularly irregular*: successive RR
intervals are nearly independent, so their differences are large in every
beat, while sinus rhythm changes RR slowly (sinus arrhythmia is a smooth
modulation) and ectopic beats disturb it only locally. The detector follows
the structure of Petrenas, Marozas & Sornmo, "Low-complexity detection of
atrial fibrillation in continuous long-term monitoring", Comput Biol Med
65:184-191, 2015 (ectopic-beat handling, bigeminy suppression, a
median-filtered irregularity, a decision with hysteresis), with a longer,
quantile-based window in place of their 8-beat one because episodes here must
last at least ``min_duration_s`` anyway:

1. **Per-interval irregularity.** For RR interval r(n) the successive
   difference is taken against the *closest* of the previous ``lags``
   intervals, relative to their mean::

       d(n) = min_{k=1..lags} |r(n) - r(n-k)| / ((r(n) + r(n-k)) / 2)

   Tateno & Glass ("Automatic detection of atrial fibrillation using the
   coefficient of variation and density histograms of RR and dRR intervals",
   Med Biol Eng Comput 39:664-671, 2001) showed that the dRR distribution is
   what separates AF from other rhythms; normalising by the local RR (as
   nRMSSD does) makes the measure rate independent. Taking the minimum over
   lags 1..3 is the bigeminy suppression: in bigeminy (short-long-short-long)
   r(n) equals r(n-2), in trigeminy r(n-3), and a PAC with a fixed coupling
   interval repeats an earlier short interval, so d(n) is small, while in AF
   no earlier interval predicts the next one (Petrenas 2015 suppress
   bigeminy by comparing with the interval before last; this extends it).
2. **Ectopic beats.** With beat labels, the two intervals around a V beat
   are left out (the prematurity and the compensatory pause are not atrial
   irregularity); without labels, isolated ectopics are handled by step 3.
   Intervals outside ``min_rr_s..max_rr_s`` are missed or extra detections,
   not rhythm, and are left out too.
3. **Lower quantile over a window** of the last ``window_beats`` values of
   d (the 25th percentile by default). Like the median filtering of Petrenas
   2015 it ignores outliers, here up to three quarters of the window, so
   even frequent ectopic beats (each disturbing two or three d values) do not
   move it, unlike RMSSD or the coefficient of variation. In AF almost every
   d is large, so a low quantile still separates it.
4. **Turning points.** In random RR about 2/3 of the intervals are a local
   maximum or minimum; smooth rate changes (sinus arrhythmia) have far
   fewer. AF also needs ``min_turning_ratio`` of turning points in the window
   (the turning point ratio of Dash et al., "Automatic real time detection of
   atrial fibrillation", Ann Biomed Eng 37:1701-1709, 2009).
5. **Decision with hysteresis** (enter above ``onset_threshold``, leave below
   ``offset_threshold``), then episodes: an episode is reported once it has
   lasted ``min_duration_s`` (default 30 s, the conventional minimum for a
   clinical AF episode: ESC 2020 AF guideline), and ends once the rhythm has
   been regular for ``merge_gap_s`` (shorter breaks join two episodes).

A windowed statistic crosses its threshold some beats after the rhythm
changed, so at a decision the change is located inside the window by a
CUSUM over "d above the offset threshold": onsets and offsets are placed
there, and each event also carries the index at which it was decided, so
that the decision latency can be measured.

Every decision is taken beat by beat from state carried across calls, so
any chunking of a beat stream gives the same events; the work per beat is
bounded by the window (a sorted insert and delete for the running quantile;
a scan of the window only when the state changes).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

from .errors import ConfigError

ECTOPIC_LABELS = frozenset("V")     # intervals around these beats are left out
KNOWN_LABELS = frozenset("NSVFQ")


@dataclass(frozen=True, slots=True)
class AfConfig:
    """Settings of :class:`AfDetector`, in seconds and beats; validated on creation.

    The thresholds were chosen on the AFDB tuning records only
    (:mod:`ecgwatch.evaluation.af`).
    """

    window_beats: int = 64             # d values in the running quantile
    lags: int = 3                      # compare with the closest of this many earlier RR
    quantile: float = 0.25             # of d over the window (0.5 would be the median)
    onset_threshold: float = 0.027     # that quantile above this -> AF
    offset_threshold: float = 0.0216   # ... and below this -> not AF any more
    min_turning_ratio: float = 0.5     # share of turning points in the window needed for AF
    min_duration_s: float = 30.0       # shortest episode reported
    merge_gap_s: float = 10.0          # regular stretch shorter than this joins episodes
    min_rr_s: float = 0.24             # RR outside this range is a detection error
    max_rr_s: float = 3.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(v):
                raise ConfigError(f"AF setting {f.name}={v!r} must be a number.")
        for name in ("window_beats", "lags"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"AF setting {name}={v!r} must be a positive whole number.")
        if self.window_beats < 8:
            raise ConfigError(f"AF setting window_beats={self.window_beats} is too short; "
                              "the irregularity quantile needs at least 8 intervals.")
        if not 0 < self.offset_threshold <= self.onset_threshold:
            raise ConfigError(f"AF offset_threshold={self.offset_threshold!r} must be positive "
                              f"and at most onset_threshold={self.onset_threshold!r}.")
        if not 0 < self.quantile < 1:
            raise ConfigError(f"AF setting quantile={self.quantile!r} must lie strictly "
                              "between 0 and 1.")
        if not 0 <= self.min_turning_ratio < 1:
            raise ConfigError(f"AF setting min_turning_ratio={self.min_turning_ratio!r} must "
                              "lie in 0..1 (0 switches the turning-point check off).")
        if self.min_duration_s < 0 or self.merge_gap_s < 0:
            raise ConfigError(f"AF durations min_duration_s={self.min_duration_s!r} and "
                              f"merge_gap_s={self.merge_gap_s!r} must not be negative.")
        if not 0 < self.min_rr_s < self.max_rr_s:
            raise ConfigError(f"AF RR range min_rr_s={self.min_rr_s!r} .. "
                              f"max_rr_s={self.max_rr_s!r} must be positive and increasing.")


@dataclass(frozen=True, slots=True)
class AfEvent:
    """An AF episode began (``onset``) or ended (``offset``) at sample ``index``.

    ``decision_index`` is the beat at which the detector decided it (at or
    after ``index``); ``irregularity`` the quantile of relative dRR then and
    ``heart_rate`` the mean rate (bpm) over the window.
    """

    kind: Literal["onset", "offset"]
    index: int
    decision_index: int
    irregularity: float
    heart_rate: float

    def __post_init__(self) -> None:
        if self.kind not in ("onset", "offset"):
            raise ValueError(f"AF event kind {self.kind!r} is not 'onset' or 'offset'.")
        if self.decision_index < self.index:
            raise ValueError(f"AF {self.kind} at {self.index} decided earlier, at "
                             f"{self.decision_index}.")


class _Window:
    """The last ``size`` values of d with their beats, RR and turning-point flags.

    A FIFO plus a sorted copy of d, so a quantile is an index and each beat
    costs one sorted insert and one delete; the sums are running sums.
    """

    def __init__(self, size: int, quantile: float) -> None:
        self.size = size
        self.q = quantile
        self.fifo: deque[tuple[float, int, float, bool]] = deque()   # d, beat, rr, turning
        self.sorted: list[float] = []
        self.rr_sum = 0.0
        self.turns = 0

    def push(self, value: float, index: int, rr: float, turning: bool) -> None:
        self.fifo.append((value, index, rr, turning))
        bisect.insort(self.sorted, value)
        self.rr_sum += rr
        self.turns += turning
        if len(self.fifo) > self.size:
            old, _, old_rr, old_turn = self.fifo.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]
            self.rr_sum -= old_rr
            self.turns -= old_turn

    @property
    def full(self) -> bool:
        return len(self.fifo) == self.size

    def quantile(self) -> float:
        """Lower quantile (an element of the window, no interpolation)."""
        return self.sorted[min(len(self.sorted) - 1, int(self.q * len(self.sorted)))]

    def turning_ratio(self) -> float:
        return self.turns / len(self.fifo) if self.fifo else 0.0

    def change_point(self, level: float, share: float, rising: bool) -> int:
        """Beat where the window changed from regular to irregular (or back).

        CUSUM (Page 1954) over the window of ``high = d > level``: the change
        is where sum(high - share) over the part after it is largest (rising)
        or smallest (falling); ``share`` lies between the typical shares of
        high d in sinus rhythm (~0) and in AF (> 1 - quantile).
        """
        best, best_k, acc = 0.0, len(self.fifo) - 1, 0.0
        for k in range(len(self.fifo) - 1, -1, -1):
            high = self.fifo[k][0] > level
            acc += (high - share) if rising else (share - high)
            if acc > best:
                best, best_k = acc, k
        return self.fifo[best_k][1]

    def heart_rate(self, fs: float) -> float:
        return 60.0 * fs * len(self.fifo) / self.rr_sum if self.rr_sum > 0 else 0.0


class AfDetector:
    """``push(beat indices[, labels]) -> [AfEvent]``; beats ascending, each once."""

    def __init__(self, fs: float, config: AfConfig | None = None) -> None:
        if not isinstance(fs, (int, float)) or not fs > 0:
            raise ConfigError(f"AF detector sampling rate fs={fs!r} must be a positive number.")
        self.fs = float(fs)
        self.config = c = config or AfConfig()
        # Seconds become samples once, here.
        self._min_rr = c.min_rr_s * self.fs
        self._max_rr = c.max_rr_s * self.fs
        self._min_dur = int(round(c.min_duration_s * self.fs))
        self._merge = int(round(c.merge_gap_s * self.fs))
        self._window = _Window(c.window_beats, c.quantile)
        self._share = 0.5 * (1.0 - c.quantile)
        self._history: deque[float] = deque(maxlen=c.lags)   # previous valid RR, samples
        self._prev: int | None = None
        self._prev_label = "N"
        self._first: int | None = None
        self._af = False                   # irregularity state, with hysteresis
        self._onset: int | None = None     # estimated onset of the current candidate/episode
        self._reported = False             # its onset event has been sent
        self._ending: int | None = None    # estimated offset while waiting for merge_gap
        self._closed_af = 0                # samples of AF in finished episodes
        self._last_end = 0                 # offset of the last finished episode
        self._last_irr = 0.0

    # ------------------------------------------------------------------ input
    def push(self, beat_indices: Sequence[int], labels: Sequence[str] | None = None
             ) -> list[AfEvent]:
        if labels is not None and len(labels) != len(beat_indices):
            raise ValueError(f"{len(labels)} beat labels for {len(beat_indices)} beats; "
                             "give one label per beat or none.")
        out: list[AfEvent] = []
        for k, b in enumerate(beat_indices):
            b = int(b)
            if self._prev is not None and b <= self._prev:
                raise ValueError(f"Beat index {b} does not follow the previous beat "
                                 f"{self._prev}; beats must be ascending and pushed once.")
            label = "N" if labels is None else labels[k]
            if label not in KNOWN_LABELS:
                raise ValueError(f"Beat label {label!r} is not one of N, S, V, F, Q.")
            out += self._on_beat(b, label)
        return out

    def flush(self) -> list[AfEvent]:
        """End of the stream: close an open episode (a candidate too short is dropped)."""
        out: list[AfEvent] = []
        if self._prev is not None and self._reported:
            end = self._ending if self._ending is not None else self._prev
            out.append(self._close(end, self._prev))
        self._onset = self._ending = None
        self._af = False
        return out

    @property
    def af_burden(self) -> float:
        """Fraction of the time from the first to the last beat spent in reported AF."""
        if self._first is None or self._prev is None or self._prev == self._first:
            return 0.0
        af = self._closed_af
        if self._reported and self._onset is not None:
            af += (self._ending if self._ending is not None else self._prev) - self._onset
        return af / (self._prev - self._first)

    @property
    def in_af(self) -> bool:
        """An episode has been reported and has not ended."""
        return self._reported

    # -------------------------------------------------------------- decisions
    def _on_beat(self, b: int, label: str) -> list[AfEvent]:
        prev, prev_label = self._prev, self._prev_label
        self._prev, self._prev_label = b, label
        if prev is None:
            self._first = b
            return []
        rr = float(b - prev)
        ectopic = label in ECTOPIC_LABELS or prev_label in ECTOPIC_LABELS
        if ectopic or not self._min_rr <= rr <= self._max_rr:
            return []
        hist = self._history
        if hist:
            d = min(abs(rr - h) / (0.5 * (rr + h)) for h in hist)
            # A turning point at the previous interval: the RR series changed direction
            # there (Dash et al. 2009: about 2/3 of points in random RR, fewer in smooth
            # sinus-rate changes).
            turning = len(hist) >= 2 and (hist[0] - hist[1]) * (rr - hist[0]) < 0
            self._window.push(d, b, rr, turning)
        hist.appendleft(rr)
        if not self._window.full:
            return []
        return self._decide(b)

    def _decide(self, b: int) -> list[AfEvent]:
        c, w = self.config, self._window
        irr = self._last_irr = w.quantile()
        was = self._af
        self._af = (irr > (c.offset_threshold if was else c.onset_threshold)
                    and w.turning_ratio() >= c.min_turning_ratio)
        out: list[AfEvent] = []
        if self._af and not was:
            start = w.change_point(c.offset_threshold, self._share, rising=True)
            if self._ending is not None and start - self._ending < self._merge:
                self._ending = None            # a short break: the episode goes on
            else:
                if self._ending is not None:
                    out.append(self._close(self._ending, b))
                # The change point may lie in a window that still holds the end of the
                # previous episode: episodes never overlap.
                self._onset, self._reported = max(start, self._last_end), False
        elif was and not self._af:
            end = w.change_point(c.offset_threshold, self._share, rising=False)
            if self._reported:
                self._ending = end
            else:
                self._onset = None             # shorter than min_duration_s: dropped
        if self._ending is not None and not self._af and b - self._ending >= self._merge:
            out.append(self._close(self._ending, b))
        if self._af and not self._reported and self._onset is not None \
                and b - self._onset >= self._min_dur:
            self._reported = True
            out.append(AfEvent("onset", self._onset, b, irr, w.heart_rate(self.fs)))
        return out

    def _close(self, end: int, at: int) -> AfEvent:
        assert self._onset is not None
        end = max(end, self._onset)
        self._closed_af += end - self._onset
        self._last_end = end
        self._onset, self._ending, self._reported = None, None, False
        return AfEvent("offset", end, max(at, end), self._last_irr,
                       self._window.heart_rate(self.fs))
