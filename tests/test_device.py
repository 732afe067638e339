"""DeviceMonitor wiring: reassembler events reach the pipeline in the right order.

The pipeline here is a recording fake on purpose: this is a unit test of the
wiring; the real pipeline has its own tests.
"""

from __future__ import annotations

import numpy as np
import pytest

from detect.config import DetectorConfig
from detect.pipeline import DevicePipeline, PipelineResult
from detect.types import (Action, AlarmTransition, Beat, Chunk, Condition, DeviceState, Evidence,
                          Quality)
from ingest.device import DeviceMonitor, MonitorResult, StateThrottle
from ingest.reassembly import Duplicate, Gap, GapReason, Late

DEV = "patch-07"
CFG = DetectorConfig()


def chunk(seq: int, t0: float | None = None) -> Chunk:
    return Chunk(DEV, seq, seq * 0.5 if t0 is None else t0, 250.0, np.zeros(125))


class RecordingPipeline:
    """Records every call; one beat per chunk, one signal-gap alarm per gap."""

    def __init__(self, device_id: str, config: DetectorConfig) -> None:
        self.device_id, self.config = device_id, config
        self.calls: list[tuple] = []

    def push(self, c: Chunk) -> PipelineResult:
        self.calls.append(("push", c.seq))
        return PipelineResult(beats=(Beat(self.device_id, c.seq * 125, c.t0),))

    def gap(self, start: float, end: float, detail: str = "") -> PipelineResult:
        self.calls.append(("gap", start, end, detail))
        t = AlarmTransition(self.device_id, Condition.SIGNAL_GAP, Action.RAISED, start,
                            max(start, end), 0, Evidence(start, max(start, end), 0, 0),
                            "fake")
        return PipelineResult(transitions=(t,))

    def flush(self) -> PipelineResult:
        self.calls.append(("flush",))
        return PipelineResult()

    def state(self) -> DeviceState:
        return DeviceState(self.device_id, 42.0, 61.0, "sinus", Quality.GOOD)

    def state_key(self) -> tuple:
        return ("sinus", Quality.GOOD, ())


@pytest.fixture
def monitor() -> DeviceMonitor:
    return DeviceMonitor(DEV, CFG, pipeline_factory=RecordingPipeline)


def calls(m: DeviceMonitor) -> list[tuple]:
    return m.pipeline.calls  # type: ignore[attr-defined]


def test_factory_gets_the_device_and_config(monitor):
    assert monitor.pipeline.device_id == DEV and monitor.pipeline.config is CFG


def test_chunks_reach_the_pipeline_in_seq_order_and_results_are_collected(monitor):
    r0 = monitor.push(chunk(0), 0.0)
    assert r0.chunks == 1 and [b.index for b in r0.beats] == [0]
    assert monitor.push(chunk(2), 0.1) == MonitorResult()     # held: nothing to do yet
    r = monitor.push(chunk(1), 0.2)
    assert calls(monitor) == [("push", 0), ("push", 1), ("push", 2)]
    assert r.chunks == 2 and [b.index for b in r.beats] == [125, 250]
    assert r.stream_events == () and r.transitions == ()


def test_duplicates_and_late_chunks_are_reported_not_fed(monitor):
    monitor.push(chunk(0), 0.0)
    r = monitor.push(chunk(0), 0.1)
    assert r.stream_events == (Duplicate(DEV, 0),) and r.chunks == 0
    monitor.push(chunk(2), 0.1)
    monitor.tick(5.0)                                          # gives up on seq 1
    r = monitor.push(chunk(1), 5.1)
    assert r.stream_events == (Late(DEV, 1, 2),)
    assert [c for c in calls(monitor) if c[0] == "push"] == [("push", 0), ("push", 2)]


def test_a_gap_is_passed_on_before_the_chunk_after_it(monitor):
    monitor.push(chunk(0), 0.0)
    monitor.push(chunk(2), 0.0)
    r = monitor.tick(CFG.reorder_timeout_s)
    (gap,) = r.stream_events
    assert isinstance(gap, Gap) and gap.reason is GapReason.MISSING_SEQ
    assert calls(monitor)[1:] == [("gap", 0.5, 1.0, gap.detail), ("push", 2)]
    assert [t.condition for t in r.transitions] == [Condition.SIGNAL_GAP]
    assert r.chunks == 1


