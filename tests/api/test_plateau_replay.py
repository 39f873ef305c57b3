"""POST /v1/plateau/replay against PyTorch's own numbers (tests/golden/plateau.json)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas.numbers import NonFiniteFloat
from schemas.plateau import PlateauReplayRequest, PlateauReplayResponse, ReduceLROnPlateau
from service.config import Settings
from service.main import create_app

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "plateau.json"
FIXTURES: list[dict[str, Any]] = json.loads(GOLDEN.read_text(encoding="utf-8"))
ACCEPTED = [fixture for fixture in FIXTURES if "lr" in fixture]
REJECTED = [fixture for fixture in FIXTURES if "error" in fixture]
URL = "/v1/plateau/replay"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store="memory"))) as test_client:
        yield test_client


def post(client: TestClient, body: Any) -> tuple[int, Any]:
    response = client.post(URL, json=body)
    return response.status_code, response.json()


def locs(detail: Any) -> list[tuple[Any, ...]]:
    """The ``loc`` of every error in a 422 ``detail``."""
    return [tuple(error["loc"]) for error in detail]


def changed_steps(request_lr: float | list[float], rows: list[list[float]]) -> list[bool]:
    """Whether some group's LR differs from its previous value at each step."""
    start = request_lr if isinstance(request_lr, list) else [request_lr]
    previous = [float(lr) for lr in start]
    flags: list[bool] = []
    for column in zip(*rows, strict=True):
        flags.append(list(column) != previous)
        previous = list(column)
    return flags


# --- the golden fixtures --------------------------------------------------------------------


def test_golden_file_covers_the_required_corners() -> None:
    names = {fixture["name"] for fixture in ACCEPTED}
    assert len(ACCEPTED) >= 60
    for prefix in ("grid/", "nan/", "inf/first-plus-inf", "negative/", "max/best-zero", "eps/"):
        assert any(name.startswith(prefix) for name in names), prefix
    assert sum(len(f["request"]["metrics"]) == 200 for f in ACCEPTED) >= 8
    assert {f["field"] for f in REJECTED} >= {"factor", "mode", "threshold_mode", "min_lr"}


@pytest.mark.parametrize("fixture", ACCEPTED, ids=[f["name"] for f in ACCEPTED])
def test_replay_matches_torch(client: TestClient, fixture: dict[str, Any]) -> None:
    status, body = post(client, fixture["request"])
    assert status == 200, body
    assert len(body["lr"]) == len(fixture["lr"])
    for got, expected in zip(body["lr"], fixture["lr"], strict=True):
        assert got == pytest.approx(expected, rel=1e-12, abs=0.0)
    assert body["reduced"] == changed_steps(fixture["request"]["lr"], fixture["lr"])


@pytest.mark.parametrize("fixture", REJECTED, ids=[f["name"] for f in REJECTED])
def test_configuration_torch_rejects_is_422_naming_the_field(
    client: TestClient, fixture: dict[str, Any]
) -> None:
    status, body = post(client, fixture["request"])
    assert status == 422, body
    assert any(fixture["field"] in loc for loc in locs(body["detail"])), body


# --- validation messages --------------------------------------------------------------------


def test_factor_of_one_is_rejected_with_torchs_message(client: TestClient) -> None:
    status, body = post(
        client, {"schedule": {"type": "ReduceLROnPlateau", "factor": 1.0}, "metrics": [1]}
    )
    assert status == 422
    [error] = body["detail"]
    assert error["loc"] == ["body", "schedule", "factor"]
    assert error["msg"].startswith("Factor should be < 1.0.")


def test_min_lr_list_of_wrong_length_names_schedule_min_lr(client: TestClient) -> None:
    request = {
        "schedule": {"type": "ReduceLROnPlateau", "min_lr": [0.0, 0.0]},
        "lr": [0.1, 0.2, 0.3],
        "metrics": [1.0],
    }
    status, body = post(client, request)
    assert status == 422
    [error] = body["detail"]
    assert error["loc"] == ["body", "schedule", "min_lr"]
    assert "expected 3 min_lrs, got 2" in error["msg"]


