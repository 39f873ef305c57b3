"""The report route's shortcut (ReportRoute) answers exactly as the declared route does.

Every case is sent twice, in the same order, to two services that differ only in whether
the shortcut may answer: status, body and the headers that describe the answer must match.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import service.api.sessions as session_routes
from schemas.sessions import ReportRequest
from service.api.bodies import is_json
from service.config import Settings
from service.limits import SESSION_ID_MAX_LENGTH
from service.main import create_app
from tests.api.shortcut_checks import described, never, spy_on_shortcut

PLATEAU = {"type": "ReduceLROnPlateau", "patience": 1, "factor": 0.5}
ID = "{id}"
TOKEN = "{token}"


def _headers(authorization: str | None, **extra: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **extra}
    if authorization is not None:
        headers["Authorization"] = authorization
    return headers


# (path template, raw body, headers): sent in this order to a fresh session of world size 2.
CASES: list[tuple[str, str, dict[str, str]]] = [
    (ID, '{"epoch": 0, "metric": 0.5, "rank": 0}', _headers(f"Bearer {TOKEN}")),
    (ID, '{"epoch": 0, "metric": 0.5, "rank": 0}', _headers(f"bearer {TOKEN}")),
    (ID, '{"epoch": 0, "metric": "nan", "rank": 1}', _headers(f"Bearer {TOKEN}  ")),
    (ID, '{"epoch": 0, "metric": 0.1, "rank": 1}', _headers(f"Bearer {TOKEN}")),  # replayed
    (ID, '{"epoch": 1, "metric": "inf"}', _headers(f"Bearer {TOKEN}")),
    (ID, '{"epoch": 1, "metric": NaN, "rank": 1}', _headers(f"Bearer {TOKEN}")),
    (ID, '{"epoch": 1.0, "metric": 1, "rank": 1}', _headers(f"Bearer {TOKEN}")),
    (ID, '{"epoch": true, "metric": 1, "rank": 1}', _headers(f"Bearer {TOKEN}")),
    (ID, '{"epoch": 2, "metric": "1.5", "rank": 1}', _headers(f"Bearer {TOKEN}")),
    (ID, '{"epoch": 2, "metric": 1.5, "rank": "1"}', _headers(f"Bearer {TOKEN}")),
    (ID, '{"epoch": 2, "metric": 1.5, "rank": 1, "extra": 0}', _headers(f"Bearer {TOKEN}")),
    (ID, '{"epoch": 2, "metric": 1.5, "rank": 7}', _headers(f"Bearer {TOKEN}")),
    (ID, '{"epoch": 5, "metric": 1.5, "rank": 1}', _headers(f"Bearer {TOKEN}")),
    (ID, '{"epoch": -1, "metric": 1.5}', _headers(f"Bearer {TOKEN}")),
    (ID, '{"epoch": 2, "metric": 1.5', _headers(f"Bearer {TOKEN}")),
    (ID, "", _headers(f"Bearer {TOKEN}")),
    (ID, '{"epoch": 2, "metric": 1.5}', _headers(None)),
    (ID, '{"epoch": 2, "metric": 1.5}', _headers("Basic dXNlcjpwYXNz")),
    (ID, '{"epoch": 2, "metric": 1.5}', _headers("Bearer")),
    (ID, '{"epoch": 2, "metric": 1.5}', _headers("Bearer not-the-token")),
    (ID, '{"epoch": 2, "metric": 1.5}', {"Authorization": f"Bearer {TOKEN}"}),
    (
        ID,
        '{"epoch": 2, "metric": 1.5}',
        _headers(f"Bearer {TOKEN}", **{"Content-Type": "text/plain"}),
    ),
    (
        ID,
        '{"epoch": 2, "metric": 1.5}',
        _headers(f"Bearer {TOKEN}", **{"Content-Type": "application/vnd.lrsched+json"}),
    ),
    ("x" * 65, '{"epoch": 2, "metric": 1.5}', _headers(f"Bearer {TOKEN}")),
    ("no-such-session", '{"epoch": 2, "metric": 1.5}', _headers(f"Bearer {TOKEN}")),
    (ID, '{"epoch": 2, "metric": 0.25, "rank": 0}', _headers(f"Bearer {TOKEN}")),
    (ID, '{"epoch": 2, "metric": 0.25, "rank": 1}', _headers(f"Bearer {TOKEN}")),
]


@pytest.fixture
def shortcut_taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the shortcut answered each request (rather than handing it on)."""
    return spy_on_shortcut(monkeypatch, session_routes, "_report_directly")


