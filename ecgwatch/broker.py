"""MQTT brokers ecgwatch can start by itself: in-process amqtt, or a mosquitto child.

``EmbeddedBroker`` is what ``ecgwatch serve`` (without ``--broker``) and
``ecgwatch demo`` run, so that the demo needs nothing but ``pip install``.
amqtt 0.12 speaks MQTT 3.1.1 only and refuses MQTT 5 CONNECTs, which is why the
MQTT edge can fall back from 5 to 3.1.1.

``MosquittoBroker`` runs the real thing on a free port for the test-suite;
``start_test_broker()`` prefers it and falls back to the embedded one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from detect.errors import BrokerError

log = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 3.0      # a daemon thread: a stuck shutdown cannot block exit


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that was free a moment ago (for programs that cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class _BrokerBase:
    kind = ""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> "_BrokerBase":
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "_BrokerBase":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url})"


class EmbeddedBroker(_BrokerBase):
    """amqtt's Broker on its own asyncio loop in a daemon thread.

    ``port=0`` binds an ephemeral port; the real one is read back from the
    listening socket, so there is no window in which another process can take it.
    """

    kind = "amqtt"

    def __init__(self, host: str = LOCALHOST, port: int = 0) -> None:
        super().__init__(host, port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # Anonymous clients only; the $SYS plugin and the packet loggers are
            # left out because they only add chatter and work.
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }

    def start(self) -> "EmbeddedBroker":
        if self._thread is not None:
            return self
        for name in ("amqtt", "transitions"):
            # Both log every packet and state change at INFO; an operator who
            # did not configure them explicitly only wants their warnings.
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)
        self._thread = threading.Thread(target=self._run, name=f"amqtt-{self.port}", daemon=True)
        self._thread.start()
        if not self._started.wait(_START_TIMEOUT_S) or self._error is not None:
            self.stop()
            raise BrokerError(f"The embedded MQTT broker could not listen on "
                              f"{self.host}:{self.port}: {self._error}.")
        log.info("embedded MQTT broker listening on %s", self.url)
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_broker())
        except BaseException as e:  # reported to start() through self._error
            self._error = e
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _start_broker(self) -> None:
        from amqtt.broker import Broker  # imported late: amqtt is slow to import

        self._broker = Broker(self._config(), loop=asyncio.get_running_loop())
        await self._broker.start()
        if self.port == 0:
            # amqtt keeps no public handle on the bound address; its listener
            # registry is the only place the ephemeral port can be read from.
            server = self._broker._servers["default"].instance
            self.port = int(server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if thread is None:
            return
        if loop is not None and loop.is_running():
            if self._broker is not None:
                fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop)
                try:
                    # amqtt's shutdown can stall on a client that is still
                    # connected; the loop is stopped below regardless.
                    fut.result(timeout=_STOP_TIMEOUT_S)
                except Exception as e:  # shutting down anyway
                    log.warning("embedded broker shutdown failed: %s", e)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_STOP_TIMEOUT_S)
        self._thread = None
        self._loop = None
        self._broker = None
        self._started.clear()


@dataclass(frozen=True, slots=True)
class SecureListener:
    """TLS with a server certificate, password authentication and an ACL file."""

    ca_file: str
    cert_file: str
    key_file: str
    password_file: str
    acl_file: str | None = None
    require_client_certificate: bool = False

    def conf_lines(self) -> list[str]:
        lines = [f"cafile {self.ca_file}", f"certfile {self.cert_file}",
                 f"keyfile {self.key_file}",
                 f"require_certificate {str(self.require_client_certificate).lower()}",
                 "allow_anonymous false", f"password_file {self.password_file}"]
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        return lines


class MosquittoBroker(_BrokerBase):
    """A mosquitto child process on 127.0.0.1 with a generated configuration."""

    kind = "mosquitto"

    def __init__(self, port: int = 0, extra_conf: str = "", *,
                 binary: str | None = None, secure: SecureListener | None = None) -> None:
        super().__init__(LOCALHOST, port)
        self.extra_conf = extra_conf
        self.secure = secure
        self.binary = binary or find_mosquitto()
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.secure else 'mqtt'}://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The mosquitto process id while it runs (fault tests pause it with SIGSTOP)."""
        return self._proc.pid if self._proc is not None else None

    def _conf_text(self) -> str:
        lines = [f"listener {self.port} {self.host}"]
        if self.secure is None:
            lines.append("allow_anonymous true")
        else:
            lines += self.secure.conf_lines()
        lines += [
            # The default (1000) drops QoS 1 messages for a slow subscriber in
            # bursty tests; ecgwatch relies on QoS 1 not being dropped.
            "max_queued_messages 100000",
            # No limit on a client's unacknowledged QoS 1 publishes (Receive
            # Maximum in the CONNACK): the service's states and alerts must not
            # wait for PUBACKs stuck behind a backlog of chunks (ingest/mqtt.py).
            "max_inflight_messages 0",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            # Started as root, mosquitto drops to user "mosquitto", which cannot
            # read a root-owned temporary directory.
            lines.append("user root")
        if self.extra_conf:
            lines.append(self.extra_conf.strip())
        return "\n".join(lines) + "\n"

    def start(self) -> "MosquittoBroker":
        if self._proc is not None:
            return self
        if self.binary is None:
            raise BrokerError("mosquitto is not installed (no /usr/sbin/mosquitto on PATH).")
        wanted = self.port
        # A port picked by free_port() can be taken before mosquitto binds it;
        # try a few times when the caller did not ask for a specific port.
        for attempt in range(1 if wanted else 5):
            self.port = wanted or free_port(self.host)
            try:
                self._spawn()
                log.info("mosquitto listening on %s", self.url)
                return self
            except BrokerError:
                self.stop()
                if wanted or attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="ecgwatch-mosquitto-")
        d = Path(self._dir.name)
        d.chmod(0o755)  # readable even if mosquitto changes user after all
        conf = d / "mosquitto.conf"
        conf.write_text(self._conf_text())
        self._log_path = d / "mosquitto.log"
        with open(self._log_path, "wb") as err:
            self._proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=err, stderr=err,
                                          stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(f"mosquitto exited with code {self._proc.returncode} "
                                  f"before listening on port {self.port}: {self._log_tail()}")
            if _accepts(self.host, self.port):
                return
            time.sleep(0.02)
        raise BrokerError(f"mosquitto did not listen on port {self.port} within "
                          f"{_START_TIMEOUT_S:g} s: {self._log_tail()}")

    def log(self) -> str:
        """What mosquitto has logged so far ("" before start and after stop)."""
        try:
            return self._log_path.read_text(errors="replace") if self._log_path else ""
        except OSError:
            return ""

    def _log_tail(self) -> str:
        return self.log().strip()[-500:] or "no log output"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary, or None when it is not installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    default = "/usr/sbin/mosquitto"  # Debian puts it outside a normal user's PATH
    return default if os.access(default, os.X_OK) else None


def start_test_broker() -> EmbeddedBroker | MosquittoBroker:
    """A started broker on a free port: mosquitto when installed, else amqtt."""
    if find_mosquitto() is not None:
        return MosquittoBroker().start()
    return EmbeddedBroker().start()
