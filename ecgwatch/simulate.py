"""``ecgwatch simulate``: a fleet of simulated wearables publishing ECG over MQTT.

Each device is a *source* with ``read(n) -> samples (mV)``, ``fs`` and
``name``: a :class:`ecgwatch.synth.SyntheticSource` (synthetic ECG with
scripted events and ground truth) or a :class:`WfdbSource` (a PhysioNet
record replayed). :class:`ChunkStream` cuts a source into v1 chunks with a
per-device ``seq`` and device-time ``t0``; :func:`run_fleet` publishes every
device's chunks at QoS 1, paced at real time times ``speed`` (``speed=0``:
as fast as possible), over one MQTT 3.1.1 connection so it works with the
embedded broker too.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from detect.errors import BrokerError, EcgwatchError
from detect.types import MAX_CHUNK_S, MIN_CHUNK_S, Chunk, FloatArray
from ingest.mqtt import BrokerURL
from ingest.payload import encode_binary, encode_json
from ingest.topics import samples_topic

from .synth import Event, Scenario, SyntheticSource

log = logging.getLogger(__name__)


class Source(Protocol):
    name: str
    fs: float

    def read(self, n_samples: int) -> FloatArray: ...


def demo_scenarios() -> list[Scenario]:
    """The scripted fleet of the 60 s demo: one patient per alarm worth seeing."""
    return [
        Scenario("bed-1-normal", 72, (), seed=1),
        Scenario("bed-2-asystole", 68, (Event("asystole", 20.0, 6.0),), seed=2),
        Scenario("bed-3-brady", 62, (Event("bradycardia", 12.0, 24.0, bpm=34),), seed=3),
        Scenario("bed-4-tachy", 85, (Event("tachycardia", 10.0, 24.0, bpm=165),), seed=4),
        Scenario("bed-5-pauses", 70, (Event("pause", 15.0, 3.0), Event("pause", 38.0, 2.8)),
                 seed=5),
        Scenario("bed-6-mixed", 80, (Event("af", 5.0, 15.0), Event("ectopic", 5.0, 50.0,
                                                                 fraction=0.15),
                                     Event("noise", 20.0, 12.0, snr_db=-15.0),
                                     Event("lead_off", 36.0, 8.0)), seed=6),
        # AF from 6 s: raised once 30 s of it are sure (about 45 s into the demo).
        Scenario("bed-7-af", 78, (Event("af", 6.0, 50.0),), seed=9),
        Scenario("bed-8-pvc", 75, (Event("ectopic", 0.0, 600.0, pattern="bigeminy"),), seed=7),
        Scenario("bed-9-saturation", 70, (Event("saturation", 25.0, 8.0),), seed=8),
    ]


#: Single-condition scenarios for ``--scenario`` (each device gets its own seed).
NAMED = {
    "normal": (),
    "asystole": (Event("asystole", 20.0, 6.0),),
    "brady": (Event("bradycardia", 15.0, 30.0, bpm=35),),
    "tachy": (Event("tachycardia", 15.0, 25.0, bpm=160),),
    "af": (Event("af", 10.0, 3600.0),),
    "ectopic": (Event("ectopic", 0.0, 3600.0, fraction=0.2),),
    "noise": (Event("noise", 15.0, 10.0, snr_db=-12.0),),
    "lead_off": (Event("lead_off", 20.0, 10.0),),
    "pause": (Event("pause", 20.0, 3.0),),
}


def fleet_scenarios(n: int, seed: int = 0, prefix: str = "sim") -> list[Scenario]:
    """A realistic mix for ``n`` devices: mostly normal, some ectopy, AF, noise, events.

    Deterministic for a given ``seed``; device ids are ``{prefix}-00001`` on.
    """
    rng = np.random.default_rng(seed)
    kinds = ["normal"] * 14 + ["ectopic"] * 2 + ["af"] * 2 + ["noise", "pause", "asystole",
                                                             "brady", "tachy", "lead_off"]
    out = []
    for i in range(n):
        kind = kinds[int(rng.integers(len(kinds)))] if i else "normal"
        hr = float(rng.uniform(55, 95))
        out.append(Scenario(f"{prefix}-{i + 1:05d}", hr, NAMED[kind], seed=seed * 100_003 + i))
    return out


class WfdbSource:
    """A PhysioNet record, one channel in mV, read block by block."""

    def __init__(self, record_path: str | Path, channel: int = 0, name: str | None = None) -> None:
        from .evaluation.records import read_signal
        path = Path(record_path)
        base = path.with_suffix("") if path.suffix in (".hea", ".dat") else path
        if not base.with_suffix(".hea").exists():
            raise EcgwatchError(f"No WFDB record at {base} (expected {base.with_suffix('.hea')}).")
        self._x, self.fs = read_signal(base, channel)
        self.name = name or re.sub(r"[^A-Za-z0-9_-]", "-", f"rec-{base.name}")[:64]
        self.position = 0

    def read(self, n_samples: int) -> FloatArray:
        out = self._x[self.position:self.position + n_samples]
        self.position += out.size
        return out


class ChunkStream:
    """Cuts a source into consecutive chunks with ``seq`` and device time ``t0``.

    ``duration_s`` caps the stream (a record replay is otherwise as long as the
    record); a tail shorter than the 0.1 s minimum chunk is dropped.
    """

    def __init__(self, source: Source, chunk_s: float, t0: float, device_id: str | None = None,
                 duration_s: float | None = None) -> None:
        if not MIN_CHUNK_S <= chunk_s <= MAX_CHUNK_S:
            raise EcgwatchError(f"Chunk length {chunk_s!r} s is outside "
                                f"{MIN_CHUNK_S:g}..{MAX_CHUNK_S:g} s.")
        self.source = source
        self.device_id = device_id or source.name
        # Whole samples, never outside the contract: at a rate that is not a whole
        # number of Hz, round(0.1 * fs) samples can last just under 0.1 s.
        self.min_n = math.ceil(MIN_CHUNK_S * source.fs - 1e-9)
        self.n = min(max(int(round(chunk_s * source.fs)), self.min_n),
                     math.floor(MAX_CHUNK_S * source.fs + 1e-9))
        self.t0 = t0
        self.seq = 0
        self._sent = 0
        self._limit = None if duration_s is None else int(round(duration_s * source.fs))

    def next(self) -> Chunk | None:
        """The next chunk, or None when the source is exhausted (a short tail is dropped)."""
        want = self.n if self._limit is None else min(self.n, self._limit - self._sent)
        if want < self.min_n:
            return None
        x = self.source.read(want)
        if x.size < self.min_n:
            return None
        c = Chunk(self.device_id, self.seq, self.t0 + self._sent / self.source.fs,
                  float(self.source.fs), np.ascontiguousarray(x, dtype=np.float64))
        self.seq += 1
        self._sent += x.size
        return c


@dataclass(frozen=True, slots=True)
class FleetStats:
    devices: int
    chunks: int
    seconds: float          # wall time spent publishing
    late: int               # chunks published later than their pacing slot by > one chunk
    unconfirmed: int = 0    # QoS 1 chunks not known to be acknowledged at the end


def run_fleet(url: str, sources: Sequence[Scenario | Source], duration: float,
              speed: float = 1.0, fmt: str = "json", stop_event: threading.Event | None = None,
              *, chunk_s: float = 1.0, fs: float = 250.0, client_id_prefix: str = "sim",
              t0: float | None = None, ack_timeout: float = 10.0) -> FleetStats:
    """Publish ``duration`` wall seconds of every source (``duration * speed`` of ECG).

    With ``speed=0`` it publishes ``duration`` seconds of ECG as fast as the broker
    takes them. Every source stops there, record replays included. At the end
    it waits up to ``ack_timeout`` s for the broker's acknowledgements; a broker
    that went away is counted in ``unconfirmed``, not raised.
    """
    if fmt not in ("json", "binary"):
        raise EcgwatchError(f"Payload format {fmt!r} is neither 'json' nor 'binary'.")
    if speed < 0:
        raise EcgwatchError(f"Speed {speed!r} must be 0 (as fast as possible) or positive.")
    stop = stop_event or threading.Event()
    signal_s = duration * speed if speed > 0 else duration
    start_device_time = time.time() if t0 is None else t0
    streams = [ChunkStream(s if not isinstance(s, Scenario)
                           else SyntheticSource(s, fs, signal_s), chunk_s, start_device_time,
                           duration_s=signal_s)
               for s in sources]
    encode = encode_binary if fmt == "binary" else encode_json
    client = connect_publisher(url, f"{client_id_prefix}-{uuid.uuid4().hex[:8]}")
    start = time.monotonic()
    sent = late = 0
    pending: list[paho.MQTTMessageInfo] = []
    try:
        k = 0
        while not stop.is_set() and streams:
            if speed > 0:
                # Chunk k exists on the device once its last sample was taken.
                due = start + (k + 1) * chunk_s / speed
                lag = time.monotonic() - due
                if lag < 0:
                    if stop.wait(-lag):
                        break
                elif lag > chunk_s / speed:
                    late += 1
            alive = []
            for st in streams:
                c = st.next()
                if c is None:
                    continue
                alive.append(st)
                pending.append(client.publish(samples_topic(c.device_id), encode(c), qos=1))
                sent += 1
            streams = alive
            pending = [m for m in pending if not _acked(m)]
            k += 1
        unconfirmed = wait_acked(pending, ack_timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return FleetStats(len(sources), sent, time.monotonic() - start, late, unconfirmed)


def wait_acked(pending: list[paho.MQTTMessageInfo], timeout: float) -> int:
    """Wait up to ``timeout`` s in all for the broker's PUBACKs; how many never came."""
    deadline = time.monotonic() + timeout
    for m in pending:
        try:
            m.wait_for_publish(timeout=max(0.0, deadline - time.monotonic()))
        except (RuntimeError, ValueError):      # published while disconnected
            pass
    return sum(not _acked(m) for m in pending)


