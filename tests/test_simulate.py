"""The simulator: chunking, record replay, fleet mix, and publishing over a real broker."""

from __future__ import annotations

import threading
import uuid

import numpy as np
import pytest
from ecg_fixtures import data_dir

from ecgwatch.broker import start_test_broker
from ecgwatch.simulate import (
    NAMED,
    ChunkStream,
    WfdbSource,
    demo_scenarios,
    fleet_scenarios,
    run_fleet,
)
from ecgwatch.synth import Scenario, SyntheticSource, synthesize
from ingest.payload import decode_samples

MITDB = data_dir() / "mitdb"


def test_chunk_stream_is_contiguous_in_seq_and_device_time():
    src = SyntheticSource(Scenario("dev-a", 70.0, (), seed=1), 360.0, 10.0)
    cs = ChunkStream(src, 0.7, t0=1000.0)
    chunks = []
    while (c := cs.next()) is not None:
        chunks.append(c)
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    for a, b in zip(chunks, chunks[1:]):
        assert b.t0 == pytest.approx(a.t_end, abs=1e-9)
    whole = synthesize(Scenario("dev-a", 70.0, (), seed=1), 360.0, 10.0).signal
    got = np.concatenate([c.samples for c in chunks])
    assert np.array_equal(got, whole[:got.size])
    assert whole.size - got.size < 0.1 * 360       # only a tail under 0.1 s is dropped


def test_shortest_chunks_at_a_fractional_rate_still_last_a_tenth_of_a_second():
    # round(0.1 * 333.3) = 33 samples would be 0.099 s, which Chunk refuses.
    src = SyntheticSource(Scenario("dev-a", 70.0, (), seed=2), 333.3, 2.0)
    cs = ChunkStream(src, 0.1, t0=0.0)
    chunks = []
    while (c := cs.next()) is not None:
        chunks.append(c)
    assert chunks and all(c.duration >= 0.1 for c in chunks)
    assert sum(c.samples.size for c in chunks) > round(2.0 * 333.3) - 34


def test_a_stream_stops_at_its_duration_even_if_the_source_goes_on():
    src = SyntheticSource(Scenario("dev-a", 70.0, (), seed=3), 250.0)      # endless
    cs = ChunkStream(src, 0.4, t0=0.0, duration_s=3.0)
    chunks = []
    while (c := cs.next()) is not None:
        chunks.append(c)
    assert [c.samples.size for c in chunks] == [100] * 7 + [50]
    assert chunks[-1].t_end == pytest.approx(3.0)


def test_chunk_length_outside_the_contract_is_refused():
    src = SyntheticSource(Scenario("dev-a"), 250.0, 5.0)
    with pytest.raises(Exception, match="0.1..10"):
        ChunkStream(src, 12.0, t0=0.0)


def test_fleet_mix_is_deterministic_and_named_as_devices():
    a, b = fleet_scenarios(50, seed=3), fleet_scenarios(50, seed=3)
    assert a == b and len({s.name for s in a}) == 50
    assert a[0].events == ()                                  # device 1 is always normal
    kinds = {s.events for s in a}
    assert len(kinds) >= 4                                     # a real mix, not one scenario
    assert fleet_scenarios(50, seed=4) != a


def test_demo_fleet_scripts_the_alarms_the_demo_shows():
    kinds = {e.kind for s in demo_scenarios()[:6] for e in s.events}
    assert {"asystole", "bradycardia", "tachycardia", "pause", "lead_off", "noise"} <= kinds
    assert set(NAMED) >= {"normal", "asystole", "brady", "tachy", "af", "lead_off"}


@pytest.mark.realdata
@pytest.mark.skipif(not MITDB.is_dir(), reason=f"MIT-BIH data not found at {MITDB}")
def test_wfdb_source_replays_a_record_in_millivolts():
    src = WfdbSource(MITDB / "100")
    assert src.fs == 360.0 and src.name == "rec-100"
    x = src.read(3600)
    assert x.size == 3600 and 0.3 < np.ptp(x) < 5.0           # mV, not ADC counts
    assert np.array_equal(src.read(10), WfdbSource(MITDB / "100")._x[3600:3610])


@pytest.mark.broker
@pytest.mark.parametrize("fmt", ["json", "binary"])
def test_run_fleet_delivers_every_chunk_exactly_once(broker, mqtt_collector, fmt):
    prefix = f"f{uuid.uuid4().hex[:6]}"
    fleet = fleet_scenarios(5, seed=1, prefix=prefix)
    col = mqtt_collector(broker.url, [f"ecg/v1/{s.name}/samples" for s in fleet])
    stats = run_fleet(broker.url, fleet, duration=6.0, speed=0, fmt=fmt, chunk_s=0.5, t0=500.0)
    assert stats.devices == 5 and stats.chunks == 5 * 12
    msgs = col.wait_for(lambda ms: len(ms) >= stats.chunks)
    assert len(msgs) == stats.chunks
    seen = set()
    for m in msgs:
        dev = m.topic.split("/")[2]
        c = decode_samples(dev, m.payload)
        seen.add((dev, c.seq))
        assert c.t0 == pytest.approx(500.0 + 0.5 * c.seq, abs=1e-6)
    assert len(seen) == stats.chunks


@pytest.mark.broker
@pytest.mark.realdata
@pytest.mark.skipif(not MITDB.is_dir(), reason=f"MIT-BIH data not found at {MITDB}")
def test_run_fleet_replays_only_duration_seconds_of_a_record(broker, mqtt_collector):
    src = WfdbSource(MITDB / "100", name=f"rec-{uuid.uuid4().hex[:6]}")
    col = mqtt_collector(broker.url, [f"ecg/v1/{src.name}/samples"])
    stats = run_fleet(broker.url, [src], duration=3.0, speed=0, chunk_s=1.0, t0=0.0)
    assert stats.chunks == 3                      # not the record's 30 minutes
    msgs = col.wait_for(lambda ms: len(ms) >= 3)
    assert sorted(decode_samples(src.name, m.payload).seq for m in msgs) == [0, 1, 2]


class _HeldSource:
    """A synthetic device that stops after ``hold_after`` reads until ``release`` is set."""

    def __init__(self, name: str, hold_after: int, release: threading.Event) -> None:
        self._src = SyntheticSource(Scenario(name, 70.0, (), seed=4), 250.0)
        self.name, self.fs = name, self._src.fs
        self._reads, self._hold_after, self._release = 0, hold_after, release
        self.held = threading.Event()

    def read(self, n_samples: int) -> np.ndarray:
        self._reads += 1
        if self._reads > self._hold_after:
            self.held.set()
            self._release.wait(30.0)
        return self._src.read(n_samples)


@pytest.mark.broker
def test_a_broker_that_goes_away_is_counted_not_raised():
    own = start_test_broker()              # this test stops it half-way
    broker_gone = threading.Event()
    src = _HeldSource(f"out{uuid.uuid4().hex[:6]}", 2, broker_gone)
    result: list = []
    fleet = threading.Thread(target=lambda: result.append(
        run_fleet(own.url, [src], duration=3.0, speed=0, chunk_s=0.5, t0=0.0, ack_timeout=1.0)))
    fleet.start()
    try:
        assert src.held.wait(30.0)
        own.stop()
    finally:
        broker_gone.set()
        fleet.join(60.0)
    [stats] = result                       # returned: no exception escaped
    # Chunks 2..5 were published with the broker gone; 0 and 1 may have been acked.
    assert stats.chunks == 6 and 4 <= stats.unconfirmed <= 6
