"""TLS, password authentication and the topic ACL, against a real mosquitto.

The test makes its own CA, server certificate and password file, starts
mosquitto with TLS only (no plain listener), ``allow_anonymous false`` and the
ACL of docs/security.md (deploy/mosquitto-acl.conf), then checks that:

* the service connects over TLS, verifying the broker against the CA, with
  credentials from a file, and processes a device's chunks;
* a device can publish only to its own samples topic: its chunk sent as
  another device never reaches the service (that device's own chunk does);
* a consumer can read alerts and state but cannot publish samples;
* a wrong password or an unverifiable broker certificate is refused with a
  sentence that names the broker and never shows the password;
* with ``require_certificate``, the service connects only with its client
  certificate (mutual TLS).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from conftest import WAIT_S, wait_until
from detect.errors import BrokerError
from detect.types import Chunk
from ecgwatch.broker import MosquittoBroker, SecureListener, find_mosquitto
from ecgwatch.service import Service, ServiceConfig
from ingest.mqtt import BrokerURL, Credentials, TlsOptions
from ingest.payload import encode_binary
from ingest.topics import samples_topic, state_topic

ROOT = Path(__file__).resolve().parents[1]
ACL = ROOT / "deploy" / "mosquitto-acl.conf"
USERS = {"ecgwatch": "svc-" + uuid.uuid4().hex, "dev-a": "a-" + uuid.uuid4().hex,
         "dev-b": "b-" + uuid.uuid4().hex, "nurse": "n-" + uuid.uuid4().hex}

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(find_mosquitto() is None or shutil.which("openssl") is None
                       or shutil.which("mosquitto_passwd") is None,
                       reason="needs mosquitto, mosquitto_passwd and openssl"),
]


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A throw-away CA and a server certificate for 127.0.0.1 / localhost."""
    d = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
         "-subj", "/CN=ecgwatch test CA", cwd=d)
    _run("openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=localhost", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                  "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    _run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext", cwd=d)
    for name in ("server.key", "ca.crt", "server.crt"):
        (d / name).chmod(0o644)          # mosquitto may read them as another user
    d.chmod(0o755)
    # A client certificate for the service (mutual TLS).
    _run("openssl", "req", *ec, "-keyout", "client.key", "-out", "client.csr",
         "-subj", "/CN=ecgwatch", cwd=d)
    (d / "client.ext").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    _run("openssl", "x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "client.crt", "-days", "2", "-extfile", "client.ext", cwd=d)
    first = True
    for user, password in USERS.items():
        _run("mosquitto_passwd", "-b", *(["-c"] if first else []), "passwords", user, password,
             cwd=d)
        first = False
    (d / "passwords").chmod(0o644)
    return d


@pytest.fixture(scope="module")
def secure_broker(pki: Path):
    broker = MosquittoBroker(secure=SecureListener(
        str(pki / "ca.crt"), str(pki / "server.crt"), str(pki / "server.key"),
        str(pki / "passwords"), str(ACL))).start()
    yield broker
    broker.stop()


def _client(broker, pki: Path, user: str, password: str | None = None) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{user}-{uuid.uuid4().hex[:6]}",
                    protocol=mqtt.MQTTv311)
    c.tls_set(ca_certs=str(pki / "ca.crt"))
    c.username_pw_set(user, USERS[user] if password is None else password)
    c.connect(broker.host, broker.port)
    c.loop_start()
    wait_until(c.is_connected)
    return c


def _chunk(device_id: str, seq: int) -> bytes:
    t = (np.arange(250) + 250 * seq) / 250.0
    return encode_binary(Chunk(device_id, seq, 100.0 + seq, 250.0,
                               0.8 * np.sin(2 * np.pi * 1.2 * t)))


