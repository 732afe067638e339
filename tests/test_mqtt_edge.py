"""The MQTT edge: URLs, TLS options, credentials, bounded inbox, reconnects."""

from __future__ import annotations

import dataclasses
import logging
import queue
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import WAIT_S, wait_until
from detect.errors import BrokerError, ConfigError
from ecgwatch.broker import EmbeddedBroker, MosquittoBroker, find_mosquitto, free_port
from ecgwatch import cli
from ingest.mqtt import (INVALID_TOPIC, PASSWORD_ENV, USERNAME_ENV, BrokerURL, Credentials,
                         MqttEdge, TlsOptions)


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- BrokerURL ---------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("mqtt://broker.example", BrokerURL("mqtt", "broker.example", 1883)),
    ("mqtts://broker.example", BrokerURL("mqtts", "broker.example", 8883)),
    ("mqtt://127.0.0.1:18830", BrokerURL("mqtt", "127.0.0.1", 18830)),
    ("MQTTS://Host:9000/", BrokerURL("mqtts", "host", 9000)),
    ("mqtt://[::1]:1884", BrokerURL("mqtt", "::1", 1884)),
])
def test_broker_url_parses_scheme_host_and_default_port(text, expected) -> None:
    url = BrokerURL.parse(text)
    assert url == expected
    assert url.tls is (expected.scheme == "mqtts")
    assert BrokerURL.parse(str(url)) == url


@pytest.mark.parametrize("text, match", [
    ("http://host:80", "scheme"),
    ("tcp://host", "scheme"),
    ("mqtt://", "no host"),
    ("mqtt://host:0", "port"),
    ("mqtt://host:99999", "parsed"),
    ("mqtt://host:abc", "parsed"),
    ("mqtt://host:1883/topic", "only scheme://host:port"),
    ("mqtt://alice:secret@host:1883", "carries credentials"),
])
def test_broker_url_rejects_anything_else(text, match) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        BrokerURL.parse(text)
    assert "secret" not in str(err.value)


def test_broker_url_is_frozen() -> None:
    url = BrokerURL.parse("mqtt://h:1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        url.port = 2  # type: ignore[misc]


# -- TLS options -------------------------------------------------------------

def test_tls_options_need_cert_and_key_together_and_existing_files(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="both"):
        TlsOptions(cert_file=str(cert))
    with pytest.raises(ConfigError, match="does not exist"):
        TlsOptions(ca_file=str(tmp_path / "missing-ca.pem"))
    assert TlsOptions(cert_file=str(cert), key_file=str(cert), insecure=True).insecure


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_brokers(tmp_path_factory):
    """Two TLS mosquitto brokers signed by a test CA: one certified for 127.0.0.1,
    one for another name. Yields (ca_file, right_broker, wrong_name_broker)."""
    if find_mosquitto() is None or shutil.which("openssl") is None:
        pytest.skip("needs mosquitto and openssl")
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=ecgwatch test CA", cwd=d)
    for name, san in (("right", "IP:127.0.0.1"), ("wrong", "DNS:not-this-host.example")):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                 "-extfile", f"{name}.ext", cwd=d)
    brokers = [MosquittoBroker(extra_conf=f"certfile {d}/{n}.pem\nkeyfile {d}/{n}.key").start()
               for n in ("right", "wrong")]
    yield str(d / "ca.pem"), *brokers
    for b in brokers:
        b.stop()


def test_mqtts_verifies_the_broker_certificate_and_name(tls_brokers) -> None:
    ca, right, wrong = tls_brokers
    with MqttEdge(f"mqtts://127.0.0.1:{right.port}", _id("tls"),
                  tls=TlsOptions(ca_file=ca)) as edge:
        assert edge.connected.is_set()
    unknown_ca = MqttEdge(f"mqtts://127.0.0.1:{right.port}", _id("tls"))
    with pytest.raises(BrokerError, match="certificate verify failed"):
        unknown_ca.start(timeout=1)
    wrong_name = MqttEdge(f"mqtts://127.0.0.1:{wrong.port}", _id("tls"), tls=TlsOptions(ca))
    with pytest.raises(BrokerError, match="certificate verify failed"):
        wrong_name.start(timeout=1)
    # --insecure skips only the name check; the CA is still verified.
    with MqttEdge(f"mqtts://127.0.0.1:{wrong.port}", _id("tls"),
                  tls=TlsOptions(ca, insecure=True)) as edge:
        assert edge.connected.is_set()


# -- credentials -------------------------------------------------------------

