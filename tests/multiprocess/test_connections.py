"""Idle, slow and oversized connections against a real ``python -m service`` (issue #12.2).

Every socket goes to 127.0.0.1, a bounded number of them, each closed by the test.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx

from service.limits import MAX_HEAD_BYTES, MAX_HEADERS
from tests.multiprocess.conftest import Services

LIMIT = 4
"""``LRSCHED_LIMIT_CONCURRENCY`` of these tests' services."""


@contextmanager
def idle_sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that send nothing, closed at the end."""
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            connection = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
            sockets.append(connection)
        time.sleep(0.2)  # let the server accept them all
        yield sockets


def closed_by_server(connection: socket.socket, within: float) -> bool:
    """Whether the server closes ``connection`` within ``within`` seconds."""
    connection.settimeout(within)
    try:
        return connection.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def healthz_on(connection: socket.socket) -> bytes:
    """The whole answer to one ``GET /healthz`` sent on ``connection`` (kept open)."""
    connection.settimeout(5)
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = connection.recv(4096)
    while not answer.endswith(b"}"):
        answer += connection.recv(4096)
    return answer


def test_healthz_answers_with_idle_connections_past_the_limit(services: Services) -> None:
    """Idle sockets past LRSCHED_LIMIT_CONCURRENCY made every request a 503, /healthz too:
    now the longest-idle connections make room, and the liveness probe is always answered."""
    service = services.start(
        "memory",
        env={"LRSCHED_LIMIT_CONCURRENCY": str(LIMIT), "LRSCHED_HEADER_TIMEOUT_SECONDS": "60"},
    )
    with idle_sockets(service.port, 3 * LIMIT) as sockets:
        started = time.monotonic()
        health = httpx.get(f"{service.url}/healthz", timeout=5)
        assert time.monotonic() - started < 1.0
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        ready = httpx.get(f"{service.url}/readyz", timeout=5)
        assert (ready.status_code, ready.json()) == (200, {"status": "ok"})
        closed = sum(closed_by_server(connection, 0.5) for connection in sockets)
    # The oldest idle ones were closed to make room; as many as the limit keep theirs.
    assert 2 * LIMIT <= closed < 3 * LIMIT


def test_healthz_is_answered_when_no_room_can_be_made(services: Services) -> None:
    """Every connection busy with a request head in progress (none idle): /healthz is still
    answered, other routes get uvicorn's 503."""
    service = services.start(
        "memory",
        env={"LRSCHED_LIMIT_CONCURRENCY": str(LIMIT), "LRSCHED_HEADER_TIMEOUT_SECONDS": "60"},
    )
    with idle_sockets(service.port, LIMIT) as sockets:
        for connection in sockets:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # head not finished
        time.sleep(0.2)
        with httpx.Client(timeout=5) as client:
            assert client.get(f"{service.url}/healthz").status_code == 200
            assert client.get(f"{service.url}/readyz").status_code == 503


def test_a_header_drip_connection_is_closed_after_the_header_timeout(services: Services) -> None:
    service = services.start("memory", env={"LRSCHED_HEADER_TIMEOUT_SECONDS": "1"})
    with socket.create_connection(("127.0.0.1", service.port)) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        try:
            while time.monotonic() - started < 10:  # one header line every 0.2 s
                connection.sendall(b"X-Drip: 1\r\n")
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass
        closed = closed_by_server(connection, 1.0)
        elapsed = time.monotonic() - started
    assert closed
    assert 0.8 < elapsed < 5


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    services: Services,
) -> None:
    service = services.start("memory", env={"LRSCHED_HEADER_TIMEOUT_SECONDS": "1"})
    with socket.create_connection(("127.0.0.1", service.port)) as connection:
        started = time.monotonic()
        assert closed_by_server(connection, 5.0)
        assert 0.8 < time.monotonic() - started < 5


def test_an_idle_keep_alive_connection_is_closed_after_keep_alive_seconds(
    services: Services,
) -> None:
    service = services.start("memory", env={"LRSCHED_KEEP_ALIVE_SECONDS": "1"})
    with socket.create_connection(("127.0.0.1", service.port)) as connection:
        answer = healthz_on(connection)
        assert answer.startswith(b"HTTP/1.1 200")
        assert answer.endswith(b'\r\n\r\n{"status":"ok"}')
        started = time.monotonic()
        assert closed_by_server(connection, 5.0)
        assert 0.8 < time.monotonic() - started < 5