def _acked(m: paho.MQTTMessageInfo) -> bool:
    """Whether the broker acknowledged ``m``. paho raises for a message published
    while disconnected (it may still resend it later); that one counts as not
    known to be acknowledged instead of ending the fleet."""
    try:
        return m.is_published()
    except (RuntimeError, ValueError):
        return False


def connect_publisher(url: str, client_id: str, *, max_inflight: int = 1000,
                      keepalive: int = 30, who: str = "The simulator") -> paho.Client:
    """A publishing MQTT 3.1.1 client with its network loop started, once the
    broker accepted it (``who`` names it in the BrokerError otherwise).

    ``max_inflight``: QoS 1 messages awaiting PUBACK; at thousands of messages
    a second a small window would make the loopback round trip the limit.
    """
    u = BrokerURL.parse(url)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv311)
    client.max_inflight_messages_set(max_inflight)
    client.max_queued_messages_set(0)
    if u.scheme == "mqtts":
        client.tls_set()            # system CA bundle; the simulator sends no secrets
    connected = threading.Event()
    client.on_connect = (lambda c, ud, flags, rc, props:
                         connected.set() if not rc.is_failure else None)
    try:
        client.connect(u.host, u.port, keepalive=keepalive)
    except OSError as e:
        raise BrokerError(f"{who} cannot reach the broker at {url}: {e}.") from e
    client.loop_start()
    if not connected.wait(10.0):
        client.loop_stop()
        raise BrokerError(f"The broker at {url} did not accept {who[0].lower() + who[1:]} "
                          "within 10 s.")
    return client


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--broker", default="mqtt://127.0.0.1:1883", metavar="URL")
    ap.add_argument("--devices", type=int, default=10, help="number of simulated devices")
    ap.add_argument("--duration", type=float, default=60.0, metavar="S",
                    help="wall seconds to run (ECG seconds = duration x speed)")
    ap.add_argument("--speed", type=float, default=1.0,
                    help="ECG seconds per wall second; 0 = as fast as possible")
    ap.add_argument("--chunk", type=float, default=1.0, metavar="S", help="chunk length, 0.1..10 s")
    ap.add_argument("--fs", type=float, default=250.0, help="sampling rate of synthetic devices")
    ap.add_argument("--format", choices=["json", "binary"], default="json")
    ap.add_argument("--scenario", choices=sorted(NAMED) + ["mix", "demo"], default="mix",
                    help="what every synthetic device does (mix: a realistic fleet)")
    ap.add_argument("--record", action="append", default=[], metavar="PATH",
                    help="replay this WFDB record instead (repeatable; one device each)")
    ap.add_argument("--seed", type=int, default=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ecgwatch simulate", description=__doc__.splitlines()[0])
    add_arguments(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        if args.record:
            sources: list = [WfdbSource(p) for p in args.record]
        elif args.scenario == "mix":
            sources = fleet_scenarios(args.devices, args.seed)
        elif args.scenario == "demo":
            sources = demo_scenarios()[:args.devices]
        else:
            ev = NAMED[args.scenario]
            sources = [Scenario(f"sim-{args.scenario.replace('_', '-')}-{i + 1:04d}",
                                70.0, ev, seed=args.seed * 100_003 + i)
                       for i in range(args.devices)]
        print(f"publishing {len(sources)} devices to {args.broker} for {args.duration:g} s "
              f"at {args.speed:g}x ({args.format})", file=sys.stderr)
        stats = run_fleet(args.broker, sources, args.duration, args.speed, args.format,
                          chunk_s=args.chunk, fs=args.fs)
    except EcgwatchError as e:
        print(f"ecgwatch simulate: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(f"sent {stats.chunks} chunks from {stats.devices} devices in {stats.seconds:.1f} s"
          + (f" ({stats.late} late)" if stats.late else ""), file=sys.stderr)
    if stats.unconfirmed:
        print(f"ecgwatch simulate: warning: the broker did not acknowledge "
              f"{stats.unconfirmed} of them", file=sys.stderr)
        return 1
    return 0
