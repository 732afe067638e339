"""The ecgwatch service: MQTT inbox -> per-device monitors -> alerts, state, metrics.

One thread does all the work (``run`` / ``step``); paho's network thread only
fills the bounded inbox (see ingest.mqtt). Bad input never stops the loop: a
message that cannot be used becomes a reject on ``ecgwatch/v1/rejects`` with a
stable reason code and is counted, and an unexpected exception while handling
one device's chunk is logged and counted as reason ``internal``.

Time is injected (``clock``): timeouts inside the device monitors and the
state/metrics cadence follow it, so tests drive them with a fake clock.
"""

from __future__ import annotations

import gc
import json
from collections import deque
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from detect import DETECTOR_VERSION
from detect.batch import SignalBatcher
from detect.classify import BeatBatcher, BeatClassifier
from detect.config import DetectorConfig
from detect.errors import BrokerError, ConfigError, InputError
from detect.pipeline import DevicePipeline
from detect.types import AlarmTransition
from ingest.device import DeviceMonitor, MonitorResult, StateThrottle
from ingest.mqtt import BrokerURL, Credentials, MqttEdge, Protocol, Received, TlsOptions, Will
from ingest.payload import decode_samples
from ingest.reassembly import Duplicate, Gap, Late
from ingest.topics import (CONFIG_SUBSCRIPTION, METRICS_TOPIC, REJECTS_TOPIC,
                           SAMPLES_SUBSCRIPTION, STATUS_TOPIC, alerts_topic, parse_device_topic,
                           samples_topic, state_topic)

from . import __version__
from .allocator import fix_mmap_threshold
from .metrics import Counters
from .outbox import MEMORY, Entry, Outbox, republish

log = logging.getLogger(__name__)
MAX_CONFIG_BYTES = 16 * 1024        # a device config document is a few hundred bytes
OVERLOAD_FILL = 0.8                 # inbox share that counts as overloaded ...
RECOVER_FILL = 0.2                  # ... and the share it must drain below, with
RECOVER_S = 10.0                    # no drop and no fill past OVERLOAD_FILL this long, to recover
STOP_OUTBOX_S = 2.0                 # a clean stop waits this long for pending alerts' acks

# Echoing a hostile topic back whole in a reject would amplify it.
_MAX_ECHOED_TOPIC = 200
# Python's cyclic garbage collector, for a process that holds thousands of
# devices' state. With the default thresholds (700, 10, 10) every tick's
# short-lived objects (chunks, results, beats) promote survivors into the old
# generation and set off full collections, each walking every object of every
# device: at 5,000 devices ten of them in 12 simulated seconds, 0.29 s each,
# and GC took 4.1 of 34 CPU s. A young generation larger than what one tick
# holds at once lets those objects die young. 50,000 was below that at 5,000
# devices, whose ticks peak at 77,000-97,000 young objects (about 19 per
# device): a young collection every tick and a middle one every 20. 200,000
# is twice that peak. The pipeline makes no garbage cycles (none found after
# 35 ticks of 1,000 devices with the collector off), so what waits longer for
# a collection is only the MQTT edge's occasional cycle (bench/gc_cost.py,
# docs/performance.md).
GC_THRESHOLDS = (200_000, 20, 20)
STATE_INTERVAL_S = 10.0             # a device's state re-published at least this often


