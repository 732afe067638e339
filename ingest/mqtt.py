"""The MQTT edge: a thin wrapper around one paho-mqtt 2.x client.

In the spirit of aiomqtt, the edge does as little as possible on paho's network
thread: ``on_message`` only appends ``(topic, payload, received_at)`` to a
bounded inbox, and the service thread does every decode and every decision. A
slow detector therefore never stalls keep-alives or acknowledgements.

Delivery (``manual_ack=True``, what the service uses): QoS 1 messages are
acknowledged only when the consumer calls ``ack(msg)`` after processing, on a
persistent session (``session_expiry_s`` > 0: clean start off in MQTT 5,
``clean_session=False`` in 3.1.1), so a message in flight when the process dies
is redelivered by the broker to the next process with the same client id.

Flow control is TCP's: paho's network thread reads from the socket only while
the inbox has room, and at most as many packets as it has room for
(``_GatedClient``); what does not fit waits in the socket buffers and at the
broker. ``on_message`` therefore never finds the inbox full and never blocks:
the network thread must keep writing - acknowledgements, our own publishes,
keep-alive - however far behind the consumer is. (It used to wait in
``on_message`` for room. paho reads up to as many packets per pass as it has
publishes of its own awaiting acknowledgement before it writes anything, so
under sustained overload it wrote almost nothing: PUBACKs, metrics and alerts
stayed queued while the backlog grew, and ``ecgwatch bench --e2e`` saw a
saturated service take in a fraction of its capacity and publish nothing.)
The MQTT 5 CONNECT still carries Receive Maximum = the inbox size, which
keeps a compliant broker's backlog at the broker rather than in TCP;
mosquitto 2.0.11 does not honour it (each PUBACK of the oldest message in
flight releases a whole window more, measured on this machine), which the
read gate makes harmless. ``overflow`` counts a message that found the inbox
full anyway (only possible if something else fills it); such a message is
dropped unacknowledged, so with ``manual_ack`` the broker redelivers it on
the next reconnect. Without ``manual_ack`` paho acknowledges on arrival.

Our own QoS 1 publishes are not held to paho's window of 20: their PUBACKs
queue behind the chunks the broker has for us, so the edge sends as many
unacknowledged as the broker allows (``_adopt_send_window``).

Credentials come from the environment (``ECGWATCH_MQTT_USERNAME`` /
``ECGWATCH_MQTT_PASSWORD``) or from a password file, never from the command
line (visible in ``ps``) and are never logged.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from detect.errors import BrokerError, ConfigError

log = logging.getLogger(__name__)

USERNAME_ENV = "ECGWATCH_MQTT_USERNAME"
PASSWORD_ENV = "ECGWATCH_MQTT_PASSWORD"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
INVALID_TOPIC = "(topic is not valid UTF-8)"

Protocol = Literal["auto", "5", "3.1.1"]
_PAHO_PROTOCOL = {"5": paho.MQTTv5, "3.1.1": paho.MQTTv311}
# CONNACK codes meaning "this broker does not speak the version you asked for":
# 0x84 in MQTT 5, 1 in MQTT 3.1.1 (which amqtt sends to a v5 CONNECT).
_UNSUPPORTED_VERSION = {0x84, 1}
# How long "auto" waits for a CONNACK to its MQTT 5 CONNECT before trying 3.1.1.
_V5_PROBE_S = 3.0
# How long paho's network thread waits for room in a full inbox before it goes
# back to writing and keep-alive (and then waits again).
_READ_WAIT_S = 0.05
MAX_SESSION_EXPIRY_S = 0xFFFFFFFF - 1   # 0xFFFFFFFF would mean "never expires" in MQTT 5


@dataclass(frozen=True, slots=True)
class BrokerURL:
    """``mqtt://host[:port]`` (plain TCP) or ``mqtts://host[:port]`` (TLS)."""

    scheme: str
    host: str
    port: int

    def __post_init__(self) -> None:
        if self.scheme not in DEFAULT_PORTS:
            raise ConfigError(f"Broker URL scheme {self.scheme!r} is not 'mqtt' or 'mqtts'.")
        if not self.host:
            raise ConfigError("Broker URL has no host name.")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ConfigError(f"Broker port {self.port!r} is not in 1..65535.")

    @classmethod
    def parse(cls, text: str) -> "BrokerURL":
        try:
            parts = urlsplit(text.strip())
            port = parts.port
        except ValueError as e:
            raise ConfigError(f"Broker URL {text!r} cannot be parsed: {e}.") from None
        if parts.username is not None or parts.password is not None:
            # Secrets in a URL end up in shell history, ps and logs.
            raise ConfigError(f"Broker URL for host {parts.hostname!r} carries credentials; "
                              f"pass them in {USERNAME_ENV}/{PASSWORD_ENV} or a password file.")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(f"Broker URL {text!r} must be only scheme://host:port.")
        scheme = parts.scheme.lower()
        return cls(scheme, parts.hostname or "",
                   port if port is not None else DEFAULT_PORTS.get(scheme, 0))

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """Client-side TLS: CA bundle, optional client certificate, hostname check."""

    ca_file: str | None = None        # None: the system trust store
    cert_file: str | None = None      # client certificate (mutual TLS) ...
    key_file: str | None = None       # ... and its private key
    insecure: bool = False            # skip the hostname check (like mosquitto_sub --insecure)

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("A TLS client certificate needs both --cert-file and --key-file.")
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"TLS {name.replace('_', ' ')} {path!r} does not exist.")

    def context(self) -> ssl.SSLContext:
        """A client context that verifies the broker (and its name, unless insecure)."""
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file is not None:
                ctx.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"TLS files cannot be loaded (CA {self.ca_file!r}, certificate "
                              f"{self.cert_file!r}): {e}.") from None
        ctx.check_hostname = not self.insecure
        return ctx


