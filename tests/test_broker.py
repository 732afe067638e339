"""Both brokers ecgwatch can start accept MQTT clients and route QoS 1 messages."""

from __future__ import annotations

import socket
import uuid

import pytest

from detect.errors import BrokerError
from ecgwatch.broker import EmbeddedBroker, MosquittoBroker, free_port
from ingest.mqtt import MqttEdge, Will

pytestmark = pytest.mark.broker

BROKERS = ["embedded_broker", "mosquitto_broker"]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(params=BROKERS)
def each_broker(request: pytest.FixtureRequest):
    return request.getfixturevalue(request.param)


def test_embedded_broker_binds_a_free_port_and_releases_it_on_stop() -> None:
    b = EmbeddedBroker().start()
    try:
        assert b.port not in (0, 1883)
        assert b.url == f"mqtt://127.0.0.1:{b.port}"
        assert _accepts(b.port)
    finally:
        b.stop()
    assert not _accepts(b.port)


def test_mosquitto_broker_is_a_child_process_that_stop_terminates(mosquitto_broker) -> None:
    with MosquittoBroker(extra_conf="max_inflight_messages 50") as b:
        assert b.kind == "mosquitto" and b.port != 1883
        assert _accepts(b.port)
        port = b.port
    assert not _accepts(port)


def test_mosquitto_broker_reports_a_bad_configuration(mosquitto_broker) -> None:
    with pytest.raises(BrokerError, match="mosquitto exited"):
        MosquittoBroker(port=free_port(), extra_conf="no_such_option 1").start()


def test_embedded_broker_fails_clearly_on_a_taken_port(embedded_broker) -> None:
    with pytest.raises(BrokerError, match=str(embedded_broker.port)):
        EmbeddedBroker(port=embedded_broker.port).start()


def test_the_suite_broker_has_a_kind_and_a_url(broker) -> None:
    assert broker.kind in ("mosquitto", "amqtt")
    assert broker.url == f"mqtt://{broker.host}:{broker.port}"
    assert _accepts(broker.port)


@pytest.mark.parametrize("protocol", ["3.1.1", "auto"])
def test_qos1_round_trip_through_the_edge(each_broker, protocol, mqtt_collector) -> None:
    topic = f"test/{uuid.uuid4().hex[:8]}/x"
    sub = MqttEdge(each_broker.url, "sub-" + uuid.uuid4().hex[:6], protocol=protocol,
                   subscriptions=[(topic, 1)])
    pub = MqttEdge(each_broker.url, "pub-" + uuid.uuid4().hex[:6], protocol=protocol)
    watcher = mqtt_collector(each_broker.url, [topic])
    with sub, pub:
        assert sub.connected.is_set()
        pub.publish(topic, b"\x00\x01binary", qos=1).wait_for_publish(5)
        watcher.wait_for(lambda ms: len(ms) == 1)
        got = sub.inbox.get(timeout=5)
        assert (got.topic, got.payload) == (topic, b"\x00\x01binary")
        assert watcher.messages[0].qos == 1
    expected = {"3.1.1": "3.1.1",
                "auto": "5" if each_broker.kind == "mosquitto" else "3.1.1"}[protocol]
    assert sub.protocol_in_use == pub.protocol_in_use == expected


def test_amqtt_refuses_mqtt5_when_asked_for_explicitly(embedded_broker) -> None:
    edge = MqttEdge(embedded_broker.url, "v5-only", protocol="5")
    with pytest.raises(BrokerError, match="refused"):
        edge.start(timeout=5)
    assert not edge.connected.is_set()


def test_auto_falls_back_when_amqtt_ignores_an_mqtt5_connect_with_a_will(embedded_broker) -> None:
    # amqtt misparses a v5 CONNECT carrying a Will and never answers it; the
    # MQTT 5 probe must time out and 3.1.1 take over within start()'s timeout.
    edge = MqttEdge(embedded_broker.url, "will-" + uuid.uuid4().hex[:6],
                    will=Will("test/will", b"gone"))
    with edge:
        assert edge.protocol_in_use == "3.1.1" and edge.connected.is_set()


def test_unreachable_broker_is_a_broker_error_naming_it() -> None:
    port = free_port()
    edge = MqttEdge(f"mqtt://127.0.0.1:{port}", "nobody-home")
    with pytest.raises(BrokerError, match=f"127.0.0.1:{port}"):
        edge.start(timeout=0.5)