def test_a_request_head_over_64_kib_is_431(services: Services) -> None:
    service = services.start("memory")
    with socket.create_connection(("127.0.0.1", service.port)) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
        connection.settimeout(5)
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert answer.endswith(b"\r\n\r\nrequest line and headers too big")
    assert httpx.get(f"{service.url}/healthz", timeout=5).status_code == 200


def exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` on a new connection and read until the server closes it (or 5 s)."""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.settimeout(5)
        try:
            connection.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole head was sent: the answer is still there to read
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        except TimeoutError:
            pass  # a keep-alive answer: the server keeps the connection open
    return answer


def head(fields: int, *, value: bytes = b"") -> bytes:
    """A GET /healthz head of ``fields`` header fields (Host, Connection: close and
    ``fields - 2`` X fields, empty or of ``value``)."""
    return (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + b"".join(b"X:" + value + b"\r\n" for _ in range(fields - 2))
        + b"\r\n"
    )


def test_a_head_of_many_empty_headers_is_431(services: Services) -> None:
    """60,000 empty headers are 240 KB of head but carried no name or value bytes: they were
    answered 200, and each such request held the event loop about 60 ms."""
    service = services.start("memory")
    flood = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X:\r\n" * 60_000 + b"\r\n"
    answer = exchange(service.port, flood)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert answer.endswith(b"\r\n\r\nrequest line and headers too big")
    assert httpx.get(f"{service.url}/healthz", timeout=5).status_code == 200


def test_more_than_max_headers_is_431_and_max_headers_is_200(services: Services) -> None:
    service = services.start("memory")
    assert exchange(service.port, head(MAX_HEADERS + 1)).startswith(b"HTTP/1.1 431 ")
    assert exchange(service.port, head(MAX_HEADERS + 1, value=b" 1")).startswith(b"HTTP/1.1 431 ")
    assert exchange(service.port, head(MAX_HEADERS)).startswith(b"HTTP/1.1 200 ")
    assert exchange(service.port, head(MAX_HEADERS, value=b" 1")).startswith(b"HTTP/1.1 200 ")
    with httpx.Client(timeout=5) as client:  # ordinary requests, on one connection
        for _ in range(3):
            assert client.get(f"{service.url}/healthz").status_code == 200
            assert client.get(f"{service.url}/readyz").status_code == 200


def test_the_head_limit_counts_every_header_line_as_sent(services: Services) -> None:
    """Headers whose names and values alone fit in MAX_HEAD_BYTES but are past it as sent,
    with every field's ": " and CRLF: 431 (they were answered 200)."""
    service = services.start("memory")
    fields = b"".join(b"X%03d: %s\r\n" % (i, b"v" * 256) for i in range(250))
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + fields + b"\r\n"
    assert 250 * (4 + 256) + 100 < MAX_HEAD_BYTES < len(request)
    assert exchange(service.port, request).startswith(b"HTTP/1.1 431 ")


def test_empty_lines_after_a_request_do_not_keep_the_connection_open(
    services: Services,
) -> None:
    """After one answered request, a CRLF every 0.2 s (the parser skips empty lines before a
    request line without starting a request, and each one stopped uvicorn's keep-alive timer)
    held the connection forever: now it is closed after the head timeout."""
    service = services.start(
        "memory",
        env={"LRSCHED_HEADER_TIMEOUT_SECONDS": "1", "LRSCHED_KEEP_ALIVE_SECONDS": "60"},
    )
    with socket.create_connection(("127.0.0.1", service.port)) as connection:
        answer = healthz_on(connection)
        assert answer.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        closed = False
        while not closed and time.monotonic() - started < 10:
            try:
                connection.sendall(b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            closed = closed_by_server(connection, 0.2)
        elapsed = time.monotonic() - started
    assert closed
    assert 0.8 < elapsed < 5


def test_a_request_after_empty_lines_is_still_answered(services: Services) -> None:
    """Empty lines before a request line are allowed (RFC 9112 2.2): the request that follows
    them in time is answered on the same connection."""
    service = services.start("memory", env={"LRSCHED_HEADER_TIMEOUT_SECONDS": "2"})
    with socket.create_connection(("127.0.0.1", service.port)) as connection:
        for _ in range(2):
            connection.sendall(b"\r\n")
            time.sleep(0.2)
            assert healthz_on(connection).startswith(b"HTTP/1.1 200")
