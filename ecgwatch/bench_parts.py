"""The measurements of ``ecgwatch bench``: throughput and memory per fleet size, a long
run for memory flatness, neurokit2 on the same signals, and the two timed in turns.

Each function is self-contained (it builds its own fleet from the seed), so
``ecgwatch.bench`` can run it in a fresh process: resident memory then
starts from the same baseline for every fleet size, and no size inherits the
heap of the one before it. All results are frozen dataclasses of plain
numbers, cheap to pickle back to the parent.
"""

from __future__ import annotations

import gc
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .bench_fleet import (FS, PIPELINE_STAGES, FleetRunner, decoded_signal, load_classifier,
                          make_fleet, settled_rss)

KB = 1024.0
MB = 1024.0 * 1024.0
# The interpreter's own collector thresholds, read before FleetRunner tunes them.
_DEFAULT_GC = gc.get_threshold()


@dataclass(frozen=True, slots=True)
class Throughput:
    """One fleet size: ``devices`` x ``seconds`` of ECG through the service's per-tick path."""

    devices: int
    seconds: int
    mix: dict[str, int]
    chunks: int
    beats: int
    labelled: int
    transitions: int
    model_calls: int
    late: int
    stage_cpu_s: dict[str, float]
    stage_wall_s: dict[str, float]
    rss_baseline: int           # fleet payloads and model loaded, no monitors yet
    rss_monitors: int           # N monitors created, nothing streamed
    rss_end: int                # after streaming every second

    @property
    def device_seconds(self) -> int:
        return self.devices * self.seconds

    @property
    def cpu_s(self) -> float:
        """CPU seconds of the pipeline path (decode, monitors, beat model)."""
        return sum(self.stage_cpu_s[s] for s in PIPELINE_STAGES)

    @property
    def wall_s(self) -> float:
        return sum(self.stage_wall_s[s] for s in PIPELINE_STAGES)

    @property
    def rate(self) -> float:
        """Device-seconds of ECG per CPU-second (the issue's headline figure)."""
        return self.device_seconds / self.cpu_s

    @property
    def rate_with_extras(self) -> float:
        """The same, with the per-chunk state() and tick() the service adds."""
        return self.device_seconds / sum(self.stage_cpu_s.values())

    @property
    def kb_per_device_idle(self) -> float:
        return (self.rss_monitors - self.rss_baseline) / KB / self.devices

    @property
    def kb_per_device(self) -> float:
        return (self.rss_end - self.rss_baseline) / KB / self.devices


def run_throughput(devices: int, seconds: int, seed: int = 0) -> Throughput:
    """Build the fleet, load the model, then time every tick; RSS before and after."""
    fleet = make_fleet(devices, seconds, seed)
    clf = load_classifier()
    rss0 = settled_rss()
    runner = FleetRunner(fleet.ids, clf)
    rss1 = settled_rss()
    runner.run(fleet)
    rss2 = settled_rss()
    c = runner.counts
    return Throughput(devices, seconds, fleet.mix, c.chunks, c.beats, c.labelled, c.transitions,
                      runner.model_calls, c.late, dict(runner.clock.cpu),
                      dict(runner.clock.wall), rss0, rss1, rss2)


@dataclass(frozen=True, slots=True)
class LongRun:
    """RSS sampled every ``every`` simulated seconds while ``devices`` stream for ``seconds``."""

    devices: int
    seconds: int
    every: int
    rss_baseline: int
    at_s: tuple[int, ...]            # simulated seconds at each sample
    rss: tuple[int, ...]
    interval_cpu_s: tuple[float, ...]  # pipeline CPU seconds spent in each interval
    beats: int
    transitions: int

    @property
    def kb_per_device(self) -> tuple[float, ...]:
        return tuple((r - self.rss_baseline) / KB / self.devices for r in self.rss)

    @property
    def growth_mb(self) -> float:
        """RSS change from the first sample to the last (the first interval fills the buffers)."""
        return (self.rss[-1] - self.rss[0]) / MB if self.rss else 0.0

    @property
    def growth_kb_per_device(self) -> float:
        return self.growth_mb * MB / KB / self.devices

    @property
    def slope_mb_per_min(self) -> float:
        """Least-squares RSS trend over the samples after the first, MB per simulated minute."""
        if len(self.rss) < 3:
            return 0.0
        t = np.asarray(self.at_s[1:], float) / 60.0
        return float(np.polyfit(t, np.asarray(self.rss[1:], float) / MB, 1)[0])


def run_long(devices: int, seconds: int, every: int, seed: int = 0) -> LongRun:
    """Stream the fleet for ``seconds`` simulated seconds, sampling RSS every ``every``."""
    fleet = make_fleet(devices, seconds, seed)
    clf = load_classifier()
    rss0 = settled_rss()
    runner = FleetRunner(fleet.ids, clf)
    at: list[int] = []
    rss: list[int] = []
    cpu: list[float] = []

    def sample(k: int) -> None:
        if (k + 1) % every == 0:
            at.append(k + 1)
            rss.append(settled_rss())
            spent = sum(runner.clock.cpu[s] for s in PIPELINE_STAGES)
            cpu.append(spent - sum(cpu))

    runner.run(fleet, after_tick=sample)
    return LongRun(devices, seconds, every, rss0, tuple(at), tuple(rss), tuple(cpu),
                   runner.counts.beats, runner.counts.transitions)


