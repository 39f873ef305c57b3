"""Operations: API keys, request ids, JSON access logs, metrics, CORS, timeouts, body limits."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service import metrics
from service.config import Settings
from service.main import create_app

CURVE = {"schedule": {"type": "StepLR", "step_size": 2}, "lr": 0.1, "steps": 6}
PLATEAU = {"type": "ReduceLROnPlateau", "patience": 0}


@pytest.fixture(scope="module")
def keyed() -> Iterator[TestClient]:
    settings = Settings(store="memory", api_keys="first-key, second-key")  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as client:
        yield client


def test_v1_needs_one_of_the_api_keys_when_configured(keyed: TestClient) -> None:
    missing = keyed.post("/v1/schedules", json=CURVE)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "ApiKey"
    assert keyed.post("/v1/schedules", json=CURVE, headers={"X-API-Key": "nope"}).status_code == 401
    for key in ("first-key", "second-key"):
        answer = keyed.post("/v1/schedules", json=CURVE, headers={"X-API-Key": key})
        assert answer.status_code == 200 and answer.json()["lr"][0][2] == 0.010000000000000002
    replay = {"schedule": PLATEAU, "metrics": [1.0]}
    assert keyed.post("/v1/plateau/replay", json=replay).status_code == 401
    assert keyed.post("/v1/sessions", json={"schedule": PLATEAU}).status_code == 401


def test_probes_and_metrics_need_no_api_key(keyed: TestClient) -> None:
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/readyz").status_code == 200
    assert keyed.get("/metrics").status_code == 200


def test_sessions_need_both_the_api_key_and_their_token(keyed: TestClient) -> None:
    key = {"X-API-Key": "first-key"}
    created = keyed.post("/v1/sessions", json={"schedule": PLATEAU}, headers=key).json()
    url = f"/v1/sessions/{created['id']}"
    assert (
        keyed.get(url, headers={"Authorization": f"Bearer {created['token']}"}).status_code == 401
    )
    assert keyed.get(url, headers=key).status_code == 401
    both = key | {"Authorization": f"Bearer {created['token']}"}
    assert keyed.get(url, headers=both).status_code == 200


def test_api_keys_are_off_by_default() -> None:
    client = TestClient(create_app(Settings(store="memory")))
    assert client.post("/v1/schedules", json=CURVE).status_code == 200


def test_request_id_is_echoed_or_generated(keyed: TestClient) -> None:
    echoed = keyed.get("/healthz", headers={"X-Request-ID": "trace-42.a"})
    assert echoed.headers["x-request-id"] == "trace-42.a"
    generated = keyed.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    hostile = keyed.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["x-request-id"])


def test_access_log_is_json_with_route_status_duration_and_session_but_no_secrets(
    capfd: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(store="memory", api_keys="secret-api-key")  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as client:
        key = {"X-API-Key": "secret-api-key", "X-Request-ID": "req-1"}
        created = client.post("/v1/sessions", json={"schedule": PLATEAU}, headers=key).json()
        token = created["token"]
        client.post(
            f"/v1/sessions/{created['id']}/reports",
            json={"epoch": 0, "metric": 1.0},
            headers=key | {"Authorization": f"Bearer {token}", "X-Request-ID": "req-2"},
        )
    err = capfd.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "lrsched.access"]
    report = next(line for line in access if line["request_id"] == "req-2")
    assert report["route"] == "/v1/sessions/{session_id}/reports"
    assert report["status"] == 200 and report["method"] == "POST"
    assert report["session_id"] == created["id"] and report["duration_ms"] >= 0
    assert token not in err and "secret-api-key" not in err


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_by_route_template_and_domain_events() -> None:
    with TestClient(create_app(Settings(store="memory"))) as client:
        before = client.get("/metrics").text
        client.post("/v1/schedules", json=CURVE)
        client.post("/v1/schedules", json=CURVE | {"steps": 0, "lr": [0.1, 0.2]})
        client.post("/v1/schedules", json={"schedule": {"type": "StepLR"}, "steps": 1})
        created = client.post("/v1/sessions", json={"schedule": PLATEAU, "world_size": 2}).json()
        auth = {"Authorization": f"Bearer {created['token']}"}
        reports = f"/v1/sessions/{created['id']}/reports"
        client.post(reports, json={"epoch": 0, "metric": 1.0, "rank": 0}, headers=auth)
        client.post(reports, json={"epoch": 0, "metric": 1.0, "rank": 0}, headers=auth)
        client.post(reports, json={"epoch": 0, "metric": 1.0, "rank": 1}, headers=auth)
        client.post(reports, json={"epoch": 0, "metric": 1.0, "rank": 1}, headers=auth)
        client.post(reports, json={"epoch": 3, "metric": 1.0, "rank": 1}, headers=auth)
        response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text

    def delta(name: str, **labels: str) -> float:
        return _sample(text, name, **labels) - _sample(before, name, **labels)

    route = {"method": "POST", "route": "/v1/schedules"}
    assert delta("lrsched_http_requests_total", **route, status="200") == 2
    assert delta("lrsched_http_requests_total", **route, status="422") == 1
    assert delta("lrsched_http_request_duration_seconds_count", **route, status="200") == 2
    assert delta("lrsched_curves_computed_total", type="StepLR") == 2
    assert delta("lrsched_values_computed_total") == 6
    assert delta("lrsched_sessions_created_total") == 1
    assert _sample(text, "lrsched_sessions_live") == 1
    for result, count in (("pending", 1), ("duplicate", 1), ("decided", 1), ("replayed", 1)):
        assert delta("lrsched_reports_total", result=result) == count
    assert delta("lrsched_reports_total", result="conflict") == 1
    templated = {"route": "/v1/sessions/{session_id}/reports", "status": "409"}
    assert delta("lrsched_http_requests_total", method="POST", **templated) == 1
    assert created["id"] not in text  # ids never become label values


@pytest.mark.parametrize(
    ("metric", "labels"),
    [
        (metrics.REQUESTS, {"method": "GET", "route": "/healthz", "status": "200"}),
        (metrics.LATENCY, {"method": "POST", "route": "/v1/schedules", "status": "422"}),
        (metrics.CURVE_CACHE, {"result": "miss"}),
        (metrics.CURVES, {"type": "OneCycleLR"}),
    ],
)
def test_a_remembered_metric_child_is_the_one_its_labels_name(
    metric: Any, labels: dict[str, str]
) -> None:
    """``metrics.child`` takes the label values in the metric's declared order."""
    remembered = metrics.child(metric, *labels.values())
    assert remembered is metric.labels(**labels)
    assert metrics.child(metric, *labels.values()) is remembered


