"""Rhythm conditions from classified beats: ventricular runs, couplets, bigeminy, trigeminy.

Definitions follow the ventricular-ectopy alarms of bedside monitors
(IEC 60601-2-27 lists VT and ventricular rhythms among the arrhythmia alarms;
the run lengths are the ones ANSI/AAMI EC57 scores for VT and couplets):

* **ventricular_tachycardia** (high): a run of at least ``VT_BEATS`` (3)
  consecutive V beats whose mean rate is above ``VT_BPM`` (100 bpm); onset
  at the run's first V beat, ends at the first beat that is not V.
* **sustained_ventricular_tachycardia** (high): the same run lasting at least
  ``SUSTAINED_S`` (30 s).
* **ventricular_couplet** (low): exactly two consecutive V beats. An event,
  like a pause: active and inactive at once; the alarm manager keeps the
  episode open for its clearing time, so a burst of couplets is one alarm.
* **ventricular_bigeminy / trigeminy** (low): at least ``PATTERN_CYCLES``
  (4) consecutive cycles of one normal beat then one V (bigeminy) or two
  normal beats then one V (trigeminy); the condition holds while the pattern
  does, so it is raised once per episode, not every beat.

Beats labelled Q (unclassifiable, including every beat in signal judged
unusable) break every pattern and never start one. SVEB and VEB counts over
the last hour feed the device state.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence

from .conditions import Observation
from .types import Beat, Condition, Evidence

VT_BEATS = 3
VT_BPM = 100.0
SUSTAINED_S = 30.0
PATTERN_CYCLES = 4
HOUR_S = 3600.0
_KEEP = 3 * PATTERN_CYCLES + 1      # labels the longest pattern check reads, and one


class EctopyTracker:
    """``push(classified beats) -> [Observation]``; beats in index order."""

    def __init__(self, fs: float, index_to_time: Callable[[int], float]) -> None:
        self.fs = float(fs)
        self._time = index_to_time
        self._run: list[Beat] = []            # current run of consecutive V beats
        # The last _KEEP labels and beats, as lists trimmed by hand: a deque costs
        # 760 bytes however short.
        self._labels: list[str] = []
        self._pattern_beats: list[Beat] = []
        self._active: set[Condition] = set()
        self._last: Beat | None = None
        # S and V beat times over the last hour, oldest first, as packed doubles
        # (8 bytes a beat, not a float object and a pointer): a bigeminy holds
        # 1,800 V beats an hour.
        self._hour: dict[str, array[float]] = {"S": array("d"), "V": array("d")}
        self.frontier = 0

    # ------------------------------------------------------------------ input
    def push(self, beats: Sequence[Beat]) -> list[Observation]:
        out: list[Observation] = []
        labels, kept, sveb = self._labels, self._pattern_beats, self._hour["S"]
        for b in beats:
            label = b.label
            if label == "V" or self._run or self._active:
                out += self._on_beat(b)
            else:
                # _on_beat for most beats, inline: not V, no run to end, no alarm open,
                # so no pattern to start or end either.
                if label == "S":
                    sveb.append(b.time)
                labels.append(label)
                kept.append(b)
                if len(labels) > _KEEP:
                    del labels[0], kept[0]
                self._last = b
            if b.index > self.frontier:
                self.frontier = b.index
        return out

    def gap(self, index: int) -> list[Observation]:
        """Samples stopped: no pattern spans a gap."""
        out = [self._observe(c, False, index, index, "signal gap") for c in sorted(
            self._active, key=lambda c: c.value)]
        self._active.clear()
        self._run.clear()
        self._labels.clear()
        self._pattern_beats.clear()
        self._last = None
        self.frontier = max(self.frontier, index)
        return out

    def per_hour(self, now: float) -> dict[str, int]:
        """SVEB and VEB counted over the last hour of device time."""
        cutoff = now - HOUR_S
        for q in self._hour.values():
            if q and q[0] < cutoff:           # (most calls: nothing has aged out)
                k = 1
                while k < len(q) and q[k] < cutoff:
                    k += 1
                del q[:k]
        return {"sveb_per_hour": len(self._hour["S"]), "veb_per_hour": len(self._hour["V"])}

    # -------------------------------------------------------------- decisions
    def _on_beat(self, b: Beat) -> list[Observation]:
        label = b.label
        times = self._hour.get(label)
        if times is not None:
            times.append(b.time)
        if label == "V":
            self._run.append(b)
            out = self._check_run(b)
        elif self._run or self._active:
            out = self._end_run(b)
        else:
            out = []          # most beats: no run to end, no alarm open
        labels, beats = self._labels, self._pattern_beats
        labels.append(label)
        beats.append(b)
        if len(labels) > _KEEP:
            del labels[0], beats[0]
        # A pattern can only start on a V beat, or end while it is active.
        if label == "V" or self._active:
            out += self._check_pattern(b, Condition.BIGEMINY, ("N", "V"))
            out += self._check_pattern(b, Condition.TRIGEMINY, ("N", "N", "V"))
        self._last = b
        return out

    def _check_run(self, b: Beat) -> list[Observation]:
        run = self._run
        if len(run) < VT_BEATS:
            return []
        span = (run[-1].index - run[0].index) / self.fs
        rate = 60.0 * (len(run) - 1) / span if span > 0 else 0.0
        out = []
        if rate > VT_BPM:
            detail = f"{len(run)} ventricular beats at {rate:.0f} bpm"
            out.append(self._observe(Condition.VENTRICULAR_TACHYCARDIA, True, run[0].index,
                                     b.index, detail, rate, run))
            if span >= SUSTAINED_S:
                out.append(self._observe(Condition.SUSTAINED_VT, True, run[0].index, b.index,
                                         f"ventricular run for {span:.0f} s", rate, run))
        return out

    def _end_run(self, b: Beat) -> list[Observation]:
        run, self._run = self._run, []
        out = []
        for c in (Condition.VENTRICULAR_TACHYCARDIA, Condition.SUSTAINED_VT):
            if c in self._active:
                out.append(self._observe(c, False, b.index, b.index, "run ended"))
        if len(run) == 2 and b.label != "Q":
            out.append(self._observe(Condition.VENTRICULAR_COUPLET, True, run[0].index, b.index,
                                     "two consecutive ventricular beats", None, run))
            out.append(self._observe(Condition.VENTRICULAR_COUPLET, False, b.index, b.index,
                                     "couplet over"))
        return out

    def _check_pattern(self, b: Beat, cond: Condition, cycle: tuple[str, ...]) -> list[Observation]:
        if b.label != cycle[-1] and cond not in self._active:
            return []         # most beats: the pattern cannot end on this one, nothing to end
        n = len(cycle) * PATTERN_CYCLES
        labels = self._labels[-n:]
        holds = len(labels) == n and all(lab == cycle[i % len(cycle)] for i, lab in
                                         enumerate(labels))
        # While active, the pattern holds as long as the latest cycle matches.
        recent = tuple(self._labels[-len(cycle):])
        continuing = cond in self._active and any(
            recent == cycle[k:] + cycle[:k] for k in range(len(cycle)))
        if holds and cond not in self._active:
            beats = self._pattern_beats[-n:]
            return [self._observe(cond, True, beats[0].index, b.index,
                                  f"{PATTERN_CYCLES} cycles of {'-'.join(cycle)}", None, beats)]
        if cond in self._active and not holds and not continuing:
            return [self._observe(cond, False, b.index, b.index, "pattern ended")]
        return []

    def _observe(self, cond: Condition, active: bool, index: int, at: int, detail: str,
                 rate: float | None = None, beats: Sequence[Beat] = ()) -> Observation:
        if active:
            self._active.add(cond)
        else:
            self._active.discard(cond)
        start = beats[0].index if beats else index
        ev = Evidence(self._time(start), self._time(at), start, at, heart_rate=rate,
                      beats=len(beats) or None, detail=detail)
        return Observation(cond, active, index, ev, at)
