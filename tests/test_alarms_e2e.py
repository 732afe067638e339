"""End to end over TCP: device chunks in over MQTT, alarm transitions out.

A real broker (mosquitto where installed, else the embedded one), the real
Service, and a plain paho publisher and subscriber on the outside.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from conftest import WAIT_S, wait_until
from ecg_fixtures import beat_train, regular_r_times
from ecgwatch.evaluation.replay import chunks_of
from ecgwatch.service import ServiceConfig
from ingest.mqtt import BrokerURL
from ingest.payload import encode_binary, encode_json
from ingest.topics import REJECTS_TOPIC, alerts_topic, samples_topic, state_topic

pytestmark = pytest.mark.broker

FS = 250.0
T0 = 1_700_000_000.0     # device clock: seconds since the epoch


def _config(broker) -> ServiceConfig:
    return ServiceConfig(BrokerURL.parse(broker.url), client_id=f"svc-{uuid.uuid4().hex[:8]}",
                         protocol="3.1.1" if broker.kind == "amqtt" else "auto")


def _stream(pub, dev: str, x: np.ndarray, *, binary: bool = False, chunk_s: float = 1.0) -> int:
    chunks = chunks_of(x, FS, chunk_s, dev, t0=T0)
    for c in chunks:
        pub.send(samples_topic(dev), encode_binary(c) if binary else encode_json(c))
    return len(chunks)


def _alerts(col, dev):
    return [m.json() for m in col.on(alerts_topic(dev))]


def test_a_6_s_asystole_raises_once_and_clears_once_with_the_right_onset(
        broker, run_service, mqtt_collector, mqtt_publisher):
    dev = f"asys-{uuid.uuid4().hex[:6]}"
    r = np.concatenate([regular_r_times(70, 30), 36.0 + regular_r_times(70, 34)])
    x = beat_train(r, FS, 70, noise=0.02)
    col = mqtt_collector(broker.url, [alerts_topic(dev), state_topic(dev)])
    run_service(_config(broker))
    _stream(mqtt_publisher(broker.url), dev, x, binary=True)
    col.wait_for(lambda ms: any(m.topic == alerts_topic(dev) and m.json()["action"] == "cleared"
                                for m in ms), timeout=3 * WAIT_S)
    alerts = _alerts(col, dev)
    asys = [a for a in alerts if a["condition"] == "asystole"]
    assert [a["action"] for a in asys] == ["raised", "cleared"], alerts
    assert len({a["id"] for a in asys}) == 2 and len({a["episode_id"] for a in asys}) == 1
    onset_truth = T0 + r[r < 30][-1]            # the last beat before the heart stopped
    assert abs(asys[0]["onset"] - onset_truth) <= 0.5
    assert asys[0]["priority"] == "high" and asys[0]["kind"] == "physiological"
    assert asys[0]["evidence"]["end"] - asys[0]["evidence"]["start"] >= 4.0
    assert asys[0]["detector_version"]
    # Nothing else physiological: the 6 s without beats is one asystole, not a pause too.
    assert {a["condition"] for a in alerts} == {"asystole"}


def test_a_normal_stream_raises_nothing_and_publishes_its_heart_rate(
        broker, run_service, mqtt_collector, mqtt_publisher):
    dev = f"norm-{uuid.uuid4().hex[:6]}"
    x = beat_train(regular_r_times(72, 60), FS, 60, noise=0.03)
    col = mqtt_collector(broker.url, [alerts_topic(dev), state_topic(dev)])
    runner = run_service(_config(broker))
    n = _stream(mqtt_publisher(broker.url), dev, x)
    monitors = runner.service.monitors
    # Wait until the service has analysed the stream (its monitor counts the beats).
    wait_until(lambda: dev in monitors and monitors[dev].state().beats >= 68,
               timeout=3 * WAIT_S, what="all beats analysed")
    assert _alerts(col, dev) == []
    state = monitors[dev].state()
    assert state.heart_rate == pytest.approx(72, abs=1.5)
    assert state.rhythm != "unknown" and state.active_alarms == ()
    assert n == 60


def test_bad_payloads_are_rejected_and_the_stream_carries_on_to_its_alarm(
        broker, run_service, mqtt_collector, mqtt_publisher):
    dev = f"bad-{uuid.uuid4().hex[:6]}"
    r = np.concatenate([regular_r_times(70, 30), 36.0 + regular_r_times(70, 34)])
    chunks = chunks_of(beat_train(r, FS, 70, noise=0.02), FS, 1.0, dev, t0=T0)
    col = mqtt_collector(broker.url, [alerts_topic(dev), REJECTS_TOPIC])
    run_service(_config(broker))
    pub = mqtt_publisher(broker.url)
    junk = [b"", b"{", b'{"v":1,"seq":1}', b"EW\x01\x00garbage",
            b'{"v":1,"seq":3,"t0":0,"fs":250,"unit":"mV","samples":[NaN,1]}']
    for k, c in enumerate(chunks):
        if k % 10 == 3:
            pub.send(samples_topic(dev), junk[(k // 10) % len(junk)])
        pub.send(samples_topic(dev), encode_json(c))
        if k == 5:
            pub.send(samples_topic(dev), encode_json(c))       # a duplicate
    def mine(ms):
        return [m.json() for m in ms if m.topic == REJECTS_TOPIC and m.json()["device_id"] == dev]

    # The last junk payload comes after the alarm has cleared: wait for both.
    col.wait_for(lambda ms: len(mine(ms)) >= 7 and any(
        m.topic == alerts_topic(dev) and m.json()["action"] == "cleared" for m in ms),
        timeout=3 * WAIT_S)
    rejects = mine(col.messages)
    assert len(rejects) == 7
    assert all(rj["reason"] and rj["message"] for rj in rejects)
    asys = [a for a in _alerts(col, dev) if a["condition"] == "asystole"]
    assert [a["action"] for a in asys] == ["raised", "cleared"]


def test_a_retained_device_config_lowers_its_limit_and_a_bad_one_is_rejected(
        broker, run_service, mqtt_collector, mqtt_publisher):
    from ingest.topics import config_topic
    dev = f"cfg-{uuid.uuid4().hex[:6]}"
    other = f"cfg-{uuid.uuid4().hex[:6]}"
    col = mqtt_collector(broker.url, [alerts_topic(dev), alerts_topic(other), REJECTS_TOPIC])
    runner = run_service(_config(broker))
    pub = mqtt_publisher(broker.url)
    # 125 bpm is no alarm under the default limit (140 bpm), but is under 120.
    pub.send(config_topic(dev), b'{"v": 1, "alarms": {"tachy_bpm": 120, "tachy_clear_bpm": 115}}')
    pub.send(config_topic(other), b'{"v": 1, "alarms": {"tachy_bpm": "fast"}}')
    wait_until(lambda: runner.service.counters.snapshot()["configs_applied"] == 1)
    x = beat_train(regular_r_times(125, 40), FS, 40, noise=0.02)
    _stream(pub, dev, x)
    _stream(pub, other, x)
    col.wait_for(lambda ms: any(m.topic == alerts_topic(dev) for m in ms), timeout=3 * WAIT_S)
    assert [a["condition"] for a in _alerts(col, dev)][:1] == ["extreme_tachycardia"]
    rejects = [m.json() for m in col.on(REJECTS_TOPIC) if m.json().get("device_id") == other]
    assert rejects and rejects[0]["reason"] == "bad_config"
    assert "tachy_bpm" in rejects[0]["message"]
    # The refused device kept the service's limits: no tachycardia alarm at 125 bpm.
    wait_until(lambda: runner.service.counters.snapshot()["chunks_processed"] >= 80)
    assert not _alerts(col, other)
