"""The bulkhead between curve work and everything else.

Curves, plots and replays are computed on a small thread pool of their own, never on the
event loop's default thread pool that session calls hop through, so a session report never
queues behind a curve. Work is admitted up front by count (``LRSCHED_CURVE_JOBS``) and by
estimated working memory (``LRSCHED_CURVE_MEMORY_BYTES``, priced by
:func:`estimated_bytes`); past either, the answer is 503 with ``Retry-After``.

A computation whose client got a 504 (:mod:`service.timeouts`) or went away stops at its next
block boundary (:mod:`service.engine.cancel`), and its admission is given back as soon as its
thread lets go. When curve work has been idle for ``LRSCHED_TRIM_AFTER_IDLE_SECONDS``, the
memory a burst freed is handed back to the kernel (:func:`service.allocator.trim`).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import HTTPException, Request, status
from starlette.types import Receive

from service import allocator, metrics
from service.config import Settings
from service.engine.cancel import Cancelled, cancellable
from service.limits import CURVE_BASE_BYTES, CURVE_BYTES_PER_VALUE, RETRY_AFTER_SECONDS

T = TypeVar("T")

CANCEL_SCOPE_KEY = "lrsched.cancel"
"""ASGI scope key of the request's ``threading.Event``, set when nobody waits for its answer."""

CLIENT_GONE = 499
"""Status logged for a request whose client went away before its answer (nginx's)."""


def curve_pool(http: Request) -> CurvePool:
    """The application's curve pool (one per worker, made by ``create_app``)."""
    pool: CurvePool = http.app.state.curve_pool
    return pool


def estimated_bytes(values: int) -> int:
    """Peak working memory of computing and encoding ``values`` values (see service.limits)."""
    return CURVE_BASE_BYTES + CURVE_BYTES_PER_VALUE * values


def request_cancel_event(http: Request) -> threading.Event:
    """The request's cancel event (created if no middleware put one in its scope)."""
    event = http.scope.get(CANCEL_SCOPE_KEY)
    if not isinstance(event, threading.Event):
        event = threading.Event()
        http.scope[CANCEL_SCOPE_KEY] = event
    return event


CURVE_THREAD_NICENESS = 10
"""Curve threads run this much nicer than the rest of the process (Linux: per thread), so
that on a busy machine the event loop and session calls get the CPU first."""


def _yield_the_cpu() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CURVE_THREAD_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: same priority
        pass


