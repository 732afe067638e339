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
from detect.pipeline import DevicePipeline
from detect.types import AlarmTransition, Beat, Chunk
from ingest.device import DeviceMonitor


@dataclass(frozen=True, slots=True)
class Replay:
    beats: tuple[Beat, ...]
    transitions: tuple[AlarmTransition, ...]
    chunks: int


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
    same beats, labelled one beat later in the stream).
    """
    mon = DeviceMonitor(device_id, config or DetectorConfig(),
                        pipeline_factory=lambda d, c: DevicePipeline(d, c, classifier))
    beats: list[Beat] = []
    transitions: list[AlarmTransition] = []
    chunks = chunks_of(np.asarray(x, dtype=np.float64), fs, chunk_s, device_id)
    results = [mon.push(c, now=c.t_end) for c in chunks] + [mon.flush()]
    for r in results:
        beats += r.classified if classifier is not None else r.beats
        transitions += r.transitions
    return Replay(tuple(beats), tuple(transitions), len(chunks))


def replay_beats(x: npt.NDArray[np.float64], fs: float, *, chunk_s: float = 1.0) -> npt.NDArray[np.int64]:
    """Beat positions as sample indices of ``x``."""
    r = replay(x, fs, chunk_s=chunk_s)
    return np.array([round(b.time * fs) for b in r.beats], dtype=np.int64)