@dataclass(frozen=True, slots=True)
class Credentials:
    """MQTT username and password; the password never appears in repr or logs."""

    username: str
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.username:
            raise ConfigError("MQTT username is empty.")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Credentials | None":
        """Credentials from ``ECGWATCH_MQTT_USERNAME``/``..._PASSWORD``, or None if unset."""
        env = os.environ if environ is None else environ
        user, password = env.get(USERNAME_ENV), env.get(PASSWORD_ENV)
        if not user:
            if password:
                raise ConfigError(f"{PASSWORD_ENV} is set but {USERNAME_ENV} is not.")
            return None
        return cls(user, password or None)

    @classmethod
    def from_file(cls, path: str | Path, username: str | None = None,
                  environ: dict[str, str] | None = None) -> "Credentials":
        """The password is the file's first line; the username comes from
        ``username`` or ``ECGWATCH_MQTT_USERNAME``."""
        env = os.environ if environ is None else environ
        user = username or env.get(USERNAME_ENV)
        if not user:
            raise ConfigError(f"A password file needs a username ({USERNAME_ENV} or --username).")
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as e:
            raise ConfigError(f"Password file {str(path)!r} cannot be read: "
                              f"{e.strerror}.") from None
        if not lines or not lines[0]:
            raise ConfigError(f"Password file {str(path)!r} is empty.")
        return cls(user, lines[0])


