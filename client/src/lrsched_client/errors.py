"""Typed exceptions: one class per way a call can fail, carrying the server's ``detail``.

Every exception derives from :class:`LrschedError`, so ``except LrschedError`` catches all of
them. HTTP failures keep the status code and the server's JSON ``detail`` (FastAPI's shape:
a string, a dict, or a list of ``{"loc", "msg", "type"}`` validation errors) so a caller can
show the server's own message, which names the offending field.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "AuthError",
    "ClientError",
    "EpochConflictError",
    "LrschedError",
    "NotDecidedError",
    "NotFoundError",
    "ServerError",
    "TransportError",
    "ValidationError",
    "error_for",
]


class LrschedError(Exception):
    """Base class of every error raised by ``lrsched_client``.

    Attributes:
        status_code: the HTTP status of the failed response, ``None`` when there was none.
        detail: the server's ``detail`` (the response's JSON ``detail``, else its text).
    """

    def __init__(self, message: str, *, status_code: int | None = None, detail: Any = None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.detail = detail


class TransportError(LrschedError):
    """The server could not be reached or did not answer (after all retries)."""


class ClientError(LrschedError):
    """A 4xx answer not covered by a more specific class (400, 405, 406, 413, 429, ...)."""


class ValidationError(ClientError):
    """422: the request is invalid; :attr:`errors` lists ``{"loc", "msg", "type"}`` items."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The validation errors, each naming its field by path in ``loc``."""
        if isinstance(self.detail, list):
            return [item for item in self.detail if isinstance(item, dict)]
        return [{"loc": [], "msg": str(self.detail), "type": "value_error"}]


class NotFoundError(ClientError):
    """404: no such session (never created, deleted or expired), or no such route."""


class AuthError(ClientError):
    """401 (no credentials) or 403 (wrong session token or API key)."""


class EpochConflictError(ClientError):
    """409: a report skipped ahead; :attr:`expected_epoch` is the epoch the session expects.

    Attributes:
        expected_epoch: the next undecided epoch of the session.
        epoch: the epoch that was reported.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 409,
        detail: Any = None,
        expected_epoch: int | None = None,
        epoch: int | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, detail=detail)
        self.expected_epoch = expected_epoch
        self.epoch = epoch


class ServerError(LrschedError):
    """A 5xx answer (after all retries)."""


class NotDecidedError(LrschedError):
    """A plateau epoch was still undecided when the wait for the other ranks timed out.

    Attributes:
        epoch: the epoch waited for.
        waiting_for: the ranks that had not reported it.
    """

    def __init__(self, message: str, *, epoch: int, waiting_for: list[int]) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.waiting_for = waiting_for


def error_for(response: httpx.Response) -> LrschedError:
    """The exception for a failed ``response`` (status >= 400), with the server's detail."""
    status = response.status_code
    detail = _detail(response)
    where = f"{response.request.method} {response.request.url.path}"
    message = f"{status} {response.reason_phrase} from {where}: {_describe(detail)}"
    if status == 409 and isinstance(detail, dict):
        expected, epoch = detail.get("expected_epoch"), detail.get("epoch")
        return EpochConflictError(
            message,
            status_code=status,
            detail=detail,
            expected_epoch=expected if isinstance(expected, int) else None,
            epoch=epoch if isinstance(epoch, int) else None,
        )
    kind: type[LrschedError]
    if status == 422:
        kind = ValidationError
    elif status == 404:
        kind = NotFoundError
    elif status in (401, 403):
        kind = AuthError
    elif status >= 500:
        kind = ServerError
    else:
        kind = ClientError
    return kind(message, status_code=status, detail=detail)


def _detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict) and "detail" in body:
        return body["detail"]
    return body


def _describe(detail: Any) -> str:
    """A one-line rendering: validation errors as ``body.schedule.T_0: message; ...``."""
    if isinstance(detail, list) and detail and all(isinstance(item, dict) for item in detail):
        parts = []
        for item in detail:
            loc = ".".join(str(part) for part in item.get("loc", []))
            parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
        return "; ".join(parts)
    if isinstance(detail, dict) and "msg" in detail:
        return str(detail["msg"])
    return str(detail) if detail not in (None, "") else "(no detail)"
