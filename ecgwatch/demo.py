"""``ecgwatch demo``: the whole system on one machine, nothing to install.

An embedded MQTT broker on a free port, the real service on a thread, the
scripted simulated fleet from ``ecgwatch.simulate`` publishing to it, and an
alert printer that is just another MQTT subscriber, so what it prints is
exactly what any consumer would receive.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from detect.errors import ConfigError
from ingest.mqtt import BrokerURL, MqttEdge

from .broker import EmbeddedBroker
from .service import Service, ServiceConfig, ServiceThread

log = logging.getLogger(__name__)

ALERTS_SUBSCRIPTION = "ecg/v1/+/alerts"
_READY_S = 10.0
_DRAIN_S = 5.0


def format_alert(alert: dict[str, Any], received_at: float) -> str:
    """One readable line: time, device, RAISED/CLEARED, priority, condition, onset, HR."""
    ev = alert.get("evidence") or {}
    hr = ev.get("heart_rate")
    return (f"{time.strftime('%H:%M:%S', time.localtime(received_at))}  "
            f"{alert.get('device_id', '?'):<14} {str(alert.get('action', '?')).upper():<8} "
            f"{str(alert.get('priority', '?')).upper():<6} {alert.get('condition', '?'):<20} "
            f"onset {_device_time(alert.get('onset'))}  "
            f"HR {'--' if hr is None else f'{hr:.0f}'}")


def _device_time(t: object) -> str:
    if not isinstance(t, (int, float)):
        return "?"
    if t > 1e8:   # a Unix timestamp: show it as a time of day
        return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 10) % 10}"
    return f"{t:.1f} s"


class AlertPrinter:
    """Subscribes to every device's alerts and prints one line per message."""

    def __init__(self, url: str, out: TextIO = sys.stdout,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.out = out
        self.alerts: list[dict[str, Any]] = []
        self._edge = MqttEdge(url, "ecgwatch-demo-printer", protocol="3.1.1",
                              subscriptions=[(ALERTS_SUBSCRIPTION, 1)], clock=wall_clock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="alert-printer", daemon=True)

    def start(self) -> "AlertPrinter":
        self._edge.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(_READY_S)
        self._edge.stop()

    def _main(self) -> None:
        while not self._stop.is_set() or not self._edge.inbox.empty():
            try:
                msg = self._edge.inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                alert = json.loads(msg.payload)
            except ValueError:
                log.warning("unreadable alert on %s", msg.topic)
                continue
            self.alerts.append(alert)
            print(format_alert(alert, msg.received_at), file=self.out, flush=True)


def run_demo(duration: float = 60.0, devices: int = 7, speed: float = 1.0, fmt: str = "json",
             stop_event: threading.Event | None = None,
             out: TextIO = sys.stdout) -> dict[str, Any]:
    """Run the demo for ``duration`` wall seconds; return the service counters."""
    from ecgwatch import simulate   # imported late: only the demo needs the fleet

    stop = stop_event or threading.Event()
    if devices < 1:
        raise ConfigError(f"The demo needs at least one device, not {devices}.")
    scripted = simulate.demo_scenarios()
    # Beyond the scripted patients, add a realistic mix (mostly quiet).
    scenarios = scripted[:devices] + simulate.fleet_scenarios(max(0, devices - len(scripted)),
                                                              prefix="extra")
    with EmbeddedBroker() as broker:
        print(f"ecgwatch demo: MQTT broker on {broker.url}, {len(scenarios)} simulated devices, "
              f"{duration:g} s at {speed:g}x.\n"
              f"Watch the alerts with any MQTT client, e.g.\n"
              f"  mosquitto_sub -h {broker.host} -p {broker.port} -t '{ALERTS_SUBSCRIPTION}' -v\n"
              f"(device state: 'ecg/v1/+/state', service: 'ecgwatch/v1/#')\n",
              file=out, flush=True)
        service = Service(ServiceConfig(BrokerURL.parse(broker.url), client_id="ecgwatch-demo",
                                        protocol="3.1.1"))
        runner = ServiceThread(service, timeout_s=_READY_S).start()
        printer = AlertPrinter(broker.url, out).start()
        try:
            sent = simulate.run_fleet(broker.url, scenarios, duration, speed, fmt, stop).chunks
            _drain(service, sent)
        finally:
            runner.stop()
            printer.stop()
    summary = service.counters.snapshot(devices=len(service.monitors))
    print(_summary_text(summary), file=out, flush=True)
    return summary


def _drain(service: Service, sent: int) -> None:
    """Wait (a little) until the service has taken every chunk the fleet sent.

    The fleet's PUBACKs only say the broker has them; they may still be on
    their way to the service.
    """
    deadline = time.monotonic() + _DRAIN_S
    while service.counters.snapshot()["chunks_in"] < sent and time.monotonic() < deadline:
        time.sleep(0.05)


def _summary_text(s: dict[str, Any]) -> str:
    by_condition = ", ".join(f"{c} {n}" for c, n in s["alerts_raised_by_condition"].items())
    rejects = ", ".join(f"{r} {n}" for r, n in s["rejects"].items())
    return (f"\nSummary: {s['devices']} devices, {s['chunks_processed']} chunks processed, "
            f"{s['rejects_total']} rejects{f' ({rejects})' if rejects else ''}.\n"
            f"Alarms raised by condition: {by_condition or 'none'}; "
            f"cleared: {s['alerts'].get('cleared', 0)}.")
