"""Per-device streaming pipeline: resample -> filter -> quality -> R-peaks -> rhythms -> alarms.

    p = DevicePipeline(device_id, DetectorConfig())
    r = p.push(chunk)      # chunks in seq order, contiguous (the reassembler's job)
    r.beats                # newly confirmed beats
    r.transitions          # alarm transitions (raised / updated / cleared)
    r = p.gap(start, end, detail)   # device-time discontinuity before the next chunk
    r = p.flush()          # end of a finite record: decide what is pending
    p.state()              # DeviceState for the retained state topic

A *segment* is a contiguous run of samples at one input rate. A gap or a
rate change ends the segment: the signal chain restarts (filters and the
detector cannot bridge missing samples), while alarms and the stream's index
grid carry on. Internal-rate indices count device time from the stream's
first sample, ``t = origin + index / fs``, so an index always names one
device time and alarm ids stay the same whatever the chunking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import DETECTOR_VERSION
from .alarms import AlarmManager
from .batch import Filtered, SignalBatcher
from .beat_features import PendingBeat
from .classify import BeatBatcher, BeatClassifier
from .conditions import ConditionTracker, Observation
from .ectopy import EctopyTracker
from .config import DetectorConfig
from .quality import usable_at
from .records import quick_init
from .resample import Resampler
from .rhythms import AfTracker
from .segment import SignalSegment
from .suppression import AlarmSuppression
from .wide_complex import WideComplexTracker
from .types import (ActiveAlarm, AlarmTransition, Beat, Chunk, Condition, DeviceState,
                    Evidence, Priority, Quality, QualityWindow, check_device_id)

_EMPTY = np.zeros(0)
_PRIORITY_RANK = {Priority.HIGH: 0, Priority.MEDIUM: 1, Priority.LOW: 2}

@quick_init
@dataclass(frozen=True, slots=True)
class PipelineResult:
    """What one call produced. ``beats`` come as soon as they are detected;
    ``classified`` are the same beats again with their AAMI label, one beat
    later (the classifier uses the post-RR interval); empty without a model."""

    beats: tuple[Beat, ...] = ()
    transitions: tuple[AlarmTransition, ...] = ()
    quality: tuple[QualityWindow, ...] = ()
    classified: tuple[Beat, ...] = ()

    def __add__(self, other: "PipelineResult") -> "PipelineResult":
        # Most sums per chunk have an empty side: reuse the other (immutable) one.
        if not (other.beats or other.transitions or other.quality or other.classified):
            return self
        if not (self.beats or self.transitions or self.quality or self.classified):
            return other
        return PipelineResult(self.beats + other.beats, self.transitions + other.transitions,
                              self.quality + other.quality, self.classified + other.classified)


_NOTHING = PipelineResult()
_NO_COUNTS = {"sveb_per_hour": None, "veb_per_hour": None}   # no model: no ectopic counts


def _alarm_rank(a) -> int:
    return _PRIORITY_RANK[a.condition.priority]


class DevicePipeline:
    """All per-device analysis state, fed chunk by chunk; pure and deterministic."""

    def __init__(self, device_id: str, config: DetectorConfig | None = None,
                 classifier: BeatClassifier | BeatBatcher | None = None,
                 signals: SignalBatcher | None = None) -> None:
        self.device_id = check_device_id(device_id)
        self.config = config or DetectorConfig()
        self.classifier = classifier
        # With a SignalBatcher, push only resamples and queues the block; its
        # filters run with every other device's in SignalBatcher.run, and the
        # rest of the chain in resume (detect/batch.py).
        self.signals = signals
        self._unlabelled: dict[int, Beat] = {}
        # Short queues as lists (trimmed by hand): a deque costs 760 bytes however short.
        self._to_label: list[tuple[Beat, str]] = []   # classified, awaiting quality
        self._windows: list[QualityWindow] = []       # the last 16 judged
        self.fs = self.config.fs
        self._origin: float | None = None
        self._seg: SignalSegment | None = None
        self._end = 0                          # stream index analysed up to
        self._resume_gap: tuple[float, float, str] | None = None
        self._beats = 0
        self._last_beat: int | None = None
        self._quality = Quality.GOOD
        self._tracker = ConditionTracker(device_id, self.config, index_to_time=self._time)
        self._alarms = AlarmManager(device_id, self.config, DETECTOR_VERSION, self.fs,
                                    index_to_time=self._time)
        # Beat-label rhythms run one beat behind the rate conditions, so they
        # get their own tracker and alarm manager, each advanced on its own clock.
        self._ectopy = EctopyTracker(self.fs, self._time)
        self._ectopy_alarms = AlarmManager(device_id, self.config, DETECTOR_VERSION, self.fs,
                                           index_to_time=self._time)
        # AF waits for each beat's quality window, so it runs on its own clock too.
        self._af = AfTracker(self.fs, self._time, self.config.af)
        self._af_alarms = AlarmManager(device_id, self.config, DETECTOR_VERSION, self.fs,
                                       index_to_time=self._time)
        self._vf_alarms = AlarmManager(device_id, self.config, DETECTOR_VERSION, self.fs,
                                       index_to_time=self._time)
        self._vf_active = False
        # Wide fast beats: VT without labels (the beat model's safety net).
        self._wct = WideComplexTracker(self.fs, self._time)
        self._wct_alarms = AlarmManager(device_id, self.config, DETECTOR_VERSION, self.fs,
                                        index_to_time=self._time)
        # Alarms another open alarm explains are not raised (detect/suppression.py).
        self._suppression = AlarmSuppression(self._ectopy_alarms, self._wct_alarms)

    # ----------------------------------------------------------------- input
    def push(self, chunk: Chunk) -> PipelineResult:
        if chunk.device_id != self.device_id:
            raise ValueError(f"Chunk from device {chunk.device_id!r} pushed into the "
                             f"pipeline of device {self.device_id!r}.")
        out = self._settle()
        if self._seg is not None and self._seg.fs_in != chunk.fs:
            out += self.gap(self._time(self._end), chunk.t0, "sampling rate changed")
        if self._seg is None:
            out += self._open(chunk)
        seg = self._seg
        assert seg is not None
        if self.signals is not None:
            resampler = seg.resampler
            self.signals.submit(self, seg, resampler.push(chunk.samples))
            self._end = seg.offset + resampler.produced      # seg.end
            return out
        peaks, windows, inputs = seg.push(chunk.samples)
        self._end = seg.end
        return out + self._after_filters(seg, peaks, windows, inputs)

    def resume(self, block: Filtered) -> PipelineResult:
        """Finish a block this pipeline queued, after the batched filters (detect/batch.py)."""
        pipeline, seg, samples, clean, band, slope, energy, vf, quality, scanned, widths = block
        if pipeline is not self or seg is not self._seg:
            raise RuntimeError(f"A filtered block of device {pipeline.device_id!r} was "
                               f"resumed out of turn in the pipeline of {self.device_id!r}.")
        peaks, windows, inputs = seg.finish(samples, clean, band, (slope, energy), vf, quality,
                                            scanned)
        return self._after_filters(seg, peaks, windows, inputs, widths)

    def _after_filters(self, seg: SignalSegment, peaks: list[int], windows: list[QualityWindow],
                       inputs: list[PendingBeat],
                       widths: Mapping[int, float] | None = None) -> PipelineResult:
        horizon = seg._horizon                # (seg.horizon(), without the call)
        if seg.vf_events or self._vf_alarms._episodes:
            vf = self._vf(seg)
        else:           # _vf with no event, no episode: AlarmManager.push's first branch
            vf, manager, frontier = _NOTHING, self._vf_alarms, seg.vf.frontier
            if frontier > manager._now:
                manager._now = int(frontier)
        out = self._decide(peaks, windows, horizon, inputs, False, seg.clean, widths)
        if vf is not _NOTHING:                # VF alarms are rare: skip the sum otherwise
            out = vf + out
        # Used up; holding it would keep a batched tick's whole array alive.
        seg.clean = _EMPTY
        return out

    def _settle(self) -> PipelineResult:
        """Finish this pipeline's queued block, filtered alone, before its chain moves on."""
        block = self.signals.take(self) if self.signals is not None else None
        return _NOTHING if block is None else self.resume(block)

    def gap(self, start: float, end: float, detail: str = "") -> PipelineResult:
        """The stream broke between device times ``start`` and ``end``."""
        if self._origin is None:
            return _NOTHING
        out = self._settle() + self._close()
        end = max(end, start)
        out += PipelineResult(transitions=tuple(
            self._alarms.gap(start, end, self._end, detail)))
        self._resume_gap = (start, end, detail)
        return out

    def flush(self) -> PipelineResult:
        """Decide everything pending, as at the end of a finite record."""
        return self._settle() + self._close()

    def reconfigure(self, config: DetectorConfig) -> PipelineResult:
        """Switch to new alarm limits (and AF settings) for this device, mid-stream.

        Only settings that decide alarms may change: the signal chain keeps
        its state. Rate and pause limits apply from the next decision, the
        clearing time to episodes that go absent from now on, AF settings
        from the AF detector's next fresh start. Returns what a queued block
        (batched filters) produced: data that came before the change is decided
        under the old settings.
        """
        if not self.config.same_signal_chain(config):
            raise ValueError(f"Device {self.device_id!r} can change alarm limits and AF "
                             "settings while it streams, not its signal chain.")
        out = self._settle()
        self.config = config
        self._tracker.reconfigure(config)
        for manager in (self._alarms, self._ectopy_alarms, self._af_alarms, self._vf_alarms,
                        self._wct_alarms):
            manager.reconfigure(config)
        self._af.reconfigure(config.af)
        return out

    # ------------------------------------------------------------- segments
    def _open(self, chunk: Chunk) -> PipelineResult:
        delay = Resampler.delay_for(chunk.fs, self.fs)
        if self._origin is None:
            # Resampled sample 0 lies ``delay`` before the first input sample.
            self._origin = chunk.t0 - delay
            self._seg = SignalSegment(chunk.fs, 0, self.config, self.classifier is not None)
            self._wct.restart(0, self._seg.history)      # nothing to end: nothing began
            return _NOTHING
        # Later segments sit on the same grid; a clock that stepped backwards
        # must not reuse indices, so the grid only moves forward.
        offset = max(self._index(chunk.t0 - delay), self._end)
        self._seg = SignalSegment(chunk.fs, offset, self.config, self.classifier is not None)
        out = list(self._alarms.push(self._tracker.gap(offset), offset))
        out += self._ectopy_alarms.push(self._ectopy.gap(offset), offset)
        out += self._af_alarms.push(self._af.gap(offset), offset)
        out += self._wct_alarms.push(self._wct.restart(offset, self._seg.history), offset)
        if self._resume_gap is not None:
            start, _, detail = self._resume_gap
            # Samples flow again: the gap alarm may clear after clear_after_s.
            out += self._alarms.gap(start, max(start, self._time(offset)), offset, detail)
            self._resume_gap = None
        self._last_beat = None
        return PipelineResult(transitions=tuple(out))

    def _close(self) -> PipelineResult:
        seg, self._seg = self._seg, None
        if seg is None:
            return _NOTHING
        peaks, windows, inputs = seg.close()
        return self._vf(seg, final=True) + self._decide(peaks, windows, seg.end, inputs,
                                                        final=True)

    # -------------------------------------------------------------- decisions
    def _decide(self, peaks: list[int], windows: list[QualityWindow], horizon: int,
                inputs: list[PendingBeat], final: bool = False,
                clean: np.ndarray | None = None,
                widths: Mapping[int, float] | None = None) -> PipelineResult:
        beats = []
        if peaks:
            # self._time(p) inline, with the loop's invariants in locals (one beat a chunk or so).
            dev, fs, origin, last = self.device_id, self.fs, self._origin or 0.0, self._last_beat
            for p in peaks:
                rr = None if last is None else (p - last) / fs
                last = p
                beats.append(Beat(dev, p, origin + p / fs, rr if rr and rr > 0 else None))
            self._last_beat = last
            self._beats += len(beats)
        if windows:
            self._quality = windows[-1].quality
        obs = self._tracker.push(beats, windows, horizon)
        # Alarm managers are pushed only with something to apply or open (AlarmManager.push's
        # first branch inline, here and below: most chunks); the frontier is _pos.
        manager, frontier = self._alarms, self._tracker._pos
        transitions = manager.push(obs, frontier) if obs or manager._episodes else []
        if frontier > manager._now:
            manager._now = int(frontier)
        if self.classifier is None:
            transitions += self._af_alarms.push(self._af.push(beats, windows, final),
                                                self._af.frontier)
        # (With a model, AF takes beats as they are labelled, its ectopic filter
        # reads V and F, and these windows with them: in _release.)
        wct = self._wct.push(_EMPTY if clean is None else clean, beats, windows, final,
                             horizon, widths)
        manager, frontier = self._wct_alarms, self._wct.frontier
        if wct or manager._episodes:
            transitions += manager.push(wct, frontier)
        elif frontier > manager._now:
            manager._now = int(frontier)
        if windows:
            self._windows.extend(windows)
            del self._windows[:-16]
        labelled, af = self._classify(beats, inputs, windows, final)
        transitions += af
        transitions += self._rhythms(labelled)
        shown = self._suppression.filter(transitions, self._vf_active) if transitions else ()
        return PipelineResult(tuple(beats), shown, tuple(windows), labelled)

    def _vf(self, seg: SignalSegment, final: bool = False) -> PipelineResult:
        """VF alarms from the segment's waveform detector, decided as its windows end.

        Not gated by the quality grade: VF looks like noise to the quality
        indices, and the detector rejects noise itself (no false VF at any
        Noise Stress Test SNR, docs/evaluation.md).
        """
        events = seg.vf_events
        obs = []
        if events:
            seg.vf_events = []
        for e in events:
            self._vf_active = e.active
            what = "VF/VFL-like waveform" if e.active else "waveform no longer VF-like"
            detail = what if e.features is None else (
                f"{what} (dominant {e.features.dominant_hz:.1f} Hz, "
                f"leakage {e.features.leakage:.2f})")
            ev = Evidence(self._time(e.index), self._time(e.at), e.index, e.at, detail=detail)
            obs.append(Observation(Condition.VENTRICULAR_FIBRILLATION, e.active, e.index, ev,
                                   e.at))
        # At a segment's end nothing more can come from it: clear up to its end.
        frontier = seg.vf.position if final else seg.vf.frontier
        transitions = self._vf_alarms.push(obs, frontier)
        return PipelineResult(transitions=tuple(transitions)) if transitions else _NOTHING

    def _classify(self, beats: list[Beat], inputs: list[PendingBeat],
                  windows: Sequence[QualityWindow] = (), final: bool = False
                  ) -> tuple[tuple[Beat, ...], list[AlarmTransition]]:
        """Send beat inputs to the model; return the beats labelled so far (and
        their AF alarms, ``windows`` the quality windows new in this call).

        The model may answer at once (a BeatClassifier) or later in a batch
        with other devices (a BeatBatcher, then :meth:`apply_labels`); at
        the end of a segment it must answer at once.
        """
        if self.classifier is None:
            return (), []
        for b in beats:
            self._unlabelled[b.index] = b
        if inputs or final:
            pairs = self.classifier.submit(self, inputs, now=final)
            if pairs:
                self._labelled(pairs)
        return self._release(final, windows)

    def apply_labels(self, pairs: list[tuple[int, str]]) -> PipelineResult:
        """Labels for beats this pipeline submitted earlier (batched across devices)."""
        # self._labelled(pairs), inline: every device, every tick.
        unlabelled, to_label = self._unlabelled, self._to_label
        for index, label in pairs:
            beat = unlabelled.pop(index, None)
            if beat is not None:
                to_label.append((beat, label))
        labelled, af = self._release(False)
        transitions = self._suppression.filter(af, self._vf_active) + self._rhythms(labelled)
        return PipelineResult(transitions=transitions, classified=labelled)

    def _labelled(self, pairs: list[tuple[int, str]]) -> None:
        for index, label in pairs:
            beat = self._unlabelled.pop(index, None)
            if beat is not None:
                self._to_label.append((beat, label))

    def _release(self, final: bool, windows: Sequence[QualityWindow] = ()
                 ) -> tuple[tuple[Beat, ...], list[AlarmTransition]]:
        """Labelled beats whose quality window is known, in order, and the AF alarms
        they decide; Q in bad signal, N for S in atrial fibrillation already decided
        at that beat.

        Waiting for the window makes the labels independent of chunking; so does
        the AF state, which the AF tracker (fed these beats with their labels, up
        to the same window) gives per beat. The AF tracker gets the new quality
        ``windows`` in the same call (one call per chunk, not two): it holds no
        beat between calls (each beat comes once its window is known), so they
        release nothing on their own.
        """
        judged = self._windows
        covered = judged[-1].end if judged else 0
        queue = self._to_label
        n = len(queue)
        k = n if final else 0
        while k < n and queue[k][0].index < covered:
            k += 1
        out = []
        if k:
            # Most beats lie in the newest window: read it here, not through usable_at's scan.
            newest = judged[-1] if judged else None
            start, end = (newest.start, newest.end) if newest is not None else (0, 0)
            usable = newest is not None and newest.quality.usable
            for beat, label in queue[:k]:
                index = beat.index
                if not (usable if start <= index < end else usable_at(judged, index)):
                    label = "Q"
                # The unlabelled beat is labelled N: an N beat is that (frozen) beat again.
                # Others as dataclasses.replace builds them, without its per-field lookups.
                out.append(beat if label == beat.label else
                           Beat(beat.device_id, beat.index, beat.time, beat.rr, label))
            del queue[:k]
        # The first beat still to come: queued for its window or awaiting its label.
        limit = queue[0][0].index if queue else None
        if self._unlabelled:
            # Beats go in ascending (and leave in any order): the first key is the least.
            first = next(iter(self._unlabelled))
            limit = first if limit is None or first < limit else limit
        af = self._af_alarms.push(self._af.push(out, windows, final, limit), self._af.frontier)
        if not out:
            return (), af
        for i, beat in enumerate(out):
            if beat.label == "S" and self._af.af_at(beat.index):
                # In atrial fibrillation there is no sinus rhythm for a beat to be
                # premature to: MIT-BIH (and EC57) label its beats N, and the
                # model's S labels there are its commonest false ones.
                out[i] = Beat(beat.device_id, beat.index, beat.time, beat.rr, "N")
        return tuple(out), af

    def _rhythms(self, labelled: tuple[Beat, ...]) -> tuple[AlarmTransition, ...]:
        if not labelled:
            return ()
        obs = self._ectopy.push(labelled)
        transitions = self._ectopy_alarms.push(obs, self._ectopy.frontier)
        return self._suppression.filter(transitions, self._vf_active)


    def _rhythm(self) -> str:
        # VF first: to the quality indices it looks like noise.
        if self._vf_active:
            return "ventricular_fibrillation"
        if not self._quality.usable:
            return "unknown"
        return "atrial_fibrillation" if self._af.in_af else self._tracker.rhythm()

    def _time(self, index: int) -> float:
        return (self._origin or 0.0) + index / self.fs

    def _index(self, t: float) -> int:
        return max(0, int(round((t - (self._origin or 0.0)) * self.fs)))

    # ----------------------------------------------------------------- state
    def state_key(self) -> tuple[str, Quality, tuple[str, ...]]:
        """What a consumer watches change in :meth:`state`: (rhythm, quality, episode
        ids of the active alarms), without building the state (the service asks
        every device that had data, every step, and publishes when it changes)."""
        active = self._active()
        return (self._rhythm(), self._quality,
                tuple([a.episode_id for a in active]) if active else ())

    def _active(self) -> tuple[ActiveAlarm, ...]:
        # The common case (no alarm open) sorts nothing.
        active = (self._alarms.active() + self._ectopy_alarms.active()
                  + self._af_alarms.active() + self._vf_alarms.active()
                  + self._wct_alarms.active())
        if active:
            active = tuple(sorted(self._suppression.shown(active), key=_alarm_rank))
        return active

    def state(self) -> DeviceState:
        active = self._active()
        now = self._time(self._end)
        per_hour = self._ectopy.per_hour(now) if self.classifier else _NO_COUNTS
        quality = self._quality
        # Positional, in DeviceState's field order: keywords cost the call a dict.
        return DeviceState(
            self.device_id,
            None if self._origin is None else now,                      # time
            self._tracker.heart_rate() if quality.usable else None,     # heart_rate
            self._rhythm(),
            quality,
            active,                                                     # active_alarms
            self._beats,
            DETECTOR_VERSION,
            per_hour["sveb_per_hour"],
            per_hour["veb_per_hour"],
            self._af.burden,                                            # af_burden
        )
