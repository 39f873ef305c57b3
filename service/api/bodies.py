"""The gate every JSON request body passes before anything parses or validates it.

:class:`GatedRoute` is the route class of every route with a body. Its handler reads the
body, refuses one whose content type is not JSON (415) or whose structure passes a limit of
:mod:`service.limits` (413, or 422 for nesting; the error names the place), and only then
offers the request to its shortcut (:class:`service.api.shortcuts.ShortcutRoute`) or to the
declared route. A small body is checked on the event loop; a larger one is scanned, parsed
and validated in a worker thread and handed to FastAPI as the validated model (which pydantic
accepts again without re-validating it), so a large body never holds the event loop: its
validation can compile a thousand expressions.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

import pydantic_core
from fastapi import HTTPException, Request, Response, status
from fastapi._compat import ModelField
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from service.jsonscan import BodyProblem, quick_pass, scan
from service.limits import BODY_INLINE_BYTES

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

_STATUS = {
    "depth": status.HTTP_422_UNPROCESSABLE_CONTENT,
    "items": status.HTTP_413_CONTENT_TOO_LARGE,
    "members": status.HTTP_413_CONTENT_TOO_LARGE,
    "string": status.HTTP_413_CONTENT_TOO_LARGE,
}


class GatedRoute(APIRoute):
    """An :class:`APIRoute` whose JSON body passes :func:`admit` before anything else."""

    def admitted(self, declared: Handler) -> Handler:
        """What answers an admitted request: the declared route, unless overridden."""
        return declared

    def get_route_handler(self) -> Handler:
        declared = super().get_route_handler()
        if self.body_field is None:
            return declared
        answer = self.admitted(declared)
        # A body that is one model (not embedded beside other parameters) can be validated
        # here, off the event loop, exactly as FastAPI would.
        whole = len(self.dependant.body_params) == 1 and not self._embed_body_fields
        model = self.body_field if whole else None

        async def handler(request: Request) -> Response:
            await admit(request, model)
            return await answer(request)

        return handler


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body of ``content_type`` as JSON (``application/json`` or
    ``application/*+json``)."""
    if not content_type:
        return False
    if content_type == "application/json":
        return True  # nearly every request: no header parsing
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def admit(request: Request, model: ModelField | None = None) -> None:
    """Read the body and refuse it unless it is JSON within the limits; a large body is
    checked, parsed and (given the route's body ``model``) validated off the event loop, and
    left on ``request`` for FastAPI in that form.

    Raises :class:`HTTPException` (413, 415, 422) or :class:`RequestValidationError` (422).
    """
    body = await request.body()
    if not body:
        return  # FastAPI answers a missing body (422 naming it)
    content_type = request.headers.get("content-type")
    if not is_json(content_type):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, _not_json(content_type))
    _refuse_other_encodings(body)
    if len(body) <= BODY_INLINE_BYTES:
        _refuse(None if quick_pass(body) else scan(body))
        return
    # FastAPI does not parse again, and accepts a validated model without validating it again.
    request._json = await run_in_threadpool(_checked, body, model)


def _checked(body: bytes, model: ModelField | None) -> Any:
    """The parsed body, validated as ``model`` when given, if it passes the gate (a worker
    thread's part of :func:`admit`)."""
    _refuse(None if quick_pass(body) else scan(body))
    parsed = _parse(body)
    if model is None:
        return parsed
    value, errors = model.validate(parsed, {}, loc=("body",))
    if errors:
        raise RequestValidationError(errors, body=parsed)
    return value


def _refuse_other_encodings(body: bytes) -> None:
    """422 unless ``body`` is UTF-8 without a byte-order mark (RFC 8259's JSON).

    ``json.loads`` would also decode a BOM or UTF-16/32, which the gate's scan of the bytes
    cannot read: such a body would reach the parser with its nesting and sizes unchecked.
    """
    encoding = json.detect_encoding(body)
    if encoding != "utf-8":
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", 0),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {
                        "error": f"the body must be UTF-8 without a byte-order mark "
                        f"(it reads as {encoding})"
                    },
                }
            ]
        )


def _refuse(problem: BodyProblem | None) -> None:
    if problem is None:
        return
    error = {"type": f"body_too_{problem.kind}", "loc": ["body", *problem.loc]}
    error["msg"] = f"{problem.message} (see the request limits in docs/operations.md)"
    raise HTTPException(_STATUS[problem.kind], [error])


def _parse(body: bytes) -> Any:
    """``json.loads(body)``, as FastAPI would parse it, but faster where the fast parser
    agrees (it refuses a few things ``json`` accepts, such as lone surrogates)."""
    try:
        return pydantic_core.from_json(body, allow_inf_nan=True)
    except ValueError:
        pass
    try:
        return json.loads(body)
    except json.JSONDecodeError as error:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", error.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": error.msg},
                }
            ]
        ) from None
    except ValueError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "There was an error parsing the body"
        ) from None


def _not_json(content_type: str | None) -> list[dict[str, Any]]:
    sent = f"Content-Type: {content_type}" if content_type else "no Content-Type"
    return [
        {
            "type": "content_type",
            "loc": ["header", "content-type"],
            "msg": f"the body must be JSON sent with Content-Type: application/json "
            f"(the request has {sent})",
        }
    ]
