"""The session store contract: opaque session documents, one atomic read-modify-write.

Stores hold state, not rules. A session is a :class:`SessionRecord` whose ``document`` the
store never reads; the rules (``service.sessions``) change it only through
:meth:`SessionStore.update`, which runs a pure function on the current record and writes what
it returns, together with at most one history row, atomically, across every process and
replica sharing the store. Every store runs the same contract suite
(``tests/stores/test_contract.py``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, cast

import anyio
import anyio.to_thread

from service.limits import STORE_THREADS

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One stored session.

    Attributes:
        id: the session id (URL-safe, at least 128 random bits).
        token_hash: hex SHA-256 of the session's bearer token (the token is never stored).
        ttl_seconds: lifetime after the last write.
        expires_at: Unix time after which the session is gone (set by the store on every write).
        version: bumped by the store on every update; the compare-and-set key.
        document: the session itself, serialized by ``service.sessions``; opaque here.
        owner: the fingerprint of the API key that created the session (``""``: created with
            API keys off); set at creation, never changed. Live sessions are counted per owner.
    """

    id: str
    token_hash: str
    ttl_seconds: int
    expires_at: float
    version: int
    document: bytes
    owner: str = ""


@dataclass(frozen=True, slots=True)
class Change(Generic[T]):
    """What an update function decided: a new document (or none), a history row, a result.

    ``document=None`` leaves the session untouched (no write, no TTL refresh); ``history``
    is ``(epoch, row)`` stored with the new document in the same atomic step; ``result`` is
    handed back to the caller of :meth:`SessionStore.update`.
    """

    document: bytes | None
    history: tuple[int, bytes] | None
    result: T


class SessionExistsError(Exception):
    """``create`` was given an id that is already stored."""


class QuotaExceededError(Exception):
    """``create`` would give the record's owner more live sessions than ``max_live``."""

    def __init__(self, owner: str, max_live: int) -> None:
        super().__init__(f"owner {owner[:12]!r} already has {max_live} live sessions")
        self.owner = owner
        self.max_live = max_live


class StoreBusyError(Exception):
    """An update lost the compare-and-set race too many times in a row."""


class StoreUnavailableError(Exception):
    """The store's backend did not answer in time (down, unreachable, locked): retry later."""


def unavailable_on(
    *errors: type[Exception],
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn the backend's own connection/lock errors into :class:`StoreUnavailableError`.

    Works on plain and ``async`` methods; exceptions raised by an update function pass
    through unchanged.
    """

    def translate(error: Exception) -> StoreUnavailableError:
        return StoreUnavailableError(f"{type(error).__name__}: {error}")

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(method):

            @functools.wraps(method)
            async def translated_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                try:
                    return await method(*args, **kwargs)
                except errors as error:
                    raise translate(error) from error

            return cast(Callable[P, R], translated_async)

        @functools.wraps(method)
        def translated(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(*args, **kwargs)
            except errors as error:
                raise translate(error) from error

        return translated

    return decorate


class SessionStore(Protocol):
    """Where sessions live. Every method is safe to call from many threads and processes."""

    def create(self, record: SessionRecord, max_live: int | None = None) -> SessionRecord:
        """Store a new session (version 1, expiry from now); SessionExistsError if taken.

        With ``max_live``, QuotaExceededError instead when ``record.owner`` already has that
        many live sessions, counted atomically with the insert across every process and
        replica (deleted and expired sessions do not count).
        """
        ...

    def get(self, session_id: str) -> SessionRecord | None:
        """The session, or None if it does not exist or has expired."""
        ...

    def update(self, session_id: str, fn: Callable[[SessionRecord], Change[T]]) -> T | None:
        """Atomically read the session, apply ``fn``, write its change; None if there is no session.

        ``fn`` must be pure: it may run more than once when concurrent updates race. A write
        stores the new document and history row, bumps the version and refreshes the expiry,
        all or nothing. StoreBusyError if the race is lost too often.
        """
        ...

    def history(self, session_id: str, start: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` history rows ``(epoch, row)`` with epoch >= ``start``, in epoch order."""
        ...

    def delete(self, session_id: str) -> bool:
        """Remove the session and its history; whether it existed."""
        ...

    def count_live(self) -> int:
        """How many sessions exist and have not expired (for metrics; may scan the store)."""
        ...

    def ping(self) -> bool:
        """Whether the store answers (for readiness checks)."""
        ...

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


class AsyncUpdates(Protocol):
    """The two store operations a metric report needs, awaited on the event loop.

    A store with a native asynchronous client implements these itself (Redis: no thread
    per report); :func:`async_updates` adapts any other store by running its methods in
    the thread pool. Same semantics as :meth:`SessionStore.update` and
    :meth:`SessionStore.history`.
    """

    async def update_async(
        self, session_id: str, fn: Callable[[SessionRecord], Change[T]]
    ) -> T | None:
        """:meth:`SessionStore.update`, awaited."""
        ...

    async def history_async(
        self, session_id: str, start: int, limit: int
    ) -> list[tuple[int, bytes]]:
        """:meth:`SessionStore.history`, awaited."""
        ...


class ThreadedUpdates:
    """:class:`AsyncUpdates` for a store with only blocking methods: each call in a thread."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    async def update_async(
        self, session_id: str, fn: Callable[[SessionRecord], Change[T]]
    ) -> T | None:
        return await _in_thread(self.store.update, session_id, fn)

    async def history_async(
        self, session_id: str, start: int, limit: int
    ) -> list[tuple[int, bytes]]:
        return await _in_thread(self.store.history, session_id, start, limit)


def _in_thread(function: Callable[..., R], *args: Any) -> Awaitable[R]:
    return anyio.to_thread.run_sync(function, *args, limiter=_store_limiter())


_LIMITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def _store_limiter() -> anyio.CapacityLimiter:
    """The threads of this event loop's store calls (``STORE_THREADS``): their own, so a
    session report never queues behind the shared pool that runs synchronous routes (an
    LR range test's result or plot, a readiness probe)."""
    loop = asyncio.get_running_loop()
    limiter = _LIMITERS.get(loop)
    if limiter is None:
        limiter = _LIMITERS[loop] = anyio.CapacityLimiter(STORE_THREADS)
    return limiter


def async_updates(store: SessionStore) -> AsyncUpdates:
    """``store`` itself if it updates asynchronously, else a thread-pool adapter of it."""
    if hasattr(store, "update_async"):  # cheaper than isinstance on a runtime Protocol
        return cast(AsyncUpdates, store)
    return ThreadedUpdates(store)
