"""Sessions in one SQLite file, shared safely by every thread and process on one host.

Atomicity: every write is one ``BEGIN IMMEDIATE`` transaction. ``BEGIN IMMEDIATE`` takes the
file's single write lock up front (waiting up to ``busy_timeout`` for it), so the read, the
update function and the write of :meth:`SQLiteStore.update` see no other writer in between:
updates are serialized and never race, and "If the BEGIN IMMEDIATE operation succeeds, then no
subsequent operations in that transaction will ever fail with an SQLITE_BUSY error"
(sqlite.org/isolation.html). WAL mode lets readers (``get``, ``history``) run while a writer
holds the lock, each on a consistent snapshot.

Durability: WAL with ``synchronous=FULL``, so COMMIT returns only after the transaction's WAL
frames have been fsync'ed. An acknowledged write therefore survives ``kill -9`` of the process
and also an OS crash or a power loss. ``synchronous=NORMAL`` would survive the process kill
too (the WAL frames are already in the OS page cache, which outlives the process) but not a
power loss or kernel crash: NORMAL syncs the WAL only at checkpoints, so the last acknowledged
transactions before the cut can roll back (the file stays consistent; the writes are gone).
FULL costs one fsync per write. The power-loss guarantee assumes the disk honours flushes (on
macOS, ``fsync`` does not reach stable storage; that would need ``PRAGMA fullfsync``).

Limits: one writer at a time per file, and WAL needs every process on the same host (shared
memory beside the file): no network file systems. Use Redis for replicas on several hosts.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from service.stores.base import (
    Change,
    QuotaExceededError,
    SessionExistsError,
    SessionRecord,
    unavailable_on,
)

T = TypeVar("T")

_SCHEMA_VERSION = 2
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL,
        ttl_seconds INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        version INTEGER NOT NULL,
        document BLOB NOT NULL,
        owner TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at)",
    """CREATE TABLE IF NOT EXISTS history (
        session_id TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        row BLOB NOT NULL,
        PRIMARY KEY (session_id, epoch)
    ) WITHOUT ROWID""",
)
_OWNER_INDEX = "CREATE INDEX IF NOT EXISTS sessions_by_owner ON sessions (owner, expires_at)"
_ADD_OWNER = "ALTER TABLE sessions ADD COLUMN owner TEXT NOT NULL DEFAULT ''"
"""Schema 1 -> 2: sessions created before owners existed belong to no API key."""
_COLUMNS = "token_hash, ttl_seconds, expires_at, version, document, owner"
_PURGE_BATCH = 100
"""How many expired sessions ``create`` removes on the side (``purge_expired`` removes all)."""


class _Connection:
    """One thread's connection; a weak-referenceable holder so ``close`` can reach it.

    The holder lives in the owning thread's ``threading.local``: when that thread ends (thread
    pools retire idle workers), the holder and its connection are freed, which closes it.
    """

    __slots__ = ("__weakref__", "pid", "sql")

    def __init__(self, sql: sqlite3.Connection) -> None:
        self.sql = sql
        self.pid = os.getpid()


class SQLiteStore:
    """Sessions in the SQLite file at ``path`` (created, with its parent directories, if missing).

    Args:
        path: the database file. ``:memory:`` is refused: each thread would see its own
            database (use the ``memory`` store instead).
        clock: Unix time in seconds; expiry is computed from it (tests inject a fake clock).
        busy_timeout: seconds a writer waits for the file's write lock before failing with
            ``sqlite3.OperationalError: database is locked``.
    """

    def __init__(
        self,
        path: str,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 10.0,
    ) -> None:
        if path in ("", ":memory:") or path.startswith("file::memory:"):
            raise ValueError(f"path={path!r}: expected a file (for an in-process store use memory)")
        self.path = path
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._closed = False
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._create_schema(self._connection())

    # -- connections -------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (WAL, synchronous=FULL, busy timeout) on first use."""
        held: _Connection | None = getattr(self._local, "connection", None)
        if held is not None and held.pid == os.getpid():
            return held.sql
        # First use in this thread, or in a child forked after the parent opened one: a
        # connection must never cross a fork, so the inherited one is dropped unused.
        if self._closed:
            raise sqlite3.ProgrammingError("the store is closed")
        sql = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout,
            isolation_level=None,  # autocommit; transactions are explicit BEGIN ... COMMIT
            check_same_thread=False,  # used by its own thread only; closed by close() from any
        )
        try:
            self._enable_wal(sql)
            sql.execute("PRAGMA synchronous=FULL")
        except BaseException:
            sql.close()
            raise
        held = _Connection(sql)
        self._local.connection = held
        with self._lock:
            self._open.add(held)
        return sql

    def _enable_wal(self, sql: sqlite3.Connection) -> None:
        """Switch the file to WAL (persistent in the file), retrying while another opener holds it.

        Several processes opening a fresh file at once race for the lock the switch needs; the
        losers see ``database is locked`` and try again until ``busy_timeout`` runs out.
        """
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                mode = sql.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
                continue
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"{self.path}: journal_mode is {mode}, not wal")
            return

    def _create_schema(self, sql: sqlite3.Connection) -> None:
        """Create the tables once; safe when several processes start on a fresh file at once."""
        with _transaction(sql, "IMMEDIATE"):
            found = sql.execute("PRAGMA user_version").fetchone()[0]
            if found > _SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path}: schema version {found} is newer than this code's "
                    f"{_SCHEMA_VERSION}"
                )
            for statement in _SCHEMA:
                sql.execute(statement)
            columns = {row[1] for row in sql.execute("PRAGMA table_info(sessions)")}
            if "owner" not in columns:
                sql.execute(_ADD_OWNER)
            sql.execute(_OWNER_INDEX)
            sql.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    # -- the SessionStore protocol ------------------------------------------------------------

    @unavailable_on(sqlite3.OperationalError)
    def create(self, record: SessionRecord, max_live: int | None = None) -> SessionRecord:
        sql = self._connection()
        with _transaction(sql, "IMMEDIATE"):  # the write lock: the count and insert are one step
            now = self._clock()
            found = sql.execute(
                "SELECT expires_at FROM sessions WHERE id = ?", (record.id,)
            ).fetchone()
            if found is not None and found[0] > now:
                raise SessionExistsError(record.id)
            if max_live is not None and _owned(sql, record.owner, now) >= max_live:
                raise QuotaExceededError(record.owner, max_live)
            _delete(sql, record.id)  # an expired predecessor and its history
            stored = replace(record, expires_at=now + record.ttl_seconds, version=1)
            sql.execute(
                f"INSERT INTO sessions (id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    stored.id,
                    stored.token_hash,
                    stored.ttl_seconds,
                    stored.expires_at,
                    stored.version,
                    stored.document,
                    stored.owner,
                ),
            )
            _purge(sql, now, _PURGE_BATCH)
        return stored

    @unavailable_on(sqlite3.OperationalError)
    def get(self, session_id: str) -> SessionRecord | None:
        found = (
            self._connection()
            .execute(
                f"SELECT {_COLUMNS} FROM sessions WHERE id = ? AND expires_at > ?",
                (session_id, self._clock()),
            )
            .fetchone()
        )
        return None if found is None else _record(session_id, found)

    @unavailable_on(sqlite3.OperationalError)
    def update(self, session_id: str, fn: Callable[[SessionRecord], Change[T]]) -> T | None:
        sql = self._connection()
        with _transaction(sql, "IMMEDIATE"):
            now = self._clock()  # read under the write lock: waiting for it may take a while
            found = sql.execute(
                f"SELECT {_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if found is None:
                return None
            record = _record(session_id, found)
            if record.expires_at <= now:
                _delete(sql, session_id)
                return None
            change = fn(record)
            if change.document is not None:
                sql.execute(
                    "UPDATE sessions SET document = ?, version = ?, expires_at = ? WHERE id = ?",
                    (change.document, record.version + 1, now + record.ttl_seconds, session_id),
                )
                if change.history is not None:
                    epoch, row = change.history
                    sql.execute(
                        "INSERT OR REPLACE INTO history (session_id, epoch, row) VALUES (?, ?, ?)",
                        (session_id, epoch, row),
                    )
        return change.result

    @unavailable_on(sqlite3.OperationalError)
    def history(self, session_id: str, start: int, limit: int) -> list[tuple[int, bytes]]:
        if limit <= 0:
            return []
        sql = self._connection()
        with _transaction(sql, "DEFERRED"):  # one snapshot for the liveness check and the rows
            live = sql.execute(
                "SELECT 1 FROM sessions WHERE id = ? AND expires_at > ?",
                (session_id, self._clock()),
            ).fetchone()
            if live is None:
                return []
            rows = sql.execute(
                "SELECT epoch, row FROM history WHERE session_id = ? AND epoch >= ? "
                "ORDER BY epoch LIMIT ?",
                (session_id, start, limit),
            ).fetchall()
        return [(int(epoch), bytes(row)) for epoch, row in rows]

    @unavailable_on(sqlite3.OperationalError)
    def delete(self, session_id: str) -> bool:
        sql = self._connection()
        with _transaction(sql, "IMMEDIATE"):
            found = sql.execute(
                "SELECT expires_at FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            _delete(sql, session_id)
            return found is not None and bool(found[0] > self._clock())

    @unavailable_on(sqlite3.OperationalError)
    def count_live(self) -> int:
        found = (
            self._connection()
            .execute("SELECT COUNT(*) FROM sessions WHERE expires_at > ?", (self._clock(),))
            .fetchone()
        )
        return int(found[0])

    def ping(self) -> bool:
        try:
            return bool(self._connection().execute("SELECT 1").fetchone() == (1,))
        except sqlite3.Error:
            return False

    def close(self) -> None:
        """Close every thread's connection; the store is not used afterwards."""
        with self._lock:
            self._closed = True
            held = list(self._open)
            self._open.clear()
        for connection in held:
            if connection.pid == os.getpid():
                connection.sql.close()

    # -- maintenance --------------------------------------------------------------------------

    def purge_expired(self) -> int:
        """Delete every expired session and its history; how many sessions were removed."""
        sql = self._connection()
        with _transaction(sql, "IMMEDIATE"):
            return _purge(sql, self._clock(), -1)


@contextmanager
def _transaction(sql: sqlite3.Connection, mode: str) -> Iterator[None]:
    """``BEGIN <mode>`` ... ``COMMIT``; ``ROLLBACK`` and re-raise on any exception."""
    sql.execute(f"BEGIN {mode}")
    try:
        yield
        sql.execute("COMMIT")
    except BaseException:
        if sql.in_transaction:
            sql.execute("ROLLBACK")
        raise


def _record(session_id: str, row: tuple[str, int, float, int, bytes, str]) -> SessionRecord:
    token_hash, ttl_seconds, expires_at, version, document, owner = row
    return SessionRecord(
        id=session_id,
        token_hash=str(token_hash),
        ttl_seconds=int(ttl_seconds),
        expires_at=float(expires_at),
        version=int(version),
        document=bytes(document),
        owner=str(owner),
    )


def _owned(sql: sqlite3.Connection, owner: str, now: float) -> int:
    """How many live sessions ``owner`` has at ``now``."""
    found = sql.execute(
        "SELECT COUNT(*) FROM sessions WHERE owner = ? AND expires_at > ?", (owner, now)
    ).fetchone()
    return int(found[0])


def _delete(sql: sqlite3.Connection, session_id: str) -> None:
    sql.execute("DELETE FROM history WHERE session_id = ?", (session_id,))
    sql.execute("DELETE FROM sessions WHERE id = ?", (session_id,))


def _purge(sql: sqlite3.Connection, now: float, limit: int) -> int:
    """Delete up to ``limit`` (-1: all) sessions expired at ``now``, with their history."""
    expired = "SELECT id FROM sessions WHERE expires_at <= ? ORDER BY expires_at, id LIMIT ?"
    sql.execute(f"DELETE FROM history WHERE session_id IN ({expired})", (now, limit))
    return sql.execute(f"DELETE FROM sessions WHERE id IN ({expired})", (now, limit)).rowcount