class CurvePool:
    """A bounded executor with admission by count and estimated bytes (one per worker)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._executor: ThreadPoolExecutor | None = None  # started on first use
        # Reentrant: a ticket collected by the garbage collector releases itself, possibly
        # while this thread holds the lock.
        self._lock = threading.RLock()
        self._jobs = 0
        self._bytes = 0
        self._trim_timer: threading.Timer | None = None

    def admit(self, http: Request, values: int) -> Ticket:
        """A ticket for work on ``values`` values; 413 if that alone passes the memory
        budget, 503 with ``Retry-After`` if admitted work leaves no room for it."""
        cost = estimated_bytes(values)
        budget = self.settings.curve_memory_bytes
        if cost > budget:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                [
                    {
                        "type": "value_error",
                        "loc": ["body", "steps"],
                        "msg": f"{values} values need about {cost} bytes of working memory; "
                        f"at most {budget} (LRSCHED_CURVE_MEMORY_BYTES): ask for fewer steps",
                    }
                ],
            )
        with self._lock:
            refusal = self._refusal(cost)
            if refusal is None:
                self._jobs += 1
                self._bytes += cost
                self._cancel_trim()
        if refusal is not None:
            metrics.child(metrics.CURVE_REFUSED, refusal[0]).inc()
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                refusal[1],
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        metrics.CURVE_JOBS.inc()
        metrics.CURVE_BYTES.inc(cost)
        return Ticket(self, cost, request_cancel_event(http), http.receive)

    def _refusal(self, cost: int) -> tuple[str, str] | None:
        """Which limit admitting ``cost`` more bytes would pass, and the message; or None."""
        jobs, budget = self.settings.curve_jobs, self.settings.curve_memory_bytes
        if self._jobs >= jobs:
            return "jobs", (
                f"{self._jobs} curve computations are in progress, the most admitted at once "
                f"(LRSCHED_CURVE_JOBS={jobs}); retry later"
            )
        if self._bytes + cost > budget:
            return "memory", (
                f"curve computations in progress hold about {self._bytes} bytes; this one needs "
                f"about {cost} more, past LRSCHED_CURVE_MEMORY_BYTES={budget}; retry later"
            )
        return None

    def submit(self, call: Callable[[], T]) -> Future[T]:
        """``call()`` on a pool thread (called on the event loop only)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self.settings.curve_threads, "lrsched-curve", initializer=_yield_the_cpu
            )
        return self._executor.submit(call)

    def release(self, cost: int) -> None:
        """Give back a ticket's admission; trim memory once the pool stays idle."""
        with self._lock:
            self._jobs -= 1
            self._bytes -= cost
            if self._jobs == 0 and self.settings.trim_after_idle_seconds > 0:
                self._cancel_trim()
                self._trim_timer = threading.Timer(
                    self.settings.trim_after_idle_seconds, self._trim_if_idle
                )
                self._trim_timer.daemon = True
                self._trim_timer.start()
        metrics.CURVE_JOBS.dec()
        metrics.CURVE_BYTES.dec(cost)

    def _cancel_trim(self) -> None:
        """Called with the lock held: work arrived, the pending trim would only slow it."""
        if self._trim_timer is not None:
            self._trim_timer.cancel()
            self._trim_timer = None

    def _trim_if_idle(self) -> None:
        with self._lock:
            if self._jobs or self._trim_timer is None:
                return
            self._trim_timer = None
        allocator.trim()
        metrics.MEMORY_TRIMS.inc()

    def shutdown(self) -> None:
        """Stop the threads once their work is done (at the end of the app's lifespan);
        a later :meth:`submit` starts new ones."""
        with self._lock:
            self._cancel_trim()
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


class Ticket:
    """One request's admission: its work runs through :meth:`run`; :meth:`close` when done.

    The admission is given back when the ticket is closed and none of its work is running,
    so memory still held by a cancelled computation stays counted until it lets go.
    """

    def __init__(
        self, pool: CurvePool, cost: int, cancel: threading.Event, receive: Receive
    ) -> None:
        self.pool = pool
        self.cost = cost
        self.cancel = cancel
        self._receive = receive
        self._lock = threading.Lock()
        self._running = 0
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the pool; stopped at a block boundary if the client goes away or
        is answered 504 meanwhile (then :data:`CLIENT_GONE` is raised, for the logs)."""
        with self._lock:
            self._running += 1
        future = self.pool.submit(lambda: self._call(fn, args))
        # Done when it ran, failed, or was cancelled while queued.
        future.add_done_callback(lambda _: self._finished(running=-1))
        watcher = asyncio.ensure_future(self._watch_disconnect())
        try:
            return await asyncio.wrap_future(future)
        except Cancelled:
            raise HTTPException(CLIENT_GONE, "nobody waits for this answer any more") from None
        except asyncio.CancelledError:
            self.cancel.set()
            raise
        finally:
            watcher.cancel()

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            if self.cancel.is_set():  # queued work of a client already gone: skipped
                raise Cancelled
            with cancellable(self.cancel.is_set):
                return fn(*args)
        except Cancelled:
            metrics.CURVES_CANCELLED.inc()
            raise

    async def _watch_disconnect(self) -> None:
        """Set the cancel event when the client disconnects (the body is read by now)."""
        try:
            while (await self._receive())["type"] != "http.disconnect":
                pass
        except Exception:  # a server that cannot tell: nothing to watch
            return
        self.cancel.set()

    def close(self) -> None:
        """The request is done with the ticket (its response sent or abandoned)."""
        self._finished(closed=True)

    def _finished(self, running: int = 0, closed: bool = False) -> None:
        with self._lock:
            already = self._closed and self._running == 0
            self._running += running
            self._closed = self._closed or closed
            release = not already and self._closed and self._running == 0
        if release:
            self.pool.release(self.cost)

    def __del__(self) -> None:
        # A ticket dropped without close() (a response never sent) still gives its room back.
        if not self._closed:
            self.close()
