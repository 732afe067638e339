"""Alert outbox: every alert is on disk before it is published, until the broker has it.

The service writes each alarm transition here (SQLite, the standard library's
``sqlite3``) and commits *before* handing it to the MQTT client; the row is
deleted once the broker has acknowledged the QoS 1 PUBLISH (paho's
``on_publish`` with the packet id, which the MQTT edge queues for the service
thread). Whatever is still here when the process
dies - killed, crashed, the machine rebooted - is published again by the next
process at start-up. Alert ids are deterministic, so a consumer that also got
the first copy drops the second by ``id`` (docs/protocol.md).

Bounded in memory, not on disk: while the broker is unreachable every new alert
adds one row (a few hundred bytes) and one paho message; ``pending`` counts
them (metric ``outbox_pending``). Since the service's input comes through the
same broker, an unreachable broker also stops new chunks, so the growth is only
what the inbox held plus the silence alarms of the devices already followed.

``":memory:"`` keeps the outbox in the process (tests, demo): it then only
covers reconnects, not restarts.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from detect.errors import ConfigError

log = logging.getLogger(__name__)
MEMORY = ":memory:"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,   -- publication order
    id      TEXT NOT NULL UNIQUE,                -- the alert id (deterministic)
    topic   TEXT NOT NULL,
    payload BLOB NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One alert waiting for the broker's acknowledgement."""

    id: str
    topic: str
    payload: bytes

    def __post_init__(self) -> None:
        if not self.id:
            raise ConfigError(f"An outbox entry for topic {self.topic!r} has an empty alert id.")


class Outbox:
    """SQLite-backed alerts not yet acknowledged by the broker. One thread at a time uses it."""

    def __init__(self, path: str | Path = MEMORY) -> None:
        self.path = str(path)
        if self.path != MEMORY:
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ConfigError(f"The outbox directory for {self.path!r} cannot be created: "
                                  f"{e.strerror}.") from None
        try:
            # check_same_thread off: built on one thread, then used by the
            # service thread alone (never by two at once).
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # WAL: a commit is one append; FULL: it is on disk when add() returns,
            # so an alert survives a power cut as well as a killed process.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as e:
            raise ConfigError(f"The outbox {self.path!r} cannot be opened: {e}.") from None
        # Packet id of the copy in flight -> alert id, and back (this process
        # only). paho never queues two messages with one packet id, so the ids
        # of messages in flight are unique.
        self._by_mid: dict[int, str] = {}
        self._mid_of: dict[str, int] = {}
        self.pending = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        self.delivered = 0       # rows removed after the broker's acknowledgement
        self.replayed = 0        # rows found at start-up and published again

    # -- writing -------------------------------------------------------------------

    def add(self, entry: Entry) -> bool:
        """Store one alert (committed on return); False if its id is already waiting."""
        cur = self._db.execute("INSERT OR IGNORE INTO outbox (id, topic, payload) VALUES (?, ?, ?)",
                               (entry.id, entry.topic, entry.payload))
        if cur.rowcount == 0:
            return False
        self.pending += 1
        return True

    def sent(self, alert_id: str, mid: int | None) -> None:
        """The alert was handed to the MQTT client as packet ``mid``.

        ``None``: the client refused it (its queue full, or not started); it
        stays in ``unsent()`` and is offered again.
        """
        old = self._mid_of.pop(alert_id, None)
        if old is not None:
            self._by_mid.pop(old, None)
        if mid is not None:
            self._by_mid[mid] = alert_id
            self._mid_of[alert_id] = mid

    # -- reading -------------------------------------------------------------------

    def unsent(self) -> Iterator[Entry]:
        """Stored alerts without a live publish in this process, oldest first.

        At start-up: everything a previous process left. Later: alerts whose
        publish the client refused (its queue full, or not started).
        """
        rows = self._db.execute("SELECT id, topic, payload FROM outbox ORDER BY seq").fetchall()
        for alert_id, topic, payload in rows:
            if alert_id not in self._mid_of:
                yield Entry(alert_id, topic, bytes(payload))

    def confirm(self, mids: Iterable[int]) -> int:
        """The broker acknowledged these packet ids; remove their alerts, return how many.

        Ids of other messages (state, metrics, rejects) are ignored.
        """
        done = [self._by_mid.pop(m) for m in mids if m in self._by_mid]
        if not done:
            return 0
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in done])
        for i in done:
            del self._mid_of[i]
        self.pending -= len(done)
        self.delivered += len(done)
        return len(done)

    def close(self) -> None:
        self._db.close()


def republish(outbox: Outbox, publish: Callable[[Entry], int | None]) -> int:
    """Hand every stored alert without a live publish to ``publish`` (which returns
    the packet id, or None if refused); how many were handed over."""
    n = 0
    for entry in list(outbox.unsent()):
        outbox.sent(entry.id, publish(entry))
        n += 1
    return n