class Will(NamedTuple):
    """Last Will: what the broker publishes if the client vanishes without DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class _GatedClient(paho.Client):
    """paho's client whose network thread reads only what the inbox has room for.

    ``room()`` (called on the network thread) returns how many packets may be
    read now, having waited briefly for room if there was none. Returning
    without reading lets paho's loop go on to write and to keep-alive, so a
    full inbox never stops acknowledgements or our own publishes. Relies on
    paho 2.x internals (``_sock``, ``_packet_read``, ``_loop_rc_handle``: the
    body of paho's own ``loop_read``), checked at construction.
    """

    def __init__(self, room: Callable[[], int], *args: Any, **kwargs: Any) -> None:
        for name in ("_packet_read", "_loop_rc_handle"):
            if not callable(getattr(paho.Client, name, None)):
                raise BrokerError(f"This paho-mqtt lacks Client.{name}, which the MQTT "
                                  "edge's flow control needs (paho-mqtt 2.x).")
        super().__init__(*args, **kwargs)
        self._room = room

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        if self._sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        for _ in range(self._room()):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                break
        return MQTTErrorCode.MQTT_ERR_SUCCESS


class Received(NamedTuple):
    """One raw inbound message as it sits in the inbox (not yet decoded).

    ``mid``, ``qos`` and ``connection`` are what ``MqttEdge.ack`` needs: a
    packet id is only meaningful on the connection that delivered it.
    """

    topic: str
    payload: bytes
    received_at: float
    mid: int = 0
    qos: int = 0
    connection: int = 0


class MqttEdge:
    """One MQTT connection: bounded inbox in, thread-safe ``publish`` out.

    ``start()`` connects (negotiating the protocol when ``protocol="auto"``) and
    returns once the broker accepted the connection and acknowledged the
    subscriptions; paho's network thread then keeps
    the connection up, reconnects with back-off and resubscribes on every
    (re)connect. ``on_connect`` is called on that thread after each successful
    (re)connect, e.g. to re-publish a retained "online" status.
    """

    def __init__(self, url: BrokerURL | str, client_id: str, *,
                 tls: TlsOptions | None = None,
                 credentials: Credentials | None = None,
                 protocol: Protocol = "auto",
                 will: Will | None = None,
                 inbox: queue.Queue[Received] | None = None,
                 inbox_size: int = 10_000,
                 subscriptions: Sequence[tuple[str, int]] = (),
                 on_connect: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 keepalive: int = 30,
                 manual_ack: bool = False,
                 session_expiry_s: int = 0,
                 confirmations: queue.SimpleQueue[int] | None = None) -> None:
        self.url = url if isinstance(url, BrokerURL) else BrokerURL.parse(url)
        if protocol not in ("auto", *_PAHO_PROTOCOL):
            raise ConfigError(f"MQTT protocol {protocol!r} is not 'auto', '5' or '3.1.1'.")
        self.inbox: queue.Queue[Received] = inbox if inbox is not None else queue.Queue(inbox_size)
        if self.inbox.maxsize <= 0:
            raise ConfigError("The MQTT inbox must be bounded (maxsize > 0).")
        if not (isinstance(session_expiry_s, int)
                and 0 <= session_expiry_s <= MAX_SESSION_EXPIRY_S):
            raise ConfigError(f"MQTT session expiry {session_expiry_s!r} s of {client_id!r} is not "
                              f"an integer in 0..{MAX_SESSION_EXPIRY_S}.")
        self.client_id = client_id
        self.manual_ack = manual_ack
        # Packet ids of our QoS 1 publishes the broker acknowledged, for the
        # consumer to drain (the alert outbox); None: not recorded.
        self.confirmations = confirmations
        # 0: a clean session (nothing survives a disconnect); > 0: the broker
        # keeps our subscriptions and unacknowledged messages that long.
        self.session_expiry_s = session_expiry_s
        self.tls = tls
        self.credentials = credentials
        self.protocol: Protocol = protocol
        self.will = will
        self.subscriptions = tuple(subscriptions)
        self.on_connect = on_connect
        self.clock = clock
        self.keepalive = keepalive
        # Set once connected AND the subscriptions are acknowledged, so that a
        # message published after start() returns cannot miss us.
        self.connected = threading.Event()
        self.overflow = 0                       # messages dropped on a full inbox
        self.acked = 0                          # PUBACKs sent by ack()
        self.stale_acks = 0                     # ack() of a message of an earlier connection
        self.purged = 0                         # stale messages dropped: the broker resends them
        self.connection = 0                     # +1 per accepted (re)connect
        self.session_present = False            # the broker resumed our session on the last connect
        self.unsolicited = 0                    # messages outside our subscriptions, dropped
        self.protocol_in_use: str | None = None  # "5" or "3.1.1" once connected
        self._client: paho.Client | None = None
        self._ssl_context = (self.tls or TlsOptions()).context() \
            if self.url.tls or self.tls is not None else None
        self._first = threading.Event()          # first CONNACK (or failure) seen
        self._first_rc: ReasonCode | None = None
        self._closed_early = False               # socket closed before the first CONNACK
        self._subscribe_mid = -1
        self._socket_opened = False              # TCP (and TLS) connection made
        self._connack_due = False                # socket open, CONNACK not read yet
        self._window_warned = False              # the broker's small send window logged
        self._closing = threading.Event()        # stop()/kill() under way

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Connect; raise BrokerError if refused or unreachable within ``timeout``."""
        if self._client is not None:
            return
        deadline = time.monotonic() + timeout
        tries = ["5", "3.1.1"] if self.protocol == "auto" else [self.protocol]
        for proto in tries:
            client = self._make_client(proto)
            # Set before connecting so that an on_connect hook can already publish.
            self._client = client
            probing = proto == "5" and len(tries) > 1
            wait = deadline - time.monotonic()
            rc = self._connect(client, min(wait, _V5_PROBE_S) if probing else wait)
            if rc is not None and not rc.is_failure:
                if not self.connected.wait(max(0.0, deadline - time.monotonic())):
                    self._client = None
                    self._shutdown(client)
                    raise BrokerError(f"MQTT broker {self.url} did not acknowledge the "
                                      f"subscriptions of {self.client_id!r} within {timeout:g} s.")
                self.protocol_in_use = proto
                log.info("MQTT connected to %s as %s (MQTT %s)", self.url, self.client_id, proto)
                return
            # Read before _shutdown, whose DISCONNECT fires callbacks of its own.
            reached, closed_early = self._socket_opened, self._closed_early
            self._client = None
            self._shutdown(client)
            if probing and (rc.value in _UNSUPPORTED_VERSION if rc is not None
                            else reached or closed_early):
                # MQTT 3.1.1-only brokers answer a v5 CONNECT with "unacceptable
                # protocol version" (amqtt), close the socket, or (amqtt when the
                # CONNECT carries a Will) never answer at all.
                log.info("MQTT broker %s refused MQTT 5; retrying with 3.1.1", self.url)
                continue
            if rc is None:
                why = "no CONNACK came" if reached else self._why_unreachable()
                raise BrokerError(f"MQTT broker {self.url} did not accept a connection from "
                                  f"{self.client_id!r} within {timeout:g} s ({why}).")
            raise BrokerError(f"MQTT broker {self.url} refused client {self.client_id!r}: {rc}.")
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Disconnect cleanly (the broker then discards the Last Will)."""
        client, self._client = self._client, None
        self._closing.set()
        if client is not None:
            self._shutdown(client)
        self.connected.clear()
        self._closing.clear()

    def kill(self) -> None:
        """Drop the TCP connection without DISCONNECT, as a crash would.

        The broker then publishes the Last Will; used to test exactly that.
        """
        client, self._client = self._client, None
        if client is None:
            return
        self._closing.set()
        client.loop_stop()
        self._closing.clear()
        sock = client.socket()
        if sock is not None:
            sock.close()
        self.connected.clear()

    def __enter__(self) -> "MqttEdge":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- traffic -------------------------------------------------------------

    def ack(self, msg: Received) -> None:
        """Acknowledge one processed message (``manual_ack``); call in arrival order.

        Only a QoS 1 message of the current connection is acknowledged: after a
        reconnect the same packet id may name another message, and the broker
        redelivers the old one anyway (or, its session lost, forgot it).
        """
        if not self.manual_ack or msg.qos != 1:
            return
        client = self._client
        if client is None or msg.connection != self.connection:
            self.stale_acks += 1
            return
        client.ack(msg.mid, 1)     # paho 2 queues the PUBACK under its own lock
        self.acked += 1

    def publish(self, topic: str, payload: bytes | str, qos: int = 1,
                retain: bool = False) -> paho.MQTTMessageInfo:
        """Queue one message; paho sends it now or after the next reconnect."""
        if self._client is None:
            raise BrokerError(f"MQTT client {self.client_id!r} is not started; "
                              f"cannot publish on {topic!r}.")
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    # -- paho plumbing -----------------------------------------------------

    def _make_client(self, proto: str) -> paho.Client:
        persistent = self.session_expiry_s > 0
        client = _GatedClient(self._room, CallbackAPIVersion.VERSION2, client_id=self.client_id,
                              protocol=_PAHO_PROTOCOL[proto], manual_ack=self.manual_ack,
                              clean_session=None if proto == "5" else not persistent)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        # Our QoS 1 publishes in flight at once: no limit of paho's own (its
        # default is 20); the broker's Receive Maximum applies once the CONNACK
        # says it (_adopt_send_window).
        client.max_inflight_messages_set(0)
        # paho's own outgoing queue is unbounded by default; publishes made while
        # disconnected are sent after the reconnect.
        if self.credentials is not None:
            client.username_pw_set(self.credentials.username, self.credentials.password)
        if self._ssl_context is not None:
            client.tls_set_context(self._ssl_context)
            client.tls_insecure_set(self._ssl_context.check_hostname is False)
        if self.will is not None:
            client.will_set(self.will.topic, self.will.payload, self.will.qos, self.will.retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        # Only messages matching our own filters reach the inbox: amqtt 0.12
        # sends a connecting client the retained messages of *every* client's
        # subscriptions, which paho then hands to the catch-all on_message.
        for topic_filter, _qos in self.subscriptions:
            client.message_callback_add(topic_filter, self._on_message)
        client.on_message = self._on_unsolicited
        client.on_subscribe = self._on_subscribe
        client.on_socket_open = self._on_socket_open
        if self.confirmations is not None:
            client.on_publish = self._on_publish
        return client

    def _connect(self, client: paho.Client, timeout: float) -> ReasonCode | None:
        """First CONNACK's reason code, or None if none came within ``timeout``."""
        self._first.clear()
        self._first_rc = None
        self._closed_early = False
        self._socket_opened = False
        # Asynchronous so that DNS and TCP failures are retried by paho's thread
        # (with back-off) until the timeout, instead of failing on the first try.
        if client.protocol == paho.MQTTv5:
            client.connect_async(self.url.host, self.url.port, keepalive=self.keepalive,
                                 clean_start=self.session_expiry_s == 0,
                                 properties=self._connect_properties())
        else:
            client.connect_async(self.url.host, self.url.port, keepalive=self.keepalive)
        client.loop_start()
        self._first.wait(timeout)
        return self._first_rc

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        if self.session_expiry_s > 0:
            props.SessionExpiryInterval = self.session_expiry_s
        if self.manual_ack:
            # The broker sends at most this many unacknowledged messages: with
            # acks only after processing, the inbox then cannot overflow.
            props.ReceiveMaximum = min(self.inbox.maxsize, 65535)
        return props

    def _why_unreachable(self) -> str:
        """Redo the TCP/TLS part once, to say why: paho's retry loop swallows the error."""
        try:
            with socket.create_connection((self.url.host, self.url.port), timeout=2.0) as sock:
                if self._ssl_context is not None:
                    with self._ssl_context.wrap_socket(sock, server_hostname=self.url.host):
                        pass
        except (OSError, ssl.SSLError) as e:
            return str(e)
        return "it accepts connections now"

    @staticmethod
    def _shutdown(client: paho.Client) -> None:
        client.disconnect()
        client.loop_stop()

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any,
                    rc: ReasonCode, properties: Any) -> None:
        self._connack_due = False
        if not self._first.is_set():
            self._first_rc = rc        # start() decides what a refusal means
            self._first.set()
            if rc.is_failure:
                return
        if rc.is_failure:
            log.warning("MQTT broker %s refused reconnect of %s: %s", self.url, self.client_id, rc)
            return
        self.connection += 1
        self._adopt_send_window(client, properties)
        self.session_present = bool(getattr(flags, "session_present", False))
        if self.session_present and self.manual_ack:
            self._purge_stale()
        if self.subscriptions:
            # Resubscribe on every connect: with a clean session the broker forgot them.
            _, self._subscribe_mid = client.subscribe(list(self.subscriptions))
        else:
            self.connected.set()
        if self.on_connect is not None:
            try:
                self.on_connect()
            except Exception:  # a hook bug must not kill paho's network thread
                log.exception("on_connect hook of %s failed", self.client_id)

    def _adopt_send_window(self, client: paho.Client, properties: Any) -> None:
        """Send as many unacknowledged QoS 1 publishes as the broker allows.

        The broker's PUBACKs for them share the connection with the chunks it
        sends us, behind every chunk already queued there; while a backlog
        waits for this service, a small window (paho's default 20) lets only
        that many states, alerts or metrics out per backlog read, and they
        queue in paho without end. So no limit of our own: MQTT 5 brokers
        state theirs in the CONNACK (Receive Maximum, 65535 when absent),
        MQTT 3.1.1 has none. paho only lets its window be changed before
        connecting; the CONNACK is handled before anything is resent, so the
        field is set directly here.
        """
        limit = getattr(properties, "ReceiveMaximum", None) \
            if client.protocol == paho.MQTTv5 else None
        window = 0 if limit is None or limit >= 65535 else int(limit)
        client._max_inflight_messages = window
        if window and not self._window_warned:
            self._window_warned = True
            log.warning("MQTT broker %s lets %s have only %d publishes unacknowledged (Receive "
                        "Maximum): while chunks back up for it, its alerts, states and metrics "
                        "wait behind them. Raise it (mosquitto: max_inflight_messages 0).",
                        self.url, self.client_id, window)

    def _purge_stale(self) -> None:
        """Drop the inbox's unacknowledged copies from the previous connection.

        The broker resumed the session, so it resends every message we had not
        acknowledged; keeping the old copies too would only fill the inbox
        (Receive Maximum counts the new ones alone). Without a resumed session
        they are the only copies and stay.
        """
        kept: list[Received] = []
        while True:
            try:
                m = self.inbox.get_nowait()
            except queue.Empty:
                break
            if m.qos == 1 and m.connection != self.connection:
                self.purged += 1
            else:
                kept.append(m)
        for m in kept:
            try:
                self.inbox.put_nowait(m)
            except queue.Full:       # only if the service thread raced us; counted
                self.overflow += 1

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int,
                      reason_codes: list[ReasonCode], properties: Any) -> None:
        refused = [self.subscriptions[i][0] for i, rc in enumerate(reason_codes) if rc.is_failure]
        if refused:
            # Still "connected": the publishing side works, and the broker's ACL
            # decision will not change by retrying.
            log.error("MQTT broker %s refused subscriptions %s of %s", self.url, refused,
                      self.client_id)
        if mid == self._subscribe_mid:
            self.connected.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any,
                       rc: ReasonCode, properties: Any) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        if not self._first.is_set():
            self._closed_early = True  # rc stays None: no CONNACK came
            self._first.set()
        elif was_connected and rc.is_failure:
            log.warning("MQTT connection of %s to %s lost (%s); reconnecting",
                        self.client_id, self.url, rc)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._socket_opened = True
        self._connack_due = True

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        log.debug("MQTT connect of %s to %s failed; retrying", self.client_id, self.url)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, rc: ReasonCode,
                    properties: Any) -> None:
        if rc.is_failure:
            # The broker took it and will not deliver it (MQTT 5, e.g. the ACL):
            # sending it again would fail again.
            log.error("MQTT broker %s refused a publish of %s: %s", self.url, self.client_id, rc)
        if self.confirmations is not None:
            self.confirmations.put(mid)

    def _room(self) -> int:
        """How many packets paho's thread may read now (``_GatedClient``).

        The free slots of the inbox; if there are none, waits up to
        ``_READ_WAIT_S`` for the consumer to take one (``Queue.get`` notifies
        ``not_full``), so that a full inbox costs no busy loop. Non-PUBLISH
        packets use a slot of the count too, which only reads less. One packet
        while a CONNACK is due: nothing else can come before it.
        """
        if self._connack_due:
            return 1
        inbox = self.inbox
        if inbox.full() and not self._closing.is_set():
            with inbox.not_full:
                inbox.not_full.wait(_READ_WAIT_S)
        return max(0, inbox.maxsize - inbox.qsize())

    def _on_unsolicited(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self.unsolicited += 1

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            # paho raises on a non-UTF-8 topic; keep the message so that the
            # service rejects it (and counts it) like any other bad topic.
            topic = INVALID_TOPIC
        item = Received(topic, msg.payload, self.clock(), msg.mid, msg.qos, self.connection)
        try:
            # Never waits: paho's thread only reads what the inbox has room for.
            self.inbox.put_nowait(item)
        except queue.Full:
            # Only if something else filled the inbox. Not acknowledged, so with
            # manual_ack the broker redelivers it on the next reconnect; counted.
            self.overflow += 1
