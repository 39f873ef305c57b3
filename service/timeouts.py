"""A per-request time limit: answer 504 instead of keeping a client waiting indefinitely."""

from __future__ import annotations

import asyncio
import logging
import threading

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.curve_pool import CANCEL_SCOPE_KEY

log = logging.getLogger("lrsched.timeouts")

_BODY = b'{"detail":"the request took longer than the service allows"}'


class TimeoutMiddleware:
    """Answer 504 when a request has not started its response after ``seconds``.

    Worker threads cannot be interrupted; the request's task keeps running in the background
    and whatever it sends afterwards is dropped. Its cancel event (the scope's
    :data:`~service.curve_pool.CANCEL_SCOPE_KEY`) is set, so curve work stops at its next
    block boundary. A response already under way is left to finish.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        self._abandoned: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = answered = False
        cancel = scope[CANCEL_SCOPE_KEY] = threading.Event()

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the client already got the 504
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        done, _ = await asyncio.wait({task}, timeout=self.seconds)
        if task in done or started:
            await task
            return
        answered = True
        cancel.set()
        self._abandoned.add(task)
        task.add_done_callback(self._forget)
        await send(
            {
                "type": "http.response.start",
                "status": 504,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_BODY)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _BODY})

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a request that timed out failed later", exc_info=task.exception())