@dataclass(frozen=True, slots=True)
class NeurokitMethod:
    name: str
    device_seconds: float
    cpu_s: float
    wall_s: float
    failures: int

    @property
    def rate(self) -> float:
        return self.device_seconds / self.cpu_s if self.cpu_s > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Neurokit:
    """neurokit2 on the first ``devices`` signals of the same fleet, whole signals at once."""

    devices: int
    seconds: int
    version: str
    methods: tuple[NeurokitMethod, ...] = field(default=())


def run_neurokit(devices: int, seconds: int, seed: int = 0) -> Neurokit:
    """``nk.ecg_process`` and ``nk.ecg_clean`` + ``nk.ecg_peaks`` on the decoded signals.

    The signals are the ones ecgwatch decodes from the payloads (same
    quantisation). One untimed warm-up call each, so import-time and first-call
    caches are not charged to neurokit2.
    """
    import neurokit2 as nk

    signals = _neurokit_signals(devices, seconds, seed)

    def clean_peaks(x: np.ndarray) -> None:
        nk.ecg_peaks(nk.ecg_clean(x, sampling_rate=int(FS)), sampling_rate=int(FS))

    methods = tuple(_time_method(name, fn, signals)
                    for name, fn in (("ecg_process", _ecg_process),
                                     ("ecg_clean+ecg_peaks", clean_peaks)))
    return Neurokit(devices, seconds, nk.__version__, methods)


def _neurokit_signals(devices: int, seconds: int, seed: int) -> list[np.ndarray]:
    """The first ``devices`` signals of the seed's fleet, as ecgwatch decodes them."""
    fleet = make_fleet(devices, seconds, seed)
    return [decoded_signal(fleet, i) for i in range(devices)]


def _ecg_process(x: np.ndarray) -> None:
    import neurokit2 as nk

    nk.ecg_process(x, sampling_rate=int(FS))


def _time_method(name: str, fn, signals: list[np.ndarray]) -> NeurokitMethod:
    failures = 0
    with warnings.catch_warnings():
        # neurokit2 warns on short or flat stretches (lead-off devices); the
        # counts below say whether a call failed, the warnings add nothing.
        warnings.simplefilter("ignore")
        try:
            fn(signals[0])
        except Exception:       # noqa: BLE001 - the timed loop below counts this failure
            pass
        c, w = time.process_time(), time.perf_counter()
        for x in signals:
            try:
                fn(x)
            except Exception:
                failures += 1
        cpu, wall = time.process_time() - c, time.perf_counter() - w
    return NeurokitMethod(name, sum(x.size for x in signals) / FS, cpu, wall, failures)


@dataclass(frozen=True, slots=True)
class Paired:
    """ecgwatch and ``ecg_process`` timed in turns in one process (:func:`run_paired`)."""

    devices: int                 # ecgwatch's fleet
    seconds: int
    nk_devices: int              # signals given to ecg_process, ``seconds`` long each
    ecgwatch_cpu_s: float
    nk_cpu_s: float
    nk_failures: int

    @property
    def ecgwatch_rate(self) -> float:
        return self.devices * self.seconds / self.ecgwatch_cpu_s

    @property
    def nk_rate(self) -> float:
        return self.nk_devices * self.seconds / self.nk_cpu_s if self.nk_cpu_s > 0 else 0.0

    @property
    def ratio(self) -> float:
        """ecgwatch's device-s per CPU-s over ``ecg_process``'s, from the same minutes."""
        return self.ecgwatch_rate / self.nk_rate if self.nk_rate else 0.0


def run_paired(devices: int, seconds: int, nk_devices: int, seed: int = 0) -> Paired:
    """The fleet tick by tick, with ``ecg_process`` calls on the neurokit signals between
    the ticks (spread evenly, each call whole), each side's CPU time summed apart.

    Why: this shared machine's speed drifts by 10-25 % within minutes, and the
    two sides of the ratio timed minutes apart gave 28-40x for one commit. In
    turns, both see the same minutes and the drift cancels. Each ``ecg_process``
    call runs as if alone in its process: the collector at its default
    thresholds and ecgwatch's objects frozen out of its reach (``gc.freeze``),
    so a collection during the call does not walk the fleet's state.
    """
    fleet = make_fleet(devices, seconds, seed)
    signals = _neurokit_signals(nk_devices, seconds, seed)
    runner = FleetRunner(fleet.ids, load_classifier())
    spent = [0.0]
    failures = [0]

    def alone(fn: Callable[[], None]) -> None:
        tuned = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(*_DEFAULT_GC)
        c = time.process_time()
        try:
            fn()
        except Exception:        # noqa: BLE001 - counted, as in run_neurokit
            failures[0] += 1
        finally:
            spent[0] += time.process_time() - c
            gc.set_threshold(*tuned)
            gc.unfreeze()

    done = 0

    def between(k: int) -> None:
        nonlocal done
        due = (k + 1) * nk_devices // seconds
        while done < due:
            alone(lambda x=signals[done]: _ecg_process(x))
            done += 1

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # as run_neurokit
        if signals:
            alone(lambda: _ecg_process(signals[0]))  # warm-up, not counted
        spent[0], failures[0] = 0.0, 0
        runner.run(fleet, after_tick=between)
    return Paired(devices, seconds, nk_devices,
                  sum(runner.clock.cpu[s] for s in PIPELINE_STAGES), spent[0], failures[0])


__all__ = ["LongRun", "Neurokit", "NeurokitMethod", "Paired", "Throughput", "run_long",
           "run_neurokit", "run_paired", "run_throughput"]
