"""The service over real MQTT: rejects, status and Will, retained state, metrics.

The alarm end-to-end tests live elsewhere; these check the runtime around the
detector, so the ECG here only has to be a valid chunk.
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from conftest import FakeClock, wait_until
from detect.types import Chunk
from ecgwatch.service import Service, ServiceConfig
from ingest.mqtt import BrokerURL
from ingest.payload import encode_binary, encode_json
from ingest.topics import METRICS_TOPIC, REJECTS_TOPIC, STATUS_TOPIC, samples_topic, state_topic

pytestmark = pytest.mark.broker

FS = 250.0


def _chunk(device_id: str, seq: int, seconds: float = 1.0) -> Chunk:
    n = int(seconds * FS)
    t = (np.arange(n) + seq * n) / FS
    return Chunk(device_id, seq, 100.0 + seq * seconds, FS, 0.8 * np.sin(2 * np.pi * 1.2 * t))


def _config(url: str, kind: str = "mosquitto", **kw) -> ServiceConfig:
    kw.setdefault("client_id", f"svc-{uuid.uuid4().hex[:8]}")
    # amqtt never answers an MQTT 5 CONNECT that carries a Will, so "auto" would
    # spend its 3 s probe on it (tested once, in test_broker.py).
    kw.setdefault("protocol", "3.1.1" if kind == "amqtt" else "auto")
    return ServiceConfig(BrokerURL.parse(url), **kw)


def _from(client_id: str):
    """Predicate factory: status messages of this test's service only (the topic is shared)."""
    def statuses(messages) -> list[dict]:
        return [m.json() for m in messages
                if m.topic == STATUS_TOPIC and m.json().get("service") == client_id]
    return statuses


def _dev() -> str:
    return f"dev-{uuid.uuid4().hex[:8]}"


def test_bad_messages_become_counted_rejects_and_good_chunks_still_flow(
        broker, run_service, mqtt_collector, mqtt_publisher) -> None:
    dev = _dev()
    rejects = mqtt_collector(broker.url, [REJECTS_TOPIC])
    states = mqtt_collector(broker.url, [state_topic(dev)])
    runner = run_service(_config(broker.url, broker.kind), clock=FakeClock())
    pub = mqtt_publisher(broker.url)

    bad = [
        (samples_topic(dev), b"not json at all"),
        (samples_topic(dev), json.dumps({"v": 1, "seq": 0, "t0": 0.0, "fs": 5, "unit": "mV",
                                         "samples": [0.0] * 10}).encode()),
        ("ecg/v1/bad id!/samples", encode_json(_chunk(dev, 0))),
    ]
    for topic, payload in bad:
        pub.send(topic, payload)
    mine = lambda ms: [m.json() for m in ms if m.json().get("topic") in {t for t, _ in bad}]
    rejects.wait_for(lambda ms: len(mine(ms)) == 3)
    got = {r["topic"]: r for r in mine(rejects.messages)}
    assert got[samples_topic(dev)]["device_id"] == dev
    assert got["ecg/v1/bad id!/samples"]["reason"] == "bad_device_id"
    assert got["ecg/v1/bad id!/samples"]["device_id"] is None
    for r in got.values():
        assert r["reason"] and r["message"].endswith(".")
    counts = runner.service.counters.snapshot()
    assert counts["rejects_total"] == 3 and counts["chunks_processed"] == 0
    assert counts["rejects"]["bad_device_id"] == 1

    # The loop is still alive: a good chunk (binary this time) is processed.
    pub.send(samples_topic(dev), encode_binary(_chunk(dev, 0)))
    states.wait_for(lambda ms: len(ms) >= 1)
    counts = runner.service.counters.snapshot()
    assert counts["chunks_in"] == 4 and counts["chunks_processed"] == 1
    assert list(runner.service.monitors) == [dev]


class _BrokenMonitor:
    """Stands in for one device's monitor hitting a bug."""

    def push(self, chunk, now):
        raise ZeroDivisionError("detector bug")

    def tick(self, now):
        raise ZeroDivisionError("detector bug")


