"""Session stores: ``open_store(url)`` for ``memory``, ``sqlite:///path`` or ``redis://...``."""

from __future__ import annotations

from collections.abc import Callable

from service.stores.base import (
    Change,
    QuotaExceededError,
    SessionExistsError,
    SessionRecord,
    SessionStore,
    StoreBusyError,
    StoreUnavailableError,
)

__all__ = [
    "Change",
    "QuotaExceededError",
    "SessionExistsError",
    "SessionRecord",
    "SessionStore",
    "StoreBusyError",
    "StoreUnavailableError",
    "open_store",
]


def open_store(url: str, on_conflict: Callable[[], None] | None = None) -> SessionStore:
    """The store a ``LRSCHED_STORE`` URL names; ValueError for an unknown scheme.

    ``on_conflict`` is called for every compare-and-set race a store loses and retries.
    """
    if url in ("memory", "memory://"):
        from service.stores.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:///"):
        from service.stores.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("redis://", "rediss://", "unix://")):
        from service.stores.redis import RedisStore

        return RedisStore(url, on_conflict=on_conflict)
    raise ValueError(
        f"LRSCHED_STORE={url!r}: expected memory, sqlite:///path/to/file.db or redis://host:port/db"
    )
