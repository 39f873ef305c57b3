"""The curve route's shortcut (CurveRoute) answers exactly as the declared route does.

Every case is sent to two services that differ only in whether the shortcut may answer:
status, body and the headers that describe the answer must match.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import service.api.schedules as schedule_routes
from schemas.requests import ScheduleRequest
from schemas.schedules import SCHEDULE_MODELS
from service import encoding
from service.api.bodies import is_json
from service.config import Settings
from service.main import create_app
from tests.api.shortcut_checks import described, never, spy_on_shortcut


def _example(model: Any) -> dict[str, Any]:
    spec: dict[str, Any] = model.model_config["json_schema_extra"]["examples"][0]
    return spec


EXAMPLES = [_example(model) for model in SCHEDULE_MODELS]
JSON_TYPE = {"Content-Type": "application/json"}
ONE_CYCLE_90 = {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 90}

# (query, raw body, headers)
CASES: list[tuple[str, str, dict[str, str]]] = [
    ("", json.dumps({"schedule": spec, "lr": 0.1, "steps": 300}), JSON_TYPE) for spec in EXAMPLES
] + [
    ("", json.dumps({"schedule": EXAMPLES[0], "steps": 50}), JSON_TYPE | {"Accept": encoding.NPY}),
    (
        "?series=momentum",
        json.dumps(
            {"schedule": {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 90}, "steps": 80}
        ),
        JSON_TYPE | {"Accept": encoding.FLOAT32},
    ),
    (
        "?series=momentum",
        json.dumps({"schedule": EXAMPLES[0], "steps": 50}),
        JSON_TYPE | {"Accept": encoding.NPY},
    ),
    ("?series=other", json.dumps({"schedule": EXAMPLES[0], "steps": 50}), JSON_TYPE),
    ("", json.dumps({"schedule": EXAMPLES[0], "steps": 50}), JSON_TYPE | {"Accept": "text/html"}),
    ("", json.dumps({"schedule": EXAMPLES[0], "steps": 50}), {"Content-Type": "text/plain"}),
    ("", json.dumps({"schedule": EXAMPLES[0], "steps": 50}), {}),
    ("", json.dumps({"schedule": EXAMPLES[0], "steps": "50"}), JSON_TYPE),
    ("", json.dumps({"schedule": {"type": "StepLR", "step_size": 0}, "steps": 5}), JSON_TYPE),
    ("", json.dumps({"schedule": {"type": "NoSuchLR"}, "steps": 5}), JSON_TYPE),
    ("", '{"schedule": {"type": "StepLR", "step_size": 2}, "steps": 5', JSON_TYPE),
    ("", '{"schedule": {"type": "StepLR", "step_size": 2, "gamma": NaN}, "steps": 5}', JSON_TYPE),
    ("", json.dumps({"schedule": EXAMPLES[0], "steps": 10**12}), JSON_TYPE),
    (
        "",
        json.dumps(
            {"schedule": {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 10}, "steps": 30}
        ),
        JSON_TYPE,
    ),
    ("", json.dumps({"schedule": EXAMPLES[0], "steps": 50}), JSON_TYPE | {"If-None-Match": "*"}),
]


@pytest.fixture
def shortcut_taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the shortcut answered each request (rather than handing it on)."""
    return spy_on_shortcut(monkeypatch, schedule_routes, "_answer_directly")


def _run(client: TestClient, cases: list[tuple[str, str, dict[str, str]]]) -> list[Any]:
    answers = []
    for query, body, headers in cases:
        response = client.post(f"/v1/schedules{query}", content=body.encode(), headers=headers)
        answers.append(described(response))
    return answers


@pytest.mark.parametrize("api_keys", ["", "k1"])
def test_the_shortcut_answers_exactly_as_the_declared_route(
    api_keys: str, shortcut_taken: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = CASES + CASES[:3]  # the repeats come from the cache
    if api_keys:
        key = {"X-API-Key": "k1"}
        cases = [(q, b, h | key) for q, b, h in CASES] + CASES[:3]  # then without the key
    with TestClient(create_app(Settings(store="memory", api_keys=api_keys))) as client:
        shortcut = _run(client, cases)
    taken = list(shortcut_taken)
    monkeypatch.setattr(schedule_routes, "_answer_directly", never)
    with TestClient(create_app(Settings(store="memory", api_keys=api_keys))) as client:
        declared = _run(client, cases)
    for case, ours, theirs in zip(cases, shortcut, declared, strict=True):
        assert ours == theirs, case
    # The body gate refuses bodies that are not JSON (415), and the router's API-key gate
    # requests without the key (the last 3), before any shortcut is offered.
    refused_by_key = 3 if api_keys else 0
    offered = sum(is_json(headers.get("Content-Type")) for _, _, headers in cases)
    assert len(taken) == offered - refused_by_key
    assert all(taken[: len(EXAMPLES)])  # every well-formed request took the shortcut
    statuses = {status for status, _, _ in shortcut}
    assert {200, 304, 406, 415, 422} <= statuses
    if api_keys:
        assert [status for status, _, _ in shortcut[-3:]] == [401] * 3


FIELD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=6),
    st.sampled_from(["1", "0.5", "inf", "nan", "epoch", "0.9 ** epoch", "true"]),
    st.lists(st.integers(-3, 300) | st.floats(-1, 2), max_size=4),
)


@st.composite
def mutated_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A valid example request with one schedule option or request field replaced."""
    spec = dict(draw(st.sampled_from(EXAMPLES)))
    body: dict[str, Any] = {"schedule": spec, "steps": 40}
    target = draw(st.sampled_from(["schedule", "request"]))
    if target == "schedule":
        name = draw(st.sampled_from(sorted(set(spec) - {"type"}) or ["extra"]))
        spec[name] = draw(FIELD_VALUES)
    else:
        body[draw(st.sampled_from(["lr", "steps", "start", "stride"]))] = draw(FIELD_VALUES)
    return body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_requests())
def test_whatever_the_shortcut_accepts_the_declared_route_accepts_as_the_same_request(
    body: dict[str, Any],
) -> None:
    """The shortcut validates the raw bytes (JSON mode); FastAPI parses with ``json.loads``
    and validates the objects (Python mode). Where the shortcut accepts, both must agree."""
    raw = json.dumps(body)
    try:
        direct = ScheduleRequest.model_validate_json(raw)
    except ValidationError:
        return
    declared = ScheduleRequest.model_validate(json.loads(raw))
    assert direct.model_dump_json() == declared.model_dump_json()
