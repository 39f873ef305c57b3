"""``POST /v1/schedules``: the curve of a schedule, as JSON, ``.npy`` or raw float32.

The route is ``async`` so a small curve costs no thread hop: validation, the ETag, the
cache lookup and a small computation run on the event loop. Bigger computations run on
the curve pool (:mod:`service.curve_pool`), admitted by count and estimated memory;
curves of more than ``LRSCHED_STREAM_VALUES`` values are streamed. Encoded curves are
kept in a per-worker LRU (:mod:`service.cache`) keyed by the ETag.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import Annotated, Any, TypeVar

import numpy as np
from fastapi import APIRouter, Body, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.responses import StreamingResponse

from rules.errors import ScheduleError
from schemas.requests import ScheduleRequest
from schemas.responses import ScheduleResponse
from schemas.schedules import SCHEDULE_MODELS, build
from service import encoding, metrics
from service.api.auth import require_api_key
from service.api.shortcuts import ShortcutRoute
from service.cache import Entry, curve_cache
from service.config import Settings
from service.curve_pool import Ticket, curve_pool
from service.engine import (
    Curve,
    Curve32,
    StepRange,
    check_costs,
    compute,
    compute_float32,
    lr_chunks,
)
from service.engine.nodes import Node


class CurveRoute(ShortcutRoute):
    """The route, with a shortcut for well-formed requests and their repeats.

    Thousands of ranks ask for the same curve with the same bytes. A repeat whose raw
    request (body, content type, ``Accept``, ``?series=``) the cache remembers is answered
    from the cached entry before any parsing or validation. Any other request with a JSON
    body that validates is answered as the declared route would, without FastAPI's
    per-request dependency and body machinery. The API key is checked either way; anything
    else, including every refusal of the request itself, goes through the declared route.
    """

    async def shortcut(self, request: Request) -> Response | None:
        return await _answer_directly(request)


T = TypeVar("T")

router = APIRouter(prefix="/v1/schedules", tags=["schedules"], route_class=CurveRoute)

VERSION = "2"
"""Bumped whenever a change to the engine may change any value (invalidates ETags)."""
INLINE_VALUES = 1 << 15
INLINE_TYPES = frozenset({"OneCycleLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts"})
"""Curves of these schedulers with at most ``INLINE_VALUES`` values are built and computed
on the event loop (tens of microseconds: fast closed forms, no expressions); everything
else in the thread pool, since expressions and compositions can take seconds and the loop
(and with it every other request and the time limit) must stay responsive."""


def _examples() -> dict[str, dict[str, Any]]:
    examples: dict[str, dict[str, Any]] = {}
    for model in SCHEDULE_MODELS:
        extra = model.model_config.get("json_schema_extra")
        assert isinstance(extra, dict)
        spec = extra["examples"][0]  # type: ignore[index]
        examples[model.__name__] = {
            "summary": model.__name__,
            "description": (model.__doc__ or "").strip(),
            "value": {"schedule": spec, "lr": 0.1, "steps": 1000},
        }
    return examples


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_SERIES_HELP = "Which series the binary forms carry: `lr` or `momentum`."
_OPTIONAL_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}]}
_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "series",
        "in": "query",
        "required": False,
        "schema": {
            "enum": ["lr", "momentum"],
            "type": "string",
            "description": _SERIES_HELP,
            "default": "lr",
            "title": "Series",
        },
        "description": _SERIES_HELP,
    },
    {
        "name": "accept",
        "in": "header",
        "required": False,
        "schema": _OPTIONAL_STRING | {"title": "Accept"},
    },
    {
        "name": "if-none-match",
        "in": "header",
        "required": False,
        "schema": _OPTIONAL_STRING | {"title": "If-None-Match"},
    },
]
"""The route's query and header parameters, as FastAPI would document them if declared."""


def _series(http: Request) -> encoding.Series:
    """``?series=``, validated as a declared ``Literal["lr", "momentum"]`` query would be."""
    value = http.query_params.get("series", "lr")
    if value == "lr":
        return "lr"
    if value == "momentum":
        return "momentum"
    raise RequestValidationError(
        [
            {
                "type": "literal_error",
                "loc": ("query", "series"),
                "msg": "Input should be 'lr' or 'momentum'",
                "input": value,
                "ctx": {"expected": "'lr' or 'momentum'"},
            }
        ]
    )


