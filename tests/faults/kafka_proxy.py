"""A Kafka-protocol-aware TCP proxy for fault tests: every byte between the clients and one
broker (which advertises the proxy's port) passes through it, and it can lose a request on
the wire the way a dying connection or a request stuck in a client's queue loses it.

Client to broker it reads whole requests (a 4-byte size, then the header: API key, version,
correlation id, client id) so that it can drop the next JoinGroup (API key 11) a given
client sends: the client waits for an answer that never comes, as long as its own request
timeout says. Broker to client it copies bytes. ``sever()`` cuts every connection, as a
broker that goes away does."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

JOIN_GROUP = 11


class KafkaProxy:
    """Listens on 127.0.0.1:``port`` and forwards to 127.0.0.1:``upstream``."""

    def __init__(self, port: int, upstream: int) -> None:
        self.port, self.upstream = port, upstream
        self.dropped: list[str] = []  # client ids whose JoinGroup was dropped
        self._drop_join_of: str | None = None
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(128)
        self._closed = False
        threading.Thread(target=self._accept, name="kafka-proxy", daemon=True).start()

    def drop_next_join_of(self, client_id: str) -> None:
        """Drops the next JoinGroup request ``client_id`` sends (once)."""
        self._drop_join_of = client_id

    def sever(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            _close(connection)

    def close(self) -> None:
        self._closed = True
        self.sever()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                broker = socket.create_connection(("127.0.0.1", self.upstream), timeout=2)
                broker.settimeout(None)
            except OSError:  # the broker is away: as a refused connection
                _close(client)
                continue
            with self._lock:
                self._connections += [client, broker]
            threading.Thread(target=self._requests, args=(client, broker), daemon=True).start()
            threading.Thread(target=self._replies, args=(broker, client), daemon=True).start()

    def _requests(self, client: socket.socket, broker: socket.socket) -> None:
        try:
            while True:
                size = _read(client, 4)
                request = _read(client, struct.unpack(">i", size)[0])
                if self._dropped(request):
                    continue
                broker.sendall(size + request)
        except (EOFError, OSError):
            pass
        finally:
            _close(client)
            _close(broker)

    def _dropped(self, request: bytes) -> bool:
        if self._drop_join_of is None or struct.unpack(">h", request[:2])[0] != JOIN_GROUP:
            return False
        (length,) = struct.unpack(">h", request[8:10])
        client_id = request[10 : 10 + max(length, 0)].decode(errors="replace")
        if client_id != self._drop_join_of:
            return False
        self._drop_join_of = None
        self.dropped.append(client_id)
        return True

    @staticmethod
    def _replies(broker: socket.socket, client: socket.socket) -> None:
        try:
            while data := broker.recv(65536):
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(broker)


def _read(connection: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _close(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        connection.close()
