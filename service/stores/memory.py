"""In-process store for tests and single-process runs: dicts behind one lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from service.stores.base import Change, QuotaExceededError, SessionExistsError, SessionRecord

T = TypeVar("T")


class MemoryStore:
    """Sessions in this process's memory: correct for one process only, lost on exit."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, SessionRecord] = {}
        self._history: dict[str, dict[int, bytes]] = {}

    def _live(self, session_id: str) -> SessionRecord | None:
        record = self._sessions.get(session_id)
        if record is not None and record.expires_at <= self._clock():
            del self._sessions[session_id]
            self._history.pop(session_id, None)
            return None
        return record

    def create(self, record: SessionRecord, max_live: int | None = None) -> SessionRecord:
        with self._lock:
            if self._live(record.id) is not None:
                raise SessionExistsError(record.id)
            if max_live is not None and self._owned(record.owner) >= max_live:
                raise QuotaExceededError(record.owner, max_live)
            stored = replace(record, version=1, expires_at=self._clock() + record.ttl_seconds)
            self._sessions[record.id] = stored
            self._history[record.id] = {}
            return stored

    def _owned(self, owner: str) -> int:
        """How many live sessions ``owner`` has (the lock is held)."""
        live = (self._live(session_id) for session_id in list(self._sessions))
        return sum(1 for record in live if record is not None and record.owner == owner)

    def get(self, session_id: str) -> SessionRecord | None:
        with self._lock:
            return self._live(session_id)

    def update(self, session_id: str, fn: Callable[[SessionRecord], Change[T]]) -> T | None:
        with self._lock:
            record = self._live(session_id)
            if record is None:
                return None
            change = fn(record)
            if change.document is not None:
                self._sessions[session_id] = replace(
                    record,
                    document=change.document,
                    version=record.version + 1,
                    expires_at=self._clock() + record.ttl_seconds,
                )
                if change.history is not None:
                    epoch, row = change.history
                    self._history[session_id][epoch] = row
            return change.result

    def history(self, session_id: str, start: int, limit: int) -> list[tuple[int, bytes]]:
        with self._lock:
            if self._live(session_id) is None:
                return []
            rows = self._history[session_id]
            epochs = sorted(epoch for epoch in rows if epoch >= start)[:limit]
            return [(epoch, rows[epoch]) for epoch in epochs]

    def delete(self, session_id: str) -> bool:
        with self._lock:
            existed = self._live(session_id) is not None
            self._sessions.pop(session_id, None)
            self._history.pop(session_id, None)
            return existed

    def count_live(self) -> int:
        with self._lock:
            return sum(1 for session_id in list(self._sessions) if self._live(session_id))

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        with self._lock:
            self._sessions.clear()
            self._history.clear()
