"""The curve pool's admission (count and estimated bytes), its release, and the cache's
behaviour when the computation another request waits for is cancelled."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from starlette.requests import Request

from service import metrics
from service.cache import CurveCache, Entry
from service.config import Settings
from service.curve_pool import CLIENT_GONE, CurvePool, estimated_bytes
from service.engine.cancel import Cancelled, checkpoint
from service.limits import CURVE_BASE_BYTES, CURVE_BYTES_PER_VALUE
from service.main import create_app
from tests.api.test_operations import _sample
from tests.loop import run_in_fresh_loop

MIB = 1 << 20


async def _never_disconnects() -> dict[str, Any]:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


def _request() -> Request:
    return Request({"type": "http", "method": "POST", "headers": []}, _never_disconnects)


def _pool(**settings: Any) -> CurvePool:
    return CurvePool(Settings(store="memory", trim_after_idle_seconds=0, **settings))


def _refusal(pool: CurvePool, values: int) -> HTTPException:
    with pytest.raises(HTTPException) as caught:
        pool.admit(_request(), values)
    return caught.value


def test_work_past_the_job_limit_is_503_with_retry_after_naming_the_setting() -> None:
    pool = _pool(curve_jobs=2)
    tickets = [pool.admit(_request(), 10) for _ in range(2)]
    refused = _refusal(pool, 10)
    assert refused.status_code == 503
    assert refused.headers == {"Retry-After": "1"}
    assert "LRSCHED_CURVE_JOBS=2" in str(refused.detail)
    tickets[0].close()
    pool.admit(_request(), 10).close()  # room again once a ticket is closed
    tickets[1].close()
    pool.shutdown()


def test_work_past_the_memory_budget_is_503_and_alone_past_it_is_413() -> None:
    admitted = _sample(metrics.render()[0].decode(), "lrsched_curve_admitted_bytes")
    pool = _pool(curve_memory_bytes=200 * MIB)
    values = (100 * MIB - CURVE_BASE_BYTES) // CURVE_BYTES_PER_VALUE  # about 100 MiB each
    assert estimated_bytes(values) <= 100 * MIB
    first = pool.admit(_request(), values)
    second = pool.admit(_request(), values)
    refused = _refusal(pool, values)
    assert refused.status_code == 503
    assert "LRSCHED_CURVE_MEMORY_BYTES=209715200" in str(refused.detail)
    first.close()
    second.close()
    alone = _refusal(pool, 5 * values)
    assert alone.status_code == 413
    assert alone.detail[0]["loc"] == ["body", "steps"]
    assert _sample(metrics.render()[0].decode(), "lrsched_curve_admitted_bytes") == admitted
    pool.shutdown()


def test_a_cancelled_computation_keeps_its_admission_until_its_thread_lets_go() -> None:
    pool = _pool(curve_jobs=1)
    ticket = pool.admit(_request(), 10)
    started, release = threading.Event(), threading.Event()

    def work() -> None:
        started.set()
        while not release.is_set():
            time.sleep(0.01)
        checkpoint()  # the client is gone by now: stops here

    async def scenario() -> int:
        running = asyncio.ensure_future(ticket.run(work))
        await asyncio.to_thread(started.wait)
        ticket.cancel.set()  # the client went away (or was answered 504)
        ticket.close()
        refused = _refusal(pool, 10)  # the thread still holds its memory
        assert refused.status_code == 503
        release.set()
        with pytest.raises(HTTPException) as caught:
            await running
        return caught.value.status_code

    cancelled = _sample(metrics.render()[0].decode(), "lrsched_curves_cancelled_total")
    assert run_in_fresh_loop(scenario()) == CLIENT_GONE
    after = _sample(metrics.render()[0].decode(), "lrsched_curves_cancelled_total")
    assert after == cancelled + 1
    pool.admit(_request(), 10).close()  # released once the thread stopped
    pool.shutdown()


def test_memory_is_trimmed_once_curve_work_stays_idle() -> None:
    pool = CurvePool(Settings(store="memory", trim_after_idle_seconds=0.05))
    before = _sample(metrics.render()[0].decode(), "lrsched_memory_trims_total")
    pool.admit(_request(), 10).close()
    deadline = time.monotonic() + 5
    while _sample(metrics.render()[0].decode(), "lrsched_memory_trims_total") == before:
        assert time.monotonic() < deadline, "no trim after the pool went idle"
        time.sleep(0.02)
    pool.shutdown()


def test_a_follower_computes_when_the_computation_it_waited_for_was_cancelled() -> None:
    cache = CurveCache(1 << 20)
    leader_started, leader_may_fail = threading.Event(), threading.Event()

    def cancelled() -> Entry:
        leader_started.set()
        leader_may_fail.wait(5)
        raise Cancelled

    outcome: list[BaseException] = []

    def leader() -> None:
        try:
            cache.get_or_compute("tag", cancelled)
        except Cancelled as error:
            outcome.append(error)

    thread = threading.Thread(target=leader)
    thread.start()
    leader_started.wait(5)
    threading.Timer(0.1, leader_may_fail.set).start()
    entry, hit = cache.get_or_compute("tag", lambda: Entry(b"[1]", "application/json", {}))
    thread.join(5)
    assert (entry.body, hit) == (b"[1]", False)
    assert len(outcome) == 1


def test_work_cancelled_while_queued_gives_its_admission_back() -> None:
    """A request task cancelled while its work waits for a thread (server shutdown, a
    middleware giving up) must not keep its admission forever."""
    pool = _pool(curve_threads=1, curve_jobs=2)
    busy, queued = pool.admit(_request(), 10), pool.admit(_request(), 10)
    release = threading.Event()

    async def scenario() -> None:
        running = asyncio.ensure_future(busy.run(release.wait, 5))
        waiting = asyncio.ensure_future(queued.run(lambda: None))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        queued.close()
        release.set()
        assert await running is True
        busy.close()

    run_in_fresh_loop(scenario())
    again = [pool.admit(_request(), 10) for _ in range(2)]  # both slots free again
    for ticket in again:
        ticket.close()
    pool.shutdown()


def test_a_streamed_curve_holds_its_admission_until_sent_then_gives_it_back() -> None:
    settings = Settings(store="memory", stream_values=1_000, curve_jobs=1, cache_bytes=0)
    body = {"schedule": {"type": "StepLR", "step_size": 1_000}, "lr": 1.0, "steps": 5_000}
    with TestClient(create_app(settings)) as client:
        for _ in range(3):  # one slot: each request gets it back after its stream
            answer = client.post("/v1/schedules", json=body)
            assert answer.status_code == 200
            lr = answer.json()["lr"][0]
            assert lr[999] == 1.0 and lr[1_000] == pytest.approx(0.1, rel=1e-15)


def test_identical_concurrent_requests_take_one_admission_and_compute_once() -> None:
    """Thousands of ranks asking at once for one curve cost one computation: those that
    arrive while it is in flight wait for it without a curve-pool ticket, so even a pool
    that admits one job at a time refuses none of them."""
    settings = Settings(store="memory", curve_jobs=1)
    lr_lambda = "lambda epoch: 0.5 * (1 + math.cos(epoch / 1000))"
    body = {
        "schedule": {"type": "LambdaLR", "lr_lambda": lr_lambda},
        "lr": 1.0,
        "steps": 2_000_000,
    }
    headers = {"Accept": "application/octet-stream"}
    counted = "lrsched_curves_computed_total"
    before = _sample(metrics.render()[0].decode(), counted, type="LambdaLR")
    with TestClient(create_app(settings)) as client, ThreadPoolExecutor(16) as ranks:
        answers = list(
            ranks.map(lambda _: client.post("/v1/schedules", json=body, headers=headers), range(16))
        )
    assert [answer.status_code for answer in answers] == [200] * 16
    assert len({answer.content for answer in answers}) == 1
    first = np.frombuffer(answers[0].content, dtype="<f4")
    assert first[2_000] == np.float32(0.5 * (1 + math.cos(2.0)))
    assert _sample(metrics.render()[0].decode(), counted, type="LambdaLR") == before + 1
