"""SQLite-specific behaviour: several processes on one file, WAL, durability, expiry cleanup."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from service.stores import StoreUnavailableError, open_store
from service.stores.sqlite import SQLiteStore
from tests.stores.counter import (
    count,
    counter_session,
    history_row,
    increment,
    increment_in_process,
)

SID = "s_8yq3WnZ0cRr0c2dQmXy1fA"
REPO = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


def _rows(path: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read the file directly, bypassing the store."""
    with sqlite3.connect(path) as raw:
        rows = raw.execute(query, args).fetchall()
    raw.close()
    return rows


def _open_and_create(path: str, session_id: str, barrier: Any) -> None:
    """Process target: wait for the others, open the store on a fresh file, create a session."""
    barrier.wait()
    store = SQLiteStore(path)
    try:
        store.create(counter_session(session_id))
    finally:
        store.close()


def test_increments_from_four_processes_are_all_applied(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteStore(str(path))
    store.create(counter_session(SID))
    spawn = multiprocessing.get_context("spawn")
    workers = [
        spawn.Process(target=increment_in_process, args=(f"sqlite:///{path}", SID, 100))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    final = store.get(SID)
    assert final is not None
    assert (count(final.document), final.version) == (400, 401)
    assert store.history(SID, 0, 1000) == [(n, history_row(n)) for n in range(1, 401)]
    store.close()


def test_processes_opening_a_fresh_file_at_once_share_one_schema(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "sessions.db"
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(6)
    workers = [
        spawn.Process(target=_open_and_create, args=(str(path), f"s{i}", barrier)) for i in range(6)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0] * 6
    assert _rows(path, "SELECT id FROM sessions ORDER BY id") == [(f"s{i}",) for i in range(6)]
    assert _rows(path, "PRAGMA journal_mode") == [("wal",)]


def test_file_is_in_wal_mode_and_commits_sync_fully(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteStore(str(path))
    assert _rows(path, "PRAGMA journal_mode") == [("wal",)]  # persistent, seen by any opener
    assert store._connection().execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    store.close()


def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "sessions.db"
    store = SQLiteStore(str(path))
    store.create(counter_session(SID))
    assert path.is_file()
    store.close()


def test_sessions_and_history_survive_reopening_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "sessions.db")
    store = SQLiteStore(path)
    store.create(counter_session(SID))
    store.update(SID, increment)
    store.update(SID, increment)
    before = store.get(SID)
    store.close()
    reopened = SQLiteStore(path)
    assert reopened.get(SID) == before
    assert reopened.history(SID, 0, 100) == [(1, history_row(1)), (2, history_row(2))]
    assert reopened.update(SID, increment) == 3
    reopened.close()


def test_acknowledged_updates_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    SQLiteStore(str(path)).create(counter_session(SID))
    writer = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from service.stores.sqlite import SQLiteStore
from tests.stores.counter import increment
store = SQLiteStore({str(path)!r})
while True:
    print(store.update({SID!r}, increment), flush=True)
"""
    child = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    acknowledged = 0
    while acknowledged < 50:
        acknowledged = int(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    store = SQLiteStore(str(path))
    final = store.get(SID)
    assert final is not None
    stored = count(final.document)
    assert stored >= acknowledged
    assert final.version == stored + 1
    assert [epoch for epoch, _ in store.history(SID, 0, 10_000)] == list(range(1, stored + 1))
    store.close()


def test_a_writer_waits_for_the_lock_held_by_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteStore(str(path))
    store.create(counter_session(SID))
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    assert store.update(SID, increment) == 1
    assert time.monotonic() - started >= 0.25
    release.join()
    holder.close()
    store.close()


def test_a_writer_gives_up_after_busy_timeout_as_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteStore(str(path), busy_timeout=0.1)
    store.create(counter_session(SID))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreUnavailableError, match="locked") as caught:
        store.update(SID, increment)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    holder.execute("ROLLBACK")
    holder.close()
    assert store.update(SID, increment) == 1  # no transaction was left open
    store.close()


def test_purge_expired_deletes_expired_sessions_and_their_history(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    clock = FakeClock()
    store = SQLiteStore(str(path), clock=clock)
    store.create(counter_session("short", ttl_seconds=1))
    store.update("short", increment)
    store.create(counter_session("long", ttl_seconds=3600))
    store.update("long", increment)
    clock.now += 2
    assert store.purge_expired() == 1
    assert _rows(path, "SELECT id FROM sessions") == [("long",)]
    assert _rows(path, "SELECT session_id, epoch FROM history") == [("long", 1)]
    assert store.purge_expired() == 0
    store.close()


def test_create_removes_expired_sessions_and_their_history(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    clock = FakeClock()
    store = SQLiteStore(str(path), clock=clock)
    store.create(counter_session("short", ttl_seconds=1))
    store.update("short", increment)
    clock.now += 2
    store.create(counter_session("new"))
    assert _rows(path, "SELECT id FROM sessions") == [("new",)]
    assert _rows(path, "SELECT session_id FROM history") == []
    store.close()


def test_update_of_an_expired_session_deletes_it(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    clock = FakeClock()
    store = SQLiteStore(str(path), clock=clock)
    store.create(counter_session(SID, ttl_seconds=1))
    store.update(SID, increment)
    clock.now += 2
    assert store.update(SID, increment) is None
    assert _rows(path, "SELECT count(*) FROM sessions") == [(0,)]
    assert _rows(path, "SELECT count(*) FROM history") == [(0,)]
    store.close()


def test_close_closes_the_connections_of_every_thread(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "sessions.db"))
    connections: list[sqlite3.Connection] = []
    opened = threading.Barrier(4)
    closed = threading.Event()

    def open_one() -> None:
        connections.append(store._connection())
        opened.wait()
        closed.wait()  # a live pool thread, still holding its connection

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for thread in threads:
        thread.start()
    opened.wait()
    connections.append(store._connection())
    assert len({id(connection) for connection in connections}) == 4
    store.close()
    closed.set()
    for thread in threads:
        thread.join()
    for connection in connections:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            connection.execute("SELECT 1")


def test_open_store_opens_a_sqlite_file_for_a_sqlite_url(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'sessions.db'}")
    assert isinstance(store, SQLiteStore)
    assert store.ping() is True
    store.close()


def test_an_in_memory_database_is_refused() -> None:
    with pytest.raises(ValueError, match="memory"):
        SQLiteStore(":memory:")


def test_a_schema_1_file_gains_owners_and_its_sessions_belong_to_no_key(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    old = sqlite3.connect(path)
    old.executescript(
        """CREATE TABLE sessions (id TEXT PRIMARY KEY, token_hash TEXT NOT NULL,
               ttl_seconds INTEGER NOT NULL, expires_at REAL NOT NULL,
               version INTEGER NOT NULL, document BLOB NOT NULL);
           CREATE TABLE history (session_id TEXT NOT NULL, epoch INTEGER NOT NULL,
               row BLOB NOT NULL, PRIMARY KEY (session_id, epoch)) WITHOUT ROWID;
           PRAGMA user_version=1;"""
    )
    old.execute(
        "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)", (SID, "ab" * 32, 3600, 4e9, 3, b"7")
    )
    old.commit()
    old.close()
    store = SQLiteStore(str(path))
    try:
        record = store.get(SID)
        assert record is not None
        assert (record.owner, record.version, count(record.document)) == ("", 3, 7)
        assert store.update(SID, increment) == 8
    finally:
        store.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone() == (2,)
    check.close()
