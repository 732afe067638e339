"""The alarm state machine: observations in, alarm transitions out.

Per condition an episode goes ``idle -> active -> clearing -> idle``:

* an active observation while idle opens an episode: one RAISED transition,
  onset = the condition's onset (``Observation.index``), ``at`` = when it was
  decided (``Observation.at``);
* an inactive observation moves the episode to *clearing*; it ends with one
  CLEARED transition once the condition has stayed absent for
  ``clear_after_s`` (IEC 60601-1-8 lets alarm conditions be non-latching;
  the delay is the hysteresis that stops a condition flickering at its limit
  from raising a new alarm each time);
* an active observation while clearing resumes the same episode: never two
  RAISED for one episode;
* while active, a heart-rate condition may publish UPDATED when the rate has
  moved more than ``UPDATE_BPM`` since the last published value, at most once
  per ``UPDATE_EVERY_S``.

Signal gaps (no samples for a while) are an alarm of their own:
:meth:`AlarmManager.gap` raises SIGNAL_GAP (technical, medium) and it clears
once samples have flowed again for ``clear_after_s``.

Ids are derived from the device, the condition and the onset sample
(:class:`detect.types.AlarmTransition`), and every time here is a sample index
of the stream, never the wall clock, so replaying a stream gives the same
transitions with the same ids, however it is chunked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from .conditions import IndexToTime, Observation
from .config import DetectorConfig
from .timeline import Timeline
from .types import (Action, ActiveAlarm, AlarmTransition, Condition, Evidence, Priority,
                    check_device_id)

UPDATE_BPM = 10.0          # rate change worth an UPDATED transition ...
UPDATE_EVERY_S = 10.0      # ... at most this often per episode

_PRIORITY_ORDER = {Priority.HIGH: 0, Priority.MEDIUM: 1, Priority.LOW: 2}


@dataclass(slots=True)
class _Episode:
    onset_index: int
    onset: float                     # device time of the onset
    published_at: int                # sample of the last RAISED/UPDATED
    heart_rate: float | None         # as last published
    updates: int = 0
    clear_at: int | None = None      # sample at which it clears unless it comes back
    off_index: int = 0               # where the condition went absent
    off_evidence: Evidence | None = None
    episode_id: str = ""


def _decided_at(obs: Observation) -> int:
    return obs.at


class AlarmManager:
    """``push(observations, now_index) -> [AlarmTransition]`` for one device.

    Times: sample ``i`` is at device time ``index_to_time(i)``; by default a
    :class:`Timeline` ``t_origin + i / fs`` that :meth:`gap` re-anchors. Pass
    ``manager.timeline`` to :class:`ConditionTracker` so evidence and alarm
    times agree.
    """

    def __init__(self, device_id: str, config: DetectorConfig, detector_version: str,
                 fs: float | None = None, t_origin: float = 0.0, *,
                 index_to_time: IndexToTime | None = None) -> None:
        self.device_id = check_device_id(device_id)
        self.config = config
        self.detector_version = detector_version
        self.fs = float(fs if fs is not None else config.fs)
        self.timeline = Timeline(self.fs, t_origin)
        self._external_time = index_to_time is not None
        self._time: IndexToTime = index_to_time or self.timeline
        self._clear_n = int(round(config.alarms.clear_after_s * self.fs))
        self._update_n = int(round(UPDATE_EVERY_S * self.fs))
        self._episodes: dict[Condition, _Episode] = {}
        self._now = 0

    def push(self, observations: Iterable[Observation], now_index: int) -> list[AlarmTransition]:
        """Apply observations in decision order, then clear what is due by ``now_index``.

        ``now_index`` must not run ahead of the tracker's frontier (use
        ``ConditionTracker.frontier``): an alarm clears at the first sample at
        which no observation can still resume it.
        """
        if not observations and not self._episodes:
            # Most calls (five per device per chunk): nothing to apply, nothing to clear.
            # (DevicePipeline writes this branch out where it pushes a manager, to
            # save the call: change it there too.)
            if now_index > self._now:
                self._now = int(now_index)
            return []
        out: list[AlarmTransition] = []
        if observations:                      # most calls bring none: skip the sort
            for obs in sorted(observations, key=_decided_at):
                out += self._advance(obs.at)
                out += self._apply(obs)
        out += self._advance(now_index)
        return out

    def reconfigure(self, config: DetectorConfig) -> None:
        """New limits: the clearing time applies to episodes that go absent from now on."""
        self.config = config
        self._clear_n = int(round(config.alarms.clear_after_s * self.fs))

    def gap(self, start_time: float, end_time: float, index: int,
            detail: str = "") -> list[AlarmTransition]:
        """Samples stopped at device time ``start_time`` and resume at ``end_time``,
        as sample ``index``. Raises SIGNAL_GAP (once per episode)."""
        if not end_time >= start_time:
            raise ValueError(f"Signal gap of device {self.device_id!r} ends at {end_time!r} s, "
                             f"before it starts at {start_time!r} s.")
        out = self._advance(index)
        if not self._external_time:
            self.timeline.anchor(index, end_time)
        text = detail or f"no samples for {end_time - start_time:.3g} s"
        ev = Evidence(start=start_time, end=end_time, sample_start=index, sample_end=index,
                      detail=text)
        ep = self._episodes.get(Condition.SIGNAL_GAP)
        if ep is None:
            ep = _Episode(index, start_time, index, None)
            self._episodes[Condition.SIGNAL_GAP] = ep
            out.append(self._transition(Condition.SIGNAL_GAP, Action.RAISED, ep, end_time, ev))
        # Clears once samples have flowed for clear_after_s after this gap.
        ep.clear_at, ep.off_index, ep.off_evidence = index + self._clear_n, index, ev
        self._now = max(self._now, index)
        return out

    def active(self) -> tuple[ActiveAlarm, ...]:
        """Open episodes (including those waiting to clear), most urgent first."""
        if not self._episodes:                # most devices, most of the time
            return ()
        items = sorted(self._episodes.items(),
                       key=lambda kv: (_PRIORITY_ORDER[kv[0].priority], kv[1].onset_index,
                                       kv[0].value))
        return tuple(ActiveAlarm(c, ep.episode_id, ep.onset) for c, ep in items)

    # ------------------------------------------------------------ internals

    def _advance(self, index: int) -> list[AlarmTransition]:
        """Clear every episode whose clearing time has come by ``index``."""
        if index > self._now:
            self._now = int(index)
        if not self._episodes:
            return []
        due = sorted((ep.clear_at, c.value, c) for c, ep in self._episodes.items()
                     if ep.clear_at is not None and ep.clear_at <= self._now)
        out = []
        for clear_at, _, cond in due:
            ep = self._episodes.pop(cond)
            base = ep.off_evidence
            assert base is not None
            start, end = self._time(ep.off_index), self._time(clear_at)
            absent = f"absent for {self.config.alarms.clear_after_s:g} s"
            ev = replace(base, start=start, end=max(end, start), sample_start=ep.off_index,
                         sample_end=clear_at,
                         detail=f"{base.detail}; {absent}" if base.detail else absent)
            out.append(self._transition(cond, Action.CLEARED, ep, max(end, ep.onset), ev))
        return out

    def _apply(self, obs: Observation) -> list[AlarmTransition]:
        cond, ep = obs.condition, self._episodes.get(obs.condition)
        if not obs.active:
            if ep is not None and ep.clear_at is None:
                ep.clear_at = max(obs.index + self._clear_n, obs.at)
                ep.off_index, ep.off_evidence = obs.index, obs.evidence
            return []
        at_time = self._time(obs.at)
        if ep is None:
            ep = _Episode(obs.index, self._time(obs.index), obs.at, obs.evidence.heart_rate)
            self._episodes[cond] = ep
            return [self._transition(cond, Action.RAISED, ep, max(at_time, ep.onset),
                                     obs.evidence)]
        ep.clear_at = None                    # back within the clearing time: same episode
        rate = obs.evidence.heart_rate
        if (rate is not None and ep.heart_rate is not None
                and abs(rate - ep.heart_rate) > UPDATE_BPM
                and obs.at - ep.published_at >= self._update_n):
            ep.updates += 1
            ep.published_at, ep.heart_rate = obs.at, rate
            return [self._transition(cond, Action.UPDATED, ep, max(at_time, ep.onset),
                                     obs.evidence)]
        return []

    def _transition(self, cond: Condition, action: Action, ep: _Episode, at: float,
                    evidence: Evidence) -> AlarmTransition:
        t = AlarmTransition(self.device_id, cond, action, ep.onset, at, ep.onset_index,
                            evidence, self.detector_version, update=ep.updates)
        ep.episode_id = t.episode_id
        return t
