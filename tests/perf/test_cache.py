"""The curve cache: LRU by bytes, hit/miss counts, and single flight across threads."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable

import pytest

from service.cache import ENTRY_OVERHEAD, CurveCache, Entry
from service.engine.cancel import Cancelled
from service.limits import CACHE_ALIAS_BYTES, CACHE_ALIASES
from tests.loop import run_in_fresh_loop


def entry(size: int, tag: str = "x") -> Entry:
    return Entry(tag.encode() * size, "application/json")


def test_a_repeated_key_is_computed_once() -> None:
    cache = CurveCache(1 << 20)
    calls: list[str] = []

    def compute() -> Entry:
        calls.append("a")
        return entry(10)

    first, hit_first = cache.get_or_compute("a", compute)
    second, hit_second = cache.get_or_compute("a", compute)
    assert (hit_first, hit_second) == (False, True)
    assert second is first and calls == ["a"]
    assert (cache.hits, cache.misses) == (1, 1)
    assert cache.get("a") is first and cache.get("b") is None


def test_least_recently_used_entries_go_first_when_over_budget() -> None:
    size = 1000
    cache = CurveCache(3 * (size + ENTRY_OVERHEAD))
    for key in "abc":
        cache.get_or_compute(key, lambda: entry(size))
    cache.get("a")  # now b is the least recently used
    cache.get_or_compute("d", lambda: entry(size))
    assert cache.get("b") is None
    assert all(cache.get(key) is not None for key in "acd")
    assert cache.size == 3 * (size + ENTRY_OVERHEAD) and len(cache) == 3


def test_an_entry_larger_than_the_budget_is_served_but_not_kept() -> None:
    cache = CurveCache(100)
    served, hit = cache.get_or_compute("big", lambda: entry(1000))
    assert not hit and len(served.body) == 1000
    assert cache.get("big") is None and cache.size == 0


def test_zero_bytes_disables_the_cache() -> None:
    cache = CurveCache(0)
    calls = []
    for _ in range(3):
        cache.get_or_compute("a", lambda: calls.append(1) or entry(1))
    assert len(calls) == 3 and not cache.enabled and cache.misses == 3


def test_failures_are_not_cached() -> None:
    cache = CurveCache(1 << 20)

    def fail() -> Entry:
        raise ValueError("bad schedule")

    with pytest.raises(ValueError, match="bad schedule"):
        cache.get_or_compute("a", fail)
    got, hit = cache.get_or_compute("a", lambda: entry(3))
    assert not hit and got.body == b"xxx"


def test_concurrent_identical_misses_compute_once() -> None:
    cache = CurveCache(1 << 20)
    calls = 0
    calls_lock = threading.Lock()
    threads = 32
    start = threading.Barrier(threads)

    def slow() -> Entry:
        nonlocal calls
        with calls_lock:
            calls += 1
        time.sleep(0.2)  # long enough for every other thread to arrive and wait
        return entry(100)

    results: list[tuple[Entry, bool]] = []
    results_lock = threading.Lock()

    def rank() -> None:
        start.wait()
        got = cache.get_or_compute("same-curve", slow)
        with results_lock:
            results.append(got)

    workers = [threading.Thread(target=rank) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert calls == 1
    assert len(results) == threads
    assert len({id(got) for got, _ in results}) == 1
    assert sum(not hit for _, hit in results) == 1
    assert (cache.hits, cache.misses) == (threads - 1, 1)


def test_concurrent_waiters_get_the_leaders_error_and_nothing_is_cached() -> None:
    cache = CurveCache(1 << 20)
    threads = 8
    start = threading.Barrier(threads)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def failing() -> Entry:
        time.sleep(0.2)
        raise ValueError("PyTorch raises")

    def rank() -> None:
        start.wait()
        try:
            cache.get_or_compute("k", failing)
        except ValueError as error:
            with lock:
                errors.append(error)

    workers = [threading.Thread(target=rank) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(errors) == threads
    assert cache.get("k") is None and cache.misses >= 1


def test_different_keys_compute_concurrently() -> None:
    cache = CurveCache(1 << 20)
    inside = threading.Barrier(2, timeout=5)

    def both_at_once() -> Entry:
        inside.wait()  # deadlocks (and times out) if the second key waits for the first
        return entry(1)

    workers = [
        threading.Thread(target=cache.get_or_compute, args=(key, both_at_once)) for key in "ab"
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(cache) == 2


def test_a_remembered_raw_request_recalls_its_key_and_entry() -> None:
    cache = CurveCache(1 << 20)
    stored, _ = cache.get_or_compute("tag", lambda: entry(10))
    assert cache.recall(b"raw") is None
    cache.remember(b"raw", "tag")
    assert cache.recall(b"raw") == ("tag", stored)
    assert cache.hits == 1
    assert cache.recall(b"raw2") is None


def test_a_remembered_raw_request_whose_entry_was_evicted_is_not_recalled() -> None:
    size = 1000
    cache = CurveCache(2 * (size + ENTRY_OVERHEAD))
    cache.get_or_compute("a", lambda: entry(size))
    cache.remember(b"raw-a", "a")
    for key in "bc":
        cache.get_or_compute(key, lambda: entry(size))
    assert cache.get("a") is None
    assert cache.recall(b"raw-a") is None


def test_remembered_raw_requests_are_bounded_and_least_recently_used_go_first() -> None:
    cache = CurveCache(1 << 20)
    cache.get_or_compute("tag", lambda: entry(1))
    for n in range(CACHE_ALIASES):
        cache.remember(b"raw%d" % n, "tag")
    assert cache.recall(b"raw0") is not None  # now raw1 is the least recently used
    cache.remember(b"one more", "tag")
    assert cache.recall(b"raw1") is None
    assert cache.recall(b"raw0") is not None and cache.recall(b"one more") is not None


def test_big_raw_requests_and_a_disabled_cache_remember_nothing() -> None:
    cache = CurveCache(1 << 20)
    cache.get_or_compute("tag", lambda: entry(1))
    big = b"x" * (CACHE_ALIAS_BYTES + 1)
    cache.remember(big, "tag")
    assert cache.recall(big) is None
    disabled = CurveCache(0)
    disabled.remember(b"raw", "tag")
    assert disabled.recall(b"raw") is None
    cache.remember(b"raw", "tag")
    cache.clear()
    assert cache.recall(b"raw") is None


def _leader(cache: CurveCache, compute: Callable[[], Entry]) -> threading.Thread:
    """A thread computing ``compute`` for the key "curve"; returns once it is in flight."""
    started = threading.Event()

    def run() -> None:
        with contextlib.suppress(BaseException):
            cache.get_or_compute("curve", lambda: (started.set(), compute())[1])

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(5)
    return thread


def test_follow_awaits_the_computation_in_flight_without_a_thread() -> None:
    cache = CurveCache(1 << 20)
    release = threading.Event()
    leader = _leader(cache, lambda: (release.wait(5), entry(7))[1])

    async def followers() -> list[Entry | None]:
        waiting = [asyncio.ensure_future(cache.follow("curve")) for _ in range(64)]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in waiting)  # they wait for the leader
        release.set()
        return list(await asyncio.gather(*waiting))

    followed = run_in_fresh_loop(followers())
    leader.join(5)
    assert [got.body if got else None for got in followed] == [b"x" * 7] * 64
    assert (cache.hits, cache.misses) == (64, 1)
    assert run_in_fresh_loop(cache.follow("curve")) is None  # nothing in flight now
    assert run_in_fresh_loop(cache.follow("other")) is None


def test_follow_raises_the_leaders_error_and_computes_nothing_after_a_cancelled_one() -> None:
    cache = CurveCache(1 << 20)
    for error, expected in ((ValueError("bad schedule"), ValueError), (Cancelled(), None)):
        release = threading.Event()

        def fail(error: BaseException = error, release: threading.Event = release) -> Entry:
            release.wait(5)
            raise error

        leader = _leader(cache, fail)

        async def follower(release: threading.Event = release) -> Entry | None:
            waiting = asyncio.ensure_future(cache.follow("curve"))
            await asyncio.sleep(0.05)
            release.set()
            return await waiting

        if expected is None:
            assert run_in_fresh_loop(follower()) is None  # the caller computes itself
        else:
            with pytest.raises(expected, match="bad schedule"):
                run_in_fresh_loop(follower())
        leader.join(5)
    assert len(cache) == 0


def test_a_follower_that_gives_up_leaves_the_leader_computing() -> None:
    cache = CurveCache(1 << 20)
    release = threading.Event()
    leader = _leader(cache, lambda: (release.wait(5), entry(5))[1])

    async def impatient() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(cache.follow("curve"), 0.05)

    run_in_fresh_loop(impatient())
    release.set()
    leader.join(5)
    assert cache.get("curve") == entry(5)
