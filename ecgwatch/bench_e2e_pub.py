"""The device side of ``ecgwatch bench --e2e``: a simulated fleet publishing in real time.

Runs in its own process (``publisher_main``), apart from the service whose
CPU the benchmark measures and from the consumer that times the alerts. It
renders the fleet mix (``ecgwatch.simulate.fleet_scenarios``) at 250 Hz and
encodes every 1 s chunk as a binary v1 payload *before* the clock starts, so
that synthesis never competes with publishing; what it keeps of the
synthesiser is the ground truth (``TruthEvent``: where each scripted event
really starts).

Pacing: chunk ``k`` of a device exists once its last sample was taken, at
``start + k + 1`` s. Real wearables are not synchronised, so the fleet is cut
into ``slots`` groups and group ``g`` publishes its chunk ``k`` at
``start + k + 1 + g / slots`` s: the load arrives spread over the second, not
as one burst per second that would measure the burst instead of the service.
The wall time (``time.time()``, comparable across processes on one machine)
at which each group's publication began is recorded: it is the publication
time of every chunk in that group, from which alarm latency is measured. The
publisher's own lag (how late each group started against its due time) says
whether the offered load was really real time.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection

import paho.mqtt.client as paho

from detect.errors import ConfigError
from detect.types import Chunk
from ingest.mqtt import BrokerURL
from ingest.payload import encode_binary
from ingest.topics import samples_topic

from .simulate import connect_publisher, fleet_scenarios, wait_acked
from .synth import synthesize

FS = 250.0
CHUNK_S = 1.0
DEVICE_T0 = 1_700_000_000.0     # device time of every stream's first sample
ACK_TIMEOUT_S = 30.0
# Scripted event kinds that should raise an alarm, and the alarm's condition.
ALARM_OF_EVENT = {"asystole": "asystole", "bradycardia": "extreme_bradycardia",
                  "tachycardia": "extreme_tachycardia", "pause": "pause",
                  "af": "atrial_fibrillation", "lead_off": "leads_off",
                  "noise": "unusable_signal", "saturation": "saturation"}


@dataclass(frozen=True, slots=True)
class PubPlan:
    """What to publish: ``devices`` x ``seconds`` of ECG in ``slots`` groups per second."""

    url: str
    devices: int
    seconds: int
    slots: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        BrokerURL.parse(self.url)
        for name, lo in (("devices", 1), ("seconds", 1), ("slots", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or v < lo:
                raise ConfigError(f"Publisher setting {name}={v!r} must be an integer >= {lo}.")

    def slot_of(self, device: int) -> int:
        """The publication group of device number ``device`` (contiguous blocks)."""
        return device * self.slots // self.devices


@dataclass(frozen=True, slots=True)
class Onset:
    """A scripted event that should raise ``condition`` on ``device`` (seconds from start)."""

    device: str
    index: int
    kind: str
    condition: str
    onset_s: float
    offset_s: float


@dataclass(frozen=True, slots=True)
class PubResult:
    ids: tuple[str, ...]
    mix: dict[str, int]
    truth: tuple[Onset, ...]
    published: int
    unconfirmed: int            # QoS 1 chunks the broker never acknowledged
    slot_wall: tuple[tuple[float, ...], ...]   # [tick][slot]: time.time() the group began
    lag_s: tuple[tuple[float, ...], ...]       # [tick][slot]: began minus due, seconds
    render_s: float             # wall seconds spent rendering and encoding
    cpu_s: float                # this process's CPU seconds while publishing

    def publish_wall(self, device: int, chunk: int, slots: int) -> float:
        """Wall time at which chunk ``chunk`` of device number ``device`` was published."""
        return self.slot_wall[chunk][device * slots // len(self.ids)]


def render(plan: PubPlan) -> tuple[list[str], list[list[bytes]], dict[str, int], list[Onset]]:
    """Topics, payloads[device][chunk], the fleet mix and the alarm-raising truth events."""
    scenarios = fleet_scenarios(plan.devices, plan.seed)
    n = int(FS * CHUNK_S)
    topics, payloads, truth = [], [], []
    mix: dict[str, int] = {}
    for i, s in enumerate(scenarios):
        rec = synthesize(s, FS, float(plan.seconds))
        x = rec.signal
        topics.append(samples_topic(s.name))
        payloads.append([encode_binary(Chunk(s.name, k, DEVICE_T0 + k * CHUNK_S, FS,
                                             x[k * n:(k + 1) * n]))
                         for k in range(plan.seconds)])
        kind = "+".join(e.kind for e in s.events) or "normal"
        mix[kind] = mix.get(kind, 0) + 1
        truth += [Onset(s.name, i, e.kind, ALARM_OF_EVENT[e.kind], e.onset, e.offset)
                  for e in rec.events if e.kind in ALARM_OF_EVENT]
    return topics, payloads, dict(sorted(mix.items())), truth


def connect(url: str) -> paho.Client:
    """The publisher's MQTT client: a deep in-flight window (QoS 1 at a few
    thousand messages a second), network loop started."""
    return connect_publisher(url, f"bench-pub-{uuid.uuid4().hex[:8]}", max_inflight=5000,
                             keepalive=60, who="The benchmark publisher")


def publish(plan: PubPlan, client: paho.Client, topics: list[str],
            payloads: list[list[bytes]], start: float) -> tuple[list, list, int, int, float]:
    """Publish every chunk on its schedule from wall time ``start``.

    Returns (slot_wall, lag, published, unconfirmed, cpu_s).
    """
    groups = [range(g * plan.devices // plan.slots, (g + 1) * plan.devices // plan.slots)
              for g in range(plan.slots)]
    slot_wall = [[0.0] * plan.slots for _ in range(plan.seconds)]
    lag = [[0.0] * plan.slots for _ in range(plan.seconds)]
    pending: list[paho.MQTTMessageInfo] = []
    published = 0
    cpu0 = time.process_time()
    for k in range(plan.seconds):
        for g, members in enumerate(groups):
            due = start + (k + 1) * CHUNK_S + g * CHUNK_S / plan.slots
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            began = time.time()
            slot_wall[k][g], lag[k][g] = began, began - due
            for i in members:
                pending.append(client.publish(topics[i], payloads[i][k], qos=1))
            published += len(members)
        pending = [m for m in pending if not _acked(m)]
    cpu_s = time.process_time() - cpu0
    return slot_wall, lag, published, wait_acked(pending, ACK_TIMEOUT_S), cpu_s


def _acked(m: paho.MQTTMessageInfo) -> bool:
    try:
        return m.is_published()
    except (RuntimeError, ValueError):
        return False


def publisher_main(plan: PubPlan, conn: Connection) -> None:
    """Child process: render, say ("ready", render_s), wait for ("go", start), publish,
    send ("done", PubResult). Any failure is sent as ("error", message)."""
    try:
        t = time.perf_counter()
        topics, payloads, mix, truth = render(plan)
        render_s = time.perf_counter() - t
        client = connect(plan.url)
        try:
            conn.send(("ready", render_s))
            what, start = conn.recv()
            if what != "go":
                return
            slot_wall, lag, published, unconfirmed, cpu_s = publish(plan, client, topics,
                                                                     payloads, start)
        finally:
            client.disconnect()
            client.loop_stop()
        ids = tuple(t.split("/")[2] for t in topics)
        conn.send(("done", PubResult(ids, mix, tuple(truth), published, unconfirmed,
                                     tuple(map(tuple, slot_wall)), tuple(map(tuple, lag)),
                                     render_s, cpu_s)))
    except Exception as e:      # reported to the parent, which names the run
        conn.send(("error", f"{type(e).__name__}: {e}"))