def test_an_internal_error_on_one_device_is_counted_and_others_go_on(
        broker, run_service, mqtt_collector, mqtt_publisher) -> None:
    sick, healthy = _dev(), _dev()
    rejects = mqtt_collector(broker.url, [REJECTS_TOPIC])
    states = mqtt_collector(broker.url, [state_topic(healthy)])
    clock = FakeClock()
    runner = run_service(_config(broker.url, broker.kind), clock=clock)
    runner.service.monitors[sick] = _BrokenMonitor()  # type: ignore[assignment]
    pub = mqtt_publisher(broker.url)

    pub.send(samples_topic(sick), encode_json(_chunk(sick, 0)))
    rejects.wait_for(lambda ms: any(m.json()["device_id"] == sick for m in ms))
    (r,) = [m.json() for m in rejects.messages if m.json()["device_id"] == sick]
    assert (r["reason"], r["seq"]) == ("internal", 0)

    clock.advance(1.5)  # the once-a-second tick also hits the broken monitor
    wait_until(lambda: runner.service.counters.snapshot()["rejects"]["internal"] == 2,
               what="tick failure counted")
    pub.send(samples_topic(healthy), encode_json(_chunk(healthy, 0)))
    states.wait_for(lambda ms: len(ms) >= 1)
    assert runner.service.counters.snapshot()["chunks_processed"] == 1


@pytest.mark.parametrize("which", ["embedded_broker", "mosquitto_broker"])
def test_status_is_retained_online_then_offline_on_clean_stop(
        which, request, run_service, mqtt_collector) -> None:
    b = request.getfixturevalue(which)
    config = _config(b.url, b.kind)
    statuses = _from(config.client_id)
    watch = mqtt_collector(b.url, [STATUS_TOPIC])
    runner = run_service(config, clock=FakeClock())
    watch.wait_for(lambda ms: [s["state"] for s in statuses(ms)] == ["online"])

    runner.stop()
    watch.wait_for(lambda ms: [s["state"] for s in statuses(ms)] == ["online", "offline"])
    assert statuses(watch.messages)[-1]["reason"] == "stopped"
    late = mqtt_collector(b.url, [STATUS_TOPIC])
    retained = late.wait_for(lambda ms: len(ms) >= 1)[0]   # amqtt may send it twice
    assert retained.retain and retained.json()["state"] == "offline"
    assert retained.json()["service"] == config.client_id


@pytest.mark.parametrize("which", ["embedded_broker", "mosquitto_broker"])
def test_will_reports_offline_when_the_service_dies_without_disconnect(
        which, request, mqtt_collector) -> None:
    b = request.getfixturevalue(which)
    config = _config(b.url, b.kind)
    statuses = _from(config.client_id)
    watch = mqtt_collector(b.url, [STATUS_TOPIC])
    service = Service(config, clock=FakeClock())
    service.start()
    watch.wait_for(lambda ms: [s["state"] for s in statuses(ms)] == ["online"])

    service.edge.kill()   # socket closed, no DISCONNECT: what a crash looks like
    watch.wait_for(lambda ms: [s["state"] for s in statuses(ms)] == ["online", "offline"])
    assert statuses(watch.messages)[-1]["reason"] == "connection lost"
    service.stop()        # nothing left to close; must not raise


def test_state_is_retained_for_late_subscribers_and_refreshed_each_interval(
        broker, run_service, mqtt_collector, mqtt_publisher) -> None:
    dev = _dev()
    early = mqtt_collector(broker.url, [state_topic(dev)])
    metrics = mqtt_collector(broker.url, [METRICS_TOPIC])
    clock = FakeClock()
    # Interval 4 s stays below the 10 s no-data timeout, so the state itself
    # cannot change while the clock runs without data.
    config = _config(broker.url, broker.kind, state_interval_s=4.0, metrics_interval_s=1.0)
    run_service(config, clock=clock)
    mine = lambda ms: [m for m in ms if m.json().get("service") == config.client_id]
    pub = mqtt_publisher(broker.url)
    pub.send(samples_topic(dev), encode_json(_chunk(dev, 0)))
    early.wait_for(lambda ms: len(ms) == 1)

    late = mqtt_collector(broker.url, [state_topic(dev)])
    retained = late.wait_for(lambda ms: len(ms) >= 1)[0]   # amqtt may send it twice
    assert retained.retain
    state = retained.json()
    assert state["device_id"] == dev and state["v"] == 1
    assert {"heart_rate", "rhythm", "signal_quality", "active_alarms"} <= state.keys()

    # Unchanged state is not re-sent before the interval. The metrics message
    # (published after the tick in the same step) shows the tick has run.
    clock.advance(2.0)
    metrics.wait_for(lambda ms: len(mine(ms)) >= 1)
    assert len(early.messages) == 1
    clock.advance(2.5)
    early.wait_for(lambda ms: len(ms) == 2)
    assert early.messages[1].json() == state