def test_time_jump_gap_spans_device_time_between_the_chunks(monitor):
    monitor.push(chunk(0), 0.0)
    monitor.push(chunk(1, t0=30.0), 0.5)
    assert calls(monitor)[1][:3] == ("gap", 0.5, 30.0)


def test_no_data_gap_runs_from_the_last_chunk_end_for_the_silent_wall_time(monitor):
    monitor.push(chunk(0), 100.0)
    monitor.push(chunk(1), 100.5)
    assert monitor.tick(110.0) == MonitorResult()
    r = monitor.tick(112.5)                                     # 12 s of silence
    assert calls(monitor)[-1][:3] == ("gap", 1.0, 13.0)
    assert r.stream_events[0].reason is GapReason.NO_DATA
    assert monitor.tick(120.0) == MonitorResult()               # reported once


def test_flush_releases_held_chunks_then_flushes_the_pipeline(monitor):
    monitor.push(chunk(0), 0.0)
    monitor.push(chunk(3), 0.0)
    r = monitor.flush()
    assert [c[0] for c in calls(monitor)] == ["push", "gap", "push", "flush"]
    assert r.chunks == 1 and len(r.stream_events) == 1


def test_state_comes_from_the_pipeline(monitor):
    assert monitor.state() == DeviceState(DEV, 42.0, 61.0, "sinus", Quality.GOOD)


def test_default_pipeline_is_the_detector():
    m = DeviceMonitor(DEV)
    assert isinstance(m.pipeline, DevicePipeline)
    m.push(chunk(0), 0.0)
    assert m.state().device_id == DEV


def test_monitor_result_only_carries_stream_notices():
    with pytest.raises(ValueError):
        MonitorResult(stream_events=("gap",))  # type: ignore[arg-type]


class _KeyedPipeline(RecordingPipeline):
    """A pipeline whose state key the test sets."""

    key: tuple = ("sinus", Quality.GOOD, ())

    def state_key(self) -> tuple:
        return self.key


def test_state_throttle_publishes_on_change_and_every_interval_on_a_fake_clock():
    m = DeviceMonitor(DEV, CFG, pipeline_factory=_KeyedPipeline)
    throttle = StateThrottle(10.0)
    assert throttle.due(m, 100.0) == m.state()               # first: always
    assert throttle.due(m, 101.0) is None                     # unchanged, within the interval
    assert throttle.due(m, 109.9) is None
    assert throttle.due(m, 110.0) is not None                 # the interval is up
    m.pipeline.key = ("atrial_fibrillation", Quality.GOOD, ())
    assert throttle.due(m, 110.5) is not None                 # the rhythm changed
    assert throttle.due(m, 111.0) is None
    m.pipeline.key = ("atrial_fibrillation", Quality.GOOD, ("ep-1",))
    assert throttle.due(m, 111.5) is not None                 # an alarm opened
    other = DeviceMonitor("patch-08", CFG, pipeline_factory=_KeyedPipeline)
    assert throttle.due(other, 111.6) is not None             # devices are apart
    with pytest.raises(ValueError, match="positive"):
        StateThrottle(0.0)


@pytest.mark.parametrize("kind", ["af", "noise", "asystole"])
def test_state_key_is_what_the_state_says_chunk_by_chunk(kind):
    # The throttle compares state_key() instead of building the state: it must be
    # the state's (rhythm, quality, active alarms' episode ids) at every moment.
    from ecgwatch.simulate import NAMED
    from ecgwatch.synth import Scenario, synthesize
    fs = 250.0
    x = synthesize(Scenario("dev-key", 70.0, NAMED[kind], seed=3), fs, 70.0).signal
    p = DevicePipeline("dev-key", CFG)
    keys = []
    for k in range(70):
        p.push(Chunk("dev-key", k, float(k), fs, x[k * 250:(k + 1) * 250]))
        s = p.state()
        assert p.state_key() == (s.rhythm, s.quality,
                                 tuple(a.episode_id for a in s.active_alarms))
        keys.append(p.state_key())
    assert len(set(keys)) > 1 and any(k[2] for k in keys)     # it changed, alarms included
