"""Beat labels batched across devices give what per-device labelling gives."""

from __future__ import annotations

import uuid

import pytest

from conftest import wait_until

from detect.classify import BeatBatcher, BeatClassifier
from detect.pipeline import DevicePipeline
from ecg_fixtures import data_dir
from ecgwatch.evaluation.replay import chunks_of
from ecgwatch.service import ServiceConfig
from ingest.mqtt import BrokerURL
from ingest.payload import encode_binary
from ingest.topics import alerts_topic, samples_topic

REC = data_dir() / "mitdb" / "119"      # ventricular bigeminy and trigeminy
pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not REC.with_suffix(".hea").exists(),
                                 reason=f"MIT-BIH record 119 not found at {REC}")]


def _signal(seconds=300):
    from ecgwatch.evaluation.records import read_signal
    x, fs = read_signal(REC)
    return x[: int(seconds * fs)], fs


def _run(pipelines, chunks, batcher=None):
    out = {id(p): ([], []) for p in pipelines}
    for c in chunks:
        for p in pipelines:
            r = p.push(c)
            out[id(p)][0].extend(r.classified)
            out[id(p)][1].extend(r.transitions)
        if batcher is not None:
            for owner, pairs in batcher.run():
                r = owner.apply_labels(pairs)
                out[id(owner)][0].extend(r.classified)
                out[id(owner)][1].extend(r.transitions)
    for p in pipelines:
        r = p.flush()
        out[id(p)][0].extend(r.classified)
        out[id(p)][1].extend(r.transitions)
    return [out[id(p)] for p in pipelines]


def test_batched_labels_and_alarms_equal_immediate_ones_with_one_call_per_tick():
    x, fs = _signal()
    chunks = chunks_of(x, fs, 1.0, "dev-a")
    model = BeatClassifier()
    [(alone_beats, alone_tr)] = _run([DevicePipeline("dev-a", classifier=model)], chunks)
    batcher = BeatBatcher(model)
    fleet = [DevicePipeline("dev-a", classifier=batcher) for _ in range(3)]
    results = _run(fleet, chunks, batcher)
    for beats, tr in results:
        assert [(b.index, b.label) for b in beats] == [(b.index, b.label) for b in alone_beats]
        assert [t.id for t in tr] == [t.id for t in alone_tr]
    assert batcher.calls <= len(chunks) + 3           # one call per tick, not per device
    labels = [b.label for b in alone_beats]
    assert labels.count("V") > 50                     # 119 is full of PVCs
    assert any(t.condition.value in ("ventricular_bigeminy", "ventricular_trigeminy")
               for t in alone_tr)


def test_batched_af_alarms_and_veto_equal_immediate_ones():
    # AF takes beats once labelled (its ectopic filter reads V and F), so labels that
    # come a tick later must not change its alarms or the S veto.
    from ecgwatch.evaluation.records import read_signal
    rec = REC.with_name("203")                  # AF with frequent multiform PVCs
    x, fs = read_signal(rec)
    chunks = chunks_of(x[: int(300 * fs)], fs, 1.0, "dev-af")
    model = BeatClassifier()
    [(alone_beats, alone_tr)] = _run([DevicePipeline("dev-af", classifier=model)], chunks)
    batcher = BeatBatcher(model)
    [(beats, tr)] = _run([DevicePipeline("dev-af", classifier=batcher)], chunks, batcher)
    assert [(b.index, b.label) for b in beats] == [(b.index, b.label) for b in alone_beats]
    assert [t.id for t in tr] == [t.id for t in alone_tr]
    assert any(t.condition.value == "atrial_fibrillation" for t in alone_tr)
    assert [b.label for b in alone_beats].count("V") > 50


@pytest.mark.broker
def test_the_service_labels_beats_and_raises_a_ventricular_rhythm_alarm(
        broker, run_service, mqtt_collector, mqtt_publisher):
    dev = f"pvc-{uuid.uuid4().hex[:6]}"
    x, fs = _signal(240)
    col = mqtt_collector(broker.url, [alerts_topic(dev)])
    runner = run_service(ServiceConfig(
        BrokerURL.parse(broker.url), client_id=f"svc-{uuid.uuid4().hex[:8]}",
        protocol="3.1.1" if broker.kind == "amqtt" else "auto", beat_model="default"))
    pub = mqtt_publisher(broker.url)
    chunks = chunks_of(x, fs, 2.0, dev, t0=1000.0)
    for c in chunks:
        pub.send(samples_topic(dev), encode_binary(c))
    msgs = col.wait_for(lambda ms: any("ventricular" in m.json()["condition"] for m in ms),
                        timeout=60)
    # The first ventricular alarm can come a few dozen beats in; the figures
    # below are about the whole record.
    wait_until(lambda: runner.service.counters.snapshot()["chunks_processed"] == len(chunks),
               what="every chunk analysed")
    # A step counts its chunks as processed before its one model call labels their
    # beats: stopped, the service has finished that step (read mid-step, the state
    # once lacked a whole batch of labels under CI's load).
    runner.stop()
    assert runner.service.batcher is not None and runner.service.batcher.beats > 100
    state = runner.service.monitors[dev].state()
    assert state.veb_per_hour and state.veb_per_hour > 20
    assert all(m.json()["kind"] == "physiological" for m in msgs
               if "ventricular" in m.json()["condition"])
