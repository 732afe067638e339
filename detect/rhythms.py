"""Atrial fibrillation as an alarm condition: the AF detector behind the quality gate.

:class:`detect.af.AfDetector` decides AF from beat times alone. In the
stream it must not decide from beats found in signal judged unusable (noise
makes QRS detection irregular, and irregular is exactly what AF looks like),
so this tracker

* holds each beat until the quality window that contains it has been judged
  (windows are 2 s, so AF decisions run up to one window behind the beats;
  waiting also makes the result independent of chunking); with a beat model
  the pipeline feeds beats only once they are labelled, so the detector's
  ectopic filter can leave out V and F beats;
* feeds the detector only beats in usable windows; the first unusable window
  ends the detector's evidence (an open episode ends at the last good beat)
  and the next usable beat starts a fresh detector, which needs its own
  warm-up, so no AF alarm is raised from a window the detector has not seen;
* turns detector onsets and offsets into :class:`Observation` of
  ``atrial_fibrillation`` (medium priority), placed at the estimated onset
  and decided at the beat where the detector decided;
* keeps the AF burden: the share of analysed time (from the first to the
  last beat fed to a detector) spent in reported AF episodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .af import AfConfig, AfDetector, AfEvent
from .conditions import Observation
from .quality import usable_at
from .types import Beat, Condition, Evidence, QualityWindow

AF = Condition.ATRIAL_FIBRILLATION


class AfTracker:
    """``push(beats, quality windows[, final]) -> [Observation]``, both in index order."""

    def __init__(self, fs: float, index_to_time: Callable[[int], float],
                 config: AfConfig | None = None) -> None:
        self.fs = float(fs)
        self.config = config or AfConfig()
        self._time = index_to_time
        self._det: AfDetector | None = None
        # Lists, not deques (760 bytes each): a few beats and the last 32 windows.
        self._pending: list[Beat] = []
        self._windows: list[QualityWindow] = []
        self._covered = 0                          # end of the last judged window
        self._active = False
        # (beat index, AF on after it) at each change not yet asked about by af_at:
        # the AF state as it was known at every beat, whatever the chunking.
        self._changes: list[tuple[int, bool]] = []
        self._state_before = False                 # the state before _changes[0]
        self._af_samples = 0.0                     # AF time in detectors already closed
        self._seen_samples = 0                     # analysed time in those detectors
        self.frontier = 0

    # ------------------------------------------------------------------ input
    def push(self, beats: Sequence[Beat], windows: Sequence[QualityWindow],
             final: bool = False, limit: int | None = None) -> list[Observation]:
        """New beats and quality windows; ``final`` at the end of a segment releases
        every held beat and ends the detector's evidence (a gap or the record's end).

        Beats carry their labels to the detector (its ectopic filter leaves out
        the intervals around V and F beats). A caller that feeds beats only once
        they are labelled gives ``limit``, the first index where a beat may still
        come: the frontier stays below it although later windows are known.
        """
        # Called about three times per chunk (windows, then beats as they are
        # labelled), most often with nothing new: only the frontier moves then.
        if windows:
            self._windows.extend(windows)
            del self._windows[:-32]
            self._covered = max(self._covered, windows[-1].end)
        pending = self._pending
        if beats:
            pending.extend(beats)
        out: list[Observation] = []
        if pending and (final or pending[0].index < self._covered):
            out = self._release(final)
        if final:
            out += self._close(self.frontier)
            self._note(self.frontier)
        ahead = min(self._covered, pending[0].index) if pending else self._covered
        self.frontier = max(self.frontier, ahead if limit is None else min(ahead, limit))
        return out

    def gap(self, index: int) -> list[Observation]:
        """Samples stopped: held beats are dropped with the evidence they belonged to."""
        self._pending.clear()
        out = self._close(index)
        self._note(index)
        self.frontier = max(self.frontier, index)
        return out

    def af_at(self, index: int) -> bool:
        """Whether AF had been decided at the beat at ``index`` (as known then, from
        beats up to it). Ask in index order, at or below ``frontier``: the record of
        changes before the asked index is dropped."""
        changes = self._changes
        while changes and changes[0][0] <= index:
            self._state_before = changes.pop(0)[1]
        return self._state_before

    def _note(self, index: int) -> None:
        last = self._changes[-1][1] if self._changes else self._state_before
        if self._active != last:
            self._changes.append((index, self._active))

    def reconfigure(self, config: AfConfig) -> None:
        """New AF settings, used from the next detector on (after a gap or unusable
        signal): the running detector's evidence was gathered under the old ones."""
        self.config = config

    @property
    def burden(self) -> float | None:
        """Fraction of analysed time in AF, or None before any time was analysed."""
        af, seen = self._af_samples, self._seen_samples
        if self._det is not None:
            span = self._det.span
            af += self._det.af_burden * span
            seen += span
        return af / seen if seen > 0 else None

    @property
    def in_af(self) -> bool:
        return self._active

    # -------------------------------------------------------------- internals
    def _release(self, final: bool) -> list[Observation]:
        """Feed the held beats whose window is judged (all of them when ``final``)."""
        pending, covered, windows = self._pending, self._covered, self._windows
        changes = self._changes
        # Most beats lie in the newest window: read it here, not through usable_at's scan.
        newest = windows[-1] if windows else None
        start, end = (newest.start, newest.end) if newest is not None else (0, 0)
        usable = newest is not None and newest.quality.usable
        out: list[Observation] = []
        done = 0
        for beat in pending:
            index = beat.index
            if index >= covered and not final:
                break
            done += 1
            if (usable if start <= index < end else usable_at(windows, index)):
                det = self._det
                if det is None:               # a fresh start (after a gap or bad signal)
                    det = self._det = AfDetector(self.fs, self.config)
                events = det.beat(index, beat.label)
                if events:
                    out += [self._observe(e) for e in events]
            else:
                out += self._close(index)
            # self._note(index), inline (every beat)
            active = self._active
            if active != (changes[-1][1] if changes else self._state_before):
                changes.append((index, active))
            if index > self.frontier:
                self.frontier = index
        del pending[:done]
        return out

    def _close(self, index: int) -> list[Observation]:
        """End the current detector's evidence (unusable signal, gap or end)."""
        if self._det is None:
            return []
        out = [self._observe(e) for e in self._det.flush()]
        span = self._det.span
        self._af_samples += self._det.af_burden * span
        self._seen_samples += span
        self._det = None
        if self._active:
            # flush() reports an open episode's end; without one nothing was open.
            self._active = False
            out.append(self._offset(index, index, "signal not analysable"))
        return out

    def _observe(self, e: AfEvent) -> Observation:
        if e.kind == "onset":
            self._active = True
            ev = Evidence(self._time(e.index), self._time(e.decision_index), e.index,
                          e.decision_index, heart_rate=e.heart_rate,
                          detail=f"irregular RR intervals (irregularity {e.irregularity:.3f})")
            return Observation(AF, True, e.index, ev, e.decision_index)
        self._active = False
        return self._offset(e.index, e.decision_index,
                            f"RR intervals regular again (irregularity {e.irregularity:.3f})",
                            e.heart_rate)

    def _offset(self, index: int, at: int, detail: str,
                rate: float | None = None) -> Observation:
        index = min(index, at)
        ev = Evidence(self._time(index), self._time(at), index, at, heart_rate=rate,
                      detail=detail)
        return Observation(AF, False, index, ev, at)
