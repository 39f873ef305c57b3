"""Streamed curve bodies: computed lazily or whole on the curve pool, sent in chunks.

Shared by every route that streams a curve (``POST /v1/schedules`` past
``LRSCHED_STREAM_VALUES``); the curve pool's admission is held until the last chunk is sent.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterator

from starlette.responses import StreamingResponse

from service import encoding
from service.api.curve_job import Job
from service.curve_pool import Ticket


async def streamed(job: Job, headers: dict[str, str], ticket: Ticket) -> StreamingResponse:
    """Stream the body: binary forms of a lazily computable curve piece by piece (nothing
    but the piece being sent is held), anything else computed whole first (on the curve
    pool, so errors still answer 422) and encoded in chunks. ``ticket`` is closed when the
    stream ends (or fails to start)."""
    try:
        body = await ticket.run(job.lazy_stream)
        if body is None:
            curve = await ticket.run(job.curve)
            body = encoding.stream(curve, job.steps, job.media_type, job.series)
    except BaseException:
        ticket.close()
        raise
    if body.length is not None:
        headers = headers | {"Content-Length": str(body.length)}
    # JSON chunks cost an orjson call each: off the event loop. Binary ones are views.
    chunks = _offloaded(body.chunks) if body.media_type == encoding.JSON else _inline(body.chunks)
    return StreamingResponse(
        _holding(ticket, chunks), media_type=body.media_type, headers=headers | body.headers
    )


async def _holding(
    ticket: Ticket, chunks: AsyncGenerator[bytes | memoryview, None]
) -> AsyncIterator[bytes | memoryview]:
    """``chunks``, keeping the curve's admission until the last one is sent (or the client
    is gone)."""
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        ticket.close()
        await chunks.aclose()  # a producer thread stops now, not when collected


async def _inline(
    chunks: Iterator[bytes | memoryview],
) -> AsyncGenerator[bytes | memoryview, None]:
    for chunk in chunks:
        yield chunk


async def _offloaded(
    chunks: Iterator[bytes | memoryview], ahead: int = 1
) -> AsyncGenerator[bytes | memoryview, None]:
    """``chunks`` produced by one worker thread that runs up to ``ahead`` chunks ahead.

    The next chunk is encoded while the previous one drains to the client, so encoding and
    sending overlap; at most ``ahead + 1`` chunks are alive. Closing the generator (the
    client went away) stops the thread at its next chunk.
    """
    producer = _Producer(chunks, ahead, asyncio.get_running_loop())
    threading.Thread(target=producer.run, name="lrsched-stream", daemon=True).start()
    try:
        while True:
            chunk, error = await producer.queue.get()
            if error is not None:
                raise error
            if chunk is None:
                return
            producer.room.release()
            yield chunk
    finally:
        producer.stop.set()


_Delivery = tuple[bytes | memoryview | None, BaseException | None]
"""What the producer hands the event loop: a chunk, or ``None`` at the end; or an error."""


class _Producer:
    """Runs ``chunks`` on a worker thread (:meth:`run`), handing each to ``queue`` on the
    event loop. It waits for ``room`` before each chunk (the consumer releases it per chunk
    taken) and stops at its next chunk once ``stop`` is set."""

    def __init__(
        self, chunks: Iterator[bytes | memoryview], ahead: int, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.queue: asyncio.Queue[_Delivery] = asyncio.Queue()
        self.room = threading.Semaphore(ahead)
        self.stop = threading.Event()
        self._chunks = chunks
        self._loop = loop

    def run(self) -> None:
        """Produce every chunk, then the end; or the error raised while producing."""
        try:
            for chunk in self._chunks:
                while not self.room.acquire(timeout=0.1):
                    if self.stop.is_set():
                        return
                if self.stop.is_set():
                    return
                self._deliver((chunk, None))
            self._deliver((None, None))
        except BaseException as error:  # handed to the event loop, raised there
            self._deliver((None, error))

    def _deliver(self, item: _Delivery) -> None:
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone (shutdown): nobody is listening
            self.stop.set()
