"""A loopback HTTP/1.1 proxy that fails chosen requests, to test the client's retries.

Each request that arrives takes the next action of the plan (``pass`` when it is empty):

* ``"pass"`` — forward it and relay the answer;
* ``"reset"`` — reset the connection before forwarding (the server never sees it);
* ``"drop_response"`` — forward it, let the server answer, then reset the connection
  instead of relaying the answer (the server did the work, the client cannot know);
* ``"503"`` — answer ``503`` with ``Retry-After: 0`` without forwarding.

Every request is logged as ``(method, path, action)``.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections import deque
from types import TracebackType

Action = str
_BODY = b'{"detail": "injected by the test"}'
_UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY)
)


class _Reader:
    """Reads HTTP/1.1 messages (head + Content-Length body) off a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def message(self) -> bytes | None:
        """The next whole message, or None at end of stream."""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        end = self.buffer.index(b"\r\n\r\n") + 4
        length = 0
        for line in bytes(self.buffer[:end]).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(self.buffer) < end + length:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        message = bytes(self.buffer[: end + length])
        del self.buffer[: end + length]
        return message


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a crashed peer or middlebox would."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class FlakyProxy:
    """Forwards ``127.0.0.1:port`` to ``upstream_port``, failing requests as planned."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.plan: deque[Action] = deque()
        self.log: list[tuple[str, str, Action]] = []
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def fail_next(self, *actions: Action) -> None:
        """Apply ``actions`` to the next requests, in order."""
        with self._lock:
            self.plan.extend(actions)

    def requests(self, path_suffix: str = "") -> list[tuple[str, str, Action]]:
        """The logged requests whose path ends with ``path_suffix``."""
        with self._lock:
            return [entry for entry in self.log if entry[1].split("?")[0].endswith(path_suffix)]

    def __enter__(self) -> FlakyProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting, close every connection, join the threads."""
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        except OSError:
            pass
        self.listener.close()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._acceptor.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        upstream: socket.socket | None = None
        upstream_reader: _Reader | None = None
        reader = _Reader(client)
        try:
            while (request := reader.message()) is not None:
                method, path = request.split(b" ", 2)[:2]
                with self._lock:
                    action = self.plan.popleft() if self.plan else "pass"
                    self.log.append((method.decode(), path.decode(), action))
                if action == "reset":
                    _reset(client)
                    return
                if action == "503":
                    client.sendall(_UNAVAILABLE)
                    continue
                if upstream is None:
                    upstream = self._track(socket.create_connection(self.upstream))
                    upstream_reader = _Reader(upstream)
                assert upstream_reader is not None
                upstream.sendall(request)
                response = upstream_reader.message()
                if response is None:
                    return
                if action == "drop_response":
                    _reset(client)
                    return
                client.sendall(response)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    sock.close()
                    with self._lock:
                        self._sockets.discard(sock)