def _run(client: TestClient, cases: list[tuple[str, str, dict[str, str]]]) -> list[Any]:
    created = client.post(
        "/v1/sessions",
        json={"schedule": PLATEAU, "lr": 0.1, "world_size": 2},
        headers={"X-API-Key": "k1"},
    ).json()
    answers = []
    for path, body, headers in cases:
        filled = {k: v.replace(TOKEN, created["token"]) for k, v in headers.items()}
        url = f"/v1/sessions/{path.replace(ID, created['id'])}/reports"
        response = client.post(url, content=body.encode(), headers=filled)
        answers.append(described(response))
    return answers


@pytest.mark.parametrize("api_keys", ["", "k1"])
def test_the_shortcut_answers_exactly_as_the_declared_route(
    api_keys: str, shortcut_taken: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = CASES
    if api_keys:
        key = {"X-API-Key": "k1"}
        cases = [(p, b, h | key) for p, b, h in CASES] + [(p, b, h) for p, b, h in CASES[:3]]
    with TestClient(create_app(Settings(store="memory", api_keys=api_keys))) as client:
        shortcut = _run(client, cases)
    taken = list(shortcut_taken)
    monkeypatch.setattr(session_routes, "_report_directly", never)
    with TestClient(create_app(Settings(store="memory", api_keys=api_keys))) as client:
        declared = _run(client, cases)
    for case, ours, theirs in zip(cases, shortcut, declared, strict=True):
        assert ours == theirs, case
    # Before any shortcut is offered, the body gate refuses bodies that are not JSON (415),
    # the router's API-key gate requests without the key (with keys on: the last cases),
    # and a path past its declared constraints goes to the declared route (422).
    refused_by_key = len(cases) - len(CASES)
    offered = [
        answer
        for (path, _, headers), answer in zip(cases[: len(CASES)], shortcut, strict=False)
        if is_json(headers.get("Content-Type")) and len(path) <= SESSION_ID_MAX_LENGTH
    ]
    assert len(taken) == len(offered)
    assert [status for status, _, _ in shortcut[len(CASES) :]] == [401] * refused_by_key
    by_shortcut = {status for (status, _, _), took in zip(offered, taken, strict=True) if took}
    handed_on = {status for (status, _, _), took in zip(offered, taken, strict=True) if not took}
    # The shortcut answers well-formed reports, including the refusals of the report itself
    # (422: a rank past world_size; 401: no bearer token); invalid bodies go on.
    assert by_shortcut == {200, 401, 403, 404, 409, 422}
    assert handed_on == {422}
    statuses = {status for status, _, _ in shortcut}
    assert {200, 401, 403, 404, 409, 415, 422} <= statuses


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["nan", "inf", "-inf", "1", "0.5", "1e3", "Infinity", "NaN"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
REPORT_LIKE = st.fixed_dictionaries(
    {}, optional={"epoch": JSON_VALUES, "metric": JSON_VALUES, "rank": JSON_VALUES}
) | st.dictionaries(st.sampled_from(["epoch", "metric", "rank", "other"]), JSON_VALUES)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REPORT_LIKE)
def test_whatever_the_shortcut_accepts_the_declared_route_accepts_as_the_same_report(
    body: dict[str, Any],
) -> None:
    """The shortcut validates the raw bytes (JSON mode); FastAPI parses with ``json.loads``
    and validates the objects (Python mode). Where the shortcut accepts, both must agree."""
    raw = json.dumps(body)  # NaN and Infinity as Python's json writes them
    try:
        direct = ReportRequest.model_validate_json(raw)
    except ValidationError:
        return
    declared = ReportRequest.model_validate(json.loads(raw))
    assert direct.model_dump_json() == declared.model_dump_json()
