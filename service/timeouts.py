"""A per-request time limit: answer 504 instead of keeping a client waiting indefinitely."""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class TimeoutMiddleware:
    """Cancel a request still running after ``seconds``; 504 if nothing was sent yet.

    Work already handed to a thread (a computation) finishes in the background, bounded by
    the value limits; the client is released either way.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with anyio.move_on_after(self.seconds) as scope_timer:
            await self.app(scope, receive, tracking_send)
        if scope_timer.cancelled_caught and not started:
            body = b'{"detail":"the request took longer than the service allows"}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 504,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
