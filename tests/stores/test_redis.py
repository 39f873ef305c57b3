"""Redis-specific behaviour: hash-tagged keys, TTLs, lost races, several processes."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.crc import key_slot

from service.stores import (
    Change,
    QuotaExceededError,
    SessionRecord,
    StoreBusyError,
    open_store,
)
from service.stores.redis import RedisStore
from tests.loop import run_in_fresh_loop
from tests.stores.counter import (
    count,
    counter_session,
    history_row,
    increment,
    increment_in_process,
)

SID = "s_8yq3WnZ0cRr0c2dQmXy1fA"


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    opened = RedisStore(redis_url)
    yield opened
    opened.close()


@pytest.fixture
def other(redis_url: str) -> Iterator[RedisStore]:
    """A second store on the same server: another process or replica, as far as Redis knows."""
    opened = RedisStore(redis_url)
    yield opened
    opened.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    opened = redis.Redis.from_url(redis_url)
    yield opened
    opened.close()


def test_keys_share_the_session_hash_tag_and_cluster_slot(
    store: RedisStore, client: redis.Redis
) -> None:
    store.create(counter_session(SID))
    store.update(SID, increment)
    expected = [f"lrsched:{{{SID}}}:history".encode(), f"lrsched:{{{SID}}}:session".encode()]
    assert sorted(client.keys("*")) == expected
    assert key_slot(expected[0]) == key_slot(expected[1])


def test_an_owners_ids_are_counted_in_its_own_set_which_delete_and_refusals_keep_exact(
    store: RedisStore, client: redis.Redis
) -> None:
    owner = "f" * 64
    store.create(replace(counter_session(SID), owner=owner), max_live=1)
    key = store.owner_key(owner)
    assert key == f"lrsched:owner:{{{owner}}}:live"
    assert client.smembers(key) == {SID.encode()}
    with pytest.raises(QuotaExceededError):
        store.create(replace(counter_session("s_refused"), owner=owner), max_live=1)
    assert client.exists("lrsched:{s_refused}:session") == 0  # the refused session is gone
    assert store.delete(SID) is True
    assert client.smembers(key) == set()
    store.create(replace(counter_session("s_next"), owner=owner), max_live=1)
    assert client.smembers(key) == {b"s_next"}


def test_an_update_sets_the_ttl_of_both_keys(store: RedisStore, client: redis.Redis) -> None:
    store.create(counter_session(SID, ttl_seconds=100))
    session, history = store.keys(SID)
    client.pexpire(session, 5_000)  # as if most of the lifetime had passed
    store.update(SID, increment)
    for key in (session, history):
        assert 99_000 < client.pttl(key) <= 100_000


def test_a_lost_race_is_retried_and_counted(store: RedisStore, other: RedisStore) -> None:
    store.create(counter_session(SID))
    seen: list[int] = []

    def racing(record: SessionRecord) -> Change[int]:
        seen.append(record.version)
        if len(seen) == 1:
            other.update(SID, increment)  # another replica writes between our read and write
        return increment(record)

    assert store.update(SID, racing) == 2
    assert seen == [1, 2]
    assert store.conflicts == 1
    final = store.get(SID)
    assert final is not None
    assert (count(final.document), final.version) == (2, 3)
    assert store.history(SID, 0, 100) == [(1, history_row(1)), (2, history_row(2))]


def test_losing_every_race_raises_store_busy(redis_url: str, other: RedisStore) -> None:
    store = RedisStore(redis_url, max_attempts=3, backoff=0.0)
    store.create(counter_session(SID))

    def always_raced(record: SessionRecord) -> Change[int]:
        other.update(SID, increment)
        return Change(document=b"lost", history=(0, b"lost"), result=0)

    with pytest.raises(StoreBusyError):
        store.update(SID, always_raced)
    assert store.conflicts == 3
    final = store.get(SID)
    assert final is not None
    assert (final.document, final.version) == (b"3", 4)  # only the other store's writes
    assert [epoch for epoch, _ in store.history(SID, 0, 100)] == [1, 2, 3]
    store.close()


def test_a_session_recreated_under_its_id_is_a_conflict_not_a_match(
    store: RedisStore, other: RedisStore
) -> None:
    store.create(counter_session(SID, count=10))
    seen: list[int] = []

    def racing(record: SessionRecord) -> Change[int]:
        seen.append(count(record.document))
        if len(seen) == 1:  # deleted and created again: version 1 once more
            other.delete(SID)
            other.create(counter_session(SID, count=100))
        return increment(record)

    assert store.update(SID, racing) == 101
    assert seen == [10, 100]
    assert store.conflicts == 1
    assert store.history(SID, 0, 1000) == [(101, history_row(101))]


def test_a_resent_write_is_applied_once(store: RedisStore, client: redis.Redis) -> None:
    created = store.create(counter_session(SID))
    incarnation = client.hget(store.keys(SID)[0], "incarnation")
    assert incarnation is not None
    write = [incarnation, created.version, "writer-token", b"1", 1, b"1:" + history_row(1)]
    first = store._update(keys=store.keys(SID), args=write)
    resent = store._update(keys=store.keys(SID), args=write)  # its reply was lost; resent
    assert first[0] == resent[0] == 1
    assert first[1] == resent[1]  # the expiry the write set
    final = store.get(SID)
    assert final is not None
    assert (final.document, final.version) == (b"1", 2)


def test_increments_from_four_processes_are_all_applied(store: RedisStore, redis_url: str) -> None:
    store.create(counter_session(SID))
    spawn = multiprocessing.get_context("spawn")
    workers = [
        spawn.Process(target=increment_in_process, args=(redis_url, SID, 100)) for _ in range(4)
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


def test_open_store_opens_redis_for_a_redis_url(redis_url: str) -> None:
    store = open_store(redis_url)
    assert isinstance(store, RedisStore)
    assert store.ping() is True
    store.close()


def test_ping_is_false_when_the_server_is_unreachable() -> None:
    store = RedisStore("redis://127.0.0.1:1/0")
    assert store.ping() is False
    store.close()


def test_lost_races_are_reported_to_the_conflict_callback(redis_url: str) -> None:
    calls: list[int] = []
    first = RedisStore(redis_url, on_conflict=lambda: calls.append(1))
    second = RedisStore(redis_url)
    try:
        first.create(counter_session("conflicted"))
        raced = False

        def racing_increment(record: SessionRecord) -> Change[int]:
            nonlocal raced
            if not raced:
                raced = True
                second.update("conflicted", increment)
            return increment(record)

        assert first.update("conflicted", racing_increment) == 2
        assert calls == [1] and first.conflicts == 1
    finally:
        first.close()
        second.close()


# -- update_async: one round trip on a current guess ------------------------------------------


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Commands the asynchronous clients send (one round trip each), by name."""
    counts: Counter[str] = Counter()
    execute = redis.asyncio.Redis.execute_command

    async def counting(self: redis.asyncio.Redis, *args: Any, **options: Any) -> Any:
        counts[str(args[0]).upper()] += 1
        return await execute(self, *args, **options)

    monkeypatch.setattr(redis.asyncio.Redis, "execute_command", counting)
    return counts


