"""Atrial fibrillation from beat times: a streaming RR-irregularity detector.

    det = AfDetector(fs=250, config=AfConfig())
    events = det.push(beat_indices)            # any chunking, same events
    events += det.flush()                      # end of a finite record
    det.af_burden                              # fraction of observed time in AF

AF makes the ventricular response *irregularly irregular*: successive RR
intervals are nearly independent, while sinus rhythm changes RR slowly and
ectopic beats disturb it only locally. The detector follows the structure of
Petrenas, Marozas & Sornmo, "Low-complexity detection of atrial fibrillation
in continuous long-term monitoring", Comput Biol Med 65:184-191, 2015
(ectopic-beat filtering, bigeminy suppression, a short running median of the
RR irregularity, exponential smoothing, a rate-dependent decision). Per RR
interval r(n):

1. **Ectopic beats.** With beat labels, the two intervals around a V or F
   beat are left out while the rhythm is regular (the service labels beats
   before AF sees them: frequent ventricular ectopy was the commonest cause
   of false AF on MIT-BIH); once I(n) is high they are not read, since an
   interval around a V beat in AF is as random as any other.
   With or without labels, an interval shorter than
   (1 - ``ectopic_ratio``) of the recent RR (median of the last ``lags``
   accepted intervals), after a regular one and followed by a pause longer
   than the recent RR, is a premature beat: both intervals are left out
   (this holds an interval back one beat). S labels are not used: in AF the
   beat model's S labels are mostly false. Intervals outside
   ``min_rr_s..max_rr_s`` are detection errors and are left out too.
2. **Relative differences at lags 1..L**, d_k(n) = |r(n) - r(n-k)| /
   ((r(n) + r(n-k)) / 2): the dRR distribution separates AF from other
   rhythms (Tateno & Glass, Med Biol Eng Comput 39:664-671, 2001), and the
   normalisation makes it rate independent, as in nRMSSD.
3. **Irregularity with bigeminy suppression**, m(n) = min_k median(d_k) over
   the last ``median_beats`` intervals (Petrenas: 8; 16 chosen here). In AF
   no earlier interval predicts the next, so every lag has about the same
   median; in bigeminy (or flutter alternating 2:1 / 4:1 conduction) r(n)
   repeats r(n-2), in trigeminy r(n-3), so one lag's median is small.
   Taking the minimum of the *medians*, not of each d value, keeps the AF
   level at its lag-1 value.
4. **Smoothing and rate**: I(n) is m(n) smoothed exponentially with a time
   constant of ``smoothing_beats``, times (0.75 s / smoothed RR) **
   ``rate_exponent``, since relative irregularity in AF falls as the
   ventricular rate rises.
5. **Decision, sticky in value and in time.** AF starts when I(n) rises
   above ``onset_threshold`` with enough turning points in the RR series
   (``min_turning_ratio`` of the last ``locate_beats``: about 2/3 in random
   RR, fewer in smooth rate changes; Dash et al., Ann Biomed Eng
   37:1701-1709, 2009). It stops only after I(n) has stayed below
   ``offset_threshold`` for ``hold_s`` seconds, so a few regular-looking
   beats inside a long episode do not cut it.
6. **Episodes**, a separate layer: reported once they have lasted
   ``min_duration_s`` (30 s, the ESC 2020 guideline's clinical AF episode);
   AF starting less than ``merge_gap_s`` after an episode ended continues it.

At each state change the change is located by a CUSUM (Page 1954), and
onsets and offsets are placed there; both also carry the index at which they
were decided, so latency can be measured.

* **Offsets** among the last ``locate_beats`` values of m(n), over "m above
  the offset threshold", less half the median's window (its delay): once the
  rhythm is regular nearly every d_k is small, so the median falls about half
  a window after the rhythm changed.
* **Onsets** are found there too (the median's change point less half its
  window is the clock of ``min_duration_s`` and ``merge_gap_s``, so which
  episodes are reported, and when, is as tuned), but *placed* on the
  intervals themselves: an interval is irregular when most of its d_k (more
  than half of the lags) exceed the offset threshold, and the onset is the
  first beat of the irregular run a CUSUM finds among the intervals whose d_k
  fed the median that changed (its window and the lags before it: the first
  beat of the evidence), never before the previous AF state's located
  offset. The median is no guide to where AF began: only about 77 % of AF
  intervals differ from most of their predecessors (two random RR can be
  alike; AFDB tuning records), so m(n) rises only once about 8.5 / 0.77 = 11
  irregular intervals are in its window, and half the window back left
  onsets 1-3 intervals late; and in the detector's first ``median_beats +
  lags`` intervals (after every start, gap or stretch of bad signal) m(n)
  does not exist yet, so AF beginning then was placed at the first m(n), up
  to 20 intervals late. An alarm's onset is therefore usually a little more
  than ``min_duration_s`` before its decision.

State is carried across calls, so any chunking gives the same events; the
work per beat is a few sorts of ``median_beats`` values, plus a scan of the
``locate_beats`` buffer when the state changes.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

from .af_history import IrregularIntervals, RecentIrregularity
from .errors import ConfigError

ECTOPIC_LABELS = frozenset("VF")    # intervals around these beats are left out
KNOWN_LABELS = frozenset("NSVFQ")
REFERENCE_RR_S = 0.75               # RR (80 bpm) at which the rate scaling is 1


@dataclass(frozen=True, slots=True)
class AfConfig:
    """Settings of :class:`AfDetector`, in seconds and beats; validated on creation.

    The thresholds were chosen on the AFDB tuning records only
    (:mod:`ecgwatch.evaluation.af`).
    """

    lags: int = 4                      # bigeminy/trigeminy suppression: min over lags 1..lags
    median_beats: int = 16             # running median of each d_k (Petrenas 2015: 8)
    ectopic_ratio: float = 0.25        # prematurity of a filtered ectopic (0: filter off)
    smoothing_beats: float = 16.0      # time constant of the exponential smoothing, beats
    rate_exponent: float = 1.0         # I(n) scaled by (0.75 s / smoothed RR) ** this
    onset_threshold: float = 0.09      # smoothed irregularity above this -> AF
    offset_threshold: float = 0.063    # ... and below it for hold_s -> not AF any more
    min_turning_ratio: float = 0.6     # share of turning points among the last locate_beats
    hold_s: float = 30.0               # time the irregularity must stay low to leave AF
    min_duration_s: float = 30.0       # shortest episode reported
    merge_gap_s: float = 10.0          # a regular stretch shorter than this joins episodes
    locate_beats: int = 64             # buffer for onset/offset change points and turning points
    min_rr_s: float = 0.24             # RR outside this range is a detection error
    max_rr_s: float = 3.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(v):
                raise ConfigError(f"AF setting {f.name}={v!r} must be a number.")
        for name in ("lags", "median_beats", "locate_beats"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"AF setting {name}={v!r} must be a positive whole number.")
        if self.median_beats < 3:
            raise ConfigError(f"AF setting median_beats={self.median_beats} is too short; "
                              "the irregularity median needs at least 3 intervals.")
        if self.locate_beats < 8:
            raise ConfigError(f"AF setting locate_beats={self.locate_beats} is too short; "
                              "onsets are placed within at least 8 intervals.")
        if not self.smoothing_beats >= 1:
            raise ConfigError(f"AF setting smoothing_beats={self.smoothing_beats!r} must be "
                              "at least 1 (1 switches the smoothing off).")
        if not 0 < self.offset_threshold <= self.onset_threshold:
            raise ConfigError(f"AF offset_threshold={self.offset_threshold!r} must be positive "
                              f"and at most onset_threshold={self.onset_threshold!r}.")
        if not 0 <= self.ectopic_ratio < 1:
            raise ConfigError(f"AF setting ectopic_ratio={self.ectopic_ratio!r} must lie in "
                              "0..1 (0 switches the ectopic filter off).")
        if not 0 <= self.rate_exponent <= 4:
            raise ConfigError(f"AF setting rate_exponent={self.rate_exponent!r} must lie "
                              "in 0..4 (0 switches the rate scaling off).")
        if not 0 <= self.min_turning_ratio < 1:
            raise ConfigError(f"AF setting min_turning_ratio={self.min_turning_ratio!r} must "
                              "lie in 0..1 (0 switches the turning-point check off).")
        for name in ("hold_s", "min_duration_s", "merge_gap_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"AF duration {name}={getattr(self, name)!r} must not be "
                                  "negative.")
        if not 0 < self.min_rr_s < self.max_rr_s:
            raise ConfigError(f"AF RR range min_rr_s={self.min_rr_s!r} .. "
                              f"max_rr_s={self.max_rr_s!r} must be positive and increasing.")


@dataclass(frozen=True, slots=True)
class AfEvent:
    """An AF episode began (``onset``) or ended (``offset``) at sample ``index``.

    ``decision_index`` is the beat at which the detector decided it (at or
    after ``index``); ``irregularity`` the smoothed irregularity I(n) then and
    ``heart_rate`` the mean rate (bpm) over the last ``locate_beats`` intervals.
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


