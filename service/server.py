"""uvicorn's httptools protocol, hardened against idle and slow connections.

uvicorn closes idle keep-alive connections (``LRSCHED_KEEP_ALIVE_SECONDS``) but never a
connection that opened and sent nothing, or that drips its request head a byte at a time, and
it answers every request 503 once ``LRSCHED_LIMIT_CONCURRENCY`` connections are open, idle or
not. :class:`GuardedProtocol` (what ``python -m service`` serves with, as ``PROTOCOL``):

- closes a connection whose request line and headers are not complete
  ``LRSCHED_HEADER_TIMEOUT_SECONDS`` after it opened or after the first byte that came once
  the previous request was answered (empty lines included: the parser skips them silently,
  and uvicorn's keep-alive timer stops at any byte);
- answers 431 and closes when a request head passes :data:`~service.limits.MAX_HEAD_BYTES`
  (counted as sent: every header's ``": "`` and CRLF too) or
  :data:`~service.limits.MAX_HEADERS` header fields;
- at the connection limit, closes the connection idle the longest (no request in progress)
  to make room for a new one, and always answers ``GET /healthz`` (the liveness probe),
  even when no room can be made.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from service.config import get_settings
from service.limits import HEALTH_PATHS, MAX_HEAD_BYTES, MAX_HEADERS

PROTOCOL = "service.server:GuardedProtocol"
"""The ``http=`` argument of uvicorn (an import string, so spawned workers can load it)."""

_LINE_BYTES = len(b"  HTTP/1.1\r\n") + len(b"\r\n")
"""Bytes of a head besides the method, the target and the header fields: the request line's
spaces, version and CRLF, and the empty line that ends the head."""
_FIELD_BYTES = len(b": \r\n")
"""Bytes of a header field besides its name and value."""

_TOO_LARGE_BODY = b"request line and headers too big"
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n\r\n%s"
) % (len(_TOO_LARGE_BODY), _TOO_LARGE_BODY)


@cache
def _header_timeout() -> float:
    return get_settings().header_timeout_seconds


class GuardedProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` with a head timeout, a head size limit and room for probes."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_fields = 0
        self._head_too_big = False
        self.idle_since: float | None = None
        """Loop time since when no request is in progress (None: one is)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.idle_since = self.loop.time()
        self._arm_head_timer()
        if self.limit_concurrency is not None and len(self.connections) >= self.limit_concurrency:
            self._close_longest_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.idle_since = None
        self._head_bytes = _LINE_BYTES
        self._head_fields = 0
        if self._head_timer is None:
            self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self.idle_since is not None and self._head_timer is None:
            # Bytes after the last answer (a new head, or only empty lines, which start no
            # request): the head timer runs again, as uvicorn's keep-alive timer just stopped.
            self._arm_head_timer()
        super().data_received(data)

    def on_url(self, url: bytes) -> None:
        if not self.url:  # the target's first bytes: the method is parsed by now
            self._count_head(len(self.parser.get_method()))
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        self._count_head(len(name) + len(value) + _FIELD_BYTES)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        limit = self.limit_concurrency
        if self._is_liveness_probe():
            self.limit_concurrency = None  # answered whatever the load
        try:
            super().on_headers_complete()
        finally:
            self.limit_concurrency = limit

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.pipeline:
            self.idle_since = self.loop.time()

    def send_400_response(self, msg: str) -> None:
        if not self._head_too_big:
            super().send_400_response(msg)
            return
        self.transport.write(_TOO_LARGE)
        self.transport.close()

    def _count_head(self, size: int) -> None:
        """Raise (the parser then refuses the request: 431) past MAX_HEAD_BYTES or
        MAX_HEADERS, so a long head is not parsed to its end."""
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES or self._head_fields > MAX_HEADERS:
            self._head_too_big = True
            raise ValueError("request head too big")

    def _is_liveness_probe(self) -> bool:
        path = self.url.partition(b"?")[0].decode("latin-1")
        return self.parser.get_method() in (b"GET", b"HEAD") and path in HEALTH_PATHS

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(_header_timeout(), self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        """The head did not complete in time: the client is too slow, or never meant to."""
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _close_longest_idle(self) -> None:
        """Make room for this new connection: close the one idle the longest, if any."""
        idle = [
            other
            for other in self.connections
            if other is not self
            and isinstance(other, GuardedProtocol)
            and other.idle_since is not None
            and not other.transport.is_closing()
        ]
        if idle:
            oldest = min(idle, key=lambda other: other.idle_since or 0.0)
            oldest.transport.close()