def test_credentials_come_from_the_environment() -> None:
    env = {"ECGWATCH_MQTT_USERNAME": "svc", "ECGWATCH_MQTT_PASSWORD": "s3cret"}
    creds = Credentials.from_env(env)
    assert creds == Credentials("svc", "s3cret")
    assert "s3cret" not in repr(creds)
    assert Credentials.from_env({}) is None
    with pytest.raises(ConfigError, match="ECGWATCH_MQTT_USERNAME"):
        Credentials.from_env({"ECGWATCH_MQTT_PASSWORD": "s3cret"})


def test_credentials_come_from_a_password_file(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("s3cret\nignored second line\n")
    assert Credentials.from_file(f, "svc", environ={}) == Credentials("svc", "s3cret")
    assert Credentials.from_file(f, environ={"ECGWATCH_MQTT_USERNAME": "env-user"}).username \
        == "env-user"
    with pytest.raises(ConfigError, match="needs a username"):
        Credentials.from_file(f, environ={})
    with pytest.raises(ConfigError, match="cannot be read"):
        Credentials.from_file(tmp_path / "absent", "svc", environ={})
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        Credentials.from_file(tmp_path / "empty", "svc", environ={})


@pytest.fixture(scope="module")
def password_broker(tmp_path_factory):
    """mosquitto that only lets user "svc" with password "s3cret" in."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    d = tmp_path_factory.mktemp("auth")
    pw = d / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "svc", "s3cret"], check=True,
                   capture_output=True)
    pw.chmod(0o600)
    # mosquitto's own allow_anonymous line comes first; the later one wins.
    with MosquittoBroker(extra_conf=f"allow_anonymous false\npassword_file {pw}") as b:
        yield b


def test_serve_takes_the_password_from_a_file_or_the_environment_never_argv(
        password_broker, tmp_path, monkeypatch, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["serve", "--password", "s3cret"])
    assert exit_.value.code == 2                    # there is no such flag
    serve = ["serve", "--broker", password_broker.url, "--duration", "0.2",
             "--client-id", _id("cli")]
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    assert cli.main([*serve, "--username", "svc", "--password-file", str(pw)]) == 0

    monkeypatch.setenv(USERNAME_ENV, "svc")
    monkeypatch.setenv(PASSWORD_ENV, "s3cret")
    assert cli.main(serve) == 0
    monkeypatch.setenv(PASSWORD_ENV, "wr0ng-pw")
    capsys.readouterr()
    assert cli.main(serve) == 1
    err = capsys.readouterr().err
    assert "refused" in err and "wr0ng-pw" not in err


def test_broker_accepts_right_credentials_and_refuses_wrong_ones_without_logging_them(
        password_broker, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    good = MqttEdge(password_broker.url, _id("auth"), credentials=Credentials("svc", "s3cret"))
    with good:
        assert good.connected.is_set()
    bad = MqttEdge(password_broker.url, _id("auth"), credentials=Credentials("svc", "wr0ng-pw"))
    with pytest.raises(BrokerError, match="refused") as err:
        bad.start(timeout=5)
    assert "wr0ng-pw" not in str(err.value)
    assert "s3cret" not in caplog.text and "wr0ng-pw" not in caplog.text


# -- inbox -------------------------------------------------------------------

def test_inbox_must_be_bounded() -> None:
    with pytest.raises(ConfigError, match="bounded"):
        MqttEdge("mqtt://127.0.0.1:1", "x", inbox=queue.Queue())


def test_a_full_inbox_holds_the_rest_back_and_drops_nothing(broker) -> None:
    """paho's thread reads only what the inbox has room for: the rest waits in
    TCP and at the broker, and arrives, in order, as the consumer takes."""
    topic = f"test/{uuid.uuid4().hex[:8]}"
    sub = MqttEdge(broker.url, _id("slow"), inbox_size=2, subscriptions=[(topic, 1)],
                   clock=lambda: 42.0)
    pub = MqttEdge(broker.url, _id("pub"))
    with sub, pub:
        for i in range(5):
            pub.publish(topic, f"m{i}".encode(), qos=1).wait_for_publish(WAIT_S)
        wait_until(sub.inbox.full, what="a full inbox")
        got = [sub.inbox.get(timeout=WAIT_S) for _ in range(5)]
    assert [(m.topic, m.payload, m.received_at) for m in got] == \
        [(topic, f"m{i}".encode(), 42.0) for i in range(5)]
    assert sub.overflow == 0 and sub.inbox.empty()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_a_full_inbox_never_stops_the_edge_from_writing(
        mosquitto_broker, mqtt_collector, protocol) -> None:
    """The cause of the e2e collapse (2,000 devices on one worker): paho's network
    thread used to wait in on_message for room in a full inbox. It then wrote
    nothing - no PUBACK, no metrics, no alert - while the broker kept the socket
    full: mosquitto's window (20 in MQTT 3.1.1) exceeds the inbox, and in MQTT 5
    mosquitto 2.0.11 answers the PUBACK of its oldest message in flight with a
    whole Receive Maximum more. Now the edge stops reading instead: with the
    inbox full and more waiting it still publishes, and nothing is dropped."""
    url, topic, out = mosquitto_broker.url, f"test/{uuid.uuid4().hex[:8]}", f"out/{_id('o')}"
    watch = mqtt_collector(url, [out])
    sub = MqttEdge(url, _id("full"), protocol=protocol, inbox_size=2,
                   subscriptions=[(topic, 1)], manual_ack=True)
    pub = MqttEdge(url, _id("pub"), protocol="3.1.1")
    with sub, pub:
        for i in range(20):
            pub.publish(topic, f"m{i}".encode(), qos=1).wait_for_publish(WAIT_S)
        wait_until(sub.inbox.full, what="a full inbox")
        got = [sub.inbox.get_nowait() for _ in range(2)]
        for m in got:                           # the broker then sends more than fits
            sub.ack(m)
        wait_until(sub.inbox.full, what="the inbox full again")
        # Twice: the first may slip out before paho's thread reaches the next
        # message; by the time it has arrived, that thread is back to reading.
        for text in (b"still talking", b"and again"):
            sub.publish(out, text, qos=1)
            watch.wait_for(lambda ms: any(m.payload == text for m in ms))
        assert sub.overflow == 0 and sub.inbox.full()
        while len(got) < 20:                    # taken and acknowledged one by one
            got.append(sub.inbox.get(timeout=WAIT_S))
            sub.ack(got[-1])
    assert [m.payload for m in got] == [f"m{i}".encode() for i in range(20)]
    assert sub.overflow == 0 and sub.acked == 20


def test_messages_outside_the_subscriptions_never_reach_the_inbox(
        embedded_broker, mqtt_collector, mqtt_publisher) -> None:
    # amqtt 0.12 sends a connecting client the retained messages matching any
    # *other* client's subscription; the edge must not pass them on.
    other, mine = f"test/{uuid.uuid4().hex[:8]}/other", f"test/{uuid.uuid4().hex[:8]}/mine"
    mqtt_collector(embedded_broker.url, [other])
    pub = mqtt_publisher(embedded_broker.url)
    pub.send(other, b"not for the edge", retain=True)
    with MqttEdge(embedded_broker.url, _id("picky"), protocol="3.1.1",
                  subscriptions=[(mine, 1)]) as edge:
        pub.send(mine, b"for the edge")
        got = edge.inbox.get(timeout=10)
        assert (got.topic, got.payload) == (mine, b"for the edge")
        assert edge.inbox.empty() and edge.unsolicited == 1
    pub.send(other, b"", retain=True)   # clear the retained message


def test_on_message_never_raises_on_a_non_utf8_topic(broker) -> None:
    # Brokers refuse such topics on the wire, so feed paho's callback directly.
    import paho.mqtt.client as paho

    edge = MqttEdge(broker.url, _id("utf8"), clock=lambda: 1.0)
    msg = paho.MQTTMessage(topic=b"ecg/v1/\xff/samples")
    msg.payload = b"{}"
    edge._on_message(None, None, msg)  # type: ignore[arg-type]
    assert edge.inbox.get_nowait()[:3] == (INVALID_TOPIC, b"{}", 1.0)


# -- reconnects --------------------------------------------------------------

def test_edge_reconnects_and_resubscribes_after_the_broker_restarts() -> None:
    port = free_port()
    kind = MosquittoBroker if find_mosquitto() else EmbeddedBroker
    first = kind(port=port).start()
    announced = []
    sub = MqttEdge(f"mqtt://127.0.0.1:{port}", _id("resub"), protocol="3.1.1",
                   subscriptions=[("test/resub", 1)], on_connect=lambda: announced.append(1))
    try:
        sub.start()
        first.stop()
        wait_until(lambda: not sub.connected.is_set(), what="disconnect noticed")
        with kind(port=port) as second:
            wait_until(sub.connected.is_set, what="reconnected and resubscribed")
            with MqttEdge(second.url, _id("pub"), protocol="3.1.1") as pub:
                pub.publish("test/resub", b"after restart", qos=1)
                assert sub.inbox.get(timeout=10).payload == b"after restart"
        assert len(announced) == 2    # the hook ran on the connect and the reconnect
    finally:
        sub.stop()
        first.stop()


def test_publish_before_start_is_a_clear_error() -> None:
    edge = MqttEdge("mqtt://127.0.0.1:1", "idle")
    with pytest.raises(BrokerError, match="not started"):
        edge.publish("t", b"x")
