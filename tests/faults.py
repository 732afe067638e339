"""Fault scenarios against a real mosquitto: each returns the figures docs/reliability.md quotes.

Used by tests/test_faults.py (assertions) and tests/fault_run.py (the table).
Every scenario starts its own mosquitto (ecgwatch.broker.MosquittoBroker) and
streams synthetic ECG with one asystole per device, so that each device owes
a known set of alerts: the ids an offline DeviceMonitor gives for the same
chunks (alert ids are deterministic). Figures: chunks sent, processed (after
duplicates were dropped), duplicates, lost; alerts expected and delivered
(distinct ids at an outside consumer) and copies (messages, with QoS 1
duplicates).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ecg_fixtures import beat_train, regular_r_times
from ecgwatch.broker import MosquittoBroker, free_port
from ecgwatch.evaluation.replay import chunks_of
from ecgwatch.service import Service, ServiceConfig, ServiceThread
from ecgwatch.bench_fleet import rss_bytes
from detect.types import Chunk
from ingest.device import DeviceMonitor
from ingest.mqtt import BrokerURL
from ingest.payload import encode_binary
from ingest.topics import METRICS_TOPIC, STATUS_TOPIC, samples_topic

FS = 250.0
T0 = 1_700_000_000.0
WAIT_S = 30.0
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Figures:
    """One scenario's outcome; ``lost`` = sent - processed (never negative)."""

    scenario: str
    chunks_sent: int
    chunks_processed: int
    duplicates: int
    alerts_expected: int
    alerts_delivered: int
    alert_copies: int
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return max(0, self.chunks_sent - self.chunks_processed)

    def row(self) -> str:
        notes = ", ".join(f"{k} {v}" for k, v in self.notes.items())
        return (f"| {self.scenario} | {self.chunks_sent} | {self.chunks_processed} | "
                f"{self.duplicates} | {self.lost} | {self.alerts_expected} | "
                f"{self.alerts_delivered} ({self.alert_copies} copies) | {notes} |")


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)


# -- streams ---------------------------------------------------------------------

def stream(dev: str, seconds: int = 40, seed: int = 0) -> list[Chunk]:
    """1 s chunks at 70 bpm with the heart stopped from 20 to 26 s (asystole raised, cleared)."""
    r = np.concatenate([regular_r_times(70, 20), 26.0 + regular_r_times(70, seconds - 26)])
    return chunks_of(beat_train(r, FS, seconds, noise=0.02, seed=seed), FS, 1.0, dev, t0=T0)


def expected_alerts(chunks: Iterable[Chunk]) -> set[str]:
    """Alert ids of one device's chunks analysed offline, in order, once."""
    chunks = list(chunks)
    mon = DeviceMonitor(chunks[0].device_id)
    return {t.id for c in chunks for t in mon.push(c, c.t_end - chunks[0].t0).transitions}


def interleave(streams: list[list[Chunk]]) -> list[Chunk]:
    """Round robin over the devices, as a fleet publishes."""
    out: list[Chunk] = []
    for i in range(max(len(s) for s in streams)):
        out += [s[i] for s in streams if i < len(s)]
    return out


# -- outside MQTT clients (plain paho, persistent sessions) ---------------------