@router.post(
    "",
    summary="Compute a learning-rate curve",
    response_model=ScheduleResponse,
    responses={
        200: {
            "description": (
                "The curve. JSON by default; `Accept: application/x-npy` gives a float64 "
                "`.npy` of shape (groups, n); `Accept: application/octet-stream` gives raw "
                "little-endian float32, shape in `X-Shape`. `?series=momentum` selects the "
                "momentum for the binary forms. Curves of more than `LRSCHED_STREAM_VALUES` "
                "values are streamed (chunked)."
            ),
            "content": {encoding.NPY: _BINARY, encoding.FLOAT32: _BINARY},
        },
        304: {"description": "Not modified: `If-None-Match` matched the curve's ETag."},
        406: {"description": "No acceptable media type in `Accept`."},
    },
    openapi_extra={"parameters": _PARAMETERS},
)
async def compute_schedule(
    request: Annotated[ScheduleRequest, Body(openapi_examples=_examples())],
    http: Request,
) -> Response:
    """The lr of every param group at steps ``range(start, steps, stride)``.

    *The LR at step k* is ``optimizer.param_groups[g]["lr"]`` after the scheduler was
    constructed and ``step()`` was then called k times; values equal PyTorch 2.13's.
    """
    return await _answer(request, http)


async def _answer(request: ScheduleRequest, http: Request) -> Response:
    """The answer to a validated request (the declared route's, and the shortcut's)."""
    # The query and header parameters (documented in _PARAMETERS) and the cache are read
    # here rather than declared: FastAPI's per-parameter machinery costs more than the
    # lookups themselves.
    series = _series(http)
    accept = http.headers.get("accept")
    if_none_match = http.headers.get("if-none-match")
    settings: Settings = http.app.state.settings
    cache = curve_cache(http)
    media_type = encoding.negotiate(accept)
    if media_type is None:
        raise HTTPException(
            status.HTTP_406_NOT_ACCEPTABLE,
            f"cannot answer with {accept!r}; acceptable: {', '.join(encoding.MEDIA_TYPES)}",
        )
    steps = StepRange(request.start, request.steps, request.stride)
    lrs = request.lrs
    values = len(steps) * len(lrs)
    if values > settings.max_values:
        raise ScheduleError(
            f"the request asks for {values} values ({len(lrs)} groups x {len(steps)} steps); "
            f"at most {settings.max_values} (LRSCHED_MAX_VALUES): ask for a range with "
            "start/stride, or fewer steps",
            ("steps",),
        )
    tag = encoding.etag(request.model_dump_json().encode(), media_type, series, VERSION)
    headers = {"ETag": tag, "Vary": "Accept"}
    streamed = values > settings.stream_values
    cached = None if streamed else cache.get(tag)
    job = _Job(request, steps, media_type, series, settings)
    inline = values <= INLINE_VALUES and request.schedule.type in INLINE_TYPES
    pooled = streamed or not (inline or cached is not None)
    ticket = curve_pool(http).admit(http, values) if pooled else None
    try:
        if if_none_match and cached is None:
            # A request the engine refuses is a 422 even with If-None-Match: *.
            await _run(ticket, job.work)
        if encoding.matches(if_none_match, tag):
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
        if streamed:
            assert ticket is not None
            streaming, ticket = ticket, None  # closed when the stream ends
            return await _streamed(job, headers, streaming)
        if cached is None:
            entry, hit = await _run(ticket, cache.get_or_compute, tag, job.encoded)
        else:
            entry, hit = cached, True
    finally:
        if ticket is not None:
            ticket.close()
    metrics.CURVE_CACHE.labels(result="hit" if hit else "miss").inc()
    cache.remember(_raw_request(http, await http.body(), media_type, series), tag)
    return encoding.SlicedResponse(
        entry.body, media_type=entry.media_type, headers=headers | entry.headers
    )


def _raw_request(http: Request, body: bytes, media_type: str, series: str) -> bytes:
    """Everything that selects the answer to a request, as one key (see CurveRoute)."""
    content_type = http.headers.get("content-type", "")
    return b"\0".join((media_type.encode(), series.encode(), content_type.encode(), body))


