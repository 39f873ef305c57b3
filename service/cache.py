"""A bounded, thread-safe LRU of encoded curves, sized in bytes, with single-flight misses.

Keys are the curve's ETag (a hash of the canonical request, the representation and the
engine version), values the encoded response. Thousands of ranks asking for the same curve
cost one computation: a hit is a dict lookup, and concurrent misses for the same key wait
for the first one's result (single flight) instead of computing it again. The size bound
counts body bytes plus a fixed per-entry overhead; an entry larger than the whole budget is
served but not kept. ``max_bytes = 0`` disables the cache (every call computes).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from fastapi import Request

from service.engine.cancel import Cancelled
from service.limits import CACHE_ALIAS_BYTES, CACHE_ALIASES

ENTRY_OVERHEAD = 512
"""Bytes charged per entry on top of its body (key, headers, bookkeeping)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached response: body, media type and extra headers."""

    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Bytes this entry is charged in the cache."""
        return len(self.body) + ENTRY_OVERHEAD


class _Flight:
    """A computation in progress that later callers of the same key wait for: threads
    block on its :meth:`waiter`, coroutines await it.

    The waiter (a ``Future``, with its lock and condition) is made only when a caller
    waits, under the cache's lock, which is also where the leader takes it to announce
    the end: most computations nobody waits for, and they make none.
    """

    __slots__ = ("_finished", "entry", "error")

    def __init__(self) -> None:
        self._finished: Future[None] | None = None
        self.entry: Entry | None = None
        self.error: BaseException | None = None

    def waiter(self) -> Future[None]:
        """What a caller waits on; the cache's lock must be held."""
        if self._finished is not None:
            return self._finished
        finished: Future[None] = Future()
        finished.set_running_or_notify_cancel()  # a waiter's cancellation cannot cancel it
        self._finished = finished
        return finished

    def taken(self) -> Future[None] | None:
        """The waiter to announce the end on, if anyone waits; the cache's lock must be held."""
        return self._finished

    def outcome(self) -> Entry | None:
        """The finished computation's entry, its error raised, or ``None`` if its client
        left (``Cancelled``) and the caller must compute."""
        if isinstance(self.error, Cancelled):
            return None
        if self.error is not None:
            raise self.error
        assert self.entry is not None
        return self.entry


class CurveCache:
    """LRU of :class:`Entry` by key, at most ``max_bytes`` in total; see the module doc."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._aliases: OrderedDict[bytes, str] = OrderedDict()
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        """Whether anything is ever kept."""
        return self.max_bytes > 0

    @property
    def size(self) -> int:
        """Bytes currently charged."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Entry | None:
        """The entry for ``key`` (now the most recently used), or ``None``; counts a hit."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
            return entry

    def get_or_compute(self, key: str, compute: Callable[[], Entry]) -> tuple[Entry, bool]:
        """``(entry, hit)``: the cached entry, or ``compute()``'s, computed once per key.

        Concurrent callers with the same missing key block until the first caller's
        ``compute`` returns and get its entry (``hit`` true: they computed nothing), or its
        exception; if the first caller was cancelled (its client left), the next computes.
        Failures are not cached.
        """
        if not self.enabled:
            with self._lock:
                self.misses += 1
            return compute(), False
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry, True
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = _Flight()
                self.misses += 1
                finished = None
            else:
                self.hits += 1
                finished = flight.waiter()
        if finished is None:
            return self._lead(key, flight, compute), False
        return self._follow(key, flight, finished, compute)

    def _lead(self, key: str, flight: _Flight, compute: Callable[[], Entry]) -> Entry:
        """``compute()`` once for every caller of ``key``: stored, and handed (or its
        exception) to the callers waiting on ``flight``."""
        try:
            entry = compute()
        except BaseException as error:
            flight.error = error
            raise
        else:
            flight.entry = entry
            self._store(key, entry)
            return entry
        finally:
            with self._lock:
                del self._flights[key]
                finished = flight.taken()
            if finished is not None:
                finished.set_result(None)

    def _follow(
        self, key: str, flight: _Flight, finished: Future[None], compute: Callable[[], Entry]
    ) -> tuple[Entry, bool]:
        """``(entry, True)`` once the leading caller of ``key`` has computed it, or its
        exception; if the leader was cancelled (its client left), this caller computes."""
        finished.result()
        followed = flight.outcome()
        if followed is None:
            return self.get_or_compute(key, compute)
        return followed, True

    async def follow(self, key: str) -> Entry | None:
        """The entry of the computation of ``key`` in progress, awaited without holding a
        thread or a curve-pool ticket (its leader holds one), or its error; ``None`` if
        nothing computes ``key`` now, or the computation was cancelled. Counts a hit.

        Thousands of ranks asking at once for one curve thus cost one computation and one
        admission, however small the curve pool.
        """
        with self._lock:
            flight = self._flights.get(key)
            if flight is None:
                return None
            finished = flight.waiter()
        await asyncio.wrap_future(finished)
        entry = flight.outcome()
        if entry is not None:
            with self._lock:
                self.hits += 1
        return entry

    def remember(self, raw: bytes, key: str) -> None:
        """Note that the raw request ``raw`` (body and whatever else selects the answer)
        validated to the entry ``key``, so a byte-identical repeat can skip validation."""
        if not self.enabled or len(raw) > CACHE_ALIAS_BYTES:
            return
        with self._lock:
            self._aliases[raw] = key
            self._aliases.move_to_end(raw)
            if len(self._aliases) > CACHE_ALIASES:
                self._aliases.popitem(last=False)

    def recall(self, raw: bytes) -> tuple[str, Entry] | None:
        """The key and cached entry a remembered raw request led to; counts a hit."""
        if len(raw) > CACHE_ALIAS_BYTES:
            return None
        with self._lock:
            key = self._aliases.get(raw)
            entry = None if key is None else self._entries.get(key)
            if key is None or entry is None:
                return None
            self._aliases.move_to_end(raw)
            self._entries.move_to_end(key)
            self.hits += 1
            return key, entry

    def _store(self, key: str, entry: Entry) -> None:
        if entry.size > self.max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous.size
            self._entries[key] = entry
            self._bytes += entry.size
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size

    def clear(self) -> None:
        """Forget every entry (in-flight computations finish and are stored)."""
        with self._lock:
            self._entries.clear()
            self._aliases.clear()
            self._bytes = 0


_CREATE = threading.Lock()


def curve_cache(request: Request) -> CurveCache:
    """The application's curve cache, created on first use from its settings."""
    state = request.app.state
    cache: CurveCache | None = getattr(state, "curve_cache", None)
    if cache is None:
        with _CREATE:
            cache = getattr(state, "curve_cache", None)
            if cache is None:
                cache = CurveCache(state.settings.cache_bytes)
                state.curve_cache = cache
    return cache
