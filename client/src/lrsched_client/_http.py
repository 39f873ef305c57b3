"""Sending one call with timeouts, bounded retries, backoff with full jitter, typed errors.

What is retried, and why it is safe:

* Every call the client makes is either pure (``/v1/schedules``, ``/v1/plateau/replay``, the
  ``GET`` s) or idempotent on the server (a report is keyed by ``(epoch, rank)``: a repeat is
  answered with the recorded decision and changes nothing; ``DELETE`` of a deleted session
  is a 404, which a retried delete counts as done). Those calls are retried on connection
  errors, timeouts, a dropped connection, and on 429, 500, 502, 503 and 504 (but not on
  the 429 that says a quota is used up, such as an API key's live sessions: that detail names
  its ``limit``, and only deleting sessions or waiting for their expiry frees one).
* Creating a session is not idempotent: a retry after an *ambiguous* failure (the request
  may have reached the server: a read timeout, a dropped connection, a 500/502/504) could
  create a second session. Those calls are retried only when the request certainly was not
  processed: the connection could not be opened, or the server answered 429/503. An
  ambiguous failure raises; at worst it leaves an orphan session nobody holds the token
  of, which expires after its ``ttl_seconds``.

Delays are "full jitter" (uniform in ``[0, min(max_backoff, backoff * 2**retry)]``) so that
many trainers that failed together do not retry together; a ``Retry-After`` header is a
lower bound on the delay, and one longer than ``max_retry_after`` is not waited for.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from lrsched_client.errors import TransportError, error_for

logger = logging.getLogger("lrsched_client")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Statuses worth another try: overload, a crash, a restart, a proxy that lost the backend."""
UNPROCESSED_STATUSES = frozenset({429, 503})
"""Statuses that say the request was not processed: safe to retry even a creation."""
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport failures before the request left: safe to retry even a creation."""
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
"""Transport failures worth another try (not local mistakes such as an illegal header)."""


@dataclass(frozen=True, slots=True)
class Retry:
    """How often and how patiently a call is retried.

    Args:
        attempts: tries in all, the first included (1 disables retries).
        backoff: the first retry's delay bound in seconds; it doubles with every retry.
        max_backoff: the largest delay bound in seconds.
        max_retry_after: a ``Retry-After`` longer than this (seconds) is not waited for:
            the error is raised instead.
        statuses: the HTTP statuses that are retried.
    """

    attempts: int = 5
    backoff: float = 0.25
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    statuses: frozenset[int] = field(default=RETRY_STATUSES)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts={self.attempts}: expected at least 1")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ValueError("backoff, max_backoff and max_retry_after must be >= 0")

    @classmethod
    def of(cls, retries: int | Retry) -> Retry:
        """A policy from ``retries``: a policy, or the number of retries after the first try."""
        if isinstance(retries, Retry):
            return retries
        if retries < 0:
            raise ValueError(f"retries={retries}: expected a number >= 0")
        return cls(attempts=retries + 1)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        bound = min(self.max_backoff, self.backoff * 2.0**retry)
        jittered = random.uniform(0.0, bound)
        return jittered if retry_after is None else max(retry_after, jittered)


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP call, described before it is sent (so sync and async send the same thing).

    Attributes:
        idempotent: whether sending it twice has the effect of sending it once; if not, it
            is retried only when it certainly was not processed.
        ok_after_retry: statuses that mean success once an earlier try may have succeeded
            (404 for a ``DELETE``: the lost answer was the 204).
    """

    method: str
    path: str
    json: Any = None
    params: Mapping[str, str | int] | None = None
    headers: Mapping[str, str] | None = None
    idempotent: bool = True
    ok_after_retry: frozenset[int] = frozenset()