@pytest.mark.parametrize(
    "schedule",
    [
        {"type": "ReduceLROnPlateau", "patience": -1},
        {"type": "ReduceLROnPlateau", "cooldown": 0, "eps": 0},
        {"type": "ReduceLROnPlateau", "factor": -3.5},
        {"type": "ReduceLROnPlateau", "threshold": -0.2, "threshold_mode": "abs"},
        {"type": "ReduceLROnPlateau", "min_lr": 5},
        {"type": "ReduceLROnPlateau", "min_lr": [0]},
    ],
)
def test_unusual_options_torch_accepts_are_accepted(
    client: TestClient, schedule: dict[str, Any]
) -> None:
    status, body = post(client, {"schedule": schedule, "lr": 0.1, "metrics": [1.0, 1.0]})
    assert status == 200, body


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (
            {"schedule": {"type": "ReduceLROnPlateau", "verbose": True}},
            ("body", "schedule", "verbose"),
        ),
        (
            {"schedule": {"type": "ReduceLROnPlateau", "last_epoch": 3}},
            ("body", "schedule", "last_epoch"),
        ),
        ({"schedule": {"type": "ReduceLROnPlateau"}, "steps": 10}, ("body", "steps")),
    ],
)
def test_unknown_fields_are_422(
    client: TestClient, body: dict[str, Any], loc: tuple[str, ...]
) -> None:
    status, answer = post(client, {"metrics": [1.0], **body})
    assert status == 422
    assert loc in locs(answer["detail"])
    assert {error["type"] for error in answer["detail"]} == {"extra_forbidden"}


def test_missing_type_is_422(client: TestClient) -> None:
    status, body = post(client, {"schedule": {"mode": "min"}, "metrics": [1.0]})
    assert status == 422
    assert ("body", "schedule", "type") in locs(body["detail"])


def test_other_schedule_type_is_422(client: TestClient) -> None:
    status, body = post(client, {"schedule": {"type": "StepLR"}, "metrics": [1.0]})
    assert status == 422
    assert ("body", "schedule", "type") in locs(body["detail"])


@pytest.mark.parametrize(
    ("field", "value"),
    [("mode", "avg"), ("threshold_mode", "x"), ("patience", 2.5), ("eps", "inf"), ("factor", None)],
)
def test_bad_option_values_name_the_field(client: TestClient, field: str, value: Any) -> None:
    schedule = {"type": "ReduceLROnPlateau", field: value}
    status, body = post(client, {"schedule": schedule, "metrics": [1.0]})
    assert status == 422
    assert ("body", "schedule", field) in locs(body["detail"])


@pytest.mark.parametrize("lr", [[], -0.1, [0.1, -0.1], "inf", "0.1x"])
def test_bad_lr_is_422(client: TestClient, lr: Any) -> None:
    status, body = post(
        client, {"schedule": {"type": "ReduceLROnPlateau"}, "lr": lr, "metrics": [1]}
    )
    assert status == 422
    assert all(loc[:2] == ("body", "lr") for loc in locs(body["detail"]))


def test_lr_defaults_to_0_001(client: TestClient) -> None:
    status, body = post(client, {"schedule": {"type": "ReduceLROnPlateau"}, "metrics": [1.0]})
    assert (status, body) == (200, {"lr": [[0.001]], "reduced": [False]})


# --- non-finite metrics ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling", ["inf", "+inf", "-inf", "nan", "Infinity", "-Infinity", "NaN", "INF", "+Infinity"]
)
def test_non_finite_metric_strings_are_accepted(client: TestClient, spelling: str) -> None:
    # Every non-finite first metric is a bad epoch in min mode except -inf, which becomes best.
    request = {
        "schedule": {"type": "ReduceLROnPlateau", "patience": 0},
        "lr": 1.0,
        "metrics": [spelling],
    }
    status, body = post(client, request)
    assert status == 200, body
    assert body["lr"] == ([[1.0]] if spelling.lower().startswith("-") else [[0.1]])


