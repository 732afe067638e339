"""Shared fixtures: real MQTT brokers on free ports, a message collector, a service runner.

Integration tests talk to a real broker over TCP (mosquitto when installed,
else the embedded amqtt broker); nothing here mocks MQTT. Waiting is always
for a condition (``wait_for``) with a generous timeout, never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ecgwatch.broker import EmbeddedBroker, MosquittoBroker, find_mosquitto, start_test_broker

WAIT_S = 10.0   # upper bound for anything that should happen "at once" over loopback


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_S,
               what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.01)


@pytest.fixture(scope="session", autouse=True)
def _state_dir(tmp_path_factory) -> Iterator[None]:
    """Services started by tests (CLI, workers) keep their alert outbox in a
    temporary state directory, never in the user's ~/.local/state."""
    old = os.environ.get("ECGWATCH_STATE_DIR")
    os.environ["ECGWATCH_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    yield
    if old is None:
        os.environ.pop("ECGWATCH_STATE_DIR", None)
    else:
        os.environ["ECGWATCH_STATE_DIR"] = old


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker | MosquittoBroker]:
    """The suite's broker: mosquitto on a free port if installed, else amqtt.

    ``.host``, ``.port``, ``.url`` and ``.kind`` ("mosquitto" or "amqtt").
    ``ECGWATCH_TEST_BROKER=amqtt`` forces the embedded broker, to run the
    suite the way a machine without mosquitto would.
    """
    if os.environ.get("ECGWATCH_TEST_BROKER") == "amqtt":
        b: EmbeddedBroker | MosquittoBroker = EmbeddedBroker().start()
    else:
        b = start_test_broker()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def embedded_broker() -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker().start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def mosquitto_broker() -> Iterator[MosquittoBroker]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    b = MosquittoBroker().start()
    yield b
    b.stop()


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class MqttCollector:
    """Subscribes with its own plain paho client and records every message.

    It deliberately does not use ``ingest.mqtt`` so that it observes the code
    under test from outside. Speaks MQTT 3.1.1, which both test brokers accept.
    """

    def __init__(self, url: str, topics: Sequence[str], qos: int = 1) -> None:
        host, port = url.removeprefix("mqtt://").rsplit(":", 1)
        self._cond = threading.Condition()
        self._messages: list[Message] = []
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"collector-{uuid.uuid4().hex[:8]}",
                                  protocol=paho.MQTTv311)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, qos) for t in topics])
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        # Per-filter callbacks, not on_message: amqtt 0.12 also sends a new
        # client the retained messages matching *other* clients' subscriptions.
        for t in topics:
            self.client.message_callback_add(t, self._on_message)
        self.client.connect(host, int(port), keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(WAIT_S):
            self.close()
            raise AssertionError(f"collector could not subscribe to {list(topics)} at {url}")

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._cond:
            self._messages.append(Message(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))
            self._cond.notify_all()

    @property
    def messages(self) -> list[Message]:
        with self._cond:
            return list(self._messages)

    def on(self, topic: str) -> list[Message]:
        return [m for m in self.messages if m.topic == topic]

    def wait_for(self, predicate: Callable[[list[Message]], bool],
                 timeout: float = WAIT_S) -> list[Message]:
        """Block until ``predicate(messages)`` holds; fail the test otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(list(self._messages)), timeout):
                shown = [(m.topic, m.payload[:120]) for m in self._messages[-10:]]
                raise AssertionError(f"condition not met within {timeout} s; last messages: "
                                     f"{shown}")
            return list(self._messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def mqtt_collector() -> Iterator[Callable[..., MqttCollector]]:
    """Factory ``mqtt_collector(url, topics)``; every collector is closed afterwards."""
    made: list[MqttCollector] = []

    def make(url: str, topics: Sequence[str], qos: int = 1) -> MqttCollector:
        c = MqttCollector(url, topics, qos)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


class MqttPublisher:
    """A plain paho client that publishes and waits for the broker's PUBACK."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("mqtt://").rsplit(":", 1)
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"publisher-{uuid.uuid4().hex[:8]}",
                                  protocol=paho.MQTTv311)
        self.client.connect(host, int(port), keepalive=30)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(WAIT_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def mqtt_publisher() -> Iterator[Callable[[str], MqttPublisher]]:
    """Factory ``mqtt_publisher(url)``; every publisher is closed afterwards."""
    made: list[MqttPublisher] = []

    def make(url: str) -> MqttPublisher:
        made.append(MqttPublisher(url))
        return made[-1]

    yield make
    for p in made:
        p.close()


class FakeClock:
    """A clock the test advances by hand; safe to read from the service thread."""

    def __init__(self, start: float = 1000.0) -> None:
        self._t = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._t

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._t += seconds
            return self._t


@pytest.fixture
def run_service() -> Iterator[Callable[..., Any]]:
    """Factory ``run_service(config, clock=...)`` -> started ServiceThread, stopped afterwards.

    ``runner.stop()`` may be called inside the test (e.g. to check the offline
    status); teardown stops whatever is still running.
    """
    from ecgwatch.service import Service, ServiceThread

    runners: list[ServiceThread] = []

    def make(config: Any, **kwargs: Any) -> ServiceThread:
        runner = ServiceThread(Service(config, **kwargs), poll_s=0.05, timeout_s=WAIT_S,
                               name="service-under-test")
        runners.append(runner)
        return runner.start()

    yield make
    for r in runners:
        if r.thread.is_alive():
            r.stop()
