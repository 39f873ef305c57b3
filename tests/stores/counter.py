"""A counter session for the store tests: the document is a count, each update adds one.

The history row of the update that reaches count ``n`` is stored at epoch ``n``, so a lost
or doubled update shows up both in the final count and in the set of history epochs.
"""

from __future__ import annotations

from service.stores import Change, SessionRecord, open_store


def counter_session(session_id: str, *, ttl_seconds: int = 3600, count: int = 0) -> SessionRecord:
    """A new session whose document is ``count``."""
    return SessionRecord(
        id=session_id,
        token_hash="ab" * 32,
        ttl_seconds=ttl_seconds,
        expires_at=0.0,
        version=0,
        document=str(count).encode(),
    )


def count(document: bytes) -> int:
    """The count a counter document holds."""
    return int(document)


def history_row(n: int) -> bytes:
    """The history row stored at epoch ``n``."""
    return b"count=%d" % n


def increment(record: SessionRecord) -> Change[int]:
    """Add one to the count, record it at epoch = the new count, and return the new count."""
    n = count(record.document) + 1
    return Change(document=str(n).encode(), history=(n, history_row(n)), result=n)


def increment_in_process(url: str, session_id: str, times: int) -> None:
    """Open the store ``url`` names and increment the counter ``times`` times (a process target)."""
    store = open_store(url)
    try:
        for _ in range(times):
            store.update(session_id, increment)
    finally:
        store.close()
