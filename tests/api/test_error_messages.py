"""Refusals in the API's words (service/api/errors.py): paths in the body, no pydantic labels,
one error per place, the nearest names for a typo, hints for what PyTorch users reach for, and
422 bodies bounded in count and size."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.schedules import SCHEDULE_MODELS
from service.api.errors import _either
from service.config import Settings
from service.limits import ECHO_CHARS, ERRORS_SHOWN
from service.main import create_app

STEP_LR = {"type": "StepLR", "step_size": 2}
INTERNAL = re.compile(r"function-after|function-before|constrained-|list\[|dict\[|tagged-union")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store="memory"))) as client:
        yield client


def post(client: TestClient, body: Any, url: str = "/v1/schedules") -> httpx.Response:
    return client.post(url, content=json.dumps(body), headers={"Content-Type": "application/json"})


def errors(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text[:500]
    detail: list[dict[str, Any]] = response.json()["detail"]
    return detail


def only(response: httpx.Response) -> dict[str, Any]:
    [error] = errors(response)
    return error


def test_a_typo_in_an_option_suggests_the_option(client: TestClient) -> None:
    detail = errors(post(client, {"schedule": {"type": "StepLR", "step_szie": 2}, "steps": 10}))
    typo = next(error for error in detail if error["type"] == "extra_forbidden")
    assert typo["loc"] == ["body", "schedule", "step_szie"]
    assert typo["msg"] == "unknown field `step_szie`; did you mean `step_size`?"


def test_a_typo_in_a_nested_option_suggests_the_nested_models_option(client: TestClient) -> None:
    child = {"type": "CosineAnnealingLR", "T_mx": 10}
    spec = {"type": "SequentialLR", "schedulers": [STEP_LR, child], "milestones": [5]}
    detail = errors(post(client, {"schedule": spec, "steps": 10}))
    typo = next(error for error in detail if error["type"] == "extra_forbidden")
    assert typo["loc"] == ["body", "schedule", "schedulers", 1, "T_mx"]
    assert typo["msg"] == "unknown field `T_mx`; did you mean `T_max`?"


def test_a_typo_in_a_request_field_suggests_the_field(client: TestClient) -> None:
    detail = errors(post(client, {"schedule": STEP_LR, "stpes": 10}))
    typo = next(error for error in detail if error["type"] == "extra_forbidden")
    assert typo["msg"] == "unknown field `stpes`; did you mean `steps`?"


def test_a_typo_on_the_plateau_routes_suggests_the_plateau_option(client: TestClient) -> None:
    body = {"schedule": {"type": "ReduceLROnPlateau", "patiense": 3}, "metrics": [1.0]}
    error = only(post(client, body, "/v1/plateau/replay"))
    assert error["loc"] == ["body", "schedule", "patiense"]
    assert error["msg"].startswith("unknown field `patiense`; did you mean `patience`")


def test_an_unknown_field_far_from_every_name_suggests_nothing(client: TestClient) -> None:
    error = only(post(client, {"schedule": STEP_LR, "steps": 10, "zzzzzz": 1}))
    assert error["msg"] == "unknown field `zzzzzz`"


def test_an_unknown_type_suggests_the_nearest_names_not_all_of_them(client: TestClient) -> None:
    error = only(post(client, {"schedule": {"type": "StepLRR", "step_size": 2}, "steps": 10}))
    assert error["loc"] == ["body", "schedule"]
    assert error["msg"].startswith("unknown schedule type 'StepLRR'; did you mean `StepLR`")
    assert "OneCycleLR" not in error["msg"] and "ctx" not in error


def test_an_unknown_type_differing_in_case_suggests_the_type(client: TestClient) -> None:
    error = only(post(client, {"schedule": {"type": "onecyclelr", "max_lr": 1}, "steps": 10}))
    assert "did you mean `OneCycleLR`" in error["msg"]


def test_an_unknown_type_like_no_other_points_at_the_list(client: TestClient) -> None:
    error = only(post(client, {"schedule": {"type": "Zebra"}, "steps": 10}))
    assert error["msg"] == (
        f"unknown schedule type 'Zebra'; the {len(SCHEDULE_MODELS)} types are listed at /docs "
        "and in /openapi.json"
    )


def test_last_epoch_points_to_start(client: TestClient) -> None:
    error = only(post(client, {"schedule": STEP_LR | {"last_epoch": 5}, "steps": 10}))
    assert error["loc"] == ["body", "schedule", "last_epoch"]
    assert "`start`" in error["msg"] and "not accepted" in error["msg"]


def test_reduce_lr_on_plateau_as_a_curve_points_to_replay_and_sessions(client: TestClient) -> None:
    error = only(post(client, {"schedule": {"type": "ReduceLROnPlateau"}, "steps": 10}))
    assert error["loc"] == ["body", "schedule"]
    assert "/v1/plateau/replay" in error["msg"] and "/v1/sessions" in error["msg"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_not_sent_as_json_says_so(client: TestClient, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = json.dumps({"schedule": STEP_LR, "steps": 10})
    response = client.post("/v1/schedules", content=body, headers=headers)
    assert response.status_code == 415
    [error] = response.json()["detail"]
    assert error["loc"] == ["header", "content-type"]
    assert "Content-Type: application/json" in error["msg"]
    assert (content_type or "no Content-Type") in error["msg"]


def test_the_alternatives_of_a_number_are_one_error_at_the_field(client: TestClient) -> None:
    error = only(post(client, {"schedule": {"type": "StepLR", "step_size": "x"}, "steps": 10}))
    assert error["loc"] == ["body", "schedule", "step_size"]
    assert error["msg"] == "Input should be a valid integer or a valid number, not a string"


def test_an_expression_or_a_list_of_them_is_one_error(client: TestClient) -> None:
    error = only(post(client, {"schedule": {"type": "LambdaLR", "lr_lambda": 5}, "steps": 10}))
    assert error["loc"] == ["body", "schedule", "lr_lambda"]
    assert error["msg"] == "Input should be a valid string or a valid list"


def test_a_bad_item_of_a_list_is_named_by_its_index_alone(client: TestClient) -> None:
    error = only(post(client, {"schedule": STEP_LR, "lr": [0.1, "x"], "steps": 10}))
    assert error["loc"] == ["body", "lr", 1]


def test_a_422_lists_at_most_the_first_errors_then_a_count(client: TestClient) -> None:
    extra = {f"k{i}": 1 for i in range(1000)}
    detail = errors(post(client, {"schedule": STEP_LR, "steps": 10, **extra}))
    assert len(detail) == ERRORS_SHOWN + 1
    assert [error["loc"] for error in detail[:ERRORS_SHOWN]] == [
        ["body", f"k{i}"] for i in range(ERRORS_SHOWN)
    ]
    assert detail[-1]["type"] == "too_many_errors"
    assert detail[-1]["msg"].startswith(f"{1000 - ERRORS_SHOWN} more errors not shown")


def test_a_422_echoes_a_bounded_input(client: TestClient) -> None:
    spec = {"type": "MultiStepLR", "milestones": ["x" * 10_000] + list(range(500))}
    detail = errors(post(client, {"schedule": spec, "steps": 10, "lr": "y" * 10_000}))
    response_size = len(json.dumps(detail))
    assert response_size < 3 * ERRORS_SHOWN * ECHO_CHARS
    for error in detail:
        assert len(json.dumps(error.get("input"))) <= ECHO_CHARS + 10


def test_a_missing_field_does_not_echo_a_large_object(client: TestClient) -> None:
    detail = errors(post(client, {"schedule": {"type": "StepLR"}, "steps": 10, "lr": [0.1] * 900}))
    missing = next(error for error in detail if error["type"] == "missing")
    assert missing["loc"] == ["body", "schedule", "step_size"]
    whole = errors(post(client, {"schedule": STEP_LR, "lr": [0.1] * 900}))
    assert whole[0]["input"] == "(an object of 2 members, not echoed)"


SPECS = st.sampled_from(
    [model.model_config["json_schema_extra"]["examples"][0] for model in SCHEDULE_MODELS]  # type: ignore[index]
)
WRONG = st.one_of(
    st.text(max_size=5), st.lists(st.integers(), max_size=3), st.booleans(), st.none()
)


@settings(max_examples=150, deadline=None)
@given(spec=SPECS, data=st.data())
def test_no_error_names_pydantic_internals(
    client: TestClient, spec: dict[str, Any], data: Any
) -> None:
    """Any option of any schedule given a value of the wrong kind: every loc is a path in
    the body and no loc or msg names a pydantic label; no two errors share a place."""
    option = data.draw(st.sampled_from(sorted(set(spec) - {"type"}) or ["x"]))
    body = {"schedule": spec | {option: data.draw(WRONG)}, "steps": 10}
    response = post(client, body)
    if response.status_code == 200:
        return
    detail = errors(response)
    for error in detail:
        assert not INTERNAL.search(json.dumps(error["loc"]) + error["msg"]), error
        assert spec["type"] not in error["loc"], error
    places = [(tuple(error["loc"]), error["type"]) for error in detail]
    assert len(places) == len(set(places)), detail


def test_alternatives_with_different_negations_are_listed_without_them() -> None:
    assert (
        _either(
            [
                "Input should be a valid integer, not a string",
                "Input should be a valid number, not a string",
                "Input should be a valid list",
            ]
        )
        == "Input should be a valid integer or a valid number or a valid list"
    )
