"""A minimal keep-alive HTTP/1.1 client on asyncio streams, and a closed-loop load driver.

The service is measured from the same 2-core machine, so the client must cost little: a
general client (httpx) spends more CPU per request than the server's ``/healthz``. This one
writes pre-built request bytes on a raw non-blocking socket and parses only the status
line, ``Content-Length`` and chunked framing. Loopback only.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Reply:
    """One response: status, lower-cased headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes | bytearray


def request_bytes(
    method: str, path: str, body: bytes = b"", headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """The bytes of one HTTP/1.1 request (keep-alive) to the bench server."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", f"Content-Length: {len(body)}"]
    if body:
        lines.append("Content-Type: application/json")
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One persistent connection (a non-blocking socket); one request at a time.

    Bodies with a ``Content-Length`` are received straight into one preallocated buffer
    (``recv_into``), so a 22 MB body costs the client one copy, from the kernel.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self._socket: socket.socket | None = None
        self._pending = bytearray()

    async def open(self) -> Connection:
        """Connect (once)."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_connect(sock, (HOST, self.port))
        self._socket = sock
        self._pending = bytearray()
        return self

    async def close(self) -> None:
        """Close the connection."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def _receive(self) -> None:
        assert self._socket is not None
        data = await asyncio.get_running_loop().sock_recv(self._socket, 1 << 18)
        if not data:
            raise ConnectionError("the server closed the connection")
        self._pending += data

    async def _line_block(self, end: bytes) -> bytes:
        while (position := self._pending.find(end)) < 0:
            await self._receive()
        block = bytes(self._pending[: position + len(end)])
        del self._pending[: position + len(end)]
        return block

    async def _exactly(self, size: int) -> bytearray:
        assert self._socket is not None
        loop = asyncio.get_running_loop()
        body = bytearray(size)
        view = memoryview(body)
        have = min(size, len(self._pending))
        view[:have] = self._pending[:have]
        del self._pending[:have]
        while have < size:
            got = await loop.sock_recv_into(self._socket, view[have:])
            if not got:
                raise ConnectionError("the server closed the connection mid-body")
            have += got
        return body

    async def send(self, raw: bytes) -> Reply:
        """Send pre-built request bytes and read the whole response."""
        if self._socket is None:
            await self.open()
        assert self._socket is not None
        await asyncio.get_running_loop().sock_sendall(self._socket, raw)
        head = await self._line_block(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self._exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = await self._chunked()
        else:
            body = bytearray()
        if headers.get("connection") == "close":
            await self.close()
        return Reply(status, headers, body)

    async def _chunked(self) -> bytes | bytearray:
        assert self._socket is not None
        body = bytearray()
        while True:
            size = int((await self._line_block(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._line_block(b"\r\n")
                return body
            have = min(size, len(self._pending))
            body += self._pending[:have]
            del self._pending[:have]
            if have < size:
                body += await self._exactly(size - have)
            await self._line_block(b"\r\n")

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Sequence[tuple[str, str]] = (),
    ) -> Reply:
        """Build and send one request."""
        return await self.send(request_bytes(method, path, body, headers))


@dataclass(slots=True)
class LoadResult:
    """What a load run saw: counts, per-request latencies (s), wall time (s), by kind."""

    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Requests answered (errors included)."""
        return sum(len(v) for v in self.latencies.values())

    @property
    def error_count(self) -> int:
        """Requests answered with an unexpected status or not answered."""
        return sum(self.errors.values())

    def rate(self) -> float:
        """Requests per second."""
        return self.count / self.seconds if self.seconds else 0.0

    def percentile(self, q: float, kind: str | None = None) -> float:
        """The ``q``-quantile (0..1) of latency in seconds, of one kind or all."""
        values = sorted(
            v for k, vs in self.latencies.items() if kind is None or k == kind for v in vs
        )
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(q * len(values)))]


Step = Callable[[Connection, int], Awaitable[tuple[str, bool]]]
"""One unit of work on a connection (worker index given): ``(kind, ok)``."""


async def closed_loop(
    port: int, connections: int, step: Step, *, seconds: float, max_requests: int
) -> LoadResult:
    """Run ``step`` back to back on ``connections`` connections until time or count is up."""
    result = LoadResult()
    deadline = time.perf_counter() + seconds
    budget = [max_requests]

    async def worker(index: int) -> None:
        connection = await Connection(port).open()
        try:
            while budget[0] > 0 and time.perf_counter() < deadline:
                budget[0] -= 1
                started = time.perf_counter()
                try:
                    kind, ok = await step(connection, index)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    kind, ok = "failed", False
                    await connection.close()
                    connection = Connection(port)
                result.latencies.setdefault(kind, []).append(time.perf_counter() - started)
                if not ok:
                    result.errors[kind] = result.errors.get(kind, 0) + 1
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    result.seconds = time.perf_counter() - started
    return result