def tune_gc() -> None:
    """Set the collector's thresholds for serving many devices (``GC_THRESHOLDS``)."""
    gc.set_threshold(*GC_THRESHOLDS)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Everything ``Service`` needs; validated once, never mutated."""

    broker: BrokerURL
    client_id: str = "ecgwatch"
    tls: TlsOptions | None = None
    credentials: Credentials | None = None     # its repr hides the password
    protocol: Protocol = "auto"
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    state_interval_s: float = STATE_INTERVAL_S   # re-publish each device state this often
    metrics_interval_s: float = 10.0
    tick_interval_s: float = 1.0        # how often monitors see the clock without data
    inbox_size: int = 10_000
    batch_size: int = 500               # messages handled before periodic work runs
    max_devices: int = 10_000           # more distinct ids than this are rejected
    connect_timeout_s: float = 10.0
    # ONNX beat model: None = no beat labels (the rate and technical alarms
    # run regardless); "default" = the model shipped in models/; else a path.
    beat_model: str | None = None
    # (index, count): this process serves the devices whose stable hash falls
    # in its slot (ecgwatch serve --workers count); (0, 1) serves every device.
    partition: tuple[int, int] = (0, 1)
    # Persistent MQTT session: the broker keeps our subscriptions and every
    # unacknowledged chunk this long while we are away (0: a clean session).
    session_expiry_s: int = 3600
    # Alert outbox (SQLite file, "{client_id}" replaced by the client id), or
    # ":memory:" (survives reconnects, not restarts).
    outbox: str = MEMORY

    def __post_init__(self) -> None:
        index, count = self.partition
        if not (isinstance(count, int) and isinstance(index, int) and 0 <= index < count):
            raise ConfigError(f"Service partition {self.partition!r} must be (index, count) "
                              "with 0 <= index < count.")
        if not isinstance(self.broker, BrokerURL):
            raise ConfigError(f"Service broker {self.broker!r} must be a BrokerURL.")
        if not self.client_id:
            raise ConfigError("Service MQTT client id is empty.")
        for name in ("state_interval_s", "metrics_interval_s", "tick_interval_s",
                     "connect_timeout_s"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(f"Service setting {name}={v!r} must be a positive number.")
        if not isinstance(self.session_expiry_s, int) or self.session_expiry_s < 0:
            raise ConfigError(f"Service setting session_expiry_s={self.session_expiry_s!r} must "
                              "be a whole number of seconds, 0 or more.")
        if not isinstance(self.outbox, str) or not self.outbox:
            raise ConfigError(f"Service setting outbox={self.outbox!r} must be a file path or "
                              f"{MEMORY!r}.")
        for name in ("inbox_size", "batch_size", "max_devices"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"Service setting {name}={v!r} must be a positive integer.")

    @property
    def outbox_path(self) -> str:
        return self.outbox.replace("{client_id}", self.client_id)


class Service:
    """Owns the MQTT edge, one DeviceMonitor per device id, and the counters."""

    def __init__(self, config: ServiceConfig, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.counters = Counters()
        # Large per-tick temporaries back to the OS when freed (ecgwatch/allocator.py).
        fix_mmap_threshold()
        # Back-pressure: the inbox is bounded; running full is reported, not silent.
        self._overloaded = False
        self._dropped_seen = 0
        self._last_busy_at = 0.0             # last drop or fill past OVERLOAD_FILL
        self._peak_depth = 0
        # One service publishes its status and metrics on the shared topics;
        # the workers of a partitioned service each on their own sub-topic.
        shared = config.partition[1] == 1
        self._status_topic = STATUS_TOPIC if shared else f"{STATUS_TOPIC}/{config.client_id}"
        self._metrics_topic = METRICS_TOPIC if shared else f"{METRICS_TOPIC}/{config.client_id}"
        self.monitors: dict[str, DeviceMonitor] = {}
        self.device_configs: dict[str, DetectorConfig] = {}   # from ecg/v1/{id}/config
        # One model session per process, loaded now so a bad file fails at
        # start-up; beats of all devices are labelled in one call per step.
        self.batcher: BeatBatcher | None = None
        # The filters of every device with a chunk in a batch run in one pass
        # (detect/batch.py); what the batch touched is finished in _complete.
        self.signals = SignalBatcher()
        # Handled messages, acknowledged in order once analysed: (message,
        # device, seq) with device and seq set for chunks handed to a monitor.
        self._to_ack: deque[tuple[Received, str | None, int | None]] = deque()
        self._arrivals: list[float] = []         # inbox arrival times of the batch's chunks
        self._touched: set[str] = set()          # devices whose state may have changed
        if config.beat_model is not None:
            path = None if config.beat_model == "default" else config.beat_model
            self.batcher = BeatBatcher(BeatClassifier(path))
        self.ready = threading.Event()      # set once connected and announced online
        # Alerts are on disk before they are published and until the broker
        # has them; its acknowledgements come back through this queue.
        self.outbox = Outbox(config.outbox_path)
        self._confirmations: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.edge = MqttEdge(
            config.broker, config.client_id, tls=config.tls, credentials=config.credentials,
            protocol=config.protocol,
            will=Will(self._status_topic, self._status("offline", "connection lost"), 1, True),
            inbox_size=config.inbox_size,
            subscriptions=[(SAMPLES_SUBSCRIPTION, 1), (CONFIG_SUBSCRIPTION, 1)],
            on_connect=self._announce_online, clock=clock,
            # At least once: chunks are acknowledged after handle(), on a
            # session the broker keeps while we restart.
            manual_ack=True, session_expiry_s=config.session_expiry_s,
            confirmations=self._confirmations)
        self._states = StateThrottle(config.state_interval_s)
        self._faulty: set[str | None] = set()    # devices whose traceback was logged
        self._started_at: float | None = None
        self._next_tick = 0.0
        self._next_metrics = 0.0

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Connect (raises BrokerError) and announce ``online``; idempotent."""
        if self._started_at is not None:
            return
        now = self.clock()
        self._started_at = now
        self._next_tick = now + self.config.tick_interval_s
        self._next_metrics = now + self.config.metrics_interval_s
        if self.outbox is None:
            self.outbox = Outbox(self.config.outbox_path)
        try:
            self.edge.start(timeout=self.config.connect_timeout_s)
        except BaseException:
            self._started_at = None
            raise
        # Alerts a previous process stored but the broker never acknowledged.
        replayed = republish(self.outbox, self._send_alert)
        self.outbox.replayed += replayed
        if replayed:
            log.warning("service %s: published %d alerts again from the outbox %s",
                        self.config.client_id, replayed, self.outbox.path)
        self.ready.set()

    def stop(self) -> None:
        """Publish final metrics and ``offline`` (retained), then disconnect."""
        if self._started_at is None:
            return
        try:
            self._publish_metrics(self.clock())
            info = self.edge.publish(self._status_topic, self._status("offline", "stopped"),
                                     qos=1, retain=True)
            info.wait_for_publish(timeout=5.0)
            self._await_outbox(STOP_OUTBOX_S)
        except (BrokerError, RuntimeError, ValueError) as e:
            # Connection already gone: the broker has published the Will instead.
            log.warning("could not publish the offline status: %s", e)
        finally:
            self.edge.stop()
            self._settle_outbox()
            if self.outbox.pending:
                log.warning("service %s stops with %d alerts not acknowledged by the broker; "
                            "they stay in the outbox %s for the next start",
                            self.config.client_id, self.outbox.pending, self.outbox.path)
            self.outbox.close()
            self.outbox = None
            self.ready.clear()
            self._started_at = None
        log.info("service %s stopped", self.config.client_id)

    def run(self, stop_event: threading.Event, poll_s: float = 0.2) -> None:
        """Serve until ``stop_event`` is set; always ends with ``stop()``."""
        tune_gc()
        self.start()
        inbox = self.edge.inbox
        try:
            while not stop_event.is_set():
                try:
                    first: Received | None = inbox.get(timeout=poll_s)
                except queue.Empty:
                    first = None
                now = self.clock()
                if first is not None:
                    self._receive(first, now)      # completed with the rest of the batch
                self.step(now)
        finally:
            self.stop()

    # -- the work --------------------------------------------------------------

    def step(self, now: float) -> int:
        """Handle up to ``batch_size`` queued messages as one batch, then periodic work.

        Each chunk is decoded and queued by its device's monitor; then one
        filter pass for all of them (detect/batch.py), each device's chain,
        one beat-model call, the alerts and states, and finally the
        acknowledgements, in arrival order.
        """
        handled = 0
        while handled < self.config.batch_size:
            try:
                msg = self.edge.inbox.get_nowait()
            except queue.Empty:
                break
            self._receive(msg, now)
            handled += 1
        self._complete(now)
        self._check_load(now)
        self._periodic(now)
        return handled

    def _check_load(self, now: float) -> None:
        """Say so when input outruns the service, and again when it has caught up.

        Overloaded: the inbox dropped messages (paho had accepted them) or is
        past ``OVERLOAD_FILL`` of its capacity. Recovered: the inbox below
        ``RECOVER_FILL`` after ``RECOVER_S`` with neither a drop nor such a
        fill. Both are published on the status topic (retained) with the
        figures, logged, and counted.
        """
        inbox = self.edge.inbox
        depth, capacity, dropped = inbox.qsize(), inbox.maxsize, self.edge.overflow
        depth, self._peak_depth = min(capacity, max(depth, self._peak_depth)), 0
        new_drops = dropped - self._dropped_seen
        self._dropped_seen = dropped
        if new_drops > 0 or depth >= OVERLOAD_FILL * capacity:
            self._last_busy_at = now
        if not self._overloaded and (new_drops > 0 or depth >= OVERLOAD_FILL * capacity):
            self._overloaded = True
            self.counters.count_overload()
            reason = (f"overloaded: inbox {depth}/{capacity}, {dropped} messages dropped "
                      "so far")
            log.warning("service %s %s", self.config.client_id, reason)
            self._publish_status("online", reason)
            self._publish_metrics(now)
        elif (self._overloaded and depth <= RECOVER_FILL * capacity
              and now - self._last_busy_at >= RECOVER_S):
            self._overloaded = False
            reason = f"recovered: inbox {depth}/{capacity}, {dropped} messages dropped so far"
            log.warning("service %s %s", self.config.client_id, reason)
            self._publish_status("online", reason)
            self._publish_metrics(now)

    def _complete(self, now: float) -> None:
        """Finish the batch: filters, chains, labels, states; then acknowledge it."""
        for block in self.signals.run():
            device_id = block.pipeline.device_id
            try:
                self._apply(device_id, self.monitors[device_id].resume(block), now)
            except Exception:
                # A bug for one device's data must not take down every other device.
                self._log_internal(device_id, "latest chunk")
                self._reject(samples_topic(device_id), "internal",
                             f"The service failed on the latest chunk of device {device_id!r}; "
                             "the chunk was dropped.", device_id, None)
        self._label_beats(now)
        self._publish_states(now)
        done = self.clock()
        for received_at in self._arrivals:
            # From arrival in the inbox to alerts and state handed to the edge.
            self.counters.record_latency(max(0.0, done - received_at))
        self._arrivals.clear()
        self._ack_analysed()

    def _ack_analysed(self) -> None:
        """Acknowledge, in arrival order, every message whose chunk has been analysed.

        Called when a batch is complete: its chunks are analysed and their
        alerts are in the outbox. A chunk the reassembler holds back, waiting
        for a missing seq (at most ``reorder_window`` chunks for at most
        ``reorder_timeout_s``), is not analysed yet: it and the messages after
        it wait, so a crash meanwhile leaves them with the broker.
        """
        queue_ = self._to_ack
        while queue_:
            msg, device_id, seq = queue_[0]
            if device_id is not None and seq is not None:
                monitor = self.monitors.get(device_id)
                if monitor is not None and monitor.holds(seq):
                    break
            queue_.popleft()
            self.edge.ack(msg)

    def _label_beats(self, now: float) -> None:
        """One model call for the beats every device submitted since the last step."""
        if self.batcher is None:
            return
        for pipeline, pairs in self.batcher.run():
            device_id = pipeline.device_id
            try:
                self._apply(device_id, self.monitors[device_id].apply_labels(pairs), now)
            except Exception:
                self._log_internal(device_id, "beat labels")
                self.counters.count_reject("internal")

    def handle(self, msg: Received, now: float) -> None:
        """Handle one message completely, then acknowledge it to the broker
        (``step`` does the same for a whole batch of messages at once).

        Acknowledged after its alerts are in the outbox: a chunk the broker
        considers delivered has been analysed. Every outcome is acknowledged -
        processed, rejected, another worker's device - since redelivery would
        not change it. Not acknowledged only if this raised (the service dies).
        """
        self._receive(msg, now)
        self._complete(now)

    def _receive(self, msg: Received, now: float) -> None:
        """Decode and queue one message; ``_complete`` finishes and acknowledges it."""
        # The inbox's fullest moment since the last load check: with acks after
        # processing the backlog waits at the broker, and a step may drain the
        # inbox as fast as the broker refills it, so depth at check time alone
        # would miss an overload.
        self._peak_depth = max(self._peak_depth, self.edge.inbox.qsize() + 1)
        pushed = self._handle(msg, now)
        self._to_ack.append((msg, *(pushed or (None, None))))

    def _handle(self, msg: Received, now: float) -> tuple[str, int] | None:
        """Decode one samples message and feed it to its device's monitor.

        Returns (device, seq) of a chunk handed to its monitor, else None.
        """
        device_id: str | None = None
        seq: int | None = None
        index, count = self.config.partition
        try:
            device_id, leaf = parse_device_topic(msg.topic)
        except InputError as e:
            # A topic with no valid device belongs to no worker: worker 0 rejects it.
            if index == 0:
                self.counters.count_in()
                self._reject(msg.topic, e.reason, str(e), e.device_id, None)
            return None
        if count > 1 and partition_of(device_id, count) != index:
            return None                  # another worker's device: not even decoded
        self.counters.count_in()
        try:
            if leaf == "config":
                self._configure(device_id, msg.payload, now)
                return None
            chunk = decode_samples(device_id, msg.payload)
            seq = chunk.seq
            monitor = self._monitor(device_id)
            self._apply(device_id, monitor.push(chunk, now), now)
            self._arrivals.append(msg.received_at)
            return device_id, chunk.seq
        except InputError as e:
            self._reject(msg.topic, e.reason, str(e), e.device_id or device_id,
                         e.seq if e.seq is not None else seq)
        except Exception:
            # A bug for one device's data must not take down every other device.
            self._log_internal(device_id, f"chunk seq {seq}")
            self._reject(msg.topic, "internal",
                         f"The service failed on chunk seq {seq} of device {device_id!r}; "
                         "the chunk was dropped.", device_id, seq)
        return None

    def _configure(self, device_id: str, payload: bytes, now: float) -> None:
        """A device's retained config document: validate, keep, apply if it streams.

        An empty payload (the retained message deleted) returns the device to
        the service's configuration. A bad document is rejected with a reason
        and the device keeps the settings it had.
        """
        base = self.config.detector
        if not payload:
            config = base
        else:
            try:
                if len(payload) > MAX_CONFIG_BYTES:
                    raise ConfigError(f"{len(payload)} bytes; the limit is {MAX_CONFIG_BYTES}.")
                config = base.with_device_overrides(json.loads(payload))
            except (ConfigError, ValueError) as e:
                # json's errors are ValueErrors; ConfigError says which key is wrong.
                raise InputError(f"The configuration of device {device_id!r} was refused: {e}",
                                 device_id=device_id, reason="bad_config") from None
        self.device_configs[device_id] = config
        monitor = self.monitors.get(device_id)
        if monitor is not None:
            # What the device's queued chunk produces is decided under the old settings.
            self._apply(device_id, monitor.reconfigure(config), now)
        self.counters.count_config()
        log.info("device %s: %s", device_id,
                 "service configuration" if config is base else "own alarm settings")

    def _log_internal(self, device_id: str | None, what: str) -> None:
        # The traceback once per device; a broken monitor fails again on every
        # tick, and the counter already says how often.
        if device_id in self._faulty:
            log.debug("internal error again on the %s of device %s", what, device_id)
        else:
            self._faulty.add(device_id)
            log.exception("internal error on the %s of device %s", what, device_id)

    def _monitor(self, device_id: str) -> DeviceMonitor:
        monitor = self.monitors.get(device_id)
        if monitor is None:
            if len(self.monitors) >= self.config.max_devices:
                raise InputError(f"Device {device_id!r} is new but the service already follows "
                                 f"{self.config.max_devices} devices.", device_id=device_id,
                                 reason="too_many_devices")
            batcher, signals = self.batcher, self.signals
            config = self.device_configs.get(device_id, self.config.detector)
            monitor = DeviceMonitor(device_id, config, pipeline_factory=(
                lambda d, c: DevicePipeline(d, c, batcher, signals)))
            self.monitors[device_id] = monitor
            log.info("following new device %s", device_id)
        return monitor

    def _apply(self, device_id: str, result: MonitorResult, now: float) -> None:
        """Publish what one monitor call produced and count its stream events."""
        self.counters.count_processed(result.chunks)
        for t in result.transitions:
            self._publish_alert(t)
        for e in result.stream_events:
            if isinstance(e, Duplicate):
                # Expected with QoS 1 (redelivery after a reconnect): counted, not rejected.
                self.counters.count_duplicate()
            elif isinstance(e, Late):
                self._reject(samples_topic(device_id), e.reason, e.message, device_id, e.seq)
            elif isinstance(e, Gap):
                self.counters.count_gap(e.reason.value)
                log.info("stream gap (%s) for device %s", e.reason.value, device_id)
        self._touched.add(device_id)

    def _publish_states(self, now: float) -> None:
        """The state of every device touched since the last call (when it changed or is due)."""
        for device_id in self._touched:
            self._maybe_publish_state(device_id, now)
        self._touched.clear()

    def _periodic(self, now: float) -> None:
        self._settle_outbox()
        if now >= self._next_tick:
            self._next_tick = now + self.config.tick_interval_s
            for device_id, monitor in list(self.monitors.items()):
                try:
                    self._apply(device_id, monitor.tick(now), now)
                except Exception:
                    self._log_internal(device_id, "timer")
                    self.counters.count_reject("internal")
            # Chunks the timer released (a missing seq given up on) were queued
            # for the filters: analyse them now, then acknowledge them.
            self._complete(now)
            if self.edge.connected.is_set():
                # Alerts the MQTT client refused (its queue full) are offered again.
                republish(self.outbox, self._send_alert)
        if now >= self._next_metrics:
            self._next_metrics = now + self.config.metrics_interval_s
            self._publish_metrics(now)

    # -- outgoing messages ---------------------------------------------------

    def _publish_alert(self, t: AlarmTransition) -> None:
        entry = Entry(t.id, alerts_topic(t.device_id), _json(t.to_dict()))
        # On disk first; an id already waiting (the same transition decided
        # again after a restart) is not sent twice.
        if self.outbox.add(entry):
            self.outbox.sent(entry.id, self._send_alert(entry))
        self.counters.count_alert(t)
        log.info("alarm %s %s (%s) for device %s", t.condition.value, t.action.value,
                 t.priority.value, t.device_id)

    def _send_alert(self, entry: Entry) -> int | None:
        """Hand one alert to the MQTT client: its packet id, or None if refused."""
        try:
            info = self.edge.publish(entry.topic, entry.payload, qos=1)
        except (BrokerError, ValueError) as e:
            log.warning("alert %s stays in the outbox: %s", entry.id, e)
            return None
        # 0: sent; 4 (no connection): queued by paho for the reconnect.
        return info.mid if info.rc in (0, 4) else None

    def _await_outbox(self, timeout: float) -> None:
        """Give the broker up to ``timeout`` s (wall time: network I/O) to acknowledge
        the alerts still pending, so that a clean stop leaves the outbox empty."""
        deadline = time.monotonic() + timeout
        self._settle_outbox()
        while self.outbox.pending and time.monotonic() < deadline \
                and self.edge.connected.is_set():
            try:
                self._settle_outbox_from(self._confirmations.get(timeout=0.05))
            except queue.Empty:
                pass

    def _settle_outbox_from(self, mid: int) -> None:
        self.outbox.confirm([mid])
        self._settle_outbox()

    def _settle_outbox(self) -> None:
        """Remove from the outbox the alerts the broker has acknowledged."""
        mids = []
        while True:
            try:
                mids.append(self._confirmations.get_nowait())
            except queue.Empty:
                break
        if mids and self.outbox is not None:
            self.outbox.confirm(mids)

    def _maybe_publish_state(self, device_id: str, now: float) -> None:
        """Retained state when rhythm, quality or alarms change, else every interval."""
        state = self._states.due(self.monitors[device_id], now)
        if state is not None:
            self.edge.publish(state_topic(device_id), _json(state.to_dict()), qos=1, retain=True)

    def _reject(self, topic: str, reason: str, message: str, device_id: str | None,
                seq: int | None) -> None:
        self.counters.count_reject(reason)
        log.debug("rejected message from device %s: %s", device_id, reason)
        shown = topic if len(topic) <= _MAX_ECHOED_TOPIC else topic[:_MAX_ECHOED_TOPIC] + "..."
        body = {"device_id": device_id, "seq": seq, "reason": reason, "message": message,
                "topic": shown}
        self.edge.publish(REJECTS_TOPIC, _json(body), qos=1)

    def _publish_metrics(self, now: float) -> None:
        self.counters.set_overflow(self.edge.overflow)
        uptime = now - self._started_at if self._started_at is not None else 0.0
        payload = self.counters.to_json(devices=len(self.monitors), service=self.config.client_id,
                                        uptime_s=round(uptime, 1), overloaded=self._overloaded,
                                        inbox_depth=self.edge.inbox.qsize(),
                                        inbox_capacity=self.edge.inbox.maxsize,
                                        inbox_acked=self.edge.acked,
                                        outbox_pending=self.outbox.pending,
                                        outbox_replayed=self.outbox.replayed)
        self.edge.publish(self._metrics_topic, payload, qos=1, retain=True)

    def _status(self, state: str, reason: str) -> bytes:
        index, count = self.config.partition
        return _json({"v": 1, "state": state, "reason": reason, "service": self.config.client_id,
                      "version": __version__, "detector_version": DETECTOR_VERSION,
                      "partition": [index, count], "overloaded": self._overloaded})

    def _publish_status(self, state: str, reason: str) -> None:
        self.edge.publish(self._status_topic, self._status(state, reason), qos=1, retain=True)

    def _announce_online(self) -> None:
        # Runs on paho's thread after every (re)connect: after a network drop the
        # broker has published the Will (offline), so "online" must be re-sent.
        self.edge.publish(self._status_topic, self._status("online", "connected"), qos=1,
                          retain=True)
        log.info("service %s online", self.config.client_id)