class Client:
    """A paho 3.1.1 client on a persistent session: it outlives broker restarts."""

    def __init__(self, url: str, client_id: str, topics: tuple[str, ...] = ()) -> None:
        host, port = url.removeprefix("mqtt://").rsplit(":", 1)
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=paho.MQTTv311, clean_session=False)
        self.c.reconnect_delay_set(0.1, 0.5)
        self.sent = self.acked = 0
        self.c.on_publish = self._on_publish
        if topics:
            self.c.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
            self.c.on_subscribe = lambda *a: self._subscribed.set()
            self.c.on_message = self._on_message
        self.c.connect(host, int(port), keepalive=30)
        self.c.loop_start()
        if topics and not self._subscribed.wait(10):
            raise AssertionError(f"{client_id} could not subscribe at {url}")

    def _on_publish(self, *args: Any) -> None:
        with self._lock:
            self.acked += 1        # one PUBACK per QoS 1 publish, resends included

    def _on_message(self, c: Any, u: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def alert_ids(self) -> list[str]:
        with self._lock:
            return [json.loads(p)["id"] for t, p in self.messages if t.endswith("/alerts")]

    def json_on(self, topic: str) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(p) for t, p in self.messages if t == topic]

    def publish(self, chunks: Iterable[Chunk]) -> None:
        for c in chunks:
            self.c.publish(samples_topic(c.device_id), encode_binary(c), qos=1)
            self.sent += 1

    def all_acked(self) -> bool:
        with self._lock:
            return self.acked >= self.sent

    def pause(self) -> None:
        """Stop reading (a slow consumer): the broker queues for us."""
        self.c.loop_stop()

    def resume(self) -> None:
        self.c.loop_start()

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _figures(name: str, sent: int, counters: dict[str, Any], expected: set[str],
             sink: Client, **notes: Any) -> Figures:
    got = sink.alert_ids()
    return Figures(name, sent, counters["chunks_processed"], counters["duplicates"],
                   len(expected), len(expected & set(got)), len(got), notes)


def _service(url: str, client_id: str, **kw: Any) -> ServiceThread:
    config = ServiceConfig(BrokerURL.parse(url), client_id=client_id, **kw)
    return ServiceThread(Service(config), poll_s=0.05, timeout_s=WAIT_S).start()


class _Peaks:
    """Samples the inbox depth and outbox size of a running service every 10 ms,
    and this process's resident memory (the service, the test's clients and
    its chunks) against what it was at the start."""

    def __init__(self, service: Service) -> None:
        self.inbox = self.outbox = 0
        self.rss_start = self.rss_peak = rss_bytes()
        self._stop = threading.Event()
        self._svc = service
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.inbox = max(self.inbox, self._svc.edge.inbox.qsize())
            box = self._svc.outbox
            self.outbox = max(self.outbox, box.pending if box is not None else 0)
            self.rss_peak = max(self.rss_peak, rss_bytes())

    @property
    def rss_growth_mb(self) -> float:
        return round((self.rss_peak - self.rss_start) / 2**20, 1)

    def stop(self) -> None:
        self._stop.set()
        self._t.join()


# -- scenarios -------------------------------------------------------------------

