"""Retries through injected failures: a flaky proxy, and a service restarted mid-run."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from lrsched_client import AsyncClient, Client, Retry, ServerError, TransportError
from lrsched_client._http import Call, _Attempts

from tests.client.conftest import FAST_RETRY
from tests.client.proxy import FlakyProxy
from tests.client.server import ServerProcess
from tests.loop import run_in_fresh_loop

COSINE = {"type": "CosineAnnealingLR", "T_max": 50}


def test_lost_report_answer_is_retried_and_applied_once(
    flaky_client: Client, proxy: FlakyProxy
) -> None:
    session = flaky_client.create_session({"patience": 0, "factor": 0.5}, 0.1)
    session.report(0, 1.0)
    proxy.fail_next("drop_response")  # the service decides epoch 1, the answer is lost
    report = session.report(1, 2.0)
    assert report.decided and report.epoch == 1 and report.reduced and report.lr == (0.05,)
    assert [action for _, _, action in proxy.requests("/reports")] == [
        "pass",
        "drop_response",
        "pass",
    ]
    rows = list(session.history())
    assert [(row.epoch, row.metric) for row in rows] == [(0, 1.0), (1, 2.0)]  # no duplicate
    assert session.state().epoch == 2
    session.delete()


def test_reset_connections_and_503s_are_retried_until_the_answer(
    flaky_client: Client, client: Client, proxy: FlakyProxy
) -> None:
    proxy.fail_next("reset", "503", "503")
    assert flaky_client.curve_json(COSINE, 0.1, 51) == client.curve_json(COSINE, 0.1, 51)
    assert [action for _, _, action in proxy.requests("/v1/schedules")] == [
        "reset",
        "503",
        "503",
        "pass",
    ]


def test_replay_and_history_are_retried_after_a_lost_answer(
    flaky_client: Client, proxy: FlakyProxy
) -> None:
    proxy.fail_next("drop_response")
    replay = flaky_client.replay({"patience": 0}, 0.1, [1.0, 1.0])
    assert replay.lr == ((0.1, 0.010000000000000002),)
    session = flaky_client.create_session({"patience": 0}, 0.1)
    session.report(0, 1.0)
    proxy.fail_next("drop_response", "reset")
    assert [row.epoch for row in session.history()] == [0]
    session.delete()


def test_async_client_retries_like_the_sync_client(client: Client, proxy: FlakyProxy) -> None:
    async def fetch() -> dict[str, object]:
        async with AsyncClient(proxy.url, retries=FAST_RETRY) as flaky:
            return await flaky.curve_json(COSINE, 0.1, 51)

    proxy.fail_next("reset", "drop_response", "503")
    assert run_in_fresh_loop(fetch()) == client.curve_json(COSINE, 0.1, 51)
    assert [action for _, _, action in proxy.requests("/v1/schedules")] == [
        "reset",
        "drop_response",
        "503",
        "pass",
    ]


def test_exhausted_retries_raise_the_last_server_error(proxy: FlakyProxy) -> None:
    proxy.fail_next("503", "503", "503")
    with Client(proxy.url, retries=Retry(attempts=3, backoff=0.001)) as flaky:
        with pytest.raises(ServerError) as caught:
            flaky.curve_json(COSINE, 0.1, 5)
    assert caught.value.status_code == 503 and caught.value.detail == "injected by the test"
    assert len(proxy.requests("/v1/schedules")) == 3


def test_session_creation_is_not_retried_after_an_ambiguous_failure(
    flaky_client: Client, proxy: FlakyProxy
) -> None:
    proxy.fail_next("drop_response")  # the service created a session; nobody got its token
    with pytest.raises(TransportError, match="not retried: may have been applied"):
        flaky_client.create_session({"patience": 0}, 0.1)
    assert [action for method, _, action in proxy.requests("/v1/sessions")] == ["drop_response"]


def test_session_creation_is_retried_when_certainly_not_processed(
    flaky_client: Client, proxy: FlakyProxy
) -> None:
    proxy.fail_next("503")  # a 503 says: not processed
    session = flaky_client.create_session({"patience": 0}, 0.1)
    assert session.state().epoch == 0
    assert [action for _, _, action in proxy.requests("/v1/sessions")] == ["503", "pass"]
    session.delete()


def test_delete_whose_answer_was_lost_counts_as_done(
    flaky_client: Client, proxy: FlakyProxy
) -> None:
    session = flaky_client.create_session({"patience": 0}, 0.1)
    proxy.fail_next("drop_response")  # deleted, but the 204 is lost; the retry gets 404
    session.delete()
    assert [action for m, _, action in proxy.requests(f"/{session.id}") if m == "DELETE"] == [
        "drop_response",
        "pass",
    ]


def test_reports_survive_a_service_restart_on_the_same_sqlite_file(tmp_path: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path / 'sessions.db'}", tmp_path / "service.log")
    server.start()
    patient = Retry(attempts=150, backoff=0.05, max_backoff=0.25)  # ~20 s: a slow restart
    try:
        with Client(server.url, retries=patient) as client:
            session = client.create_session({"patience": 0, "factor": 0.5}, 0.1)
            for epoch in range(3):
                session.report(epoch, 1.0 - epoch / 10)
            server.stop()
            restart = threading.Timer(0.5, server.start)
            restart.start()
            try:
                # Sent while the service is down: retried until the new process answers.
                decisions = [session.report(epoch, 1.0) for epoch in range(3, 6)]
            finally:
                restart.join()
            assert [d.reduced for d in decisions] == [True, True, True]
            assert [row.epoch for row in session.history()] == [0, 1, 2, 3, 4, 5]
            assert session.state().lr == (0.1 * 0.5**3,)
            session.delete()
    finally:
        server.stop()


@pytest.mark.parametrize("retry", range(6))
def test_backoff_is_full_jitter_below_the_doubling_bound(retry: int) -> None:
    policy = Retry(backoff=0.25, max_backoff=2.0)
    delays = [policy.delay(retry) for _ in range(200)]
    bound = min(2.0, 0.25 * 2**retry)
    assert all(0.0 <= delay <= bound for delay in delays)
    assert max(delays) > bound / 2  # spread over the whole range, not a fixed delay


def test_retry_after_is_a_lower_bound_and_too_long_is_not_waited_for() -> None:
    policy = Retry(backoff=0.001, max_retry_after=5.0)
    request = httpx.Request("GET", "http://lrsched.test/v1/sessions/x")
    soon = httpx.Response(503, headers={"Retry-After": "2"}, request=request)
    assert _Attempts(Call("GET", "/"), policy).after_response(soon) == pytest.approx(2.0, abs=1e-3)
    dated = httpx.Response(
        429,
        headers={"Retry-After": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())},
        request=request,
    )
    assert 0.0 <= (_Attempts(Call("GET", "/"), policy).after_response(dated) or 0.0) <= 1.0
    later = httpx.Response(503, headers={"Retry-After": "3600"}, request=request)
    with pytest.raises(ServerError):
        _Attempts(Call("GET", "/"), policy).after_response(later)
