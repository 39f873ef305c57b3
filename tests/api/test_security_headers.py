"""Security headers on every route class, and ``/metrics`` behind LRSCHED_METRICS_KEY."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import plotting
from service.config import Settings
from service.main import create_app
from service.security import cache_control

STEP = {"type": "StepLR", "step_size": 10, "gamma": 0.5}
PLATEAU = {"type": "ReduceLROnPlateau", "patience": 1}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(Settings(store="memory")))


def _assert_headers(response: Any, cache: str) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers.get_list("cache-control") == [cache]


def test_curves_are_no_cache_and_revalidate_with_their_etag(client: TestClient) -> None:
    body = {"schedule": STEP, "steps": 30}
    first = client.post("/v1/schedules", json=body)
    assert first.status_code == 200
    _assert_headers(first, "no-cache")
    again = client.post(
        "/v1/schedules", json=body, headers={"If-None-Match": first.headers["etag"]}
    )
    assert (again.status_code, again.headers["etag"]) == (304, first.headers["etag"])
    _assert_headers(again, "no-cache")


def test_plots_are_no_cache(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plotting, "render", lambda picture, fmt: b"<svg/>")
    answer = client.post("/v1/schedules/plot", json={"schedule": STEP, "steps": 30})
    assert (answer.status_code, answer.content) == (200, b"<svg/>")
    assert "etag" in answer.headers
    _assert_headers(answer, "no-cache")


def test_replay_is_no_store(client: TestClient) -> None:
    answer = client.post("/v1/plateau/replay", json={"schedule": PLATEAU, "metrics": [1.0]})
    assert (answer.status_code, answer.json()["lr"]) == (200, [[0.001]])
    _assert_headers(answer, "no-store")


def test_every_session_answer_is_no_store(client: TestClient) -> None:
    created = client.post("/v1/sessions", json={"schedule": PLATEAU, "lr": 0.1})
    assert created.status_code == 201
    _assert_headers(created, "no-store")
    url = f"/v1/sessions/{created.json()['id']}"
    auth = {"Authorization": f"Bearer {created.json()['token']}"}
    answers = [
        client.post(f"{url}/reports", json={"epoch": 0, "metric": 1.0}, headers=auth),
        client.get(url, headers=auth),
        client.get(f"{url}/history", headers=auth),
        client.get(f"{url}/state_dict", headers=auth),
        client.get(url),  # 401
        client.get("/v1/sessions/unknown", headers=auth),  # 404
        client.delete(url, headers=auth),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 401, 404, 204]
    for answer in answers:
        _assert_headers(answer, "no-store")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/no/such/path"])
def test_probes_metrics_and_unknown_paths_are_no_store(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == (404 if path.startswith("/no/") else 200)
    _assert_headers(answer, "no-store")


@pytest.mark.parametrize("path", ["/", "/docs", "/redoc", "/openapi.json", "/static/playground.js"])
def test_documentation_and_playground_are_no_cache(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 200
    _assert_headers(answer, "no-cache")


def test_a_refused_api_key_still_gets_the_headers() -> None:
    client = TestClient(create_app(Settings(store="memory", api_keys="k1")))
    answer = client.post("/v1/schedules", json={"schedule": STEP, "steps": 3})
    assert answer.status_code == 401
    _assert_headers(answer, "no-cache")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/schedules", "no-cache"),
        ("/v1/schedules/plot", "no-cache"),
        ("/v1/schedulesX", "no-store"),
        ("/v1/sessions/abc/reports", "no-store"),
        ("/v1/anything-new", "no-store"),
        ("/", "no-cache"),
        ("/docs/oauth2-redirect", "no-cache"),
        ("/metricsX", "no-store"),
    ],
)
def test_cache_control_table(path: str, expected: str) -> None:
    assert cache_control(path) == expected


def test_the_route_is_found_under_a_proxys_root_path() -> None:
    client = TestClient(create_app(Settings(store="memory")), root_path="/lr")
    answer = client.post("/lr/v1/schedules", json={"schedule": STEP, "steps": 3})
    assert answer.status_code == 200
    _assert_headers(answer, "no-cache")


# -- /metrics behind a key -------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded() -> TestClient:
    return TestClient(create_app(Settings(store="memory", metrics_key="m-secret", api_keys="k1")))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"X-API-Key": "k1"},
        {"Authorization": "Basic m-secret"},
    ],
    ids=["none", "wrong-bearer", "an-api-key", "basic"],
)
def test_metrics_without_the_metrics_key_is_401(
    guarded: TestClient, headers: dict[str, str]
) -> None:
    answer = guarded.get("/metrics", headers=headers)
    assert answer.status_code == 401
    assert "LRSCHED_METRICS_KEY" in answer.json()["detail"]
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "lrsched_http_requests_total" not in answer.text


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer m-secret"}, {"X-API-Key": "m-secret"}],
    ids=["bearer", "x-api-key"],
)
def test_metrics_with_the_metrics_key_answers(guarded: TestClient, headers: dict[str, str]) -> None:
    answer = guarded.get("/metrics", headers=headers)
    assert answer.status_code == 200
    assert "lrsched_http_requests_total" in answer.text
    _assert_headers(answer, "no-store")


def test_metrics_is_open_without_a_metrics_key(client: TestClient) -> None:
    answer = client.get("/metrics")
    assert (answer.status_code, "lrsched_http_requests_total" in answer.text) == (200, True)
