"""How refusals are written: every 422 (pydantic's, the engine's), the body parser's 400, the
405's ``Allow``, and a client that went away mid-request (499).

A validation error names the offending field by its path in the body (``loc``), in words a
user of the API knows: pydantic's own labels of union members (``constrained-int``,
``function-after[...]``, a schedule's ``type``) are left out of ``loc``; the alternatives of
a union at one place are one error; an unknown field or schedule type comes with the nearest
names (``did you mean `step_size`?``). A 422 lists at most ``ERRORS_SHOWN`` errors and
echoes at most about ``ECHO_CHARS`` characters of each input (:mod:`service.limits`).
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from rules.errors import ScheduleError
from service.api.suggestions import fields_at
from service.limits import ECHO_CHARS, ERRORS_SHOWN

log = logging.getLogger("lrsched.errors")

CLIENT_CLOSED = 499
"""The status counted and logged for a request whose client went away (nginx's code); no
one receives it."""

_HINTS = {
    "last_epoch": "`last_epoch` is not accepted: the request's `start` is the first step "
    "returned (a schedule resumed after k steps: start=k)",
    "verbose": "`verbose` is not accepted: the service prints nothing",
    "optimizer": "`optimizer` is not accepted: it is implied, one param group per item of `lr`",
}
_PLATEAU = (
    "ReduceLROnPlateau depends on metrics, not on the step: replay a metric history with "
    "POST /v1/plateau/replay, or follow a training run with POST /v1/sessions"
)


async def client_disconnected(request: Request, exc: Exception) -> Response:
    """The client closed the connection before its body arrived: nothing to answer, nothing
    failed. Counted and logged under :data:`CLIENT_CLOSED`, at info."""
    assert isinstance(exc, ClientDisconnect)
    log.info("the client disconnected before sending its whole body")
    return Response(status_code=CLIENT_CLOSED)


async def schedule_error(request: Request, exc: Exception) -> JSONResponse:
    """Answer a configuration the engine rejects like any other validation error: 422."""
    assert isinstance(exc, ScheduleError)
    detail = [{"type": "value_error", "loc": ["body", *exc.loc], "msg": exc.message}]
    if exc.step is not None:
        detail.append(
            {
                "type": "value_error",
                "loc": ["body", "steps"],
                "msg": f"PyTorch fails at step {exc.step}, inside the requested range "
                f"(steps <= {exc.step} would stop before it): {exc.message}",
            }
        )
    return JSONResponse({"detail": detail}, status_code=422)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, in the API's words (see the module) and safe for any input: what JSON
    cannot carry (a lone surrogate, a raw NaN in the body) is echoed escaped or as a string."""
    assert isinstance(exc, RequestValidationError)
    route = request.scope.get("route")
    body_field = getattr(route, "body_field", None)
    model = None if body_field is None else body_field.field_info.annotation
    detail = render(exc.errors(), exc.body, model)
    return JSONResponse({"detail": encodable(jsonable_encoder(detail))}, status_code=422)


def render(errors: Sequence[Any], body: Any, model: Any) -> list[dict[str, Any]]:
    """``errors`` (pydantic's) for a body ``body`` of type ``model``, as the 422 lists them."""
    considered = ERRORS_SHOWN * 4
    cleaned = [_clean(dict(error), body, model) for error in errors[:considered]]
    merged = _merge_alternatives(cleaned)
    hidden = len(merged) - ERRORS_SHOWN + max(len(errors) - considered, 0)
    shown = [error for error, _ in merged[:ERRORS_SHOWN]]
    if hidden > 0:
        shown.append(
            {
                "type": "too_many_errors",
                "loc": ["body"],
                "msg": f"{hidden} more errors not shown (at most {ERRORS_SHOWN} are listed)",
            }
        )
    return shown


def _clean(error: dict[str, Any], body: Any, model: Any) -> tuple[dict[str, Any], bool]:
    """The error with its ``loc`` a path in the body, its message in the API's words and its
    input shortened; and whether pydantic labels were taken out of ``loc`` (a union's)."""
    loc = list(error.get("loc", ()))
    labelled = False
    if loc[:1] == ["body"] and body is not None and error.get("type") != "json_invalid":
        path = _path_in(body, loc[1:], error.get("type") == "missing")
        labelled = len(path) < len(loc) - 1
        loc = ["body", *path]
        error["msg"] = _message(error, loc, body, model)
    error["loc"] = loc
    if error.get("type") == "union_tag_invalid":
        error.pop("ctx", None)  # the 53 expected tags: the message names the nearest
    if "input" in error:
        error["input"] = _preview(error["input"])
    error.pop("url", None)
    return error, labelled


def _path_in(body: Any, loc: Sequence[Any], missing: bool) -> list[str | int]:
    """The items of ``loc`` that are places in ``body`` (a key of an object, an index of an
    array), and the last one when it names a missing field."""
    path: list[str | int] = []
    node = body
    for position, part in enumerate(loc):
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and type(part) is int and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif missing and position == len(loc) - 1:
            path.append(part)
    return path


def _message(error: dict[str, Any], loc: list[Any], body: Any, model: Any) -> str:
    kind, msg = error.get("type"), str(error.get("msg", ""))
    if kind == "extra_forbidden" and len(loc) > 1:
        field = str(loc[-1])
        if field in _HINTS:
            return _HINTS[field]
        names = [
            name for name in fields_at(model, loc[1:-1], body) if name not in _present(body, loc)
        ]
        return f"unknown field `{field}`" + _did_you_mean(field, names)
    if kind == "union_tag_invalid":
        tag = str(error.get("ctx", {}).get("tag", ""))
        if tag == "ReduceLROnPlateau":
            return _PLATEAU
        expected = [
            t.strip(" '") for t in str(error.get("ctx", {}).get("expected_tags", "")).split(",")
        ]
        hint = _did_you_mean(tag, expected)
        return f"unknown schedule type {tag!r}" + (
            hint or f"; the {len(expected)} types are listed at /docs and in /openapi.json"
        )
    return msg


def _present(body: Any, loc: list[Any]) -> set[str]:
    """The keys the object holding ``loc[-1]`` already has (no point suggesting them)."""
    node = body
    for part in loc[1:-1]:
        node = node[part]
    return set(node) if isinstance(node, dict) else set()


def _did_you_mean(word: str, names: Sequence[str]) -> str:
    """``; did you mean `x`?`` for the names nearest ``word`` (case aside), or ``""``."""
    folded = {name.lower(): name for name in names}
    close = [
        folded[match] for match in difflib.get_close_matches(word.lower(), folded, n=3, cutoff=0.6)
    ]
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"`{name}`" for name in close) + "?"


