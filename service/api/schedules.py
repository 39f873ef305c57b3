"""``POST /v1/schedules``: the curve of a schedule, as JSON, ``.npy`` or raw float32.

The route is ``async`` so a small curve costs no thread hop: validation, the ETag, the
cache lookup and a small computation run on the event loop. Bigger computations run on
the curve pool (:mod:`service.curve_pool`), admitted by count and estimated memory;
curves of more than ``LRSCHED_STREAM_VALUES`` values are streamed. Encoded curves are
kept in a per-worker LRU (:mod:`service.cache`) keyed by the ETag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from schemas.requests import ScheduleRequest
from schemas.responses import ScheduleResponse
from schemas.schedules import SCHEDULE_MODELS
from service import encoding, metrics
from service.api import streaming
from service.api.curve_job import Job, check_values, run
from service.api.shortcuts import Passed, ShortcutRoute
from service.cache import Entry, curve_cache
from service.config import Settings
from service.curve_pool import curve_pool
from service.engine import (
    StepRange,
)
from service.limits import INLINE_TYPES, INLINE_VALUES


class CurveRoute(ShortcutRoute):
    """The route, with a shortcut for well-formed requests and their repeats.

    Thousands of ranks ask for the same curve with the same bytes. A repeat whose raw
    request (body, content type, ``Accept``, ``?series=``) the cache remembers is answered
    from the cached entry before any parsing or validation. Any other request with a JSON
    body that validates is answered as the declared route would, without FastAPI's
    per-request dependency and body machinery. The router's dependencies (the API key) run
    first either way; anything else, including every refusal of the request itself, goes
    through the declared route.
    """

    async def shortcut(self, request: Request, passed: Passed) -> Response | None:
        return await _answer_directly(request)


T = TypeVar("T")

router = APIRouter(prefix="/v1/schedules", tags=["schedules"], route_class=CurveRoute)

VERSION = "2"
"""Bumped whenever a change to the engine may change any value (invalidates ETags)."""


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


@dataclass(frozen=True, slots=True)
class _Selectors:
    """What besides the body selects the answer, as sent: the ``Accept``, ``Content-Type``
    and ``If-None-Match`` headers (the first of each, as Starlette reads them) and the raw
    query string. Read in one pass over the request's headers, which costs a fraction of
    looking each up through Starlette's ``Headers`` and ``QueryParams``."""

    accept: bytes | None = None
    content_type: bytes | None = None
    if_none_match: bytes | None = None
    query: bytes = b""

    @classmethod
    def of(cls, http: Request) -> _Selectors:
        found: dict[bytes, bytes] = {}
        for name, value in http.scope["headers"]:
            if name in _SELECTING and name not in found:
                found[name] = value
        return cls(
            found.get(b"accept"),
            found.get(b"content-type"),
            found.get(b"if-none-match"),
            http.scope.get("query_string", b""),
        )

    def raw_request(self, body: bytes) -> bytes:
        """Everything that selects the answer to a request, as one key (see CurveRoute)."""
        return b"\0".join((self.accept or b"", self.query, self.content_type or b"", body))


def _text(value: bytes | None) -> str | None:
    """A header value as Starlette decodes it."""
    return None if value is None else value.decode("latin-1")


_SELECTING = frozenset((b"accept", b"content-type", b"if-none-match"))


def _series(http: Request, query: bytes) -> encoding.Series:
    """``?series=``, validated as a declared ``Literal["lr", "momentum"]`` query would be."""
    value = http.query_params.get("series", "lr") if query else "lr"
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


async def _answer(request: ScheduleRequest, http: Request, raw: bytes | None = None) -> Response:
    """The answer to a validated request (the declared route's, and the shortcut's, which
    passes the request's raw key it already made). Query, headers
    (``_PARAMETERS``) and cache are read here, not declared: cheaper than FastAPI."""
    selectors = _Selectors.of(http)
    series, media_type = _series(http, selectors.query), _media_type(_text(selectors.accept))
    if_none_match = _text(selectors.if_none_match)
    settings: Settings = http.app.state.settings
    cache = curve_cache(http)
    steps = StepRange(request.start, request.steps, request.stride)
    values = check_values({"groups": len(request.lrs), "steps": len(steps)}, settings.max_values)
    tag = encoding.etag(request.model_dump_json().encode(), media_type, series, VERSION)
    headers = {"ETag": tag, "Vary": "Accept"}
    streamed = values > settings.stream_values
    cached = None if streamed else (cache.get(tag) or await cache.follow(tag))
    job = Job(request, steps, media_type, series, settings)
    inline = values <= INLINE_VALUES and request.schedule.type in INLINE_TYPES
    pooled = streamed or not (inline or cached is not None)
    ticket = curve_pool(http).admit(http, values) if pooled else None
    try:
        if encoding.is_wildcard(if_none_match) and cached is None and not streamed:
            cached = (await run(ticket, cache.get_or_compute, tag, job.encoded))[0]
        elif if_none_match and cached is None:
            await run(ticket, job.work)  # an engine refusal is a 422 even with If-None-Match
        if encoding.matches(if_none_match, tag):
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
        if streamed:
            assert ticket is not None
            held, ticket = ticket, None  # closed when the stream ends
            return await streaming.streamed(job, headers, held)
        if cached is None:
            entry, hit = await run(ticket, cache.get_or_compute, tag, job.encoded)
        else:
            entry, hit = cached, True
    finally:
        if ticket is not None:
            ticket.close()
    metrics.child(metrics.CURVE_CACHE, "hit" if hit else "miss").inc()
    cache.remember(raw if raw is not None else selectors.raw_request(await http.body()), tag)
    return _sent(entry, headers)


def _media_type(accept: str | None) -> str:
    """The media type ``Accept`` asks for, or 406."""
    media_type = encoding.negotiate(accept)
    if media_type is None:
        raise HTTPException(
            status.HTTP_406_NOT_ACCEPTABLE,
            f"cannot answer with {accept!r}; acceptable: {', '.join(encoding.MEDIA_TYPES)}",
        )
    return media_type


def _sent(entry: Entry, headers: dict[str, str]) -> Response:
    """The response carrying an encoded curve (sent in slices, not copied)."""
    return encoding.SlicedResponse(
        entry.body, media_type=entry.media_type, headers=headers | entry.headers
    )


async def _answer_directly(http: Request) -> Response | None:
    """The answer to a repeat (from the cache) or to a well-formed request; ``None`` for
    anything the declared route must answer. The route's gates have passed (see
    :class:`service.api.shortcuts.ShortcutRoute`); a request the cache does not remember
    is answered by :func:`_answer`, which makes the declared route's checks."""
    body = await http.body()
    selectors = _Selectors.of(http)
    raw = selectors.raw_request(body)
    found = curve_cache(http).recall(raw)
    if found is None:
        try:
            request = ScheduleRequest.model_validate_json(body)
        except ValidationError:
            return None
        return await _answer(request, http, raw)
    tag, entry = found
    headers = {"ETag": tag, "Vary": "Accept"}
    if encoding.matches(_text(selectors.if_none_match), tag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    metrics.child(metrics.CURVE_CACHE, "hit").inc()
    return _sent(entry, headers)
