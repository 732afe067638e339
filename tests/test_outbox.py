"""The alert outbox: stored before publishing, removed on the broker's ack, kept across restarts."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from conftest import FakeClock, wait_until
from detect.errors import ConfigError
from ecgwatch.outbox import Entry, Outbox, republish
from ecgwatch.service import Service, ServiceConfig
from ingest.mqtt import BrokerURL


def _e(i: int) -> Entry:
    return Entry(f"ep{i}-raised", f"ecg/v1/dev{i}/alerts", b'{"id": "ep%d-raised"}' % i)


def test_an_alert_stays_until_its_packet_id_is_confirmed_and_survives_a_reopen(tmp_path):
    path = tmp_path / "state" / "outbox.sqlite3"
    box = Outbox(path)
    assert box.add(_e(1)) and box.add(_e(2)) and box.pending == 2
    assert not box.add(_e(1)), "an id already waiting is not stored twice"
    box.sent("ep1-raised", 7)
    box.sent("ep2-raised", 8)
    assert list(box.unsent()) == []
    assert box.confirm([7, 99]) == 1          # 99: some other message (state, metrics)
    assert box.pending == 1 and box.delivered == 1
    box.close()
    # A new process (a new Outbox on the same file) finds what was not confirmed.
    again = Outbox(path)
    assert again.pending == 1 and [e.id for e in again.unsent()] == ["ep2-raised"]
    assert again.unsent().__next__() == _e(2)
    again.close()


def test_a_refused_publish_is_offered_again_and_replay_keeps_the_order(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    for i in range(3):
        box.add(_e(i))
    box.sent("ep1-raised", None)                # the client refused it
    offered: list[str] = []
    mids = iter(range(100, 200))

    def publish(e: Entry) -> int:
        offered.append(e.id)
        return next(mids)
    assert republish(box, publish) == 3
    assert offered == ["ep0-raised", "ep1-raised", "ep2-raised"]
    assert republish(box, publish) == 0         # all live now
    assert box.confirm([100, 101, 102]) == 3 and box.pending == 0
    box.close()


def test_a_memory_outbox_works_and_bad_places_are_refused(tmp_path):
    box = Outbox()
    assert box.add(_e(1)) and box.pending == 1
    box.close()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot be created"):
        Outbox(blocker / "sub" / "o.sqlite3")
    with pytest.raises(ConfigError, match="empty alert id"):
        Entry("", "ecg/v1/x/alerts", b"{}")
    with pytest.raises(ConfigError, match="outbox"):
        ServiceConfig(BrokerURL.parse("mqtt://127.0.0.1:1"), outbox="")
    with pytest.raises(ConfigError, match="session_expiry_s"):
        ServiceConfig(BrokerURL.parse("mqtt://127.0.0.1:1"), session_expiry_s=-1)


def test_the_service_replays_stored_alerts_at_start_and_removes_them_once_acknowledged(
        broker, tmp_path, mqtt_collector):
    """A previous process left two alerts unacknowledged: they are published at start-up."""
    client_id = f"svc-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "outbox-{client_id}.sqlite3"
    config = ServiceConfig(BrokerURL.parse(broker.url), client_id=client_id,
                           protocol="3.1.1" if broker.kind == "amqtt" else "auto",
                           outbox=str(path), session_expiry_s=0)
    real = tmp_path / f"outbox-{client_id}.sqlite3"
    dev = f"ob-{uuid.uuid4().hex[:6]}"
    left = Outbox(real)
    for i in range(2):
        left.add(Entry(f"{dev}-{i}-raised", f"ecg/v1/{dev}/alerts", b'{"n": %d}' % i))
    left.close()
    col = mqtt_collector(broker.url, [f"ecg/v1/{dev}/alerts"])
    clock = FakeClock()
    service = Service(config, clock=clock)
    service.start()
    try:
        assert service.outbox.replayed == 2
        col.wait_for(lambda ms: len(ms) == 2)
        assert [m.json()["n"] for m in col.messages] == [0, 1]

        def settled() -> bool:
            service.step(clock.advance(0.1))
            return service.outbox.pending == 0
        wait_until(settled, what="the broker's acknowledgements to empty the outbox")
    finally:
        service.stop()
    with sqlite3.connect(real) as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
