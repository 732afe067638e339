"""Replaying a recorded signal through the service's own per-device path.

The record is cut into chunks exactly as a device back end would send them
and fed to :class:`ingest.device.DeviceMonitor` (stream reassembly plus the
detector pipeline), so what is scored here is what the service does live.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detect.classify import BeatClassifier
from detect.config import DetectorConfig
from detect.pipeline import DevicePipeline, PipelineResult
from detect.types import AlarmTransition, Beat, Chunk, QualityWindow
from ingest.device import DeviceMonitor


@dataclass(frozen=True, slots=True)
class Replay:
    beats: tuple[Beat, ...]
    transitions: tuple[AlarmTransition, ...]
    chunks: int
    # The pipeline's signal-quality verdicts, 2 s windows at the internal rate, in order.
    quality: tuple[QualityWindow, ...] = ()


class _QualityRecorder(DevicePipeline):
    """A DevicePipeline that keeps the quality windows it reports.

    DeviceMonitor's results carry beats and transitions but not the quality
    windows, so they are taken here, from the pipeline's own results.
    """

    def __init__(self, device_id: str, config: DetectorConfig,
                 classifier: BeatClassifier | None) -> None:
        super().__init__(device_id, config, classifier)
        self.windows: list[QualityWindow] = []

    def _kept(self, r: PipelineResult) -> PipelineResult:
        self.windows += r.quality
        return r

    def push(self, chunk: Chunk) -> PipelineResult:
        return self._kept(super().push(chunk))

    def gap(self, start: float, end: float, detail: str = "") -> PipelineResult:
        return self._kept(super().gap(start, end, detail))

    def flush(self) -> PipelineResult:
        return self._kept(super().flush())


def chunks_of(x: npt.NDArray[np.float64], fs: float, chunk_s: float, device_id: str,
              t0: float = 0.0) -> list[Chunk]:
    """Consecutive chunks of ``chunk_s``; a short tail joins the chunk before it."""
    n = max(1, int(round(chunk_s * fs)))
    bounds = list(range(0, x.size, n)) + [x.size]
    if len(bounds) > 2 and (bounds[-1] - bounds[-2]) < 0.1 * fs:
        del bounds[-2]
    return [Chunk(device_id, k, t0 + a / fs, fs, np.ascontiguousarray(x[a:b]))
            for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]


def replay(x: npt.NDArray[np.float64], fs: float, *, chunk_s: float = 1.0,
           device_id: str = "replay", config: DetectorConfig | None = None,
           classifier: BeatClassifier | None = None) -> Replay:
    """Stream ``x`` (mV at ``fs``) through a DeviceMonitor; wall time follows device time.

    With a ``classifier`` the returned beats carry their AAMI labels (the
    same beats, labelled one beat later in the stream). ``quality`` holds the
    pipeline's signal-quality windows.
    """
    recorders: list[_QualityRecorder] = []

    def pipeline(d: str, c: DetectorConfig) -> _QualityRecorder:
        recorders.append(_QualityRecorder(d, c, classifier))
        return recorders[-1]

    mon = DeviceMonitor(device_id, config or DetectorConfig(), pipeline_factory=pipeline)
    beats: list[Beat] = []
    transitions: list[AlarmTransition] = []
    chunks = chunks_of(np.asarray(x, dtype=np.float64), fs, chunk_s, device_id)
    results = [mon.push(c, now=c.t_end) for c in chunks] + [mon.flush()]
    for r in results:
        beats += r.classified if classifier is not None else r.beats
        transitions += r.transitions
    quality = tuple(w for p in recorders for w in p.windows)
    return Replay(tuple(beats), tuple(transitions), len(chunks), quality)


def replay_beats(x: npt.NDArray[np.float64], fs: float, *,
                 chunk_s: float = 1.0) -> npt.NDArray[np.int64]:
    """Beat positions as sample indices of ``x``."""
    r = replay(x, fs, chunk_s=chunk_s)
    return np.array([round(b.time * fs) for b in r.beats], dtype=np.int64)
