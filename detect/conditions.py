"""Alarm conditions from beats and signal quality, decided in sample order.

:class:`ConditionTracker` turns the beat stream and the quality windows into
:class:`Observation` s: "condition X became true (or false) at sample i".
It does not raise alarms; :class:`detect.alarms.AlarmManager` does that, with
the clearing delay. Limits come from :class:`detect.config.AlarmLimits`, whose
defaults follow the extreme-rhythm alarms of IEC 60601-2-27 (ECG monitoring
equipment: asystole, extreme bradycardia/tachycardia are high priority) and
the heart-rate averaging of ANSI/AAMI EC13 (cardiac monitors: rate from the
mean of recent RR intervals, asystole flagged when no QRS for a set time).

Conditions (rule and source):

* **asystole** - no QRS for ``asystole_s`` (4 s) of usable signal; onset at
  the last beat (or where usable signal began), decided ``asystole_s`` later;
  ends at the next beat. EC13 requires the asystole alarm within a few
  seconds of the last QRS; 4 s is the usual monitor default. The asystolic
  interval does not enter the rate averages (the rate restarts after it), so
  an asystole is not reported a second time as bradycardia.
* **extreme_bradycardia** - rate below ``brady_bpm`` (40) from the mean of the
  last ``brady_beats`` (5) RR intervals; onset at the beat that opens those
  intervals. Ends when the same mean rate reaches ``brady_clear_bpm`` (45):
  hysteresis, so a rate hovering at the limit does not chatter.
* **extreme_tachycardia** - rate above ``tachy_bpm`` (140) from the mean of
  the last ``tachy_beats`` (17) RR intervals; ends at or below
  ``tachy_clear_bpm`` (130).
* **pause** - one RR interval of at least ``pause_s`` (2.5 s) but shorter
  than ``asystole_s`` (a longer one is an asystole episode). An event: it is
  observed active and, at the same beat, inactive again; the alarm manager
  holds it for ``clear_after_s`` of normal rhythm.
* **leads_off / saturation** - two consecutive LEADS_OFF / SATURATED quality
  windows (4 s: long enough to ignore a tug on a cable); ends at the first
  window of any other quality.
* **unusable_signal** - two windows that are not usable and not already
  explained by an active leads_off or saturation (one technical alarm per
  problem, and the ringing window after a clipped stretch does not start a
  second one), consecutive or with one noisy window between them; onset at
  the first. Ends at the first window that is usable or explained. The
  bridge: heavy noise is graded window by window, and about one fully noisy
  window in five of synthetic -12 dB noise is graded noisy rather than
  unusable (``python bench/noise_windows.py``); without it such a window
  restarted the 4 s confirmation, placing the onset 4 s late or never
  raising the alarm.

Rules that keep noise from becoming a physiological alarm (IEC 60601-2-27
requires the monitor to show a technical alarm, not a rhythm alarm, when the
ECG cannot be analysed):

* a beat is counted only inside a usable (GOOD or NOISY) window;
* an RR interval counts only if the signal was usable all the way through it,
  so a long RR across an unusable stretch is not a pause, nor is silence
  across one an asystole;
* when an unusable window begins, every active physiological condition is
  observed inactive there (the technical alarm takes over), and the rhythm
  history starts afresh when usable signal returns;
* :meth:`ConditionTracker.gap` does the same for a signal gap.

Everything is decided in sample order as far as ``frontier = min(horizon,
end of quality coverage)``, and each observation carries the sample ``at``
which it was decided, so any chunking of the same stream yields the same
observations, and pushing the same beat or window twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .config import DetectorConfig
from .records import quick_init
from .types import Beat, Condition, Evidence, Kind, Quality, QualityWindow, check_device_id

IndexToTime = Callable[[int], float]

_PHYSIOLOGICAL = tuple(c for c in Condition if c.kind is Kind.PHYSIOLOGICAL)
# Enum members looked up once: Condition.X costs a class-attribute lookup through the
# enum's metaclass (about 0.15 us), several per beat and per chunk.
_ASYSTOLE = Condition.ASYSTOLE
_BRADY = Condition.EXTREME_BRADYCARDIA
_TACHY = Condition.EXTREME_TACHYCARDIA
_PAUSE = Condition.PAUSE
_RHYTHM_WORDS = ((_ASYSTOLE, "asystole"), (_BRADY, "bradycardia"), (_TACHY, "tachycardia"))
_LEADS_OFF_ALARM, _SATURATION, _NOISE = Condition.LEADS_OFF, Condition.SATURATION, Condition.NOISE
_LEADS_OFF, _SATURATED, _NOISY = Quality.LEADS_OFF, Quality.SATURATED, Quality.NOISY
_GOOD = Quality.GOOD


@quick_init
@dataclass(frozen=True, slots=True)
class Observation:
    """Condition ``condition`` became ``active`` (or not) at sample ``index``.

    ``index`` is the onset when ``active`` (e.g. the last beat before an
    asystole) and the first sample without the condition otherwise; ``at`` is
    the sample at which the tracker could decide it (``at >= index``), which
    is the order the alarm manager consumes observations in. An active
    observation for a condition that is already active carries fresh
    evidence (e.g. the current rate during a tachycardia).
    """

    condition: Condition
    active: bool
    index: int
    evidence: Evidence
    at: int

    def __post_init__(self) -> None:
        if not 0 <= self.index <= self.at:
            raise ValueError(f"Observation of {self.condition.value} at sample {self.index} "
                             f"is decided at sample {self.at}, before it happened.")


class _Run:
    """Consecutive quality windows of one kind, and where the run began."""

    __slots__ = ("count", "start", "bridged")

    def __init__(self) -> None:
        self.count, self.start, self.bridged = 0, 0, False

    def step(self, hit: bool, start: int, bridge: bool = False) -> int:
        """Count a hit; a miss ends the run unless ``bridge`` and it is the run's
        first miss since its last hit (one window held over, not counted)."""
        if hit:
            self.start = start if self.count == 0 else self.start
            self.count += 1
            self.bridged = False
        elif bridge and self.count and not self.bridged:
            self.bridged = True
        else:
            self.count, self.bridged = 0, False
        return self.count


# Sweep event kinds, in the order they are handled at one sample index.
_DEADLINE, _WINDOW_END, _WINDOW_START, _BEAT = range(4)


class ConditionTracker:
    """``push(beats, quality, horizon) -> [Observation]`` for one device."""

    def __init__(self, device_id: str, config: DetectorConfig, *,
                 index_to_time: IndexToTime | None = None) -> None:
        self.device_id = check_device_id(device_id)
        self.config = config
        lim = config.alarms
        self.fs = float(config.fs)
        self._time = index_to_time or (lambda i: i / self.fs)
        self._asystole_n = config.samples(lim.asystole_s)
        self._pause_n = config.samples(lim.pause_s)
        # Pending input (not yet swept).
        # Short FIFO queues as lists (popped from the front): a deque costs 760 bytes.
        self._beats: list[Beat] = []
        self._windows: list[QualityWindow] = []
        self._last_beat_seen = -1       # highest beat index accepted into _beats
        self._q_end = 0                 # end of the quality windows received
        self._horizon = 0
        self._pos = 0                   # everything before this has been swept
        self._current: QualityWindow | None = None      # window covering the sweep
        # Rhythm state over the current usable stretch.
        self._usable = False
        self._usable_since = 0
        self._last_beat: int | None = None
        self._rrs: list[int] = []       # the last _rr_keep RR intervals, samples
        self._rr_keep = max(lim.brady_beats, lim.tachy_beats)
        self._active: dict[Condition, int] = {}   # condition -> onset index
        # Technical runs of consecutive windows.
        self._off, self._sat, self._bad = _Run(), _Run(), _Run()
        self.beats_dropped = 0          # beats inside unusable windows or after the horizon

    # ------------------------------------------------------------------ API

    def reconfigure(self, config: DetectorConfig) -> None:
        """New alarm limits from the next decision on (the rate window keeps its beats)."""
        lim = config.alarms
        self.config = config
        self._asystole_n = config.samples(lim.asystole_s)
        self._pause_n = config.samples(lim.pause_s)
        self._rr_keep = max(lim.brady_beats, lim.tachy_beats)
        del self._rrs[:-self._rr_keep]

    @property
    def frontier(self) -> int:
        """Sample index up to which everything is decided (pass it to AlarmManager.push)."""
        return self._pos

    @property
    def active(self) -> frozenset[Condition]:
        return frozenset(self._active)

    def heart_rate(self) -> float | None:
        """Mean rate (bpm) over the recent RR intervals of the usable stretch, if any."""
        if not self._rrs or _ASYSTOLE in self._active:
            return None
        recent = self._rrs[-8:]
        return 60.0 * self.fs * len(recent) / sum(recent)

    def rhythm(self) -> str:
        """One word for DeviceState: asystole, bradycardia, tachycardia, sinus or unknown."""
        for cond, word in _RHYTHM_WORDS:
            if cond in self._active:
                return word
        return "sinus" if self._usable and self._rrs else "unknown"

    def push(self, beats: Sequence[Beat], quality: Sequence[QualityWindow],
             horizon: int) -> list[Observation]:
        """Add beats and quality windows; decide everything before the new frontier.

        ``horizon``: no beat with a smaller index can still arrive. Beats must
        come in index order and quality windows contiguously (after a signal
        gap, from the index given to :meth:`gap`); repeats are ignored.
        """
        for b in beats:
            if b.index <= self._last_beat_seen:
                continue                      # a repeat
            if b.index < self._pos:
                self.beats_dropped += 1       # the horizon promise was broken; too late
                continue
            self._beats.append(b)
            self._last_beat_seen = b.index
        for w in quality:
            if w.end <= self._q_end:
                continue                      # a repeat
            if w.start != self._q_end:
                raise ValueError(f"Quality window {w.start}..{w.end} of device "
                                 f"{self.device_id!r} does not follow the previous one, "
                                 f"which ended at {self._q_end}.")
            self._windows.append(w)
            self._q_end = w.end
        horizon = int(horizon)
        if horizon < self._horizon:
            horizon = self._horizon
        self._horizon = horizon
        q_end = self._q_end
        return self._sweep(horizon if horizon < q_end else q_end)

    def gap(self, index: int) -> list[Observation]:
        """A signal gap: samples resume at ``index``. Ends every active condition there.

        Call it after pushing everything before the gap (with the detector's
        final horizon and the flushed quality window); anything still pending
        is discarded. No condition spans a gap: the gap is its own alarm.
        """
        index = max(int(index), self._pos)
        out = [self._observe(c, False, index, index, "signal gap")
               for c in list(self._active)]
        self._active.clear()
        self._beats.clear()
        self._windows.clear()
        self._current = None
        self._q_end = self._horizon = self._pos = index
        self._reset_rhythm()
        self._usable = False
        self._off, self._sat, self._bad = _Run(), _Run(), _Run()
        return out

    # ---------------------------------------------------------------- sweep

    def _sweep(self, frontier: int) -> list[Observation]:
        """Handle every event due before ``frontier``, in sample order.

        The next event is the smallest (index, kind) among the candidates, kinds
        tried in their order so a later kind wins only when strictly earlier (as
        min() of tuples). Found here, not in a helper: this loop runs a few times
        per chunk, a call and a tuple each time cost about as much as the choice.
        """
        out: list[Observation] = []
        beats, windows, active = self._beats, self._windows, self._active
        while True:
            pos = kind = -1
            if self._usable and _ASYSTOLE not in active:
                last, since = self._last_beat, self._usable_since     # (self._reference())
                pos = (last if last is not None and last >= since else since) + self._asystole_n
                kind = _DEADLINE
            current = self._current
            if current is not None:
                if kind < 0 or current.end < pos:
                    pos, kind = current.end, _WINDOW_END
            elif windows and (kind < 0 or windows[0].start < pos):
                pos, kind = windows[0].start, _WINDOW_START
            if beats and (kind < 0 or beats[0].index < pos):
                pos, kind = beats[0].index, _BEAT
            # Beats need the horizon strictly beyond them; the rest may sit on the frontier.
            if kind < 0 or pos > frontier or (kind == _BEAT and pos >= frontier):
                break
            if pos > self._pos:
                self._pos = pos
            if kind == _BEAT:                 # most events
                out += self._on_beat(beats.pop(0))
            elif kind == _WINDOW_END:
                out += self._on_window_end()
            elif kind == _WINDOW_START:
                out += self._on_window_start(windows.pop(0))
            else:
                out.append(self._on_asystole(pos))
        if frontier > self._pos:
            self._pos = frontier
        return out

    def _reference(self) -> int:
        """Last beat of the usable stretch, or its start when it has none yet."""
        if self._last_beat is not None and self._last_beat >= self._usable_since:
            return self._last_beat
        return self._usable_since

    # ------------------------------------------------------------- handlers

    def _on_asystole(self, deadline: int) -> Observation:
        onset = self._reference()
        self._active[_ASYSTOLE] = onset
        lim = self.config.alarms
        return self._observe(_ASYSTOLE, True, onset, deadline,
                             f"no QRS for {lim.asystole_s:g} s", heart_rate=0.0)

    def _on_window_start(self, w: QualityWindow) -> list[Observation]:
        self._current = w
        out: list[Observation] = []
        if w.quality.usable:
            if not self._usable:
                self._usable, self._usable_since = True, w.start
                self._reset_rhythm()
            return out
        if self._usable:
            for c in _PHYSIOLOGICAL:
                if c in self._active:
                    del self._active[c]
                    out.append(self._observe(c, False, w.start, w.start,
                                             f"signal {w.quality.value}: not analysable"))
            self._usable = False
            self._reset_rhythm()
        return out

    def _on_window_end(self) -> list[Observation]:
        w, self._current = self._current, None
        assert w is not None
        q = w.quality
        if q is _GOOD and not self._active:
            # Most windows: each run's step(False) ends it, and with no episode open
            # none starts or ends (the loop below, written out for this case).
            off, sat, bad = self._off, self._sat, self._bad
            off.count, off.bridged = 0, False
            sat.count, sat.bridged = 0, False
            bad.count, bad.bridged = 0, False
            return []
        off = self._off.step(q is _LEADS_OFF, w.start)
        sat = self._sat.step(q is _SATURATED, w.start)
        explained = (off >= 2 and q is _LEADS_OFF) or (sat >= 2 and q is _SATURATED)
        bad = not q.usable and not explained
        self._bad.step(bad, w.start, bridge=q is _NOISY)
        out = []
        for cond, run in ((_LEADS_OFF_ALARM, self._off), (_SATURATION, self._sat),
                          (_NOISE, self._bad)):
            on, was = run.count >= 2, cond in self._active
            if cond is _NOISE and not bad:
                # A bridged noisy window is usable: it ends an open episode (and the
                # run, so the next needs two unusable windows again); it never starts one.
                if was:
                    run.count, run.bridged = 0, False
                on = False
            if on and not was:
                self._active[cond] = run.start
                out.append(self._observe(cond, True, run.start, w.end,
                                         f"{q.value} signal (score {w.score:.2f})"))
            elif was and not on:
                del self._active[cond]
                out.append(self._observe(cond, False, w.start, w.end,
                                         f"signal {q.value} again (score {w.score:.2f})"))
        return out

    def _on_beat(self, beat: Beat) -> list[Observation]:
        b = beat.index
        if not self._usable:
            self.beats_dropped += 1
            return []
        out: list[Observation] = []
        after_asystole = _ASYSTOLE in self._active
        if after_asystole:
            onset = self._active.pop(_ASYSTOLE)
            out.append(self._observe(_ASYSTOLE, False, b, b,
                                     f"QRS after {(b - onset) / self.fs:.2f} s",
                                     rr=(b - onset) if self._last_beat == onset else None))
        prev = self._last_beat
        self._last_beat = b
        if prev is None or prev < self._usable_since or after_asystole:
            # No RR yet, or the RR was an asystole: the rate starts afresh here.
            self._rrs.clear()
            return out
        rr = b - prev
        rrs = self._rrs
        rrs.append(rr)
        if len(rrs) > self._rr_keep:
            del rrs[0]
        if self._pause_n <= rr < self._asystole_n:
            detail = f"RR {rr / self.fs:.2f} s"
            out.append(self._observe(_PAUSE, True, prev, b, detail, rr=rr))
            out.append(self._observe(_PAUSE, False, b, b, detail, rr=rr))
        # Mean rates over the last n intervals (whole samples: exact in any order). The
        # common case, no limit crossed and nothing active, builds no text or evidence.
        lim = self.config.alarms
        n = lim.brady_beats
        if len(rrs) >= n:
            span = sum(rrs[-n:])             # (a slice: cheaper than an islice)
            bpm = 60.0 * self.fs * n / span
            if bpm < lim.brady_bpm or _BRADY in self._active:
                out += self._rate(_BRADY, b, n, span, bpm, bpm >= lim.brady_clear_bpm)
        n = lim.tachy_beats
        if len(rrs) >= n:
            span = sum(rrs[-n:])
            bpm = 60.0 * self.fs * n / span
            if bpm > lim.tachy_bpm or _TACHY in self._active:
                out += self._rate(_TACHY, b, n, span, bpm, bpm <= lim.tachy_clear_bpm)
        return out

    def _rate(self, cond: Condition, b: int, n: int, span: int, bpm: float,
              ends: bool) -> list[Observation]:
        """The rate condition ``cond`` (active, or its start limit crossed) at beat ``b``:
        mean ``bpm`` over the last ``n`` intervals, ``span`` samples; ``ends``: the clear
        limit is reached."""
        rrs = self._rrs
        active = cond in self._active
        detail = f"mean rate {bpm:.1f} bpm over {n} beats"
        kw = dict(heart_rate=bpm, rr=rrs[-1], rr_mean=span / n, beats=n)
        if not active:
            self._active[cond] = b - span
            return [self._observe(cond, True, b - span, b, detail, **kw)]
        if ends:
            del self._active[cond]
            return [self._observe(cond, False, b, b, detail, start=b - span, **kw)]
        # Still active: fresh evidence for the alarm manager's update rule.
        return [self._observe(cond, True, self._active[cond], b, detail, start=b - span, **kw)]

    # -------------------------------------------------------------- helpers

    def _reset_rhythm(self) -> None:
        self._last_beat = None
        self._rrs.clear()

    def _observe(self, cond: Condition, active: bool, index: int, at: int, detail: str, *,
                 start: int | None = None, heart_rate: float | None = None,
                 rr: int | None = None, rr_mean: float | None = None,
                 beats: int | None = None) -> Observation:
        s = index if start is None else start
        s = min(s, at)
        ev = Evidence(start=self._time(s), end=max(self._time(at), self._time(s)),
                      sample_start=s, sample_end=at,
                      heart_rate=None if heart_rate is None else round(heart_rate, 3),
                      rr_last=None if rr is None else rr / self.fs,
                      rr_mean=None if rr_mean is None else rr_mean / self.fs,
                      beats=beats, detail=detail)
        return Observation(cond, active, index, ev, at)