def _awaited(store: RedisStore, *updates: Callable[[SessionRecord], Change[Any]]) -> list[Any]:
    """Apply ``updates`` one after another with ``update_async`` on one event loop."""

    async def run() -> list[Any]:
        try:
            return [await store.update_async(SID, fn) for fn in updates]
        finally:
            await store.aclose()

    return run_in_fresh_loop(run())


def test_consecutive_awaited_updates_from_one_process_take_one_round_trip_each(
    store: RedisStore, sent: Counter[str]
) -> None:
    store.create(counter_session(SID))
    _awaited(store, increment)  # the first one reads: nothing is known yet
    assert sent == {"HGETALL": 1, "EVALSHA": 1}
    sent.clear()
    assert _awaited(store, *[increment] * 10) == list(range(2, 12))
    assert sent == {"EVALSHA": 10}
    assert store.conflicts == 0
    final = store.get(SID)
    assert final is not None and (count(final.document), final.version) == (11, 12)
    assert store.history(SID, 0, 100) == [(n, history_row(n)) for n in range(1, 12)]


def test_a_stale_guess_is_corrected_by_the_script_and_is_not_a_lost_race(
    store: RedisStore, other: RedisStore, sent: Counter[str]
) -> None:
    store.create(counter_session(SID))
    _awaited(store, increment)
    other.update(SID, increment)  # another process moves the session on: the guess is stale
    sent.clear()
    assert _awaited(store, increment) == [3]
    assert sent == {"EVALSHA": 2}  # the conflicting script answered with the current hash
    assert store.conflicts == 0
    assert [epoch for epoch, _ in store.history(SID, 0, 100)] == [1, 2, 3]


def test_decisions_without_a_write_and_exceptions_are_made_on_a_fresh_read(
    store: RedisStore, other: RedisStore
) -> None:
    store.create(counter_session(SID))
    _awaited(store, increment)  # this process now guesses count 1
    other.update(SID, increment)  # count 2

    def peek(record: SessionRecord) -> Change[int]:
        return Change(None, None, count(record.document))

    def refuse_the_past(record: SessionRecord) -> Change[int]:
        if count(record.document) < 2:
            raise LookupError("decided on a stale record")
        return increment(record)

    assert _awaited(store, peek) == [2]
    other.update(SID, increment)  # count 3; the guess (2) is stale again
    assert _awaited(store, refuse_the_past) == [4]


def test_an_awaited_update_of_a_deleted_or_recreated_session_is_not_fooled_by_the_guess(
    store: RedisStore, other: RedisStore
) -> None:
    store.create(counter_session(SID))
    _awaited(store, increment, increment)
    other.delete(SID)
    assert _awaited(store, increment) == [None]
    other.create(counter_session(SID, count=100))  # same id, version 1 again
    _awaited(store, increment)  # no guess after None: reads
    other.delete(SID)
    other.create(counter_session(SID, count=500))
    assert _awaited(store, increment) == [501]
    final = store.get(SID)
    assert final is not None and (count(final.document), final.version) == (501, 2)