class _Attempts:
    """The retry decisions for one call: each outcome gives a delay, or raises, or is done."""

    def __init__(self, call: Call, policy: Retry) -> None:
        self.call = call
        self.policy = policy
        self.retries = 0

    def after_exception(self, error: httpx.TransportError) -> float:
        """The delay before the next try after ``error``; raises if there is none."""
        unsent = isinstance(error, _UNSENT)
        retryable = isinstance(error, _TRANSIENT) and (unsent or self.call.idempotent)
        if not retryable or not self._tries_left():
            tries = self.retries + 1
            note = "" if unsent or self.call.idempotent else " (not retried: may have been applied)"
            raise TransportError(
                f"{self.call.method} {self.call.path} failed after {tries} "
                f"{'try' if tries == 1 else 'tries'}: {type(error).__name__}: {error}{note}"
            ) from error
        return self._next(f"{type(error).__name__}: {error}", None)

    def after_response(self, response: httpx.Response) -> float | None:
        """``None`` when ``response`` is the answer; else the delay before the next try."""
        status = response.status_code
        if status < 400 or (self.retries > 0 and status in self.call.ok_after_retry):
            return None
        retryable = (
            status in self.policy.statuses
            and (self.call.idempotent or status in UNPROCESSED_STATUSES)
            and not _is_quota(response)
        )
        retry_after = _retry_after(response)
        if (
            not retryable
            or not self._tries_left()
            or (retry_after is not None and retry_after > self.policy.max_retry_after)
        ):
            raise error_for(response)
        return self._next(f"HTTP {status}", retry_after)

    def _tries_left(self) -> bool:
        return self.retries + 1 < self.policy.attempts

    def _next(self, reason: str, retry_after: float | None) -> float:
        delay = self.policy.delay(self.retries, retry_after)
        self.retries += 1
        logger.warning(
            "lrsched: %s %s: %s; retry %d of %d in %.2f s",
            self.call.method,
            self.call.path,
            reason,
            self.retries,
            self.policy.attempts - 1,
            delay,
        )
        return delay


def _is_quota(response: httpx.Response) -> bool:
    """Whether ``response`` is the service's 429 for a used-up quota (its detail names the
    ``limit``): a retry within seconds cannot succeed."""
    if response.status_code != 429:
        return False
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return False
    return isinstance(detail, dict) and "limit" in detail


def _retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _kwargs(call: Call) -> dict[str, Any]:
    return {"json": call.json, "params": call.params, "headers": call.headers}


class SyncHttp:
    """A pooled ``httpx.Client`` that sends :class:`Call` s with the retry policy."""

    def __init__(self, client: httpx.Client, policy: Retry) -> None:
        self.client = client
        self.policy = policy

    def send(self, call: Call) -> httpx.Response:
        """The response to ``call`` (status < 400, or accepted after a retry)."""
        attempts = _Attempts(call, self.policy)
        while True:
            try:
                response = self.client.request(call.method, call.path, **_kwargs(call))
            except httpx.TransportError as error:
                time.sleep(attempts.after_exception(error))
                continue
            delay = attempts.after_response(response)
            if delay is None:
                return response
            time.sleep(delay)

    @contextmanager
    def stream(self, call: Call) -> Iterator[httpx.Response]:
        """The response to ``call`` like :meth:`send`, its body left to read in chunks.

        Retries happen before the response is handed over, never while its body is read.
        """
        attempts = _Attempts(call, self.policy)
        while True:
            request = self.client.build_request(call.method, call.path, **_kwargs(call))
            try:
                response = self.client.send(request, stream=True)
            except httpx.TransportError as error:
                time.sleep(attempts.after_exception(error))
                continue
            try:
                if response.status_code >= 400:
                    response.read()  # the error's detail
                delay = attempts.after_response(response)
            except BaseException:
                response.close()
                raise
            if delay is None:
                break
            response.close()
            time.sleep(delay)
        try:
            yield response
        finally:
            response.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self.client.close()


class AsyncHttp:
    """A pooled ``httpx.AsyncClient`` that sends :class:`Call` s with the retry policy."""

    def __init__(self, client: httpx.AsyncClient, policy: Retry) -> None:
        self.client = client
        self.policy = policy

    async def send(self, call: Call) -> httpx.Response:
        """The response to ``call`` (status < 400, or accepted after a retry)."""
        attempts = _Attempts(call, self.policy)
        while True:
            try:
                response = await self.client.request(call.method, call.path, **_kwargs(call))
            except httpx.TransportError as error:
                await anyio.sleep(attempts.after_exception(error))
                continue
            delay = attempts.after_response(response)
            if delay is None:
                return response
            await anyio.sleep(delay)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self.client.aclose()
