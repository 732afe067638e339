"""Where the time of ``ecgwatch bench`` goes: cProfile over the same per-tick path.

The fleet runs twice on fresh monitors, once plain and once under cProfile;
the ratio of the two CPU times is cProfile's overhead, and the per-chunk and
per-beat figures are scaled back by it (an estimate: the profiler charges
Python-heavy stages more than numpy-heavy ones, so read the shares as
approximate). Stages are named by their function objects, so the figures
follow the code if it moves.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from detect.alarms import AlarmManager
from detect.batch import SignalBatcher
from detect.beat_features import BeatFeaturizer, featurize
from detect.classify import BeatBatcher, BeatClassifier
from detect.conditions import ConditionTracker
from detect.ectopy import EctopyTracker
from detect.filters import push_many
from detect.segment import SignalSegment
from detect.quality import SignalQuality, assess_many
from detect.resample import Resampler
from detect.rhythms import AfTracker
from detect.rpeaks import RPeakDetector, scan_many
from detect.vf import VfDetector, vf_features_many
from detect.wide_complex import WideComplexTracker
from ingest.device import DeviceMonitor
from ingest.payload import decode_samples
from ingest.reassembly import StreamReassembler

from .bench_fleet import FleetRunner, load_classifier, make_fleet

# (label, function, depth): depth 1 is part of the stage above it at depth 0, and so on.
STAGE_FUNCTIONS: tuple[tuple[str, Callable, int], ...] = (
    ("decode_samples", decode_samples, 0),
    ("DeviceMonitor.push", DeviceMonitor.push, 0),
    ("StreamReassembler.push", StreamReassembler.push, 1),
    ("Resampler.push (250 Hz: a copy)", Resampler.push, 1),
    ("SignalBatcher.run (filters of all devices, one pass)", SignalBatcher.run, 0),
    ("push_many (sosfilt along the batch axis)", push_many, 1),
    ("scan_many (R-peak candidates of all devices)", scan_many, 1),
    ("vf_features_many (VF windows of all devices)", vf_features_many, 1),
    ("assess_many (quality windows of all devices)", assess_many, 1),
    ("DeviceMonitor.resume", DeviceMonitor.resume, 0),
    ("signal chain (SignalSegment.finish)", SignalSegment.finish, 1),
    ("VfDetector.push", VfDetector.push, 2),
    ("SignalQuality.push", SignalQuality.push, 2),
    ("RPeakDetector.push", RPeakDetector.push, 2),
    ("BeatFeaturizer.push_pending (RR context)", BeatFeaturizer.push_pending, 2),
    ("ConditionTracker.push", ConditionTracker.push, 1),
    ("AfTracker.push", AfTracker.push, 1),
    ("WideComplexTracker.push", WideComplexTracker.push, 1),
    ("AlarmManager.push (5 per device)", AlarmManager.push, 1),
    ("BeatBatcher.run (one per tick)", BeatBatcher.run, 0),
    ("featurize (beat windows and templates of all devices)", featurize, 1),
    ("BeatClassifier.predict (ONNX)", BeatClassifier.predict, 1),
    ("DeviceMonitor.apply_labels", DeviceMonitor.apply_labels, 0),
    ("EctopyTracker.push", EctopyTracker.push, 1),
    ("DeviceMonitor.state (service extra)", DeviceMonitor.state, 0),
    ("DeviceMonitor.tick (service extra)", DeviceMonitor.tick, 0),
)


@dataclass(frozen=True, slots=True)
class StageCost:
    label: str
    depth: int
    calls: int
    share: float            # of the profiled total (pipeline + service extras)
    us_per_chunk: float     # scaled back by the profiler overhead
    us_per_beat: float


@dataclass(frozen=True, slots=True)
class Profile:
    devices: int
    seconds: int
    chunks: int
    beats: int
    plain_cpu_s: float
    profiled_cpu_s: float
    stages: tuple[StageCost, ...]
    modules: tuple[tuple[str, float], ...]    # (file or package, share of own time)

    @property
    def overhead(self) -> float:
        return self.profiled_cpu_s / self.plain_cpu_s


def run_profile(devices: int, seconds: int, out_dir: str, seed: int = 0) -> Profile:
    """Plain run, profiled run; writes ``profile.txt`` (pstats listings) to ``out_dir``."""
    fleet = make_fleet(devices, seconds, seed)
    clf = load_classifier()
    plain_runner = FleetRunner(fleet.ids, clf)
    plain_runner.run(fleet)
    plain = sum(plain_runner.clock.cpu.values())
    runner = FleetRunner(fleet.ids, clf)
    prof = cProfile.Profile()
    c = time.process_time()
    prof.enable()
    runner.run(fleet)
    prof.disable()
    profiled = time.process_time() - c
    stats = pstats.Stats(prof)
    _write_listing(stats, Path(out_dir) / "profile.txt")
    counts = runner.counts
    return Profile(devices, seconds, counts.chunks, counts.beats, plain, profiled,
                   _stages(stats, profiled, plain, counts.chunks, counts.beats),
                   _modules(stats))


def _key(fn: Callable) -> tuple[str, int, str]:
    code = fn.__code__
    return code.co_filename, code.co_firstlineno, code.co_name


def _stages(stats: pstats.Stats, profiled: float, plain: float, chunks: int,
            beats: int) -> tuple[StageCost, ...]:
    raw = stats.stats    # type: ignore[attr-defined]
    total = stats.total_tt or profiled        # type: ignore[attr-defined]
    scale = plain / profiled if profiled > 0 else 1.0
    out = []
    for label, fn, depth in STAGE_FUNCTIONS:
        _, calls, _, cum, _ = raw.get(_key(fn), (0, 0, 0.0, 0.0, {}))
        us = cum * scale * 1e6
        out.append(StageCost(label, depth, calls, cum / total, us / max(chunks, 1),
                             us / max(beats, 1)))
    return tuple(out)


def _module_of(filename: str) -> str:
    """A repository file as ``detect/rpeaks.py``; a library by package; C calls apart."""
    if filename == "~" or filename.startswith("<"):
        return "C functions (numpy, scipy, onnxruntime, builtins)"
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1] + " (Python)"
    for root in ("detect", "ingest", "ecgwatch", "models"):
        if root in parts:
            i = len(parts) - 1 - parts[::-1].index(root)
            return "/".join(parts[i:])
    return "python stdlib"


def _modules(stats: pstats.Stats, top: int = 15) -> tuple[tuple[str, float], ...]:
    own: dict[str, float] = {}
    for (filename, _, _), (_, _, tt, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        m = _module_of(filename)
        own[m] = own.get(m, 0.0) + tt
    total = sum(own.values()) or 1.0
    ranked = sorted(own.items(), key=lambda kv: -kv[1])[:top]
    return tuple((m, t / total) for m, t in ranked)


def _write_listing(stats: pstats.Stats, path: Path) -> None:
    import io
    buf = io.StringIO()
    stats.stream = buf        # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(40)
    stats.sort_stats("cumulative").print_stats(40)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue())


__all__ = ["Profile", "StageCost", "run_profile"]