class AfDetector:
    """``push(beat indices[, labels]) -> [AfEvent]``; beats ascending, each once."""

    # Slots: with over 30 attributes the instance dict stops sharing its keys
    # (a plain dict of about 1.6 KB, one per device).
    __slots__ = ("_af", "_alpha", "_boundary", "_closed_af", "_dk", "_dk_at", "_dk_n", "_ending",
                 "_eps", "_first", "_history", "_hold", "_intervals", "_irr", "_lag", "_last_end",
                 "_last_placed_end", "_level", "_low_at", "_low_since", "_m_ema", "_max_rr",
                 "_merge", "_min_dur", "_min_rr", "_onset", "_pending", "_placed", "_prev",
                 "_prev_label", "_raw", "_recent", "_ref", "_ref_rr", "_reported", "_rr_ema",
                 "config", "fs")

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
        self._hold = int(round(c.hold_s * self.fs))
        self._alpha = 1.0 / c.smoothing_beats
        self._eps = c.ectopic_ratio
        self._pending: tuple[float, int] | None = None   # a premature interval held back
        self._ref = 0.0                                    # the recent RR it was short against
        self._lag = c.median_beats // 2       # delay of the running median, intervals
        # Previous valid RR (samples), newest first; a list: a deque costs 760 bytes.
        self._history: list[float] = []
        # The last median_beats d_k per lag, as float64 rings written at _dk_at (a
        # median does not depend on their order), filled once _dk_n reaches the size.
        self._dk = [array("d", bytes(8 * c.median_beats)) for _ in range(c.lags)]
        self._dk_at = 0
        self._dk_n = 0
        self._recent = RecentIrregularity(c.locate_beats)
        self._intervals = IrregularIntervals(c.locate_beats + c.median_beats + c.lags)
        self._level = c.offset_threshold
        self._boundary = -1                # located offset of the last AF state: onsets after
        self._prev: int | None = None
        self._prev_label = "N"
        self._first: int | None = None
        self._irr: float | None = None     # smoothed irregularity I(n), rate scaled
        self._m_ema: float | None = None   # smoothed m(n)
        self._rr_ema = 0.0                 # smoothed RR, samples
        self._ref_rr = REFERENCE_RR_S * self.fs
        self._raw = False                  # I(n) state with value hysteresis
        self._af = False                   # ... made sticky in time (hold_s)
        self._low_since: int | None = None  # beat where I(n) last fell below the offset level
        self._low_at: int | None = None    # located offset of that fall
        self._onset: int | None = None     # median change point of the current candidate:
        #                                    the clock of min_duration_s and merge_gap_s
        self._placed: int | None = None    # its onset as reported (interval CUSUM)
        self._reported = False             # its onset event has been sent
        self._ending: int | None = None    # estimated offset while waiting for merge_gap
        self._closed_af = 0                # samples of AF in finished episodes
        self._last_end = 0                 # offset of the last finished episode (clock)
        self._last_placed_end = 0          # ... as reported

    # ------------------------------------------------------------------ input
    def push(self, beat_indices: Sequence[int], labels: Sequence[str] | None = None
             ) -> list[AfEvent]:
        if labels is not None and len(labels) != len(beat_indices):
            raise ValueError(f"{len(labels)} beat labels for {len(beat_indices)} beats; "
                             "give one label per beat or none.")
        out: list[AfEvent] = []
        for k, b in enumerate(beat_indices):
            out += self.beat(b, "N" if labels is None else labels[k])
        return out

    def beat(self, b: int, label: str = "N") -> list[AfEvent]:
        """One beat: :meth:`push` of a single beat, without building its lists (the
        stream feeds beats one at a time, each once its quality window is judged)."""
        if type(b) is not int:
            b = int(b)
        if self._prev is not None and b <= self._prev:
            raise ValueError(f"Beat index {b} does not follow the previous beat "
                             f"{self._prev}; beats must be ascending and pushed once.")
        if label not in KNOWN_LABELS:
            raise ValueError(f"Beat label {label!r} is not one of N, S, V, F, Q.")
        # The interval this beat ends, read here rather than in a helper (every beat).
        prev, prev_label = self._prev, self._prev_label
        self._prev, self._prev_label = b, label
        if prev is None:
            self._first = b
            return []
        rr = float(b - prev)
        # Labels guard sinus rhythm against looking irregular; once the irregularity is
        # high they are not read: an AF interval around a V beat is as random as any
        # other, and leaving it out only slows the detector (MIT-BIH 203).
        ectopic = not (self._raw or self._af) and (
            label in ECTOPIC_LABELS or prev_label in ECTOPIC_LABELS)
        if ectopic or not self._min_rr <= rr <= self._max_rr:
            self._pending = None
            return []
        if self._eps <= 0:
            return self._on_interval(rr, b)
        return self._filter_ectopic(rr, b)

    def flush(self) -> list[AfEvent]:
        """End of the stream: close an open episode (a candidate too short is dropped)."""
        out: list[AfEvent] = []
        if self._prev is not None and self._reported:
            end = self._ending if self._ending is not None else self._prev
            out.append(self._close(end, self._prev))
        self._onset = self._placed = self._ending = self._low_since = self._low_at = None
        self._af = self._raw = False
        return out

    @property
    def af_burden(self) -> float:
        """Fraction of the time from the first to the last beat spent in reported AF."""
        if self._first is None or self._prev is None or self._prev == self._first:
            return 0.0
        af = self._closed_af
        if self._reported and self._placed is not None:
            af += (self._ending if self._ending is not None else self._prev) - self._placed
        return af / (self._prev - self._first)

    @property
    def span(self) -> int:
        """Samples from the first beat to the last (0 before the first)."""
        return 0 if self._first is None or self._prev is None else self._prev - self._first

    @property
    def in_af(self) -> bool:
        """An episode has been reported and has not ended."""
        return self._reported

    @property
    def irregularity(self) -> float:
        """The smoothed irregularity I(n) at the last beat (0 before the first value)."""
        return self._irr or 0.0

    # -------------------------------------------------------------- features
    def _filter_ectopic(self, rr: float, b: int) -> list[AfEvent]:
        """Leave out a premature interval and the longer one after it (label-free ectopy).

        An interval shorter than (1 - ectopic_ratio) of the recent RR, after a regular one,
        is held back one beat; if the next interval is longer than the recent RR (the
        compensatory pause), both are left out, as for a labelled V beat (Petrenas 2015
        filter ectopic beats before measuring irregularity). Otherwise both go on.
        """
        # (No lists built for the common beat: nothing held back, none to hold.)
        out = None
        pending = self._pending
        if pending is not None:
            self._pending = None
            if rr > self._ref * (1 + 0.5 * self._eps):
                return []                        # premature + pause: both left out
            out = self._on_interval(*pending)
        hist = self._history
        if len(hist) >= 2:
            ref = sorted(hist)[len(hist) // 2]
            if rr < (1 - self._eps) * ref and abs(hist[0] - ref) <= self._eps * ref:
                self._pending, self._ref = (rr, b), ref
                return [] if out is None else out
        if out:
            return out + self._on_interval(rr, b)
        return self._on_interval(rr, b)

    def _on_interval(self, rr: float, b: int) -> list[AfEvent]:
        hist, c = self._history, self.config
        if len(hist) < c.lags:                 # (it never holds more)
            hist.insert(0, rr)
            return []
        at, level, rings = self._dk_at, self._level, self._dk
        irregular = 0
        for q, h in zip(rings, hist):
            d = q[at] = abs(rr - h) / (0.5 * (rr + h))
            irregular += d > level
        # Irregular: it differs from most of the previous lags intervals (in bigeminy
        # or trigeminy one lag in two or three repeats it, so at most half differ
        # on most intervals).
        self._intervals.push(b - int(rr), 2 * irregular > len(hist))
        size = c.median_beats
        self._dk_at = (at + 1) % size
        filled = self._dk_n = self._dk_n + 1
        # A turning point at the previous interval: the RR series changed direction
        # there (Dash et al. 2009).
        turning = len(hist) >= 2 and (hist[0] - hist[1]) * (rr - hist[0]) < 0
        hist.insert(0, rr)
        hist.pop()
        if filled < size:
            return []
        # m(n): the least of the lags' medians (inline: every beat).
        m = math.inf
        half = size // 2
        for q in rings:
            v = q.tolist()          # (sorted(q) builds its list through an iterator)
            v.sort()
            median = v[half] if size % 2 else 0.5 * (v[half - 1] + v[half])
            if median < m:
                m = median
        self._recent.push(m, b, rr, turning)
        if self._m_ema is None:
            self._m_ema, self._rr_ema = m, rr
        else:
            self._m_ema += self._alpha * (m - self._m_ema)
            self._rr_ema += self._alpha * (rr - self._rr_ema)
        irr = self._irr = self._m_ema * (self._ref_rr / self._rr_ema) ** c.rate_exponent
        if not (self._raw or self._af or irr > c.onset_threshold) and self._ending is None:
            return []        # _decide's outcome for most beats: regular, nothing to end
        return self._decide(b)

    # -------------------------------------------------------------- decisions
    def _decide(self, b: int) -> list[AfEvent]:
        c, r, irr = self.config, self._recent, self._irr
        assert irr is not None
        self._raw = (irr > (c.offset_threshold if self._raw else c.onset_threshold)
                     and r.turning_ratio() >= c.min_turning_ratio)
        out: list[AfEvent] = []
        if self._raw:
            self._low_since = self._low_at = None
            if not self._af:
                self._af = True
                # Placed within the evidence of the m(n) where the change was found:
                # its median window and the lags before it (the "first beat of the
                # evidence"), never before the last AF state ended.
                back = r.change_back(c.offset_threshold, True)
                out += self._episode_starts(
                    r.change_point(back, self._lag),
                    self._intervals.onset(self._boundary, back + c.median_beats + c.lags - 1), b)
        elif self._af:
            if self._low_since is None:
                # Located now, while the buffer still holds the change.
                self._low_since = b
                self._low_at = r.change_point(r.change_back(c.offset_threshold, False),
                                              self._lag)
            if b - self._low_since >= self._hold:
                self._af = False
                assert self._low_at is not None
                self._boundary = self._low_at
                out += self._episode_ends(self._low_at)
                self._low_since = self._low_at = None
        if self._ending is not None and not self._af and b - self._ending >= self._merge:
            out.append(self._close(self._ending, b))
        # Reported only while the rhythm is irregular: a burst shorter than the minimum
        # is not lengthened into an episode by the hold time after it.
        if self._raw and not self._reported and self._onset is not None \
                and b - self._onset >= self._min_dur:
            self._reported = True
            assert self._placed is not None
            out.append(AfEvent("onset", self._placed, b, irr, r.heart_rate(self.fs)))
        return out

    def _episode_starts(self, start: int, placed: int, b: int) -> list[AfEvent]:
        if self._ending is not None and start - self._ending < self._merge:
            self._ending = None                # a short break: the episode goes on
            return []
        out = [self._close(self._ending, b)] if self._ending is not None else []
        # The change point may lie in a buffer that still holds the end of the previous
        # episode: episodes never overlap.
        self._onset, self._reported = max(start, self._last_end), False
        self._placed = max(placed, self._last_end, self._last_placed_end)
        return out

    def _episode_ends(self, end: int) -> list[AfEvent]:
        if self._reported:
            self._ending = end
        else:
            self._onset = self._placed = None  # shorter than min_duration_s: dropped
        return []

    def _close(self, end: int, at: int) -> AfEvent:
        assert self._onset is not None and self._placed is not None
        self._last_end = max(end, self._onset)            # the decisions' clock, as placed
        end = self._last_placed_end = max(end, self._placed)   # ... and as reported
        self._closed_af += end - self._placed
        self._onset, self._placed, self._ending, self._reported = None, None, None, False
        return AfEvent("offset", end, max(at, end), self.irregularity,
                       self._recent.heart_rate(self.fs))