@pytest.mark.parametrize("bad", ["abc", "1.0", "", "infinite", "nanx", True, None, [1.0], {}])
def test_bad_metric_values_are_422_at_their_index(client: TestClient, bad: Any) -> None:
    status, body = post(client, {"schedule": {"type": "ReduceLROnPlateau"}, "metrics": [1.0, bad]})
    assert status == 422
    assert locs(body["detail"]) == [("body", "metrics", 1)]
    assert body["detail"][0]["type"] == "float_or_nonfinite"


def test_empty_metrics_are_422(client: TestClient) -> None:
    status, body = post(client, {"schedule": {"type": "ReduceLROnPlateau"}, "metrics": []})
    assert status == 422
    assert locs(body["detail"]) == [("body", "metrics")]


def test_non_finite_float_accepts_numbers_and_writes_non_finite_as_strings() -> None:
    adapter: TypeAdapter[float] = TypeAdapter(NonFiniteFloat)
    assert adapter.validate_python(3) == 3.0
    assert adapter.validate_json('"-Infinity"') == -math.inf
    assert math.isnan(adapter.validate_json('"NaN"'))
    assert adapter.dump_python(math.inf, mode="json") == "inf"
    assert adapter.dump_python(-math.inf, mode="json") == "-inf"
    assert adapter.dump_python(math.nan, mode="json") == "nan"
    assert adapter.dump_python(0.25, mode="json") == 0.25
    assert adapter.dump_json(math.nan) == b'"nan"'
    with pytest.raises(ValidationError):
        adapter.validate_python("0.25")


def test_non_finite_float_schema_is_a_number_or_one_of_three_strings() -> None:
    schema = TypeAdapter(NonFiniteFloat).json_schema()
    assert schema["anyOf"] == [
        {"type": "number"},
        {"type": "string", "enum": ["inf", "-inf", "nan"]},
    ]


# --- limits ---------------------------------------------------------------------------------


def test_more_values_than_max_values_is_413() -> None:
    with TestClient(create_app(Settings(store="memory", max_values=100))) as small:
        schedule = {"type": "ReduceLROnPlateau"}
        status, body = post(small, {"schedule": schedule, "lr": [0.1, 0.2], "metrics": [1.0] * 50})
        assert status == 200
        status, body = post(small, {"schedule": schedule, "lr": [0.1, 0.2], "metrics": [1.0] * 51})
        assert status == 413
        assert "102 values" in body["detail"]


def test_too_many_metrics_is_refused_before_computing() -> None:
    with TestClient(create_app(Settings(store="memory", max_values=1000))) as small:
        request = {"schedule": {"type": "ReduceLROnPlateau"}, "metrics": [0.5] * 300_000}
        started = time.perf_counter()
        status, _ = post(small, request)
        assert status == 413
        assert time.perf_counter() - started < 5.0


# --- documentation --------------------------------------------------------------------------


def test_openapi_offers_named_examples_that_all_work(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"][URL]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert len(examples) >= 2
    for name, example in examples.items():
        status, body = post(client, example["value"])
        assert status == 200, (name, body)


@pytest.mark.parametrize("model", [ReduceLROnPlateau, PlateauReplayRequest, PlateauReplayResponse])
def test_every_model_example_validates(model: type[BaseModel]) -> None:
    examples = model.model_json_schema()["examples"]
    assert examples
    for example in examples:
        model.model_validate(example)


def test_response_example_is_the_replay_of_the_request_example(client: TestClient) -> None:
    [request] = PlateauReplayRequest.model_json_schema()["examples"]
    [response] = PlateauReplayResponse.model_json_schema()["examples"]
    assert post(client, request) == (200, response)
