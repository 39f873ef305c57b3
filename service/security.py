"""Security headers on every response, from one table: ``nosniff`` and a per-route Cache-Control.

Curves and plots are ``no-cache``: a cache may keep them but must revalidate with their
strong ETag (``If-None-Match`` -> 304), so a repeated request costs no computation and a new
release is never served stale. Everything else under ``/v1`` (sessions and their tokens, a
replay of the caller's metrics), the probes and ``/metrics`` are ``no-store``: never kept
by a browser or proxy. The documentation and the playground are ``no-cache``. A path no
rule names is ``no-store``.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from service.middleware import HTTPMiddleware

CACHE_CONTROL_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("/v1/schedules", "no-cache"),
    ("/v1", "no-store"),
    ("/healthz", "no-store"),
    ("/readyz", "no-store"),
    ("/metrics", "no-store"),
    ("/docs", "no-cache"),
    ("/redoc", "no-cache"),
    ("/openapi.json", "no-cache"),
    ("/static", "no-cache"),
)
"""``(path prefix, Cache-Control)``; the first prefix that is the path or a parent of it wins."""

CACHE_CONTROL_EXACT = {"/": "no-cache"}
"""Paths matched exactly (the playground page), checked before the prefixes."""

DEFAULT_CACHE_CONTROL = "no-store"


def cache_control(path: str) -> str:
    """The Cache-Control of a response to ``path`` (see the module docstring)."""
    exact = CACHE_CONTROL_EXACT.get(path)
    if exact is not None:
        return exact
    for prefix, value in CACHE_CONTROL_BY_PREFIX:
        if path == prefix or path.startswith(prefix + "/"):
            return value
    return DEFAULT_CACHE_CONTROL


class SecurityHeadersMiddleware(HTTPMiddleware):
    """Set ``X-Content-Type-Options: nosniff`` and the route's Cache-Control on every response.

    Replaces any Cache-Control a handler set, so this table is the one place that decides.
    """

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        added = [
            (b"x-content-type-options", b"nosniff"),
            (b"cache-control", cache_control(_route_path(scope)).encode()),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in (b"cache-control", b"x-content-type-options")
                ]
                message = {**message, "headers": kept + added}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _route_path(scope: Scope) -> str:
    """The request path without the ``root_path`` a proxy mounts the service under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
