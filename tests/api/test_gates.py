"""One list of checks: a router's dependencies run on the route shortcuts too.

Each test mounts the real routers a second time under ``/gated`` with one more router
dependency, and shows that the shortcut cannot skip it: a dependency that takes only the
request runs before the shortcut is offered the request (and its refusal is the answer);
one that needs more turns the shortcut off for the route.
"""

from __future__ import annotations

import json
from typing import Annotated

import pytest
from fastapi import Depends, Header, HTTPException, Request
from fastapi.testclient import TestClient

import service.api.schedules as schedule_routes
import service.api.sessions as session_routes
from service.api.auth import api_key_gate, require_api_key
from service.api.shortcuts import direct_form
from service.config import Settings
from service.main import create_app
from tests.api.shortcut_checks import spy_on_shortcut

CURVE = {"schedule": {"type": "StepLR", "step_size": 2, "gamma": 0.5}, "lr": 1.0, "steps": 4}
STEP_LR = [1.0, 1.0, 0.5, 0.5]
JSON_TYPE = {"Content-Type": "application/json"}
PLATEAU = {"schedule": {"type": "ReduceLROnPlateau"}, "lr": 0.1}


class Doorman:
    """A router dependency that admits ``admit`` requests, then refuses with 403."""

    def __init__(self, admit: int) -> None:
        self.admit = admit
        self.seen = 0

    async def __call__(self, request: Request) -> None:
        self.seen += 1
        if self.seen > self.admit:
            raise HTTPException(403, "refused by the doorman")


def _client(*extra: object, api_keys: str = "") -> TestClient:
    app = create_app(Settings(store="memory", api_keys=api_keys))
    dependencies = [Depends(require_api_key), *(Depends(d) for d in extra)]
    for router in (schedule_routes.router, session_routes.router):
        app.include_router(router, prefix="/gated", dependencies=dependencies)
    return TestClient(app)


async def _check(request: Request) -> None:
    """A dependency of the request alone."""


def test_the_api_key_and_request_only_dependencies_have_direct_forms() -> None:
    assert direct_form(require_api_key) is api_key_gate
    assert direct_form(_check) is _check
    assert direct_form(Doorman(0)) is None  # a callable instance: FastAPI must run it


def test_a_request_only_router_dependency_runs_before_the_shortcut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = spy_on_shortcut(monkeypatch, schedule_routes, "_answer_directly")
    seen: list[str] = []

    async def note(request: Request) -> None:
        seen.append(request.url.path)

    async def refuse(request: Request) -> None:
        raise HTTPException(403, "refused by a router dependency")

    with _client(note) as client:
        answer = client.post("/gated/v1/schedules", json=CURVE)
        assert answer.json()["lr"] == [STEP_LR]
        assert client.post("/gated/v1/schedules", json=CURVE).json()["lr"] == [STEP_LR]
    assert seen == ["/gated/v1/schedules"] * 2 and taken == [True, True]
    taken.clear()
    with _client(refuse) as client:
        refused = client.post("/gated/v1/schedules", json=CURVE)
        assert client.post("/v1/schedules", json=CURVE).json()["lr"] == [STEP_LR]
    assert refused.status_code == 403
    assert refused.json()["detail"] == "refused by a router dependency"
    assert taken == [True]  # only the ungated route offered its request to the shortcut


def test_a_cached_repeat_is_refused_by_a_router_dependency() -> None:
    served: list[str] = []

    async def refuse_repeats(request: Request) -> None:
        if served:
            raise HTTPException(403, "one curve only")
        served.append(request.url.path)

    with _client(refuse_repeats) as client:
        first = client.post("/gated/v1/schedules", json=CURVE)
        repeat = client.post("/gated/v1/schedules", json=CURVE)
    assert first.json()["lr"] == [STEP_LR]
    assert (repeat.status_code, repeat.json()["detail"]) == (403, "one curve only")


def test_a_dependency_without_a_direct_form_turns_the_shortcut_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = spy_on_shortcut(monkeypatch, schedule_routes, "_answer_directly")
    doorman = Doorman(admit=2)

    def tenant(x_tenant: Annotated[str | None, Header()] = None) -> None:
        if x_tenant != "ours":
            raise HTTPException(403, "not our tenant")

    with _client(doorman, tenant) as client:
        admitted = client.post("/gated/v1/schedules", json=CURVE, headers={"X-Tenant": "ours"})
        stranger = client.post("/gated/v1/schedules", json=CURVE, headers={"X-Tenant": "x"})
        refused = client.post("/gated/v1/schedules", json=CURVE, headers={"X-Tenant": "ours"})
    assert admitted.json()["lr"] == [STEP_LR]
    assert (stranger.status_code, stranger.json()["detail"]) == (403, "not our tenant")
    assert (refused.status_code, refused.json()["detail"]) == (403, "refused by the doorman")
    assert taken == []  # every request took the declared route


def test_the_report_shortcut_runs_the_routers_dependencies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = spy_on_shortcut(monkeypatch, session_routes, "_report_directly")
    reports: list[str] = []

    async def refuse_reports(request: Request) -> None:
        if request.url.path.endswith("/reports"):
            reports.append(request.url.path)
            raise HTTPException(403, "no reports here")

    with _client(refuse_reports, api_keys="k1") as client:
        key = {"X-API-Key": "k1"}
        created = client.post("/gated/v1/sessions", json=PLATEAU, headers=key).json()
        auth = key | {"Authorization": f"Bearer {created['token']}"} | JSON_TYPE
        report = json.dumps({"epoch": 0, "metric": 1.0})
        url = f"/v1/sessions/{created['id']}/reports"
        refused = client.post(f"/gated{url}", content=report, headers=auth)
        no_key = client.post(url, content=report, headers=auth | {"X-API-Key": "k2"})
        answered = client.post(url, content=report, headers=auth)
    assert (refused.status_code, refused.json()["detail"]) == (403, "no reports here")
    assert no_key.status_code == 401
    assert answered.json()["decided"] is True
    assert answered.json()["lr"] == [0.1]
    assert reports == [f"/gated{url}"]
    assert taken == [True]  # the gates refused the others before the shortcut was offered
