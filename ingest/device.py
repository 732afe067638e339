"""One device's whole state: stream reassembler + detection pipeline.

The service keeps one DeviceMonitor per device id and nothing else per
device, so dropping a device, snapshotting it or testing it means dealing
with exactly this object. Wall time (``now``) is injected and only reaches
the reassembler; the pipeline sees device time only, through the chunks and
the gaps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, Union

from detect.config import DetectorConfig
from detect.batch import Filtered, SignalBatcher
from detect.classify import BeatBatcher
from detect.pipeline import DevicePipeline, PipelineResult
from detect.records import quick_init
from detect.types import AlarmTransition, Beat, Chunk, DeviceState, check_device_id

from .reassembly import Duplicate, Gap, Late, Ready, StreamEvent, StreamReassembler

StreamNotice = Union[Duplicate, Late, Gap]


class Pipeline(Protocol):
    """What DeviceMonitor needs from a pipeline (detect.pipeline.DevicePipeline's contract)."""

    def push(self, chunk: Chunk) -> PipelineResult: ...
    def gap(self, start: float, end: float, detail: str = "") -> PipelineResult: ...
    def flush(self) -> PipelineResult: ...
    def apply_labels(self, pairs: list[tuple[int, str]]) -> PipelineResult: ...
    def state(self) -> DeviceState: ...
    def state_key(self) -> tuple: ...
    def reconfigure(self, config: DetectorConfig) -> PipelineResult: ...
    def resume(self, block: Filtered) -> PipelineResult: ...


PipelineFactory = Callable[[str, DetectorConfig], Pipeline]


@quick_init
@dataclass(frozen=True, slots=True)
class MonitorResult:
    """What one push/tick/flush produced, for publishing and counting."""

    beats: tuple[Beat, ...] = ()
    transitions: tuple[AlarmTransition, ...] = ()
    stream_events: tuple[StreamNotice, ...] = ()   # Duplicate, Late and Gap, in order
    chunks: int = 0                                # chunks handed to the pipeline
    classified: tuple[Beat, ...] = ()              # beats again, with their AAMI label

    def __post_init__(self) -> None:
        for e in self.stream_events:
            if not isinstance(e, (Duplicate, Late, Gap)):
                raise ValueError(f"Stream event {e!r} is not a Duplicate, Late or Gap.")


_NOTHING = MonitorResult()
_ONE_CHUNK = MonitorResult(chunks=1)      # a chunk analysed, nothing (yet) to show for it


class DeviceMonitor:
    """Ordered, gap-aware feeding of one device's chunks into its pipeline."""

    def __init__(self, device_id: str, config: DetectorConfig | None = None,
                 pipeline_factory: PipelineFactory = DevicePipeline) -> None:
        self.device_id = check_device_id(device_id)
        self.config = config or DetectorConfig()
        self.reassembler = StreamReassembler(device_id, self.config)
        self.pipeline: Pipeline = pipeline_factory(device_id, self.config)

    def push(self, chunk: Chunk, now: float) -> MonitorResult:
        """A decoded chunk arrived at wall time ``now``."""
        return self._run(self.reassembler.push(chunk, now))

    def tick(self, now: float) -> MonitorResult:
        """Wall time passed: give up on missing chunks, notice silence."""
        return self._run(self.reassembler.tick(now))

    def flush(self) -> MonitorResult:
        """End of a finite stream: release what is held, then let the pipeline decide."""
        return self._run(self.reassembler.flush(), final=self.pipeline.flush)

    def apply_labels(self, pairs: list[tuple[int, str]]) -> MonitorResult:
        """Beat labels from a batched model call (see detect.classify.BeatBatcher)."""
        r = self.pipeline.apply_labels(pairs)
        if not (r.transitions or r.classified):
            return _NOTHING
        return MonitorResult((), r.transitions, (), 0, r.classified)

    def holds(self, seq: int) -> bool:
        """Whether chunk ``seq`` arrived but waits in the reorder window (not analysed yet)."""
        return self.reassembler.holds(seq)

    def state(self) -> DeviceState:
        return self.pipeline.state()

    def state_key(self) -> tuple:
        """(rhythm, quality, active alarms' episode ids): what :class:`StateThrottle`
        compares, without building the state."""
        return self.pipeline.state_key()

    def reconfigure(self, config: DetectorConfig) -> MonitorResult:
        """New alarm limits / AF settings for this device (see DevicePipeline.reconfigure).

        Returns what data queued before the change produced (batched filters)."""
        r = self.pipeline.reconfigure(config)
        self.config = config
        return self._result(r)

    def resume(self, block: Filtered) -> MonitorResult:
        """Finish a block whose filters ran batched with other devices' (detect/batch.py)."""
        return self._result(self.pipeline.resume(block))

    @staticmethod
    def _result(r: PipelineResult) -> MonitorResult:
        if not (r.beats or r.transitions or r.classified):   # many calls: nothing came
            return _NOTHING
        return MonitorResult(r.beats, r.transitions, (), 0, r.classified)

    def _run(self, events: Sequence[StreamEvent],
             final: Callable[[], PipelineResult] | None = None) -> MonitorResult:
        if final is None and len(events) <= 1:
            # Most calls: one chunk in order (push) or nothing (tick); no lists to build.
            if not events:
                return _NOTHING
            e = events[0]
            if isinstance(e, Ready):
                r = self.pipeline.push(e.chunk)
                if not (r.beats or r.transitions or r.classified):
                    return _ONE_CHUNK     # batched filters: the results come in resume
                return MonitorResult(r.beats, r.transitions, (), 1, r.classified)
        beats: list[Beat] = []
        classified: list[Beat] = []
        transitions: list[AlarmTransition] = []
        notices: list[StreamNotice] = []
        chunks = 0

        def take(r: PipelineResult) -> None:
            beats.extend(r.beats)
            classified.extend(r.classified)
            transitions.extend(r.transitions)

        for e in events:
            if isinstance(e, Ready):
                take(self.pipeline.push(e.chunk))
                chunks += 1
                continue
            notices.append(e)
            if isinstance(e, Gap):
                # The reassembler already put no_data gaps at [last t_end,
                # last t_end + silent wall time]; other gaps span the device
                # time between the two chunks around the discontinuity.
                take(self.pipeline.gap(e.start, e.end, e.detail))
        if final is not None:
            take(final())
        return MonitorResult(tuple(beats), tuple(transitions), tuple(notices), chunks,
                             tuple(classified))


def complete_tick(monitors: Mapping[str, DeviceMonitor], signals: SignalBatcher | None,
                  model: BeatBatcher | None, now: float) -> Iterator[tuple[str, MonitorResult]]:
    """After every chunk of a tick was pushed: the batched filter pass and each
    device's chain, one beat-model call, then every monitor's timer, as
    (device, result) in that order.

    The offline form of ``Service._complete`` and ``_periodic`` (benchmarks,
    tests): no per-device isolation of failures, nothing published.
    """
    for block in signals.run() if signals is not None else ():
        device_id = block.pipeline.device_id
        yield device_id, monitors[device_id].resume(block)
    for pipeline, pairs in model.run() if model is not None else ():
        yield pipeline.device_id, monitors[pipeline.device_id].apply_labels(pairs)
    for device_id, monitor in monitors.items():
        yield device_id, monitor.tick(now)


@dataclass(slots=True)
class _Sent:
    key: tuple
    at: float


class StateThrottle:
    """Which device states are worth publishing: a device's state when its rhythm,
    quality or set of active alarms changed since the last one published, else
    once every ``interval_s`` (wall seconds).

    The service asks after every device's data; most of the time nothing a
    consumer watches has changed, so the key is compared first and the whole
    :class:`DeviceState` is built only when it goes out.
    """

    def __init__(self, interval_s: float) -> None:
        if not interval_s > 0:
            raise ValueError(f"State interval {interval_s!r} s must be positive.")
        self.interval_s = interval_s
        self._sent: dict[str, _Sent] = {}

    def due(self, monitor: DeviceMonitor, now: float) -> DeviceState | None:
        """``monitor``'s state if it is to be published now (and noted as such), else None."""
        key = monitor.state_key()
        last = self._sent.get(monitor.device_id)
        if last is not None and last.key == key and now - last.at < self.interval_s:
            return None
        self._sent[monitor.device_id] = _Sent(key, now)
        return monitor.state()


__all__ = ["DeviceMonitor", "MonitorResult", "Pipeline", "PipelineFactory", "StateThrottle",
           "StreamNotice", "complete_tick"]
