"""The in-process fleet that ``ecgwatch bench`` times: the service's per-tick path, no broker.

A :class:`Fleet` is a synthetic fleet mix (``ecgwatch.simulate.fleet_scenarios``:
normal, AF, ectopy, noise, pauses, ...) rendered at 250 Hz and cut into 1 s
chunks, each already encoded as a binary v1 payload, so that generating the
signals never counts as processing.

:class:`FleetRunner` feeds one tick (one simulated second: one payload per
device) through exactly what ``ecgwatch.service.Service`` calls for it:
``ingest.payload.decode_samples`` -> ``DeviceMonitor.push`` (reassembly,
resampling, filters, quality, R-peaks, AF, VF, wide complex, alarms, beat
features) for every device, then one ``BeatBatcher.run()`` for the beats of
all devices and ``DeviceMonitor.apply_labels`` per device, as
``Service._label_beats`` does. What the service does on top per chunk
(``monitor.state()`` for the state topic, ``monitor.tick(now)`` for
timeouts) is timed as a separate stage, so both figures can be quoted.
Publishing (JSON and MQTT) is not in this part.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from detect.batch import SignalBatcher
from detect.classify import BeatBatcher, BeatClassifier
from detect.config import DetectorConfig
from detect.pipeline import DevicePipeline
from detect.types import Chunk
from ingest.device import DeviceMonitor, StateThrottle
from ingest.payload import decode_samples, encode_binary
from ingest.reassembly import Late

from .allocator import fix_mmap_threshold
from .service import STATE_INTERVAL_S, tune_gc
from .simulate import fleet_scenarios
from .synth import Scenario, synthesize

FS = 250.0
T0 = 1_700_000_000.0          # device time of every stream's first sample
STAGES = ("decode", "monitor", "label", "service_extras")
PIPELINE_STAGES = STAGES[:3]  # the path the brief names; service_extras is quoted apart


@dataclass(frozen=True, slots=True)
class Fleet:
    """Pre-encoded 1 s binary payloads: ``payloads[device][second]``."""

    ids: tuple[str, ...]
    kinds: tuple[str, ...]                  # scenario kind per device ("normal", "af", ...)
    payloads: tuple[tuple[bytes, ...], ...]
    seconds: int

    @property
    def mix(self) -> dict[str, int]:
        """How many devices of each kind."""
        out: dict[str, int] = {}
        for k in self.kinds:
            out[k] = out.get(k, 0) + 1
        return dict(sorted(out.items()))


def scenario_kind(s: Scenario) -> str:
    return "+".join(e.kind for e in s.events) or "normal"


def make_fleet(n: int, seconds: int, seed: int = 0) -> Fleet:
    """Render ``n`` devices of the fleet mix for ``seconds`` s and encode every 1 s chunk.

    Each device's float signal is dropped once encoded, so what stays in
    memory is the bytes a broker would deliver (about 0.5 kB per chunk).
    """
    scenarios = fleet_scenarios(n, seed)
    n_chunk = int(FS)
    payloads = []
    for s in scenarios:
        x = synthesize(s, FS, float(seconds)).signal
        payloads.append(tuple(
            encode_binary(Chunk(s.name, k, T0 + k, FS, x[k * n_chunk:(k + 1) * n_chunk]))
            for k in range(seconds)))
    return Fleet(tuple(s.name for s in scenarios), tuple(scenario_kind(s) for s in scenarios),
                 tuple(payloads), seconds)


def decoded_signal(fleet: Fleet, device: int) -> np.ndarray:
    """One device's whole signal exactly as the service sees it (decoded payloads, mV)."""
    dev = fleet.ids[device]
    return np.concatenate([decode_samples(dev, p).samples for p in fleet.payloads[device]])


def rss_bytes() -> int:
    """Resident set size of this process (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return int(psutil.Process().memory_info().rss)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError("Cannot read the resident set size (no psutil, no /proc/self/status).")


def settled_rss() -> int:
    """RSS after a full garbage collection, so cycles awaiting collection do not count."""
    gc.collect()
    return rss_bytes()


def load_classifier() -> BeatClassifier:
    """The shipped model, run once so onnxruntime's lazy allocations precede any baseline."""
    from detect.beat_features import CHANNELS, RR_FEATURES, WINDOW
    clf = BeatClassifier()
    rng = np.random.default_rng(0)
    clf.predict(rng.standard_normal((64, CHANNELS, WINDOW)),
                rng.uniform(0.4, 1.6, (64, len(RR_FEATURES))))
    return clf


