"""A TCP relay between a client and the broker whose client-to-broker direction can be held.

Fault tests use it to let the broker's messages reach the service while the
service's acknowledgements and alerts do not reach the broker, then to drop
everything held, as a crash would: what the broker then redelivers and what
the outbox replays is exactly what was never acknowledged.
"""

from __future__ import annotations

import select
import socket
import threading
import time

from ecgwatch.broker import LOCALHOST


class HoldingProxy:
    """Listens on 127.0.0.1 (``.port``) and relays every connection to ``target``."""

    def __init__(self, target_port: int, target_host: str = LOCALHOST) -> None:
        self.target = (target_host, target_port)
        self._server = socket.create_server((LOCALHOST, 0))
        self.port = int(self._server.getsockname()[1])
        self._flowing = threading.Event()     # clear: client->broker bytes are held
        self._flowing.set()
        self._socks: list[socket.socket] = []
        self._pumps: dict[int, bool] = {}     # upstream pump id -> it has seen the hold
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def hold_upstream(self, timeout: float = 5.0) -> None:
        """Stop relaying client->broker bytes (they wait, unread, in the proxy).

        Returns once every relay has seen the hold, so that nothing read after
        this call is forwarded.
        """
        with self._lock:
            self._pumps = {k: False for k in self._pumps}
        self._flowing.clear()
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if all(self._pumps.values()):
                    return
            if time.monotonic() > deadline:
                raise AssertionError("the proxy's relays did not pause")
            time.sleep(0.01)

    def drop_all(self) -> None:
        """Close every relayed connection, discarding whatever was held; let bytes flow again."""
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self._server.close()
        self.drop_all()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        me = threading.get_ident()
        if upstream:
            with self._lock:
                self._pumps[me] = not self._flowing.is_set()
        try:
            while True:
                if upstream:
                    # The flag is checked before every read, never while blocked
                    # in one: held bytes stay in this socket's buffer and vanish
                    # with it in drop_all().
                    if not self._flowing.is_set():
                        with self._lock:
                            self._pumps[me] = True
                        if src.fileno() < 0:
                            return
                        self._flowing.wait(0.05)
                        continue
                    if not select.select([src], [], [], 0.05)[0]:
                        continue
                    if not self._flowing.is_set():
                        continue          # held while we waited: read nothing
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except (OSError, ValueError):     # ValueError: select on a closed socket
            pass
        if upstream:
            with self._lock:
                self._pumps.pop(me, None)
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