async def _answer_directly(http: Request) -> Response | None:
    """The answer to a repeat (from the cache) or to a well-formed request; ``None`` for
    anything the declared route must answer."""
    body = await http.body()
    series = http.query_params.get("series", "lr")
    media_type = encoding.negotiate(http.headers.get("accept"))
    if media_type is None or series not in ("lr", "momentum"):
        return None
    found = curve_cache(http).recall(_raw_request(http, body, media_type, series))
    if found is None:
        content_type = http.headers.get("content-type", "")
        if (
            content_type.partition(";")[0].strip().lower() != "application/json"
            or http.app.dependency_overrides
        ):
            return None
        try:
            request = ScheduleRequest.model_validate_json(body)
        except ValidationError:
            return None
        await require_api_key(http, http.headers.get("x-api-key"))
        return await _answer(request, http)
    await require_api_key(http, http.headers.get("x-api-key"))
    tag, entry = found
    headers = {"ETag": tag, "Vary": "Accept"}
    if encoding.matches(http.headers.get("if-none-match"), tag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    metrics.CURVE_CACHE.labels(result="hit").inc()
    return encoding.SlicedResponse(
        entry.body, media_type=entry.media_type, headers=headers | entry.headers
    )


class _Job:
    """One validated request's computation: build, check the cost, compute, encode."""

    def __init__(
        self,
        request: ScheduleRequest,
        steps: StepRange,
        media_type: str,
        series: encoding.Series,
        settings: Settings,
    ) -> None:
        self.request = request
        self.steps = steps
        self.media_type = media_type
        self.series: encoding.Series = series
        self.settings = settings
        self._root: Node | None = None
        self._work = 0

    def work(self) -> int:
        """Values plus stepped evaluations; builds the tree and enforces the stepping budget."""
        if self._root is None:
            lrs = self.request.lrs
            root = _build(self.request, len(lrs))
            cost = check_costs([root], self.steps, len(lrs), self.settings.max_values)
            self._root, self._work = root, cost + len(self.steps) * len(lrs)
        return self._work

    def curve(self) -> Curve | Curve32:
        """The curve: float32 for the float32 media type, float64 otherwise."""
        self.work()
        root, lrs = self._root, self.request.lrs
        assert root is not None
        calculate = compute_float32 if self.media_type == encoding.FLOAT32 else compute
        try:
            curve = calculate(root, np.asarray(lrs, dtype=np.float64), self.steps)
        except ScheduleError as error:
            raise error.within("schedule") from None
        metrics.CURVES.labels(type=self.request.schedule.type).inc()
        metrics.VALUES.inc(curve.lr.size)
        if self.media_type != encoding.JSON and self.series == "momentum":
            if curve.momentum is None:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    [
                        {
                            "type": "value_error",
                            "loc": ["query", "series"],
                            "msg": f"series=momentum: {self.request.schedule.type} does not "
                            "cycle momentum",
                        }
                    ],
                )
        return curve

    def lazy_stream(self) -> encoding.Stream | None:
        """The body computed piece by piece as it is sent, if this curve allows it
        (:func:`service.engine.lr_chunks`: one group, no momentum); ``None`` otherwise."""
        if self.series != "lr" and self.media_type != encoding.JSON:
            return None
        self.work()
        assert self._root is not None
        dtype = np.dtype("<f4" if self.media_type == encoding.FLOAT32 else "<f8")
        lrs = np.asarray(self.request.lrs, dtype=np.float64)
        try:
            pieces = lr_chunks(self._root, lrs, self.steps, dtype)
        except ScheduleError as error:
            raise error.within("schedule") from None
        if pieces is None:
            return None
        metrics.CURVES.labels(type=self.request.schedule.type).inc()
        metrics.VALUES.inc(len(self.steps))
        if self.media_type == encoding.JSON:
            return encoding.json_pieces(pieces, self.steps)
        return encoding.stream_pieces(pieces, len(self.steps), dtype, self.media_type)

    def encoded(self) -> Entry:
        """The whole response body (what the cache keeps)."""
        curve = self.curve()
        if isinstance(curve, Curve32):
            assert self.media_type == encoding.FLOAT32
            values = curve.lr if self.series == "lr" else curve.momentum
            assert values is not None
            shape = {"X-Shape": f"{values.shape[0]},{values.shape[1]}"}
            return Entry(np.ascontiguousarray(values).tobytes(), encoding.FLOAT32, shape)
        encoded = encoding.encode(curve, self.steps, self.media_type, self.series)
        return Entry(encoded.body, encoded.media_type, encoded.headers)


async def _run(ticket: Ticket | None, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``: on the event loop without a ticket (inline work), else on the curve pool."""
    if ticket is None:
        return fn(*args)
    return await ticket.run(fn, *args)


async def _streamed(job: _Job, headers: dict[str, str], ticket: Ticket) -> StreamingResponse:
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
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[bytes | memoryview | None, BaseException | None]] = asyncio.Queue()
    room = threading.Semaphore(ahead)
    stop = threading.Event()

    def deliver(item: tuple[bytes | memoryview | None, BaseException | None]) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone (shutdown): nobody is listening
            stop.set()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not room.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                deliver((chunk, None))
            deliver((None, None))
        except BaseException as error:  # handed to the event loop, raised there
            deliver((None, error))

    threading.Thread(target=produce, name="lrsched-stream", daemon=True).start()
    try:
        while True:
            chunk, error = await queue.get()
            if error is not None:
                raise error
            if chunk is None:
                return
            room.release()
            yield chunk
    finally:
        stop.set()


def _build(request: ScheduleRequest, groups: int) -> Node:
    try:
        return build(request.schedule, groups)
    except ScheduleError as error:
        raise error.within("schedule") from None