@dataclass(slots=True)
class StageClock:
    """CPU and wall seconds per stage, accumulated over ticks."""

    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    wall: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def timed(self, stage: str, work: Callable[[], None]) -> None:
        c, w = time.process_time(), time.perf_counter()
        work()
        self.cpu[stage] += time.process_time() - c
        self.wall[stage] += time.perf_counter() - w


@dataclass(slots=True)
class Counts:
    chunks: int = 0
    beats: int = 0
    labelled: int = 0
    transitions: int = 0
    late: int = 0                 # chunks the reassembler refused (none expected)


class FleetRunner:
    """One DeviceMonitor per device and one BeatBatcher, driven tick by tick."""

    def __init__(self, ids: Sequence[str], classifier: BeatClassifier | None,
                 config: DetectorConfig | None = None, *, batched: bool = True) -> None:
        self.config = config or DetectorConfig()
        fix_mmap_threshold()                 # as Service does (ecgwatch/allocator.py)
        batcher = BeatBatcher(classifier) if classifier is not None else None
        self.batcher = batcher
        # Filters batched across devices, as in the service (batched=False:
        # every chunk filtered on its own, for comparison).
        signals = SignalBatcher() if batched else None
        self.signals = signals
        # The same factory as Service._monitor: every pipeline shares the batchers.
        self.monitors = {d: DeviceMonitor(d, self.config, pipeline_factory=(
            lambda dev, c: DevicePipeline(dev, c, batcher, signals))) for d in ids}
        self.clock = StageClock()
        self.counts = Counts()
        self.states = StateThrottle(STATE_INTERVAL_S)   # as the service, at its default
        tune_gc()                 # as Service.run: the collector set for many devices

    def tick(self, payloads: Sequence[tuple[str, bytes]], now: float) -> None:
        """One processing tick: every device's payload of this second, then the model."""
        chunks: list[Chunk] = []
        self.clock.timed("decode", lambda: chunks.extend(
            decode_samples(d, p) for d, p in payloads))
        self.clock.timed("monitor", lambda: self._push(chunks, now))
        self.clock.timed("label", self._label)
        self.clock.timed("service_extras", lambda: self._extras(now))

    def _push(self, chunks: list[Chunk], now: float) -> None:
        c = self.counts
        for chunk in chunks:
            r = self.monitors[chunk.device_id].push(chunk, now)
            c.chunks += r.chunks
            c.beats += len(r.beats)
            c.labelled += len(r.classified)
            c.transitions += len(r.transitions)
            c.late += sum(1 for e in r.stream_events if isinstance(e, Late))
        if self.signals is None:
            return
        # As Service._resume_signals: one filter pass for the tick, then each device's chain.
        for block in self.signals.run():
            r = self.monitors[block.pipeline.device_id].resume(block)
            c.beats += len(r.beats)
            c.labelled += len(r.classified)
            c.transitions += len(r.transitions)

    def _label(self) -> None:
        """As Service._label_beats: one model call, labels handed back per device."""
        if self.batcher is None:
            return
        for pipeline, pairs in self.batcher.run():
            r = self.monitors[pipeline.device_id].apply_labels(pairs)
            self.counts.labelled += len(r.classified)
            self.counts.transitions += len(r.transitions)

    def _extras(self, now: float) -> None:
        """What Service._apply and _periodic add per chunk: the state when it is due
        (the service's StateThrottle), the timer."""
        due = self.states.due
        for m in self.monitors.values():
            due(m, now)
            m.tick(now)

    def run(self, fleet: Fleet, seconds: range | None = None,
            after_tick: Callable[[int], None] | None = None) -> None:
        """Feed ticks ``seconds`` (default all) of ``fleet``; ``after_tick(k)`` between them."""
        for k in seconds if seconds is not None else range(fleet.seconds):
            # Arrival just after the chunk's last sample, on a monotonic wall clock.
            self.tick([(d, p[k]) for d, p in zip(fleet.ids, fleet.payloads)], float(k + 1))
            if after_tick is not None:
                after_tick(k)

    @property
    def model_calls(self) -> int:
        return self.batcher.calls if self.batcher is not None else 0


__all__ = ["FS", "PIPELINE_STAGES", "STAGES", "Counts", "Fleet", "FleetRunner", "StageClock",
           "decoded_signal", "load_classifier", "make_fleet", "rss_bytes", "scenario_kind",
           "settled_rss"]
