"""ASGI middleware: request ids, the access log and HTTP metrics, for every request; the
request body limit."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.middleware.body_limit import RequestBodyLimitResponder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics
from service.logs import REQUEST_ID

access_log = logging.getLogger("lrsched.access")

_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class HTTPMiddleware:
    """A plain ASGI middleware for HTTP requests: :meth:`http` handles them, anything else
    (lifespan, websockets) passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request (call ``self.app`` with a wrapped ``send``, typically)."""
        raise NotImplementedError


class BodyLimitMiddleware(HTTPMiddleware):
    """Starlette's request body limit (``RequestBodyLimitMiddleware``, what
    ``FastAPI(max_body_size=...)`` installs), with every 413 answered by the application.

    Starlette's limit raises its 413 ``HTTPException`` when the body is read past
    ``max_body_size`` (a declared Content-Length over it: at the first read), which the
    application's HTTPException handler answers as JSON ``{"detail": "Content Too Large"}``
    with the headers of every other error. But for a declared Content-Length over the limit
    Starlette also replaced whatever response then started, that JSON included, with its own
    text/plain 413, without the security headers and ``X-Request-ID``: here responses pass
    untouched. A route that never reads the body answers as it would without one.
    """

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        super().__init__(app)
        self.max_body_size = max_body_size

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _PassingResponder(self.app, self.max_body_size)(scope, receive, send)


class _PassingResponder(RequestBodyLimitResponder):
    """Starlette's responder: it counts and refuses the body as read, and sends responses
    as they are."""

    async def send_with_limit(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.response_started = True
        await self.send(message)


class ObservabilityMiddleware(HTTPMiddleware):
    """Echo or generate ``X-Request-ID``; log and count each request by its route template."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            labels = (scope["method"], route, str(status))
            metrics.child(metrics.REQUESTS, *labels).inc()
            metrics.child(metrics.LATENCY, *labels).observe(elapsed)
            extra: dict[str, Any] = {
                "method": scope["method"],
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
            }
            session_id = scope.get("path_params", {}).get("session_id")
            if session_id is not None:
                extra["session_id"] = session_id
            access_log.info("request", extra=extra)
            REQUEST_ID.reset(token)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _VALID_REQUEST_ID.fullmatch(candidate) else None
    return None


def _route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/sessions/{session_id}``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
