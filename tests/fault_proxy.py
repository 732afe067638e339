"""A TCP relay between a client and the broker whose client-to-broker direction can be held.

Fault tests use it to let the broker's messages reach the service while the
service's acknowledgements and alerts do not reach the broker, then to drop
everything held, as a crash would: what the broker then redelivers and what
the outbox replays is exactly what was never acknowledged.
"""

from __future__ import annotations

import socket
import threading

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
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def hold_upstream(self) -> None:
        """Stop relaying client->broker bytes (they wait, unread, in the proxy)."""
        self._flowing.clear()

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
        try:
            while True:
                if upstream:
                    # Held: read nothing, so the bytes stay in this socket's
                    # buffer and vanish with it in drop_all().
                    while not self._flowing.wait(0.05):
                        if src.fileno() < 0:
                            return
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
