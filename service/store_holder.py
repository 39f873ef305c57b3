"""The application's session store, opened once (at startup, or on first use) and closed."""

from __future__ import annotations

import threading
from collections.abc import Callable

from service.stores import SessionStore, open_store


class StoreHolder:
    """Opens the store named by ``url`` once, for every thread, and closes it at shutdown."""

    def __init__(self, url: str, on_conflict: Callable[[], None] | None = None) -> None:
        self.url = url
        self._on_conflict = on_conflict
        self._store: SessionStore | None = None
        self._lock = threading.Lock()

    def get(self) -> SessionStore:
        """The open store (opened now if this is the first use)."""
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(self.url, self._on_conflict)
                store = self._store
        return store

    async def aclose(self) -> None:
        """Close what the store opened for the running event loop (its async client)."""
        closer = getattr(self._store, "aclose", None)
        if closer is not None:
            await closer()

    def close(self) -> None:
        """Close the store if it was opened."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
