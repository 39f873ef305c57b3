"""Session stores: ``open_store(url)`` for ``memory``, ``sqlite:///path`` or ``redis://...``."""

from __future__ import annotations

from service.stores.base import (
    Change,
    SessionExistsError,
    SessionRecord,
    SessionStore,
    StoreBusyError,
)

__all__ = [
    "Change",
    "SessionExistsError",
    "SessionRecord",
    "SessionStore",
    "StoreBusyError",
    "open_store",
]


def open_store(url: str) -> SessionStore:
    """The store a ``LRSCHED_STORE`` URL names; ValueError for an unknown scheme."""
    if url in ("memory", "memory://"):
        from service.stores.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:///"):
        from service.stores.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("redis://", "rediss://", "unix://")):
        from service.stores.redis import RedisStore

        return RedisStore(url)
    raise ValueError(
        f"LRSCHED_STORE={url!r}: expected memory, sqlite:///path/to/file.db or redis://host:port/db"
    )