def test_metrics_are_retained_and_published_each_interval(
        broker, run_service, mqtt_collector, mqtt_publisher) -> None:
    config = _config(broker.url, broker.kind, metrics_interval_s=30.0)
    clock = FakeClock()
    runner = run_service(config, clock=clock)
    pub = mqtt_publisher(broker.url)
    dev = _dev()
    pub.send(samples_topic(dev), encode_json(_chunk(dev, 0)))
    pub.send(samples_topic(dev), b"\x00garbage")
    wait_until(lambda: runner.service.counters.snapshot()["chunks_in"] == 2, what="2 messages in")

    watch = mqtt_collector(broker.url, [METRICS_TOPIC])
    mine = lambda ms: [m.json() for m in ms if m.json().get("service") == config.client_id]
    clock.advance(31.0)
    watch.wait_for(lambda ms: len(mine(ms)) == 1)
    (metrics,) = mine(watch.messages)
    assert metrics["chunks_processed"] == 1 and metrics["rejects_total"] == 1, metrics
    assert metrics["devices"] == 1 and metrics["uptime_s"] == pytest.approx(31.0, abs=0.5)
    # Only the processed chunk has a processing latency (0 on the fake clock).
    assert metrics["processing_latency_ms"] == {"p50": 0.0, "p99": 0.0, "max": 0.0, "n": 1}
    late = mqtt_collector(broker.url, [METRICS_TOPIC])
    retained = late.wait_for(lambda ms: len(ms) >= 1)[0]   # amqtt may send it twice
    assert retained.retain and retained.json() == metrics


def test_an_overflowing_inbox_is_reported_counted_and_recovery_is_announced(
        broker, mqtt_collector, mqtt_publisher) -> None:
    from ecgwatch.service import RECOVER_S
    clock = FakeClock()
    config = _config(broker.url, broker.kind, inbox_size=10)
    watch = mqtt_collector(broker.url, [STATUS_TOPIC])
    service = Service(config, clock=clock)
    service.start()                     # connected, but this test runs the loop by hand
    # paho's thread reads only what the inbox has room for: what does not fit
    # waits in TCP and at the broker, so nothing is dropped.
    try:
        dev, pub = _dev(), mqtt_publisher(broker.url)
        for seq in range(30):           # 3x what the inbox holds, none handled yet
            pub.send(samples_topic(dev), encode_binary(_chunk(dev, seq)))
        wait_until(service.edge.inbox.full)
        service.step(clock())
        mine = _from(config.client_id)
        # The step acknowledged its 10 chunks, so the broker sends the rest and
        # the inbox is full again before anything more is served; the overload
        # status still goes out (it once waited with paho's thread for room).
        wait_until(service.edge.inbox.full, what="the inbox full again")
        watch.wait_for(lambda ms: any(s["overloaded"] for s in mine(ms)))
        assert service.edge.inbox.full()
        said = [s for s in mine(watch.messages) if s["overloaded"]][0]
        assert said["state"] == "online" and "inbox 10/10, 0 messages dropped" in said["reason"]
        snap = service.counters.snapshot()
        assert snap["overload_episodes"] == 1 and snap["inbox_overflow"] == 0
        # All 30 chunks are served as acknowledgements free the broker's
        # window; after RECOVER_S without drops: recovered.
        served = 30

        def serve() -> bool:
            service.step(clock.advance(0.1))
            return service.counters.snapshot()["chunks_processed"] >= served
        wait_until(serve)
        assert service.counters.snapshot()["chunks_processed"] == served
        assert service.edge.overflow == 0
        service.step(clock.advance(RECOVER_S))
        watch.wait_for(lambda ms: "recovered" in mine(ms)[-1]["reason"])
        assert mine(watch.messages)[-1]["overloaded"] is False
        assert service.counters.snapshot()["overload_episodes"] == 1
    finally:
        service.stop()