def broker_restart(work: Path, devices: int = 3, seconds: int = 40) -> Figures:
    """mosquitto (persistence on) is stopped and restarted on its port mid-stream."""
    store = work / "mosquitto-store"
    store.mkdir(parents=True, exist_ok=True)
    conf = f"persistence true\npersistence_location {store}/\n"
    port = free_port()
    broker = MosquittoBroker(port, conf).start()
    streams = [stream(f"brk-{i}", seconds, seed=i) for i in range(devices)]
    chunks, expected = interleave(streams), set().union(*map(expected_alerts, streams))
    runner = _service(broker.url, "fault-brk", outbox=str(work / "outbox-brk.sqlite3"))
    sink = Client(broker.url, "fault-brk-sink", ("ecg/v1/+/alerts",))
    pub = Client(broker.url, "fault-brk-pub")
    counters = runner.service.counters
    try:
        half = len(chunks) // 2
        pub.publish(chunks[:half])
        wait_for(lambda: counters.snapshot()["chunks_processed"] >= half // 2, "a quarter served")
        broker.stop()                     # SIGTERM: mosquitto saves sessions and queues
        pub.publish(chunks[half:])        # queued by paho until the broker is back
        broker = MosquittoBroker(port, conf).start()
        wait_for(pub.all_acked, "every chunk acknowledged by the broker")
        wait_for(lambda: counters.snapshot()["chunks_processed"] >= len(chunks),
                 "every chunk processed")
        wait_for(lambda: expected <= set(sink.alert_ids()), "every alert delivered")
        snap = counters.snapshot()
        return _figures("broker restart mid-stream", len(chunks), snap, expected, sink,
                        reconnects=runner.service.edge.connection - 1,
                        gaps=snap["gaps_total"])
    finally:
        for c in (sink, pub):
            c.close()
        runner.stop()
        broker.stop()


def service_sigkill(work: Path, devices: int = 2, seconds: int = 40) -> Figures:
    """``ecgwatch serve`` is SIGKILLed with its acks and alerts held on the way to the
    broker (nothing it did reached the broker), then started again."""
    from fault_proxy import HoldingProxy

    broker = MosquittoBroker().start()
    proxy = HoldingProxy(broker.port)
    streams = [stream(f"kill-{i}", seconds, seed=10 + i) for i in range(devices)]
    chunks, expected = interleave(streams), set().union(*map(expected_alerts, streams))
    client_id, outbox = "fault-kill", work / "outbox-fault-kill.sqlite3"
    watch = Client(broker.url, "fault-kill-sink",
                   ("ecg/v1/+/alerts", STATUS_TOPIC, METRICS_TOPIC))
    pub = Client(broker.url, "fault-kill-pub")
    procs: list[subprocess.Popen[bytes]] = []

    def serve(n: int) -> subprocess.Popen[bytes]:
        log = open(work / f"serve-{n}.log", "wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "ecgwatch.cli", "serve", "--broker",
             f"mqtt://127.0.0.1:{proxy.port}", "--client-id", client_id, "--outbox",
             str(outbox), "--log-level", "INFO"], stdout=log, stderr=log, cwd=REPO,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}))
        online = n + 1
        wait_for(lambda: sum(s["state"] == "online" and s["service"] == client_id
                             for s in watch.json_on(STATUS_TOPIC)) >= online, f"serve #{n} online")
        return procs[-1]

    def stored() -> int:
        if not outbox.exists():
            return 0
        with sqlite3.connect(outbox) as db:
            return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    try:
        first = serve(0)
        proxy.hold_upstream()            # from now on the broker hears nothing from it
        pub.publish(chunks)
        wait_for(pub.all_acked, "every chunk acknowledged by the broker")
        wait_for(lambda: stored() >= len(expected), "the alerts in the first process's outbox")
        in_outbox = stored()
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        proxy.drop_all()                 # its held PUBACKs and alerts die with it
        second = serve(1)
        wait_for(lambda: expected <= set(watch.alert_ids()), "every alert delivered")
        second.send_signal(signal.SIGTERM)    # final metrics on the way out
        second.wait(WAIT_S)

        def final() -> dict[str, Any] | None:
            mine = [m for m in watch.json_on(METRICS_TOPIC) if m.get("service") == client_id]
            return mine[-1] if mine else None
        wait_for(lambda: final() is not None, "the restarted service's final metrics")
        snap = final()
        assert snap is not None
        return _figures("service SIGKILL, acks and alerts held", len(chunks), snap, expected,
                        watch, alerts_in_outbox_at_kill=in_outbox,
                        replayed=snap["outbox_replayed"], outbox_left=stored())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        for c in (watch, pub):
            c.close()
        proxy.close()
        broker.stop()


def stall(work: Path, devices: int = 3, seconds: int = 40, pause_s: float = 3.0) -> Figures:
    """The alert consumer stops reading and mosquitto is SIGSTOPped for ``pause_s`` mid-stream."""
    broker = MosquittoBroker().start()
    streams = [stream(f"stall-{i}", seconds, seed=20 + i) for i in range(devices)]
    chunks, expected = interleave(streams), set().union(*map(expected_alerts, streams))
    runner = _service(broker.url, "fault-stall", inbox_size=20,
                      outbox=str(work / "outbox-stall.sqlite3"))
    peaks = _Peaks(runner.service)
    sink = Client(broker.url, "fault-stall-sink", ("ecg/v1/+/alerts",))
    pub = Client(broker.url, "fault-stall-pub")
    counters = runner.service.counters
    third = len(chunks) // 3
    try:
        pub.publish(chunks[:third])
        sink.pause()                                  # slow consumer from here on
        wait_for(lambda: counters.snapshot()["chunks_processed"] >= third // 2, "some served")
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGSTOP)           # network stall: nothing moves
        pub.publish(chunks[third:2 * third])
        time.sleep(pause_s)                           # the length of the stall itself
        os.kill(broker.pid, signal.SIGCONT)
        pub.publish(chunks[2 * third:])
        wait_for(lambda: counters.snapshot()["chunks_processed"] >= len(chunks),
                 "every chunk processed")
        sink.resume()
        wait_for(lambda: expected <= set(sink.alert_ids()), "every alert delivered")
        wait_for(lambda: runner.service.outbox.pending == 0, "the outbox emptied")
        peaks.stop()
        return _figures(f"consumer paused, broker SIGSTOP {pause_s:g} s", len(chunks),
                        counters.snapshot(), expected, sink,
                        inbox_peak=f"{peaks.inbox}/20", outbox_peak=peaks.outbox,
                        inbox_overflow=runner.service.edge.overflow,
                        rss_growth_mb=peaks.rss_growth_mb)
    finally:
        peaks.stop()
        if broker.pid is not None:
            os.kill(broker.pid, signal.SIGCONT)
        for c in (sink, pub):
            c.close()
        runner.stop()
        broker.stop()