def partition_of(device_id: str, count: int) -> int:
    """The worker (0..count-1) that serves ``device_id``: a stable hash (CRC-32 of
    the id), the same in every process and every run, so a device's state never
    moves between workers while their number is unchanged."""
    return zlib.crc32(device_id.encode()) % count


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class ServiceThread:
    """A Service running ``run(stop_event)`` on a background thread (demo, tests, embedding).

    ``start`` returns once the service is online and raises the service's own
    error (e.g. BrokerError) if it failed to come up; ``stop`` re-raises an
    error the service died of.
    """

    def __init__(self, service: Service, *, poll_s: float = 0.2, timeout_s: float = 10.0,
                 name: str = "ecgwatch-service") -> None:
        self.service = service
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self._poll_s, self._timeout_s = poll_s, timeout_s
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)

    def _main(self) -> None:
        try:
            self.service.run(self.stop_event, poll_s=self._poll_s)
        except BaseException as e:     # handed to the starting thread
            self.error = e
            self.service.ready.set()   # unblock start()

    def start(self) -> "ServiceThread":
        self.thread.start()
        if not self.service.ready.wait(self._timeout_s) or self.error is not None:
            error = self.error
            self.stop_event.set()
            self.thread.join(self._timeout_s)
            if isinstance(error, Exception):
                raise error
            raise BrokerError(f"The service {self.service.config.client_id!r} did not come "
                              f"online within {self._timeout_s:g} s.")
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(self._timeout_s)
        if self.thread.is_alive():
            raise RuntimeError(f"The service {self.service.config.client_id!r} did not stop "
                               f"within {self._timeout_s:g} s.")
        if self.error is not None:
            raise self.error