def _merge_alternatives(
    cleaned: list[tuple[dict[str, Any], bool]],
) -> list[tuple[dict[str, Any], bool]]:
    """One error per place for a union's alternatives: those at one ``loc`` become one
    ("a valid integer or a valid number"), and a type mismatch at a place where another
    alternative got further (an error inside it) is dropped."""
    merged: dict[tuple[Any, ...], tuple[dict[str, Any], bool]] = {}
    messages: dict[tuple[Any, ...], list[str]] = {}
    for error, labelled in cleaned:
        key = (*error["loc"], error["type"] if not labelled else "")
        merged.setdefault(key, (error, labelled))
        messages.setdefault(key, []).append(error["msg"])
    for key, (error, _) in merged.items():
        error["msg"] = _either(messages[key])
    deeper = [tuple(error["loc"]) for error, labelled in merged.values() if labelled]
    return [
        (error, labelled)
        for error, labelled in merged.values()
        if not (
            labelled
            and str(error["type"]).endswith("_type")
            and any(
                len(other) > len(error["loc"]) and other[: len(error["loc"])] == tuple(error["loc"])
                for other in deeper
            )
        )
    ]


def _either(messages: list[str]) -> str:
    """``Input should be a valid integer or a valid number, not a string`` from the
    alternatives' own messages."""
    prefix, negation = "Input should be ", ", not "
    parts = list(dict.fromkeys(messages))
    if len(parts) == 1 or not all(part.startswith(prefix) for part in parts):
        return "; or ".join(parts)
    wanted = [part[len(prefix) :] for part in parts]
    # ", not a string" once when every alternative says it; left out when they differ (the
    # input is echoed anyway).
    tails = {part.rpartition(negation)[2] if negation in part else "" for part in wanted}
    suffix = negation + next(iter(tails)) if len(tails) == 1 and "" not in tails else ""
    wanted = [part.partition(negation)[0] for part in wanted]
    return prefix + " or ".join(dict.fromkeys(wanted)) + suffix


def _preview(value: Any) -> Any:
    """``value``, or a short stand-in when its JSON would pass ``ECHO_CHARS`` characters."""
    if isinstance(value, str):
        return value if len(value) <= ECHO_CHARS else value[:ECHO_CHARS] + "..."
    if isinstance(value, dict | list) and _size(value, ECHO_CHARS) > ECHO_CHARS:
        kind = "an object of" if isinstance(value, dict) else "an array of"
        unit = "members" if isinstance(value, dict) else "items"
        return f"({kind} {len(value)} {unit}, not echoed)"
    return value


def _size(value: Any, budget: int) -> int:
    """About the length of ``value``'s JSON, counted no further than past ``budget``."""
    if isinstance(value, dict):
        items: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        return len(str(value)) + 2
    total = 2
    for item in items:
        total += _size(item, budget - total) + 1
        if total > budget:
            break
    return total


def encodable(value: Any) -> Any:
    """``value`` with what JSON cannot carry replaced: non-finite floats spelled as strings,
    lone surrogates escaped."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [encodable(item) for item in value]
    if isinstance(value, dict):
        return {encodable(key): encodable(item) for key, item in value.items()}
    return value


async def http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to an HTTPException, except that a body Starlette could not parse at
    all (not UTF-8) is a 422 naming the body, and a 405 lists every method of the path."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        detail = [
            {
                "type": "json_invalid",
                "loc": ["body"],
                "msg": "the body could not be parsed as JSON (nested too deeply, or not UTF-8)",
            }
        ]
        return JSONResponse({"detail": detail}, status_code=422)
    if exc.status_code == 405:
        # Starlette answers from the first route whose path matches, so its Allow header
        # lists only that route's methods; RFC 9110 wants every method the resource has.
        allow = ", ".join(_allowed_methods(request))
        exc = StarletteHTTPException(
            405, exc.detail, headers={**(exc.headers or {}), "Allow": allow}
        )
    return await http_exception_handler(request, exc)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route of the application answers at this request's path."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]