def test_cors_is_off_by_default_and_configurable() -> None:
    preflight = {
        "Origin": "https://dashboard.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    closed = TestClient(create_app(Settings(store="memory")))
    assert (
        "access-control-allow-origin"
        not in closed.options("/v1/schedules", headers=preflight).headers
    )
    opened = TestClient(
        create_app(Settings(store="memory", cors_origins="https://dashboard.example"))
    )
    allowed = opened.options("/v1/schedules", headers=preflight)
    assert allowed.headers["access-control-allow-origin"] == "https://dashboard.example"
    answer = opened.post(
        "/v1/schedules", json=CURVE, headers={"Origin": "https://dashboard.example"}
    )
    assert "etag" in answer.headers["access-control-expose-headers"].lower()


def test_request_over_the_time_limit_is_504() -> None:
    slow = {
        "schedule": {
            "type": "ChainedScheduler",
            "schedulers": [{"type": "ExponentialLR", "gamma": 0.999999}] * 8,
        },
        "steps": 5_000_000,
        "start": 4_999_999,
    }
    client = TestClient(create_app(Settings(store="memory", request_timeout_seconds=0.01)))
    response = client.post("/v1/schedules", json=slow)
    assert response.status_code == 504
    assert "longer" in response.json()["detail"]


def test_chunked_body_over_the_limit_is_413() -> None:
    client = TestClient(create_app(Settings(store="memory", max_body_bytes=4096)))

    def chunks() -> Iterator[bytes]:
        yield b'{"schedule": {"type": "MultiStepLR", "milestones": ['
        for _ in range(2000):
            yield b"1, "
        yield b'1]}, "steps": 3}'

    response = client.post(
        "/v1/schedules", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_is_json_413(response)


def test_declared_body_over_the_limit_is_the_same_json_413() -> None:
    """A Content-Length over LRSCHED_MAX_BODY_BYTES was Starlette's text/plain "Content Too
    Large", without the JSON detail and the headers every other error has."""
    client = TestClient(create_app(Settings(store="memory", max_body_bytes=4096)))
    milestones = b"1, " * 2000 + b"1"
    body = b'{"schedule": {"type": "MultiStepLR", "milestones": [%s]}, "steps": 3}' % milestones
    response = client.post(
        "/v1/schedules", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.request.headers["content-length"] == str(len(body))
    assert_is_json_413(response)


def assert_is_json_413(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "Content Too Large"}
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"schedule": {"type": "StepLR", "step_size": "\\ud800"}, "steps": 3}',
        b'{"schedule": {"type": "StepLR", "step_size": 2, "\\ud800": 1}, "steps": 3}',
        b'{"schedule": {"type": "ReduceLROnPlateau"}, "metrics": ["\\udfff"]}',
    ],
)
def test_a_lone_surrogate_in_the_body_is_a_clean_422(body: bytes) -> None:
    client = TestClient(create_app(Settings(store="memory")), raise_server_exceptions=False)
    url = "/v1/plateau/replay" if b"metrics" in body else "/v1/schedules"
    response = client.post(url, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"