class _BrokenResume:
    """A monitor whose chain fails after the batched filters (push is fine)."""

    def __init__(self, real) -> None:
        self.real = real

    def __getattr__(self, name):
        return getattr(self.real, name)

    def resume(self, block):
        raise ZeroDivisionError("detector bug after the filters")


def test_one_step_filters_every_device_in_one_pass_and_acks_after_processing(
        mosquitto_broker, mqtt_publisher) -> None:
    """A step of 8 chunks: one batched filter pass, every chunk analysed, each
    acknowledged only after the pass; a device failing after the filters is
    an internal reject and the others are unaffected."""
    service = Service(_config(mosquitto_broker.url), clock=FakeClock())
    service.start()          # connected, but no loop: the test drives step()
    pub = mqtt_publisher(mosquitto_broker.url)
    try:
        devices = [_dev() for _ in range(8)]
        sick = devices[3]
        service._monitor(sick)
        service.monitors[sick] = _BrokenResume(service.monitors[sick])  # type: ignore
        acked_before = service.edge.acked
        for seq in range(3):
            for d in devices:
                pub.send(samples_topic(d), encode_binary(_chunk(d, seq)))
            wait_until(lambda: service.edge.inbox.qsize() == len(devices),
                       what="the chunks delivered to the inbox")
            assert service.edge.acked - acked_before == len(devices) * seq   # not yet
            blocks_before = service.signals.blocks
            handled = service.step(float(seq + 1))
            assert handled == len(devices)
            assert service.signals.blocks - blocks_before == len(devices)
            # Every message of the step acknowledged (manual ack on mosquitto).
            assert service.edge.acked - acked_before == len(devices) * (seq + 1)
        assert service.signals.runs == 3                 # one filter pass per step
        snap = service.counters.snapshot()
        assert snap["chunks_processed"] == 3 * len(devices)
        assert snap["rejects"]["internal"] == 3          # the sick device's three chunks
        healthy = [service.monitors[d].state() for d in devices if d != sick]
        assert all(s.time is not None for s in healthy)
        # The healthy devices saw all three seconds: their stream time is 3 s on.
        assert {round(s.time - healthy[0].time, 6) for s in healthy} == {0.0}
    finally:
        service.stop()


def test_a_chunk_held_for_a_missing_seq_is_acknowledged_only_once_analysed(
        mosquitto_broker, mqtt_publisher) -> None:
    """Acks wait, in arrival order, behind a chunk the reorder window holds:
    a crash before the gap is filled leaves it (and what came after) with
    the broker."""
    clock = FakeClock()
    service = Service(_config(mosquitto_broker.url), clock=clock)
    service.start()
    pub = mqtt_publisher(mosquitto_broker.url)
    a, b = _dev(), _dev()

    def deliver(*chunks: Chunk) -> None:
        for c in chunks:
            pub.send(samples_topic(c.device_id), encode_binary(c))
        wait_until(lambda: service.edge.inbox.qsize() == len(chunks), what="delivery")
        service.step(clock())

    try:
        start = service.edge.acked
        deliver(_chunk(a, 0), _chunk(a, 2), _chunk(b, 0))      # a's seq 1 is missing
        assert service.monitors[a].holds(2)
        assert service.edge.acked - start == 1                 # a0 only; b0 waits behind a2
        deliver(_chunk(a, 1))                                  # the gap filled: all analysed
        assert service.edge.acked - start == 4
        assert service.counters.snapshot()["chunks_processed"] == 4
        deliver(_chunk(a, 4))                                  # seq 3 never comes
        assert service.edge.acked - start == 4
        service.step(clock.advance(service.config.detector.reorder_timeout_s + 1.5))
        assert not service.monitors[a].holds(4)                # given up on seq 3 ...
        assert service.edge.acked - start == 5                 # ... so seq 4 analysed and acked
        assert service.counters.snapshot()["chunks_processed"] == 5
    finally:
        service.stop()
