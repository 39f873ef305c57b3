"""The SessionStore contract: every store runs this one suite (memory, sqlite, redis).

Memory and SQLite run on an injected fake clock; Redis keeps time on the server, so its
expiry tests really wait (a 1 s TTL, a few of them).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import pytest

from service.stores import (
    Change,
    QuotaExceededError,
    SessionExistsError,
    SessionRecord,
    SessionStore,
)
from service.stores.base import AsyncUpdates, async_updates
from service.stores.memory import MemoryStore
from service.stores.sqlite import SQLiteStore
from tests.loop import run_in_fresh_loop
from tests.stores.counter import count, counter_session, history_row, increment

SID = "s_8yq3WnZ0cRr0c2dQmXy1fA"
OTHER = "s_QmXy1fA8yq3WnZ0cRr0c2d"


class FakeClock:
    """Unix time that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Harness:
    """A store under test and its notion of time."""

    store: SessionStore
    now: Callable[[], float]
    advance: Callable[[float], None]
    """Let this many seconds pass (moves a fake clock, or sleeps)."""
    tolerance: float
    """How far an ``expires_at`` may be from the expected value, in seconds."""


@pytest.fixture(params=["memory", "sqlite", "redis"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    store: SessionStore
    if request.param == "redis":
        from service.stores.redis import RedisStore

        store = RedisStore(request.getfixturevalue("redis_url"))
        harness = Harness(store, time.time, time.sleep, tolerance=0.5)
    else:
        clock = FakeClock()
        if request.param == "memory":
            store = MemoryStore(clock=clock)
        else:
            store = SQLiteStore(str(tmp_path / "sessions.db"), clock=clock)
        harness = Harness(store, clock, clock.advance, tolerance=0.0)
    try:
        yield harness
    finally:
        store.close()


def _set_document(
    document: bytes, history: tuple[int, bytes] | None = None
) -> Callable[[SessionRecord], Change[str]]:
    def fn(record: SessionRecord) -> Change[str]:
        return Change(document=document, history=history, result="done")

    return fn


def _epochs(store: SessionStore, session_id: str) -> list[int]:
    return [epoch for epoch, _ in store.history(session_id, 0, 10_000)]


# -- create and get ---------------------------------------------------------------------------


def test_created_session_reads_back_unchanged(harness: Harness) -> None:
    store = harness.store
    record = SessionRecord(
        id=SID,
        token_hash="0f" * 32,
        ttl_seconds=3600,
        expires_at=0.0,
        version=0,
        document=b"\x00\xff binary {} \n\x80",
    )
    created = store.create(record)
    assert store.get(SID) == created
    assert (created.id, created.token_hash, created.ttl_seconds, created.document) == (
        SID,
        "0f" * 32,
        3600,
        b"\x00\xff binary {} \n\x80",
    )


def test_create_sets_version_1_and_expiry_from_now(harness: Harness) -> None:
    given = counter_session(SID, ttl_seconds=3600)
    given = SessionRecord(
        given.id, given.token_hash, given.ttl_seconds, expires_at=5.0, version=7, document=b"0"
    )
    before = harness.now()
    created = harness.store.create(given)
    assert created.version == 1
    assert created.expires_at == pytest.approx(before + 3600, abs=harness.tolerance)
    assert harness.store.get(SID) == created


def test_create_of_a_taken_id_raises_and_keeps_the_first_session(harness: Harness) -> None:
    store = harness.store
    first = store.create(counter_session(SID, count=1))
    with pytest.raises(SessionExistsError):
        store.create(counter_session(SID, count=2))
    assert store.get(SID) == first


def test_sessions_are_independent(harness: Harness) -> None:
    store = harness.store
    store.create(counter_session(SID))
    other = store.create(counter_session(OTHER))
    store.update(SID, increment)
    assert store.get(OTHER) == other
    assert store.history(OTHER, 0, 100) == []
    assert store.delete(SID)
    assert store.get(OTHER) == other


# -- update -----------------------------------------------------------------------------------


def test_update_writes_document_history_row_and_version_and_returns_fn_result(
    harness: Harness,
) -> None:
    store = harness.store
    created = store.create(counter_session(SID, count=41))
    harness.advance(0.3)
    assert store.update(SID, increment) == 42
    updated = store.get(SID)
    assert updated is not None
    assert (count(updated.document), updated.version) == (42, 2)
    assert (updated.token_hash, updated.ttl_seconds) == (created.token_hash, created.ttl_seconds)
    assert updated.expires_at == pytest.approx(harness.now() + 3600, abs=harness.tolerance)
    assert updated.expires_at > created.expires_at
    assert store.history(SID, 0, 100) == [(42, history_row(42))]


def test_update_hands_fn_the_stored_record(harness: Harness) -> None:
    store = harness.store
    store.create(counter_session(SID))
    store.update(SID, increment)
    seen: list[SessionRecord] = []

    def spy(record: SessionRecord) -> Change[None]:
        seen.append(record)
        return Change(document=None, history=None, result=None)

    store.update(SID, spy)
    assert seen == [store.get(SID)]
    assert (seen[0].version, seen[0].document) == (2, b"1")


def test_update_without_history_row_stores_none(harness: Harness) -> None:
    store = harness.store
    store.create(counter_session(SID))
    assert store.update(SID, _set_document(b"new")) == "done"
    updated = store.get(SID)
    assert updated is not None
    assert (updated.document, updated.version) == (b"new", 2)
    assert store.history(SID, 0, 100) == []


def test_change_without_document_writes_nothing(harness: Harness) -> None:
    store = harness.store
    created = store.create(counter_session(SID))
    harness.advance(0.3)

    def decline(record: SessionRecord) -> Change[str]:
        return Change(document=None, history=(1, b"ignored"), result="unchanged")

    assert store.update(SID, decline) == "unchanged"
    assert store.get(SID) == created  # same version, document and expiry
    assert store.history(SID, 0, 100) == []


def test_missing_session_is_absent_everywhere(harness: Harness) -> None:
    store = harness.store
    calls: list[SessionRecord] = []

    def fn(record: SessionRecord) -> Change[int]:
        calls.append(record)
        return increment(record)

    assert store.get(SID) is None
    assert store.update(SID, fn) is None
    assert calls == []
    assert store.history(SID, 0, 100) == []
    assert store.delete(SID) is False
    assert store.get(SID) is None


def test_exception_in_fn_leaves_store_unchanged_and_usable(harness: Harness) -> None:
    store = harness.store
    store.create(counter_session(SID))
    store.update(SID, increment)
    before = store.get(SID)

    def fail(record: SessionRecord) -> Change[int]:
        raise RuntimeError("rule failed")

    with pytest.raises(RuntimeError, match="rule failed"):
        store.update(SID, fail)
    assert store.get(SID) == before
    assert _epochs(store, SID) == [1]
    assert store.update(SID, increment) == 2
    assert _epochs(store, SID) == [1, 2]


# -- history ----------------------------------------------------------------------------------


def test_history_is_in_epoch_order_from_start_up_to_limit(harness: Harness) -> None:
    store = harness.store
    store.create(counter_session(SID))
    for epoch in (5, 1, 30, 3, 10, 2):
        store.update(SID, _set_document(b"x", (epoch, b"row %d" % epoch)))
    assert store.history(SID, 0, 100) == [(e, b"row %d" % e) for e in (1, 2, 3, 5, 10, 30)]
    assert _epochs(store, SID) == [1, 2, 3, 5, 10, 30]
    assert [e for e, _ in store.history(SID, 3, 100)] == [3, 5, 10, 30]
    assert [e for e, _ in store.history(SID, 4, 100)] == [5, 10, 30]
    assert [e for e, _ in store.history(SID, 0, 2)] == [1, 2]
    assert [e for e, _ in store.history(SID, 3, 2)] == [3, 5]
    assert store.history(SID, 31, 100) == []
    assert store.history(SID, 0, 0) == []


def test_history_row_for_a_stored_epoch_replaces_it(harness: Harness) -> None:
    store = harness.store
    store.create(counter_session(SID))
    store.update(SID, _set_document(b"a", (1, b"first")))
    store.update(SID, _set_document(b"b", (1, b"second")))
    assert store.history(SID, 0, 100) == [(1, b"second")]


# -- delete -----------------------------------------------------------------------------------


def test_delete_removes_the_session_and_its_history(harness: Harness) -> None:
    store = harness.store
    store.create(counter_session(SID))
    store.update(SID, increment)
    assert store.delete(SID) is True
    assert store.get(SID) is None
    assert store.history(SID, 0, 100) == []
    assert store.delete(SID) is False
    recreated = store.create(counter_session(SID, count=7))
    assert (recreated.version, count(recreated.document)) == (1, 7)
    assert store.history(SID, 0, 100) == []


# -- expiry -----------------------------------------------------------------------------------


def test_expired_session_is_absent_everywhere(harness: Harness) -> None:
    store = harness.store
    store.create(counter_session(SID, ttl_seconds=1))
    store.update(SID, increment)
    harness.advance(1.2)
    assert store.get(SID) is None
    assert store.update(SID, increment) is None
    assert store.history(SID, 0, 100) == []
    assert store.delete(SID) is False


def test_count_live_counts_sessions_that_have_not_expired(harness: Harness) -> None:
    store = harness.store
    assert store.count_live() == 0
    store.create(counter_session(SID, ttl_seconds=1))
    store.create(counter_session(OTHER, ttl_seconds=3600))
    assert store.count_live() == 2
    harness.advance(1.2)
    assert store.count_live() == 1
    store.delete(OTHER)
    assert store.count_live() == 0


def test_id_of_an_expired_session_can_be_created_again_without_its_history(
    harness: Harness,
) -> None:
    store = harness.store
    store.create(counter_session(SID, ttl_seconds=1))
    store.update(SID, increment)
    harness.advance(1.2)
    recreated = store.create(counter_session(SID, ttl_seconds=3600, count=100))
    assert (recreated.version, count(recreated.document)) == (1, 100)
    assert store.get(SID) == recreated
    assert store.history(SID, 0, 100) == []
    assert store.update(SID, increment) == 101
    assert _epochs(store, SID) == [101]


def test_writes_refresh_the_expiry_and_reads_and_declined_changes_do_not(
    harness: Harness,
) -> None:
    store = harness.store
    store.create(counter_session(SID, ttl_seconds=1))
    harness.advance(0.6)
    store.update(SID, increment)  # expires 1 s from now, not from create
    harness.advance(0.6)
    assert store.get(SID) is not None  # past the first expiry: the write refreshed it
    assert store.update(SID, lambda r: Change(document=None, history=None, result=0)) == 0
    harness.advance(0.6)  # 1.2 s after the last write; the read and the no-op did not refresh
    assert store.get(SID) is None
    assert store.history(SID, 0, 100) == []


# -- owners and the live-session quota ---------------------------------------------------------

OWNER_A, OWNER_B = "a" * 64, "b" * 64


def _owned(session_id: str, owner: str, ttl_seconds: int = 3600) -> SessionRecord:
    return replace(counter_session(session_id, ttl_seconds=ttl_seconds), owner=owner)


def _sid(n: int) -> str:
    return f"s_owned{n:016d}"


def test_owner_is_stored_and_kept_by_updates(harness: Harness) -> None:
    store = harness.store
    created = store.create(_owned(SID, OWNER_A))
    assert created.owner == OWNER_A
    store.update(SID, increment)
    stored = store.get(SID)
    assert stored is not None
    assert (stored.owner, count(stored.document)) == (OWNER_A, 1)
    assert store.create(counter_session(OTHER)).owner == ""


def test_create_past_the_owners_live_quota_raises_and_stores_nothing(harness: Harness) -> None:
    store = harness.store
    store.create(_owned(_sid(1), OWNER_A), max_live=2)
    store.create(_owned(_sid(2), OWNER_A), max_live=2)
    with pytest.raises(QuotaExceededError) as refused:
        store.create(_owned(_sid(3), OWNER_A), max_live=2)
    assert refused.value.max_live == 2
    assert store.get(_sid(3)) is None
    assert store.count_live() == 2
    assert store.create(_owned(_sid(4), OWNER_B), max_live=2).owner == OWNER_B
    assert store.create(_owned(_sid(5), ""), max_live=1).owner == ""


def test_deleted_sessions_free_their_owners_quota(harness: Harness) -> None:
    store = harness.store
    store.create(_owned(_sid(1), OWNER_A), max_live=1)
    assert store.delete(_sid(1)) is True
    store.create(_owned(_sid(2), OWNER_A), max_live=1)
    with pytest.raises(QuotaExceededError):
        store.create(_owned(_sid(3), OWNER_A), max_live=1)
    assert [store.get(_sid(n)) is not None for n in (1, 2, 3)] == [False, True, False]


def test_expired_sessions_free_their_owners_quota(harness: Harness) -> None:
    store = harness.store
    store.create(_owned(_sid(1), OWNER_A, ttl_seconds=1), max_live=2)
    store.create(_owned(_sid(2), OWNER_A, ttl_seconds=3600), max_live=2)
    harness.advance(1.2)
    store.create(_owned(_sid(3), OWNER_A), max_live=2)
    with pytest.raises(QuotaExceededError):
        store.create(_owned(_sid(4), OWNER_A), max_live=2)
    assert store.count_live() == 2


def test_concurrent_creates_from_8_threads_stop_exactly_at_the_quota(harness: Harness) -> None:
    store = harness.store
    threads, each, quota = 8, 4, 5
    start = threading.Barrier(threads)

    def work(thread: int) -> int:
        start.wait()
        created = 0
        for n in range(each):
            try:
                store.create(_owned(_sid(thread * each + n), OWNER_A), max_live=quota)
                created += 1
            except QuotaExceededError:
                pass
        return created

    with ThreadPoolExecutor(threads) as pool:
        created = sum(pool.map(work, range(threads)))
    assert created == quota
    assert sum(store.get(_sid(n)) is not None for n in range(threads * each)) == quota


# -- ping and concurrency ---------------------------------------------------------------------


def test_ping_answers(harness: Harness) -> None:
    assert harness.store.ping() is True


def test_concurrent_updates_from_8_threads_are_all_applied_once(harness: Harness) -> None:
    store = harness.store
    store.create(counter_session(SID))
    threads, updates = 8, 50
    start = threading.Barrier(threads)

    def work() -> list[int]:
        start.wait()
        return [store.update(SID, increment) or 0 for _ in range(updates)]

    with ThreadPoolExecutor(threads) as pool:
        results = [future.result() for future in [pool.submit(work) for _ in range(threads)]]
    final = store.get(SID)
    assert final is not None
    assert (count(final.document), final.version) == (400, 401)
    assert sorted(n for per_thread in results for n in per_thread) == list(range(1, 401))
    assert store.history(SID, 0, 1000) == [(n, history_row(n)) for n in range(1, 401)]


# -- the awaited hot path (async_updates: Redis natively, the others through threads) --------

R = TypeVar("R")


def _run(updates: AsyncUpdates, work: Coroutine[Any, Any, R]) -> R:
    """Await ``work`` on a new event loop, then close what the store opened for that loop."""

    async def main() -> R:
        try:
            return await work
        finally:
            closer = getattr(updates, "aclose", None)
            if closer is not None:
                await closer()

    return run_in_fresh_loop(main())


def test_awaited_updates_from_8_tasks_mixed_with_8_threads_are_all_applied_once(
    harness: Harness,
) -> None:
    store = harness.store
    store.create(counter_session(SID))
    updates = async_updates(store)
    tasks, threads, each = 8, 8, 25

    async def task() -> list[int]:
        return [await updates.update_async(SID, increment) or 0 for _ in range(each)]

    async def run_tasks() -> list[list[int]]:
        return await asyncio.gather(*(task() for _ in range(tasks)))

    def thread() -> list[int]:
        return [store.update(SID, increment) or 0 for _ in range(each)]

    with ThreadPoolExecutor(threads + 1) as pool:
        blocking = [pool.submit(thread) for _ in range(threads)]
        awaited = pool.submit(_run, updates, run_tasks())
        results = [n for future in blocking for n in future.result()]
        results += [n for per_task in awaited.result() for n in per_task]
    total = (tasks + threads) * each
    final = store.get(SID)
    assert final is not None
    assert (count(final.document), final.version) == (total, total + 1)
    assert sorted(results) == list(range(1, total + 1))
    assert _run(updates, updates.history_async(SID, 0, 10_000)) == store.history(SID, 0, 10_000)


def test_awaited_update_and_history_of_a_missing_session(harness: Harness) -> None:
    updates = async_updates(harness.store)

    async def both() -> tuple[int | None, list[tuple[int, bytes]]]:
        return await updates.update_async(OTHER, increment), await updates.history_async(
            OTHER, 0, 10
        )

    assert _run(updates, both()) == (None, [])


def test_an_exception_in_an_awaited_update_changes_nothing(harness: Harness) -> None:
    store = harness.store
    store.create(counter_session(SID, count=5))
    updates = async_updates(store)

    def refuse(record: SessionRecord) -> Change[int]:
        raise LookupError(f"refused at {count(record.document)}")

    with pytest.raises(LookupError, match="refused at 5"):
        _run(updates, updates.update_async(SID, refuse))
    assert _run(updates, updates.update_async(SID, increment)) == 6
    assert _run(updates, updates.history_async(SID, 6, 1)) == [(6, history_row(6))]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_blocking_store_calls_do_not_wait_for_the_threads_routes_share(
    kind: str, tmp_path: Path
) -> None:
    """A session report once queued behind LR range test plots on anyio's default thread
    limiter (40 threads shared with every synchronous route). With that limiter full, a
    blocking store's update and history still run, on threads of their own."""
    store = MemoryStore() if kind == "memory" else SQLiteStore(str(tmp_path / "s.db"))
    store.create(counter_session(SID))
    release = threading.Event()

    async def main() -> tuple[int | None, list[tuple[int, bytes]]]:
        shared = anyio.to_thread.current_default_thread_limiter()
        shared.total_tokens = 1
        occupied = asyncio.ensure_future(anyio.to_thread.run_sync(release.wait))
        await asyncio.sleep(0.05)
        assert shared.borrowed_tokens == 1
        updates = async_updates(store)
        try:
            async with asyncio.timeout(10):
                applied = await updates.update_async(SID, increment)
                return applied, await updates.history_async(SID, 0, 10)
        finally:
            release.set()
            await occupied

    applied, rows = run_in_fresh_loop(main())
    assert applied == 1 and rows == [(1, history_row(1))]
    assert count(store.get(SID).document) == 1  # type: ignore[union-attr]
