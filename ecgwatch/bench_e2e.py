"""``ecgwatch bench --e2e``: the whole path through mosquitto in real time (issue 5, parts 2, 4).

For each fleet size and each ``--workers`` count, one run in three processes
on this machine, with a fresh mosquitto of its own (``MosquittoBroker``:
temporary directory, ``max_queued_messages`` raised):

* the **service**: the real ``ecgwatch serve --broker URL --workers N`` as a
  subprocess, so its CPU (the process and its workers, from ``/proc``) is its
  own and nothing else's;
* the **publisher** (``ecgwatch.bench_e2e_pub``): the fleet mix rendered and
  encoded beforehand, published at QoS 1 in real time, spread over each
  second, recording when each chunk went out and how late it was;
* the **consumer**: a paho client in this process that subscribes to the
  alerts, the metrics, the status and the rejects topics and stamps
  every message with its arrival wall time.

The first ``--warmup`` seconds (monitors created, caches warm) are excluded
from the CPU, throughput and latency figures; every chunk of the whole run
counts for the lost-chunk figure. After the last chunk the service gets up to
``--drain`` seconds to finish (until its metrics show every chunk accounted
for), then SIGTERM; its final metrics are the counts. The analysis and the
reports are in ``ecgwatch.bench_e2e_report``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from detect.errors import BrokerError, EcgwatchError
from ingest.mqtt import BrokerURL
from ingest.topics import METRICS_TOPIC, STATUS_TOPIC

from .bench_e2e_pub import ACK_TIMEOUT_S, PubPlan, PubResult, publisher_main
from .broker import MosquittoBroker, find_mosquitto

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS: dict[str, Any] = {"devices": [250, 1000, 2000], "seconds": 60, "warmup": 15,
                            "workers": [1, 2], "slots": 20, "drain": 30}
QUICK: dict[str, Any] = {"devices": [20], "seconds": 5, "warmup": 2, "workers": [1],
                         "slots": 10, "drain": 20}
START_TIMEOUT_S = 60.0          # service import + connect on a loaded machine
STOP_TIMEOUT_S = 30.0
# Chunks in flight: the broker holds them for the service's session; far above
# what a 2,000-device second needs, so the broker never drops one. Notices
# (connects, disconnects, keep-alive timeouts, dropped messages) go to
# broker-{devices}x{workers}.log in the report folder.
BROKER_CONF = "max_queued_messages 1000000\nmax_queued_bytes 0\nlog_type notice"
_TICK_HZ = os.sysconf("SC_CLK_TCK")


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


# -- CPU of other processes, from /proc --------------------------------------

def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state is field 0)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren ...)."""
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            f = _stat(int(name))
            if f is not None:
                parent[int(name)] = int(f[1])
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        frontier += kids
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` (those still alive)."""
    total = 0
    for pid in pids:
        f = _stat(pid)
        if f is not None:
            total += int(f[11]) + int(f[12])
    return total / _TICK_HZ


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


# -- the consumer ------------------------------------------------------------

class Consumer:
    """Records alerts, metrics, status and rejects with their arrival wall time.

    The paho callback only appends ``(topic, payload, time.time())``; all
    parsing happens after the run.
    """

    TOPICS = [("ecg/v1/+/alerts", 1), (f"{METRICS_TOPIC}/#", 1),
              (f"{STATUS_TOPIC}/#", 1), ("ecgwatch/v1/rejects", 1)]

    def __init__(self, url: str) -> None:
        u = BrokerURL.parse(url)
        self.messages: list[tuple[str, bytes, float]] = []
        subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"bench-consumer-{uuid.uuid4().hex[:8]}",
                                  protocol=paho.MQTTv311)
        self.client.on_connect = lambda c, ud, fl, rc, pr: c.subscribe(self.TOPICS)
        self.client.on_subscribe = lambda c, ud, mid, rcs, pr: subscribed.set()
        self.client.on_message = lambda c, ud, m: self.messages.append(
            (m.topic, bytes(m.payload), time.time()))
        self.client.connect(u.host, u.port, keepalive=60)
        self.client.loop_start()
        if not subscribed.wait(10.0):
            self.close()
            raise BrokerError(f"The benchmark consumer could not subscribe at {url}.")

    def latest(self, prefix: str, after: float = 0.0) -> dict[str, tuple[float, Any]]:
        """The last JSON message per topic starting with ``prefix``, received after ``after``."""
        out = {}
        for topic, payload, at in list(self.messages):
            if topic.startswith(prefix) and at >= after:
                out[topic] = (at, json.loads(payload))
        return out

    def online(self) -> int:
        return sum(doc.get("state") == "online" for _, doc in self.latest(STATUS_TOPIC).values())

    def offline(self) -> int:
        return sum(doc.get("state") == "offline" for _, doc in self.latest(STATUS_TOPIC).values())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _wait(predicate, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


# -- one run -----------------------------------------------------------------

@dataclass(slots=True)
class RawRun:
    """Everything one run measured; ``bench_e2e_report.analyse`` turns it into figures."""

    devices: int
    workers: int
    warmup: int
    seconds: int
    slots: int
    start: float                    # wall time of tick 0's due time minus one chunk
    window: tuple[float, float]     # measured wall window (after warm-up)
    pub: PubResult
    messages: list[tuple[str, bytes, float]]
    cpu: dict[str, float]           # CPU seconds within the window: service, publisher, broker
    loadavg: tuple[float, float]    # 1-min load average at the window's start and end
    drained_s: float                # seconds from the last chunk until all were accounted for
    drained: bool
    stopped_at: float               # wall time the service was sent SIGTERM
    service_exit: int | None
    service_log: str
    extra: dict[str, Any] = field(default_factory=dict)


def run_one(devices: int, workers: int, opts: dict[str, Any], out: Path) -> RawRun:
    """One fleet size with one worker count, on a fresh broker."""
    total = opts["warmup"] + opts["seconds"]
    log_path = out / f"service-{devices}x{workers}.log"
    # The alert outbox is part of the measured path (SQLite on disk, as deployed),
    # in a directory of this run's own rather than the user's state directory.
    with MosquittoBroker(extra_conf=BROKER_CONF) as broker, \
            tempfile.TemporaryDirectory(prefix="ecgwatch-bench-e2e-") as state:
        plan = PubPlan(broker.url, devices, total, opts["slots"], opts["seed"])
        ctx = mp.get_context("spawn")
        conn, child = ctx.Pipe()
        pub = ctx.Process(target=publisher_main, args=(plan, child), name="bench-publisher")
        pub.start()
        consumer = Consumer(broker.url)
        client_id = f"bench-{uuid.uuid4().hex[:6]}"
        with open(log_path, "wb") as log_file:
            service = subprocess.Popen(
                [sys.executable, "-m", "ecgwatch.cli", "serve", "--broker", broker.url,
                 "--workers", str(workers), "--client-id", client_id, "--log-level", "WARNING",
                 "--outbox", str(Path(state) / "outbox-{client_id}.sqlite3")],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
        try:
            return _drive(plan, conn, pub, consumer, service, broker, workers, opts, log_path)
        finally:
            if service.poll() is None:
                service.kill()
                service.wait()
            if pub.is_alive():
                pub.kill()
            pub.join(5)
            consumer.close()
            (out / f"broker-{devices}x{workers}.log").write_text(broker.log())


def _drive(plan: PubPlan, conn, pub, consumer: Consumer, service: subprocess.Popen,
           broker: MosquittoBroker, workers: int, opts: dict[str, Any],
           log_path: Path) -> RawRun:
    if not _wait(lambda: consumer.online() >= workers or service.poll() is not None,
                 START_TIMEOUT_S) or service.poll() is not None:
        raise BrokerError(f"The service ({workers} worker(s)) did not come online within "
                          f"{START_TIMEOUT_S:g} s: {_tail(log_path)}")
    if not conn.poll(START_TIMEOUT_S + plan.devices * 0.05):
        raise EcgwatchError(f"The benchmark publisher did not finish rendering {plan.devices} "
                            "devices in time.")
    what, detail = conn.recv()
    if what != "ready":
        raise EcgwatchError(f"The benchmark publisher failed: {detail}")
    service_pids = [service.pid] + descendants(service.pid)
    broker_pids = [p for p in descendants(os.getpid()) if _comm(p) == "mosquitto"]
    start = time.time() + 1.0
    conn.send(("go", start))
    t_a, t_b = start + opts["warmup"], start + plan.seconds
    groups = {"service": service_pids, "publisher": [pub.pid], "broker": broker_pids}
    time.sleep(max(0.0, t_a - time.time()))
    cpu_a = {k: cpu_seconds(v) for k, v in groups.items()}
    load_a = os.getloadavg()[0]
    time.sleep(max(0.0, t_b - time.time()))
    cpu_b = {k: cpu_seconds(v) for k, v in groups.items()}
    load_b = os.getloadavg()[0]
    if not conn.poll(ACK_TIMEOUT_S + 30.0):
        raise EcgwatchError("The benchmark publisher did not report back after its last chunk.")
    what, result = conn.recv()
    if what != "done":
        raise EcgwatchError(f"The benchmark publisher failed: {result}")
    end = start + plan.seconds + 1.0       # the last group's due time is just before this
    drained = _wait(lambda: _accounted(consumer, end, workers) >= result.published,
                    opts["drain"], step=0.5)
    stopped_at = time.time()
    drained_s = max(0.0, stopped_at - end)
    service.send_signal(signal.SIGTERM)
    try:
        exit_code: int | None = service.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        exit_code = None
    _wait(lambda: consumer.offline() >= workers, 10.0)
    return RawRun(plan.devices, workers, opts["warmup"], opts["seconds"], plan.slots, start,
                  (t_a, t_b), result, list(consumer.messages),
                  {k: cpu_b[k] - cpu_a[k] for k in groups}, (load_a, load_b), drained_s,
                  drained, stopped_at, exit_code, _tail(log_path))


def _accounted(consumer: Consumer, after: float, workers: int) -> int:
    """Chunks the service's metrics account for (processed, rejected or dropped), once
    every worker has published metrics after ``after``; else -1."""
    snaps = consumer.latest(METRICS_TOPIC, after)
    if len(snaps) < workers:
        return -1
    return sum(d["chunks_processed"] + d["rejects_total"] + d["inbox_overflow"]
               for _, d in snaps.values())


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:].strip() or "(empty log)"
    except OSError:
        return "(no log)"


# -- options and the command -------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags only ``--e2e`` uses (``--devices``, ``--seconds``, ``--seed``,
    ``--quick`` and ``--out`` are shared with the in-process bench)."""
    p.add_argument("--e2e", action="store_true",
                   help="end to end through mosquitto instead (parts 2 and 4): real-time fleet, "
                        "'ecgwatch serve' as a subprocess, alerts timed at a consumer")
    p.add_argument("--warmup", type=int, metavar="S",
                   help="--e2e: seconds before measuring (default 15)")
    p.add_argument("--workers", type=int, nargs="+", metavar="N",
                   help="--e2e: 'serve --workers' counts, one run each per size (default 1 2)")
    p.add_argument("--slots", type=int, metavar="K",
                   help="--e2e: publication groups per second (default 20)")
    p.add_argument("--drain", type=float, metavar="S",
                   help="--e2e: seconds the service gets after the last chunk (default 30)")


def resolve(args: argparse.Namespace, error) -> dict[str, Any]:
    """--e2e options after --quick and the defaults; ``error(message)`` exits."""
    base = QUICK if args.quick else DEFAULTS
    opts = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in base.items()}
    opts["seed"] = args.seed
    problems = []
    for name in ("devices", "workers"):
        if any(n < 1 for n in opts[name]):
            problems.append(f"--{name} must all be at least 1")
    for name in ("seconds", "slots"):
        if opts[name] < 1:
            problems.append(f"--{name} must be at least 1")
    if opts["warmup"] < 0 or opts["drain"] < 0:
        problems.append("--warmup and --drain must not be negative")
    if find_mosquitto() is None:
        problems.append("--e2e needs mosquitto (not found on PATH or at /usr/sbin/mosquitto)")
    if problems:
        error("; ".join(problems))
    opts["devices"] = sorted(set(opts["devices"]))
    opts["workers"] = sorted(set(opts["workers"]))
    return opts


def main(args: argparse.Namespace, error) -> int:
    from .bench_e2e_report import write_reports

    opts = resolve(args, error)
    out = Path(args.out or "out/bench-e2e")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    runs = []
    for n in opts["devices"]:
        for w in opts["workers"]:
            say(f"e2e: {n} devices, --workers {w}, {opts['warmup']} s warm-up + "
                f"{opts['seconds']} s ...")
            raw = run_one(n, w, opts, out)
            runs.append(raw)
            say(f"  published {raw.pub.published}, service CPU "
                f"{100 * raw.cpu['service'] / (raw.window[1] - raw.window[0]):.0f} % of a core, "
                f"load average {raw.loadavg[1]:.2f}")
    doc = write_reports(runs, opts, time.perf_counter() - started, out)
    for r in doc["runs"]:
        say(f"{r['devices']} devices x{r['workers']}: lost {r['chunks']['lost']}, processing "
            f"p99 {r['processing_latency_ms']['p99']} ms, alarms {r['alarms']['matched']}/"
            f"{r['alarms']['scripted']}{'' if r['valid'] else ' (INVALID: publisher lagged)'}")
    say(f"report: {out / 'report.md'} and {out / 'report.json'}")
    return 0
