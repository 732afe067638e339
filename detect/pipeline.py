"""Per-device streaming pipeline: resample -> filter -> R-peaks -> quality -> alarms.

CONTRACT (stable; the body is being built):

    p = DevicePipeline(device_id, DetectorConfig())
    r = p.push(chunk)      # chunk: detect.types.Chunk, in seq order, contiguous
    r.beats                # tuple[Beat, ...] newly confirmed beats
    r.transitions          # tuple[AlarmTransition, ...] alarm raised/updated/cleared
    r = p.gap(start, end, detail)   # device-time discontinuity before the next chunk
    r = p.flush()          # end of a finite record: decide what is pending
    p.state()              # DeviceState
"""

from __future__ import annotations

from dataclasses import dataclass

from . import DETECTOR_VERSION
from .config import DetectorConfig
from .types import AlarmTransition, Beat, Chunk, DeviceState, Quality


@dataclass(frozen=True, slots=True)
class PipelineResult:
    beats: tuple[Beat, ...] = ()
    transitions: tuple[AlarmTransition, ...] = ()


class DevicePipeline:
    def __init__(self, device_id: str, config: DetectorConfig | None = None) -> None:
        self.device_id = device_id
        self.config = config or DetectorConfig()
        self._t = None

    def push(self, chunk: Chunk) -> PipelineResult:
        self._t = chunk.t_end
        return PipelineResult()

    def gap(self, start: float, end: float, detail: str = "") -> PipelineResult:
        return PipelineResult()

    def flush(self) -> PipelineResult:
        return PipelineResult()

    def state(self) -> DeviceState:
        return DeviceState(self.device_id, self._t, None, "unknown", Quality.GOOD,
                           detector_version=DETECTOR_VERSION)