def _service_config(broker, pki: Path, tmp_path: Path, password: str | None = None,
                    ca: bool = True) -> ServiceConfig:
    pw = tmp_path / f"pw-{uuid.uuid4().hex[:6]}"
    pw.write_text((USERS["ecgwatch"] if password is None else password) + "\n")
    return ServiceConfig(BrokerURL.parse(broker.url), client_id=f"svc-{uuid.uuid4().hex[:6]}",
                         tls=TlsOptions(ca_file=str(pki / "ca.crt")) if ca else TlsOptions(),
                         credentials=Credentials.from_file(pw, "ecgwatch"), protocol="3.1.1",
                         connect_timeout_s=5.0)


def test_the_service_works_over_tls_with_a_password_and_devices_stay_in_their_lane(
        secure_broker, pki, tmp_path, run_service) -> None:
    runner = run_service(_service_config(secure_broker, pki, tmp_path))
    states: list[str] = []
    nurse = _client(secure_broker, pki, "nurse")
    nurse.on_message = lambda c, u, m: states.append(m.topic)
    nurse.subscribe("ecg/v1/+/state", qos=1)
    dev_a, dev_b = _client(secure_broker, pki, "dev-a"), _client(secure_broker, pki, "dev-b")
    try:
        # dev-a pretends to be dev-b: the broker drops it (QoS 1 is still acknowledged).
        dev_a.publish(samples_topic("dev-b"), _chunk("dev-b", 0), qos=1).wait_for_publish(WAIT_S)
        # The consumer may read but not publish samples.
        nurse.publish(samples_topic("dev-b"), _chunk("dev-b", 0), qos=1).wait_for_publish(WAIT_S)
        # dev-a as itself is served.
        dev_a.publish(samples_topic("dev-a"), _chunk("dev-a", 0), qos=1).wait_for_publish(WAIT_S)
        wait_until(lambda: state_topic("dev-a") in states)
        assert list(runner.service.monitors) == ["dev-a"]
        # Positive control: dev-b's own chunk does arrive, so the first one was refused,
        # not merely slow.
        dev_b.publish(samples_topic("dev-b"), _chunk("dev-b", 0), qos=1).wait_for_publish(WAIT_S)
        wait_until(lambda: state_topic("dev-b") in states)
        counts = runner.service.counters.snapshot()
        assert counts["chunks_processed"] == 2 and counts["chunks_in"] == 2
    finally:
        for c in (nurse, dev_a, dev_b):
            c.loop_stop()
            c.disconnect()


def test_mutual_tls_needs_the_client_certificate(pki, tmp_path) -> None:
    broker = MosquittoBroker(secure=SecureListener(
        str(pki / "ca.crt"), str(pki / "server.crt"), str(pki / "server.key"),
        str(pki / "passwords"), str(ACL), require_client_certificate=True)).start()
    try:
        config = _service_config(broker, pki, tmp_path)
        with pytest.raises(BrokerError, match="127.0.0.1"):
            Service(config).start()              # no client certificate: refused
        with_cert = dataclasses.replace(config, tls=TlsOptions(
            ca_file=str(pki / "ca.crt"), cert_file=str(pki / "client.crt"),
            key_file=str(pki / "client.key")))
        service = Service(with_cert)
        service.start()
        try:
            assert service.edge.connected.is_set()
        finally:
            service.stop()
    finally:
        broker.stop()


def test_a_wrong_password_is_refused_without_showing_it(secure_broker, pki, tmp_path,
                                                        caplog) -> None:
    wrong = "not-the-password-" + uuid.uuid4().hex
    service = Service(_service_config(secure_broker, pki, tmp_path, password=wrong))
    with pytest.raises(BrokerError) as err:
        service.start()
    assert f"127.0.0.1:{secure_broker.port}" in str(err.value)
    assert wrong not in str(err.value) and wrong not in caplog.text
    assert wrong not in repr(service.config)


def test_a_broker_certificate_the_service_cannot_verify_is_refused(secure_broker, pki,
                                                                  tmp_path) -> None:
    # No CA file: the system trust store does not know the test CA.
    service = Service(_service_config(secure_broker, pki, tmp_path, ca=False))
    with pytest.raises(BrokerError, match="127.0.0.1"):
        service.start()