def flood(work: Path, normal: int = 4, seconds: int = 40, factor: int = 10,
          inbox: int = 50, wait_recovery: bool = False) -> list[Figures]:
    """One device at ``factor`` times its rate among normal ones, then the whole fleet."""
    broker = MosquittoBroker().start()
    runner = _service(broker.url, "fault-flood", inbox_size=inbox)
    peaks = _Peaks(runner.service)
    sink = Client(broker.url, "fault-flood-sink", ("ecg/v1/+/alerts", STATUS_TOPIC))
    pub = Client(broker.url, "fault-flood-pub")
    svc, out = runner.service, []
    try:
        phases = [("one device at %dx" % factor,
                   [stream(f"calm-{i}", seconds, seed=30 + i) for i in range(normal)],
                   [stream("loud", seconds * factor, seed=39)]),
                  ("whole fleet at %dx" % factor, [],
                   [stream(f"fleet-{i}", seconds * factor, seed=40 + i)
                    for i in range(normal + 1)])]
        base_processed = base_dups = base_alerts = 0
        for name, calm, loud in phases:
            # Per round: one chunk of each calm device, `factor` of each loud one.
            chunks: list[Chunk] = []
            for r in range(seconds):
                chunks += [s[r] for s in calm]
                chunks += [c for s in loud for c in s[r * factor:(r + 1) * factor]]
            expected = set().union(*map(expected_alerts, calm + loud))
            pub.publish(chunks)
            wait_for(lambda: svc.counters.snapshot()["chunks_processed"] - base_processed
                     >= len(chunks), f"{name}: every chunk processed")
            wait_for(lambda: expected <= set(sink.alert_ids()), f"{name}: every alert delivered")
            snap = svc.counters.snapshot()
            calm_ids: set[str] = set().union(*map(expected_alerts, calm)) if calm else set()
            got = set(sink.alert_ids())
            overloaded = [s for s in sink.json_on(STATUS_TOPIC)
                          if s.get("service") == "fault-flood" and s.get("overloaded")]
            out.append(Figures(
                f"flood: {name}", len(chunks), snap["chunks_processed"] - base_processed,
                snap["duplicates"] - base_dups, len(expected), len(expected & got),
                len(sink.alert_ids()) - base_alerts,
                {"inbox_peak": f"{peaks.inbox}/{inbox}", "inbox_overflow": svc.edge.overflow,
                 "rss_growth_mb": peaks.rss_growth_mb,
                 "overloaded_status": bool(overloaded),
                 **({"calm_alerts": f"{len(calm_ids & got)}/{len(calm_ids)}"} if calm else {})}))
            base_processed, base_dups = snap["chunks_processed"], snap["duplicates"]
            base_alerts = len(sink.alert_ids())
        if wait_recovery:
            from ecgwatch.service import RECOVER_S
            wait_for(lambda: any("recovered" in s.get("reason", "")
                                 for s in sink.json_on(STATUS_TOPIC)),
                     "recovered announced", timeout=RECOVER_S + WAIT_S)
            out[-1].notes["recovered_status"] = True
        return out
    finally:
        peaks.stop()
        for c in (sink, pub):
            c.close()
        runner.stop()
        broker.stop()
