"""``ecgwatch serve --workers N``: devices partitioned by a stable hash across processes.

Two partitioned services against a real broker serve disjoint device sets
whose union is every device, and each device's alarms arrive exactly once;
the command line starts N worker processes that each announce themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import numpy as np
import pytest

from conftest import WAIT_S, wait_until
from ecg_fixtures import beat_train, regular_r_times
from ecgwatch.evaluation.replay import chunks_of
from ecgwatch.service import ServiceConfig, partition_of
from ecgwatch.workers import worker_configs
from detect.errors import ConfigError
from ingest.mqtt import BrokerURL
from ingest.payload import encode_binary
from ingest.topics import STATUS_TOPIC, alerts_topic, samples_topic

FS = 250.0


def test_the_partition_is_stable_and_spreads_devices():
    # CRC-32, not Python's per-process salted hash(): the same in every process.
    import zlib
    assert partition_of("bed-1", 5) == zlib.crc32(b"bed-1") % 5
    ids = [f"dev-{i:05d}" for i in range(2000)]
    counts = np.bincount([partition_of(d, 4) for d in ids], minlength=4)
    assert counts.min() > 400 and counts.sum() == 2000
    code = ("from ecgwatch.service import partition_of; "
            "print([partition_of(f'dev-{i}', 3) for i in range(20)])")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": "123"}).stdout
    assert other.strip() == str([partition_of(f"dev-{i}", 3) for i in range(20)])


def test_worker_configs_get_their_own_id_and_slot():
    base = ServiceConfig(BrokerURL.parse("mqtt://127.0.0.1:1"), client_id="svc")
    cfgs = worker_configs(base, 3)
    assert [c.client_id for c in cfgs] == ["svc-0", "svc-1", "svc-2"]
    assert [c.partition for c in cfgs] == [(0, 3), (1, 3), (2, 3)]
    with pytest.raises(ConfigError, match="partition"):
        ServiceConfig(BrokerURL.parse("mqtt://127.0.0.1:1"), partition=(2, 2))


@pytest.mark.broker
def test_two_partitioned_services_share_the_devices_and_each_alarm_comes_once(
        broker, run_service, mqtt_collector, mqtt_publisher):
    devs = [f"wk-{uuid.uuid4().hex[:6]}" for _ in range(8)]
    col = mqtt_collector(broker.url, [alerts_topic(d) for d in devs])
    base = ServiceConfig(BrokerURL.parse(broker.url), client_id=f"svc-{uuid.uuid4().hex[:6]}",
                         protocol="3.1.1" if broker.kind == "amqtt" else "auto")
    runners = [run_service(c) for c in worker_configs(base, 2)]
    # 20 s of rhythm, 6 s of asystole, 14 s of rhythm: one asystole alarm per device.
    r = np.concatenate([regular_r_times(70, 20), 26.0 + regular_r_times(70, 14)])
    x = beat_train(r, FS, 40, noise=0.02)
    pub = mqtt_publisher(broker.url)
    for d in devs:
        for c in chunks_of(x, FS, 1.0, d, t0=1_700_000_000.0):
            pub.send(samples_topic(d), encode_binary(c))
    col.wait_for(lambda ms: sum(m.json()["action"] == "cleared" for m in ms) >= len(devs),
                 timeout=3 * WAIT_S)
    served = [set(run.service.monitors) for run in runners]
    assert served[0].isdisjoint(served[1]) and served[0] | served[1] == set(devs)
    assert all(served)                              # 8 devices: both workers get some
    for d in devs:
        raised = [m.json() for m in col.on(alerts_topic(d)) if m.json()["action"] == "raised"]
        assert [a["condition"] for a in raised] == ["asystole"], (d, raised)
    wait_until(lambda: sum(run.service.counters.snapshot()["chunks_processed"]
                           for run in runners) == 8 * 40)


@pytest.mark.broker
def test_serve_with_two_workers_starts_two_announced_processes(broker, mqtt_collector):
    client_id = f"wcli-{uuid.uuid4().hex[:6]}"
    watch = mqtt_collector(broker.url, [f"{STATUS_TOPIC}/#"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecgwatch.cli", "serve", "--broker", broker.url,
         "--client-id", client_id, "--workers", "2", "--log-level", "WARNING"]
        + (["--protocol", "3.1.1"] if broker.kind == "amqtt" else []),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def states(ms):
            return {(m.json()["service"], m.json()["state"]) for m in ms}
        watch.wait_for(lambda ms: {(f"{client_id}-0", "online"),
                                   (f"{client_id}-1", "online")} <= states(ms),
                       timeout=3 * WAIT_S)
        online = [m.json() for m in watch.messages if m.json()["state"] == "online"]
        assert sorted(tuple(m["partition"]) for m in online) == [(0, 2), (1, 2)]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(3 * WAIT_S) == 0, proc.stderr.read()
        watch.wait_for(lambda ms: {(f"{client_id}-0", "offline"),
                                   (f"{client_id}-1", "offline")} <= states(ms))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
