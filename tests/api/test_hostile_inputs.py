"""Hostile requests to POST /v1/schedules: each one gets a clean 4xx, never a 5xx or a hang.

Validation errors are 422 with FastAPI's ``{"detail": [{"loc": [...], ...}]}`` and must name
the offending field (API.md, "Operations"). pydantic puts union members and validator names
into ``loc`` (``["body", "schedule", "StepLR", "step_size"]``), so a field is "named" when its
path is a subsequence of some error's ``loc`` (or, for a check of several fields together,
reported at their object, when the message names it). A body that cannot be read as JSON at
all gets the documented 400 instead.

Options are enumerated from the schedule models' JSON schemas, so every integer, float and
boolean option of every schedule type (PyTorch's and the other libraries') is covered.

The last section starts ``python -m service`` for real: nesting and size attacks must neither
kill nor stall it, and the costliest requests the limits allow must neither time out nor stop
it from answering /healthz.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from schemas.schedules import SCHEDULE_MODELS
from service.config import Settings
from service.main import create_app

URL = "/v1/schedules"
ROOT = Path(__file__).resolve().parents[2]
REQUEST_FIELDS = ("lr", "steps", "start", "stride")
STEP_LR: dict[str, Any] = {"type": "StepLR", "step_size": 3}

Body = Any
Loc = tuple[str | int, ...]


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(Settings(store="memory"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def post(client: TestClient, body: Body, **kwargs: Any) -> httpx.Response:
    return client.post(URL, json=body, **kwargs)


def post_raw(
    client: TestClient, content: bytes | str, content_type: str | None = "application/json"
) -> httpx.Response:
    headers = {} if content_type is None else {"content-type": content_type}
    return client.post(URL, content=content, headers=headers)


def shown(response: httpx.Response) -> str:
    return f"{response.status_code} {response.text[:600]}"


def error_locs(response: httpx.Response) -> list[Loc]:
    """The ``loc`` of every error of a 422, after checking FastAPI's error shape."""
    assert response.status_code == 422, shown(response)
    assert response.headers["content-type"].startswith("application/json"), shown(response)
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, shown(response)
    for error in detail:
        assert isinstance(error["msg"], str) and error["msg"], shown(response)
    return [tuple(error["loc"]) for error in detail]


def names(loc: Loc, path: Loc) -> bool:
    """Whether ``path`` occurs in ``loc`` in order (other items may come between)."""
    remaining = iter(loc)
    return all(any(item == wanted for item in remaining) for wanted in path)


def blames(error: dict[str, Any], path: Loc) -> bool:
    """Whether a validation error is about ``body.<path>``: at that ``loc``, or, from a check of
    several fields together (reported at the enclosing object), naming the field in ``msg``."""
    loc = tuple(error["loc"])
    if names(loc, ("body", *path)):
        return True
    return bool(path) and names(loc, ("body", *path[:-1])) and str(path[-1]) in error["msg"]


def assert_names_field(response: httpx.Response, *path: str | int) -> None:
    """A 422 whose errors all sit in the body, one of them about ``body.<path>``."""
    locs = error_locs(response)
    assert all(loc[:1] == ("body",) for loc in locs), (locs, shown(response))
    detail = response.json()["detail"]
    assert any(blames(error, path) for error in detail), (path, locs, shown(response))


def assert_unreadable_or_names_field(response: httpx.Response, *path: str | int) -> None:
    """For a body that cannot be read as JSON at all (not UTF-8, nested deeper than the JSON
    parser goes): the documented 400, or a 422 ``json_invalid`` at the body. Else a 422
    naming ``body.<path>``."""
    if response.status_code == 400:
        assert response.headers["content-type"].startswith("application/json"), shown(response)
        assert response.json()["detail"], shown(response)
        return
    locs = error_locs(response)
    detail = response.json()["detail"]
    if all(error["type"] == "json_invalid" for error in detail):
        assert all(loc[:1] == ("body",) for loc in locs), shown(response)
        return
    assert_names_field(response, *path)


def assert_finite_curve(response: httpx.Response) -> None:
    assert response.status_code == 200, shown(response)
    document = response.json()
    for series in ("lr", "momentum"):
        rows = document[series] or []
        for row in rows:
            assert all(isinstance(v, float | int) and math.isfinite(v) for v in row), series


def with_field(model: type[BaseModel], field: str, value: object) -> dict[str, Any]:
    """The model's documented example with ``field`` set to ``value``."""
    spec = dict(_example(model))
    spec[field] = value
    return spec


def _example(model: type[BaseModel]) -> dict[str, Any]:
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    example = extra["examples"][0]  # type: ignore[index]
    assert isinstance(example, dict)
    return example


def _valid_value(model: type[BaseModel], field: str) -> object:
    """A value of ``field`` the service accepts: the example's, else the default (or None)."""
    example = _example(model)
    if field in example:
        return example[field]
    default = model.model_fields[field].default
    return None if default is PydanticUndefined else default


def _is_number(value: object) -> bool:
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(
        isinstance(item, int | float) and not isinstance(item, bool) for item in items
    )


def _json_types(schema: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    """JSON types a property schema accepts, with ``array`` items as ``array:<type>``."""
    if "$ref" in schema:
        return _json_types(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    found: set[str] = set()
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        found |= _json_types(option, defs)
    kind = schema.get("type")
    if kind == "array":
        found |= {f"array:{item}" for item in _json_types(schema.get("items", {}), defs)}
        found.add("array")
    elif isinstance(kind, str):
        found.add(kind)
    if "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        found |= {"string" for value in values if isinstance(value, str)}
    return found


def _spec_fields() -> list[tuple[type[BaseModel], str, set[str]]]:
    fields = []
    for model in SCHEDULE_MODELS:
        schema = model.model_json_schema()
        defs = schema.get("$defs", {})
        if "$ref" in schema:  # a recursive model: its own schema is one of the $defs
            schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
        for name, prop in schema["properties"].items():
            if name != "type":
                fields.append((model, name, _json_types(prop, defs)))
    return fields


SPEC_FIELDS = _spec_fields()
INTEGER_FIELDS = [(m, f, t) for m, f, t in SPEC_FIELDS if t & {"integer", "array:integer"}]
NUMBER_FIELDS = [(m, f, t) for m, f, t in SPEC_FIELDS if t & {"number", "array:number"}]
BOOLEAN_FIELDS = [(m, f, t) for m, f, t in SPEC_FIELDS if "boolean" in t]
NUMERIC_FIELDS = [
    (m, f, t)
    for m, f, t in SPEC_FIELDS
    if t & {"integer", "number"} or any(kind in t for kind in ("array:integer", "array:number"))
]


def _id(model: type[BaseModel], field: str, *_: object) -> str:
    return f"{model.__name__}.{field}"


def _ids(rows: list[tuple[Any, ...]]) -> list[str]:
    return [_id(*row) for row in rows]


def _as_list_if_needed(types: set[str], value: object, like: object = None) -> object:
    """``value`` itself for a field that takes a scalar; for a list-only field (milestones)
    a list of ``value`` as long as ``like`` (the example's list) is, so lengths still match."""
    if types & {"integer", "number", "boolean", "string"}:
        return value
    return [value] * (len(like) if isinstance(like, list) and like else 1)


def test_the_field_tables_cover_every_numeric_option() -> None:
    integers = {_id(m, f) for m, f, _ in INTEGER_FIELDS}
    numbers = {_id(m, f) for m, f, _ in NUMBER_FIELDS}
    assert {
        "StepLR.step_size",
        "MultiStepLR.milestones",
        "SequentialLR.milestones",
        "CosineAnnealingWarmRestarts.T_0",
        "CosineAnnealingWarmRestarts.T_mult",
        "OneCycleLR.total_steps",
        "CyclicLR.step_size_down",
    } <= integers
    assert {"ExponentialLR.gamma", "CyclicLR.base_lr", "OneCycleLR.pct_start"} <= numbers
    assert {"CyclicLR.cycle_momentum", "OneCycleLR.three_phase"} <= {
        _id(m, f) for m, f, _ in BOOLEAN_FIELDS
    }


# --- nesting ---------------------------------------------------------------------------------

COMPOSITES = {
    "ChainedScheduler": '{"type": "ChainedScheduler", "schedulers": [',
    "SequentialLR": '{"type": "SequentialLR", "milestones": [], "schedulers": [',
}


def nested_text(kind: str, depth: int) -> str:
    """A request whose schedule nests ``depth`` composites of ``kind``, as raw JSON text."""
    leaf = json.dumps(STEP_LR)
    spec = COMPOSITES[kind] * depth + leaf + "]}" * depth
    return '{"steps": 10, "schedule": ' + spec + "}"


def nested_spec(kind: str, depth: int) -> dict[str, Any]:
    spec: dict[str, Any] = dict(STEP_LR)
    for _ in range(depth):
        spec = json.loads(COMPOSITES[kind] + "]}") | {"schedulers": [spec]}
    return spec


@pytest.mark.parametrize("kind", sorted(COMPOSITES))
@pytest.mark.parametrize("depth", [9, 20, 100])
def test_deeply_nested_composites_are_rejected_naming_schedule(
    client: TestClient, kind: str, depth: int
) -> None:
    response = post(client, {"schedule": nested_spec(kind, depth), "steps": 10})
    assert_names_field(response, "schedule")


@pytest.mark.parametrize("kind", sorted(COMPOSITES))
@pytest.mark.parametrize("depth", [20, 100, 300, 1000, 10_000])
def test_deeply_nested_composites_as_raw_text_are_refused_with_a_4xx(
    client: TestClient, kind: str, depth: int
) -> None:
    response = post_raw(client, nested_text(kind, depth))
    assert_unreadable_or_names_field(response, "schedule")
    assert len(response.content) < 200_000, "the error should not echo the whole tree"


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_a_body_of_nothing_but_brackets_is_refused_with_a_4xx(
    client: TestClient, depth: int
) -> None:
    assert_unreadable_or_names_field(post_raw(client, "[" * depth + "]" * depth))


@pytest.mark.parametrize("kind", sorted(COMPOSITES))
def test_a_composite_with_5000_children_is_rejected_naming_schedulers(
    client: TestClient, kind: str
) -> None:
    # 5000 children fit the body gate's member limit (tests/api/test_body_limits.py goes past)
    spec = json.loads(COMPOSITES[kind] + "]}") | {"schedulers": [STEP_LR] * 5000}
    if kind == "SequentialLR":
        spec["milestones"] = list(range(1, 5000))
    response = post(client, {"schedule": spec, "steps": 10})
    assert_names_field(response, "schedule", "schedulers")


def test_more_schedulers_in_all_than_the_limit_is_rejected_naming_schedule(
    client: TestClient,
) -> None:
    inner = {"type": "ChainedScheduler", "schedulers": [STEP_LR] * 64}
    response = post(client, {"schedule": {**inner, "schedulers": [inner] * 64}, "steps": 10})
    assert_names_field(response, "schedule")


# --- huge and extreme numbers ----------------------------------------------------------------


@pytest.mark.parametrize("value", [10**30, -(10**30)], ids=["1e30", "-1e30"])
@pytest.mark.parametrize(("model", "field", "types"), INTEGER_FIELDS, ids=_ids(INTEGER_FIELDS))
def test_a_huge_int_in_an_integer_option_is_rejected_naming_it(
    client: TestClient, model: type[BaseModel], field: str, types: set[str], value: int
) -> None:
    spec = with_field(model, field, _as_list_if_needed(types, value, _valid_value(model, field)))
    response = post(client, {"schedule": spec, "steps": 100})
    assert_names_field(response, "schedule", field)


@pytest.mark.parametrize("value", [10**30, -(10**30)], ids=["1e30", "-1e30"])
@pytest.mark.parametrize("field", ["steps", "start", "stride"])
def test_a_huge_int_in_the_step_range_is_rejected_naming_it(
    client: TestClient, field: str, value: int
) -> None:
    body = {"schedule": STEP_LR, "steps": 100} | {field: value}
    assert_names_field(post(client, body), field)


def assert_finite_curve_or_named_error(response: httpx.Response, *path: str) -> None:
    """200 with finite values, or a 422 about the schedule: naming the field, or the schedule
    itself for a curve that PyTorch would compute but that stops being finite, or another of
    its fields when PyTorch fails on the combination (CyclicLR's ``triangular2`` mode with a
    step size of 1e-300 overflows ``2.0 ** cycle``: the error names ``mode``)."""
    if response.status_code == 200:
        assert_finite_curve(response)
        return
    locs = error_locs(response)
    assert all(loc[:1] == ("body",) for loc in locs), (locs, shown(response))
    detail = response.json()["detail"]
    assert any(blames(e, path) or names(tuple(e["loc"]), ("body", *path[:1])) for e in detail), (
        path,
        locs,
    )


@pytest.mark.parametrize("value", [1e308, -1e308, 5e-324], ids=["1e308", "-1e308", "5e-324"])
@pytest.mark.parametrize(("model", "field", "types"), NUMBER_FIELDS, ids=_ids(NUMBER_FIELDS))
def test_an_extreme_float_in_a_float_option_is_a_finite_curve_or_a_named_error(
    client: TestClient, model: type[BaseModel], field: str, types: set[str], value: float
) -> None:
    spec = with_field(model, field, _as_list_if_needed(types, value, _valid_value(model, field)))
    response = post(client, {"schedule": spec, "lr": 0.1, "steps": 100})
    assert_finite_curve_or_named_error(response, "schedule", field)


@pytest.mark.parametrize("value", [0, -1, 1e-300, 2**53 + 1], ids=repr)
@pytest.mark.parametrize(("model", "field", "types"), NUMERIC_FIELDS, ids=_ids(NUMERIC_FIELDS))
def test_an_ordinary_edge_value_in_a_numeric_option_is_a_finite_curve_or_a_named_error(
    client: TestClient, model: type[BaseModel], field: str, types: set[str], value: float
) -> None:
    """Zero, minus one, tiny, past 2**53: whatever the library does with it (compute, or
    raise: a division by zero is a configuration the library rejects), never a 500."""
    spec = with_field(model, field, _as_list_if_needed(types, value, _valid_value(model, field)))
    response = post(client, {"schedule": spec, "lr": 0.1, "steps": 100})
    assert_finite_curve_or_named_error(response, "schedule", field)


@pytest.mark.parametrize("value", [1e308, -1e308, 5e-324, [1e308, -1e308]])
def test_an_extreme_lr_is_a_finite_curve_or_a_named_error(client: TestClient, value: Any) -> None:
    response = post(client, {"schedule": STEP_LR, "lr": value, "steps": 100})
    assert_finite_curve_or_named_error(response, "lr")


NONFINITE_STRINGS = ["NaN", "Infinity", "-inf"]


@pytest.mark.parametrize("value", NONFINITE_STRINGS)
@pytest.mark.parametrize(
    ("model", "field", "types"),
    NUMERIC_FIELDS,
    ids=_ids(NUMERIC_FIELDS),
)
def test_a_nonfinite_string_in_a_numeric_option_is_rejected_naming_it(
    client: TestClient, model: type[BaseModel], field: str, types: set[str], value: str
) -> None:
    spec = with_field(model, field, _as_list_if_needed(types, value, _valid_value(model, field)))
    assert_names_field(post(client, {"schedule": spec, "steps": 100}), "schedule", field)


@pytest.mark.parametrize("value", NONFINITE_STRINGS)
@pytest.mark.parametrize("field", REQUEST_FIELDS)
def test_a_nonfinite_string_in_a_request_number_is_rejected_naming_it(
    client: TestClient, field: str, value: str
) -> None:
    body = {"schedule": STEP_LR, "steps": 100} | {field: value}
    assert_names_field(post(client, body), field)


# Python's json module (which FastAPI parses bodies with) reads the non-standard tokens NaN,
# Infinity and -Infinity, and reads a number beyond float range such as 1e999, which is valid
# JSON, as inf. None of these may reach a 500; 1e999 must be blamed on its field, and so
# should the tokens (or, since they are not JSON at all, on the body).
RAW_NONFINITE = ["NaN", "-Infinity", "1e999"]


def raw_body_with(body: dict[str, Any], token: str) -> str:
    return json.dumps(body).replace('"@@"', token)


def assert_raw_nonfinite_rejected(response: httpx.Response, token: str, *path: str) -> None:
    locs = error_locs(response)
    blamed = [loc for loc in locs if names(loc, ("body", *path))]
    if token.lstrip("-") in ("NaN", "Infinity"):
        blamed += [loc for loc in locs if len(loc) == 2 and loc[0] == "body"]
    assert blamed, (token, path, locs)


def assert_every_raw_nonfinite_rejected(
    client: TestClient, body: dict[str, Any], *path: str
) -> None:
    failures = []
    for token in RAW_NONFINITE:
        response = post_raw(client, raw_body_with(body, token))
        try:
            assert_raw_nonfinite_rejected(response, token, *path)
        except AssertionError as error:
            failures.append(f"{token}: {str(error)[:300]}")
    assert not failures, failures


@pytest.mark.parametrize(
    ("model", "field", "types"),
    NUMERIC_FIELDS,
    ids=_ids(NUMERIC_FIELDS),
)
def test_a_raw_nonfinite_number_in_an_option_is_rejected_without_a_server_error(
    client: TestClient, model: type[BaseModel], field: str, types: set[str]
) -> None:
    spec = with_field(model, field, _as_list_if_needed(types, "@@", _valid_value(model, field)))
    assert_every_raw_nonfinite_rejected(client, {"schedule": spec, "steps": 100}, "schedule", field)


@pytest.mark.parametrize("field", REQUEST_FIELDS)
def test_a_raw_nonfinite_number_in_the_request_is_rejected_without_a_server_error(
    client: TestClient, field: str
) -> None:
    body = {"schedule": STEP_LR, "steps": 100} | {field: "@@"}
    assert_every_raw_nonfinite_rejected(client, body, field)


# --- wrong types -------------------------------------------------------------------------------

WRONG_TYPES: dict[str, object] = {
    "object": {"a": 1},
    "string": "abc",
    "null": None,
    "nested-list": [[[]]],
}


def _wrong_values(types: set[str]) -> list[tuple[str, object]]:
    """Values of JSON types the field does not accept (a list of lists is never accepted)."""
    return [
        (name, value)
        for name, value in WRONG_TYPES.items()
        if name == "nested-list" or name not in types
    ]


SPEC_WRONG_TYPES = [
    (model, field, name, value)
    for model, field, types in SPEC_FIELDS
    for name, value in _wrong_values(types)
]


@pytest.mark.parametrize(
    ("model", "field", "kind", "value"),
    SPEC_WRONG_TYPES,
    ids=[f"{_id(m, f)}-{k}" for m, f, k, _ in SPEC_WRONG_TYPES],
)
def test_a_value_of_the_wrong_json_type_is_rejected_naming_the_option(
    client: TestClient, model: type[BaseModel], field: str, kind: str, value: object
) -> None:
    response = post(client, {"schedule": with_field(model, field, value), "steps": 100})
    assert_names_field(response, "schedule", field)


@pytest.mark.parametrize("value", [{"a": 1}, "abc", None, [[[]]]], ids=repr)
@pytest.mark.parametrize("field", REQUEST_FIELDS)
def test_a_request_number_of_the_wrong_json_type_is_rejected_naming_it(
    client: TestClient, field: str, value: object
) -> None:
    body = {"schedule": STEP_LR, "steps": 100} | {field: value}
    assert_names_field(post(client, body), field)


# PyTorch receives what JSON decodes to: a string. StepLR(step_size="3") fails at its first
# step (`int % str`), ExponentialLR(gamma="0.5") at `lr * "0.5"`, SGD(lr="0.1") at `lr < 0.0`;
# and CyclicLR(cycle_momentum="no") would cycle momentum, since a non-empty string is true.
# API.md: every configuration PyTorch rejects must be rejected, naming the field; a numeric
# string must not be quietly converted (nor "no" read as False).
NUMBERS_WITH_A_VALID_VALUE = [
    (model, field, types)
    for model, field, types in NUMERIC_FIELDS
    if _is_number(_valid_value(model, field))
]


def _as_string(value: object) -> object:
    return [str(item) for item in value] if isinstance(value, list) else str(value)


@pytest.mark.parametrize(
    ("model", "field", "types"), NUMBERS_WITH_A_VALID_VALUE, ids=_ids(NUMBERS_WITH_A_VALID_VALUE)
)
def test_a_valid_number_written_as_a_string_is_rejected_naming_the_option(
    client: TestClient, model: type[BaseModel], field: str, types: set[str]
) -> None:
    valid = with_field(model, field, _valid_value(model, field))
    assert post(client, {"schedule": valid, "steps": 100}).status_code == 200
    spec = with_field(model, field, _as_string(_valid_value(model, field)))
    assert_names_field(post(client, {"schedule": spec, "steps": 100}), "schedule", field)


@pytest.mark.parametrize(
    ("field", "value"), [("lr", "0.1"), ("steps", "10"), ("start", "1"), ("stride", "2")]
)
def test_a_valid_request_number_written_as_a_string_is_rejected_naming_it(
    client: TestClient, field: str, value: str
) -> None:
    body = {"schedule": STEP_LR, "steps": 100} | {field: value}
    assert_names_field(post(client, body), field)


@pytest.mark.parametrize("value", ["no", "true"])
@pytest.mark.parametrize(("model", "field", "types"), BOOLEAN_FIELDS, ids=_ids(BOOLEAN_FIELDS))
def test_a_string_is_not_taken_for_a_boolean(
    client: TestClient, model: type[BaseModel], field: str, types: set[str], value: str
) -> None:
    response = post(client, {"schedule": with_field(model, field, value), "steps": 100})
    assert_names_field(response, "schedule", field)


def test_booleans_are_python_ints_as_in_pytorch(client: TestClient) -> None:
    """``True`` is ``1`` in Python, so StepLR(step_size=True) is what PyTorch accepts: the
    OpenAPI fuzz test relies on this (tests/api/test_openapi_fuzz.py)."""
    boolean = post(client, {"schedule": {"type": "StepLR", "step_size": True}, "steps": 5})
    integer = post(client, {"schedule": {"type": "StepLR", "step_size": 1}, "steps": 5})
    assert boolean.status_code == 200, shown(boolean)
    assert boolean.json()["lr"] == integer.json()["lr"]


@pytest.mark.parametrize(
    "schedule",
    [None, "StepLR", 3, [], [STEP_LR], {}, {"step_size": 3}, {"type": None, "step_size": 3}],
    ids=repr,
)
def test_a_schedule_that_is_not_a_spec_is_rejected_naming_schedule(
    client: TestClient, schedule: object
) -> None:
    assert_names_field(post(client, {"schedule": schedule, "steps": 10}), "schedule")


@pytest.mark.parametrize(
    "kind",
    ["ReduceLROnPlateau", "stepLR", "StepLR ", "", "x" * 10_000, 3, ["StepLR"]],
    ids=lambda kind: repr(kind)[:20],
)
def test_an_unknown_schedule_type_is_rejected_naming_schedule(
    client: TestClient, kind: object
) -> None:
    response = post(client, {"schedule": {"type": kind, "step_size": 3}, "steps": 10})
    assert_names_field(response, "schedule")


@pytest.mark.parametrize(
    "field",
    ["last_epoch", "verbose", "optimizer", "__class__", "x" * 1000],
    ids=lambda field: field[:20],
)
def test_an_unknown_option_is_rejected_naming_it(client: TestClient, field: str) -> None:
    response = post(client, {"schedule": STEP_LR | {field: 1}, "steps": 10})
    assert_names_field(response, "schedule", field)


def test_an_unknown_request_field_is_rejected_naming_it(client: TestClient) -> None:
    assert_names_field(post(client, {"schedule": STEP_LR, "steps": 10, "epochs": 3}), "epochs")


def test_a_missing_steps_is_rejected_naming_it(client: TestClient) -> None:
    assert_names_field(post(client, {"schedule": STEP_LR}), "steps")


# --- sizes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("groups", [1025, 5000])
def test_more_param_groups_than_the_limit_are_rejected_naming_lr(
    client: TestClient, groups: int
) -> None:
    assert_names_field(post(client, {"schedule": STEP_LR, "lr": [0.1] * groups, "steps": 10}), "lr")


@pytest.mark.parametrize("lr", [[], [[0.1]], [0.1, None], [0.1, {}]], ids=repr)
def test_a_malformed_lr_list_is_rejected_naming_lr(client: TestClient, lr: list[Any]) -> None:
    assert_names_field(post(client, {"schedule": STEP_LR, "lr": lr, "steps": 10}), "lr")


def test_a_lambda_per_group_beyond_the_group_limit_is_rejected_naming_lr_lambda(
    client: TestClient,
) -> None:
    spec = {"type": "LambdaLR", "lr_lambda": ["0.9"] * 5000}
    response = post(client, {"schedule": spec, "lr": [0.1] * 5000, "steps": 10})
    assert_names_field(response, "schedule", "lr_lambda")


def test_100k_milestones_are_rejected_naming_milestones(client: TestClient) -> None:
    spec = {"type": "MultiStepLR", "milestones": list(range(100_000))}
    assert_names_field(post(client, {"schedule": spec, "steps": 10}), "schedule", "milestones")


def test_50k_sequential_milestones_are_rejected_naming_milestones(client: TestClient) -> None:
    # within the body gate's item limit (tests/api/test_body_limits.py goes past it)
    spec = {"type": "SequentialLR", "schedulers": [STEP_LR] * 2, "milestones": list(range(50_000))}
    assert_names_field(post(client, {"schedule": spec, "steps": 10}), "schedule", "milestones")


# --- lr_lambda and scale_fn strings ------------------------------------------------------------

HOSTILE_EXPRESSIONS = {
    "import": "__import__('os')",
    "import-in-lambda": "lambda epoch: __import__('os').system('true')",
    "class": "().__class__",
    "subclasses": "().__class__.__bases__[0].__subclasses__()",
    "builtins": "__builtins__",
    "math-attr": "math.__dict__",
    "power-tower": "9**9**9",
    "argument-tower": "epoch ** 9 ** 9 ** 9",
    "huge-pow": "pow(epoch, 10**9)",
    "5000-chars": "epoch+" * 833 + "1",
    "10000-open-parens": "(" * 10_000,
    "deep-parens": "(" * 5000 + "epoch" + ")" * 5000,
    "long-chain": "+".join(["epoch"] * 400),
    "string-repeat": "'a' * 10**9",
    "list-repeat": "[1] * 10**9",
    "lambda-in-lambda": "lambda e: (lambda: 1)()",
    "generator": "lambda epoch: (yield)",
    "fstring": "f'{epoch}'",
    "walrus": "(x := epoch)",
    "statements": "import os",
    "two-statements": "epoch; 1",
    "nul": "epoch\x00",
    "empty": "",
    "two-args": "lambda a, b: a",
    "no-args": "lambda: 1",
    "starargs": "lambda *a: 1",
    "unknown-name": "open",
    "unknown-call": "eval('1')",
}


@pytest.mark.parametrize("source", HOSTILE_EXPRESSIONS.values(), ids=HOSTILE_EXPRESSIONS.keys())
@pytest.mark.parametrize(
    ("kind", "field", "extra"),
    [
        ("LambdaLR", "lr_lambda", {}),
        ("MultiplicativeLR", "lr_lambda", {}),
        ("CyclicLR", "scale_fn", {"base_lr": 0.01, "max_lr": 0.1}),
    ],
    ids=["LambdaLR", "MultiplicativeLR", "CyclicLR"],
)
def test_a_hostile_expression_is_rejected_naming_its_field(
    client: TestClient, kind: str, field: str, extra: dict[str, Any], source: str
) -> None:
    spec = {"type": kind, field: source, **extra}
    started = time.perf_counter()
    response = post(client, {"schedule": spec, "steps": 100})
    assert_names_field(response, "schedule", field)
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("source", ["__import__('os')", "().__class__", "9**9**9"])
def test_a_hostile_expression_in_a_per_group_list_is_rejected_naming_lr_lambda(
    client: TestClient, source: str
) -> None:
    spec = {"type": "LambdaLR", "lr_lambda": ["0.9", source]}
    response = post(client, {"schedule": spec, "lr": [0.1, 0.2], "steps": 10})
    assert_names_field(response, "schedule", "lr_lambda")


@pytest.mark.parametrize(
    ("source", "quoted"),
    [("__import__('os')", "__import__"), ("().__class__", "__class__"), ("9**9**9", "9**9**9")],
)
def test_the_error_points_at_the_offending_part(
    client: TestClient, source: str, quoted: str
) -> None:
    response = post(client, {"schedule": {"type": "LambdaLR", "lr_lambda": source}, "steps": 10})
    assert_names_field(response, "schedule", "lr_lambda")
    assert any(quoted in error["msg"] for error in response.json()["detail"]), shown(response)


# --- the step range ----------------------------------------------------------------------------

COMPOSITE = {"type": "ChainedScheduler", "schedulers": [STEP_LR]}
MULTIPLICATIVE = {"type": "MultiplicativeLR", "lr_lambda": "lambda k: 0.9 if k < 10 else 1.0"}


@pytest.mark.parametrize(
    "schedule", [STEP_LR, COMPOSITE, MULTIPLICATIVE], ids=["leaf", "composite", "history"]
)
@pytest.mark.parametrize("steps", [10**12, 10**15, 10**16, -1], ids=["1e12", "1e15", "1e16", "-1"])
def test_an_impossible_number_of_steps_is_rejected_naming_steps(
    client: TestClient, schedule: dict[str, Any], steps: int
) -> None:
    started = time.perf_counter()
    assert_names_field(post(client, {"schedule": schedule, "steps": steps}), "steps")
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("schedule", [COMPOSITE, MULTIPLICATIVE], ids=["composite", "history"])
def test_one_value_far_out_of_a_stepped_schedule_is_rejected_naming_steps(
    client: TestClient, schedule: dict[str, Any]
) -> None:
    """A composite or history-dependent schedule must be stepped up to ``start``: one value at
    step 10**15 costs 10**15 steps, which the stepping budget refuses."""
    body = {"schedule": schedule, "steps": 10**15, "start": 10**15 - 1}
    started = time.perf_counter()
    assert_names_field(post(client, body), "steps")
    assert time.perf_counter() - started < 2.0


def test_one_value_far_out_of_a_closed_form_schedule_is_computed(client: TestClient) -> None:
    schedule = {"type": "LambdaLR", "lr_lambda": "0.5"}
    response = post(client, {"schedule": schedule, "steps": 10**15, "start": 10**15 - 1})
    assert_finite_curve(response)
    assert response.json()["lr"] == [[0.0005]]


@pytest.mark.parametrize(("field", "value"), [("stride", 0), ("stride", -1), ("start", -1)])
def test_a_stride_below_one_or_a_negative_start_is_rejected_naming_it(
    client: TestClient, field: str, value: int
) -> None:
    assert_names_field(post(client, {"schedule": STEP_LR, "steps": 10, field: value}), field)


EMPTY_RANGES = [(20, 10, 1), (10, 10, 1), (10**15, 0, 7)]


@pytest.mark.parametrize(("start", "steps", "stride"), EMPTY_RANGES)
@pytest.mark.parametrize(
    ("schedule", "momentum"),
    [
        (STEP_LR, False),
        (COMPOSITE, False),
        ({"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1}, True),
    ],
    ids=["leaf", "composite", "momentum"],
)
def test_an_empty_step_range_is_an_empty_curve(
    client: TestClient,
    schedule: dict[str, Any],
    momentum: bool,
    start: int,
    steps: int,
    stride: int,
) -> None:
    """``range(start, steps, stride)`` may be empty: API.md returns values for exactly that
    range, so the answer is 200 with one empty row per param group, not an error."""
    body = {
        "schedule": schedule,
        "lr": [0.1, 0.2],
        "steps": steps,
        "start": start,
        "stride": stride,
    }
    response = post(client, body)
    assert response.status_code == 200, shown(response)
    document = response.json()
    assert {key: document[key] for key in ("start", "stop", "stride", "groups", "lr")} == {
        "start": start,
        "stop": steps,
        "stride": stride,
        "groups": 2,
        "lr": [[], []],
    }
    assert document["momentum"] == ([[], []] if momentum else None)
    if start >= steps:  # steps taken for a count: said so
        [warning] = document["warnings"]
        assert f"start={start} >= steps={steps}" in warning and "not how many" in warning
    else:
        assert document["warnings"] == []
    npy = post(client, body, headers={"accept": "application/x-npy"})
    assert npy.status_code == 200, shown(npy)
    assert np.load(io.BytesIO(npy.content)).shape == (2, 0)
    raw = post(client, body, headers={"accept": "application/octet-stream"})
    assert (raw.status_code, raw.content, raw.headers["x-shape"]) == (200, b"", "2,0")


# --- bodies that are not a request -------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"not json", b"{", b'{"schedule": ', b"{'schedule': 1}", b'{"steps": 10,}', b"\x8f#O\xab\x10"],
    ids=["text", "brace", "truncated", "single-quotes", "trailing-comma", "invalid-utf8"],
)
def test_a_body_that_is_not_json_is_refused_with_a_4xx(client: TestClient, content: bytes) -> None:
    assert_unreadable_or_names_field(post_raw(client, content))


@pytest.mark.parametrize(
    "content", [b"", b"null", b"[]", b"[1, 2]", b"3", b'"x"', b"true"], ids=repr
)
def test_a_body_that_is_not_an_object_is_rejected_naming_body(
    client: TestClient, content: bytes
) -> None:
    assert_names_field(post_raw(client, content))


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
    ],
    ids=repr,
)
def test_a_valid_body_with_a_non_json_content_type_is_refused(
    client: TestClient, content_type: str | None
) -> None:
    """FastAPI reads only JSON bodies; anything else is 415, or 422 naming the body."""
    response = post_raw(client, json.dumps({"schedule": STEP_LR, "steps": 10}), content_type)
    if response.status_code != 415:
        assert_names_field(response)


def test_a_body_over_the_size_limit_is_refused_with_413() -> None:
    app = create_app(Settings(store="memory", max_body_bytes=4096))
    with TestClient(app, raise_server_exceptions=False) as small:
        body = {"schedule": {"type": "MultiStepLR", "milestones": list(range(2000))}, "steps": 10}
        response = small.post(URL, json=body)
    assert response.status_code == 413, shown(response)


def test_an_unacceptable_accept_header_is_refused_with_406(client: TestClient) -> None:
    response = post(client, {"schedule": STEP_LR, "steps": 10}, headers={"accept": "text/html"})
    assert response.status_code == 406, shown(response)


@pytest.mark.parametrize("series", ["bogus", "", "lr" * 1000])
def test_an_unknown_series_is_rejected_naming_it(client: TestClient, series: str) -> None:
    response = client.post(URL, params={"series": series}, json={"schedule": STEP_LR, "steps": 10})
    assert any(names(loc, ("query", "series")) for loc in error_locs(response)), shown(response)


# --- cost and memory ---------------------------------------------------------------------------


def worst_case_expression(variant: int) -> str:
    """Near the limits of the expression language (1000 characters, 200 nodes) and costly to
    compile; ``variant`` makes each one distinct so that no cache helps."""
    return "min(" + ",".join(f"epoch**{i % 9}.0000" for i in range(1, 65)) + f",{variant})"


def test_a_memory_hungry_expression_stays_within_a_bounded_working_set() -> None:
    """API.md: the value limit is enforced "never by running out of memory". With
    LRSCHED_MAX_VALUES = 1,000,000 (8 MB of float64 output), one request may hold at most
    256 MiB at once (32 float64 arrays of the output's size), whatever the expression: 2.5 GiB
    at the default limit of 10,000,000 values. (A 448-character expression of sines and
    cosines peaks near 80 MiB here; so does a 10,000-milestone MultiStepLR.)"""
    source = "min(" + ", ".join(f"epoch*{i}" for i in range(66)) + ")"
    app = create_app(Settings(store="memory", max_values=1_000_000))
    with TestClient(app, raise_server_exceptions=False) as small:
        tracemalloc.start()
        try:
            response = small.post(
                URL,
                json={"schedule": {"type": "LambdaLR", "lr_lambda": source}, "steps": 1_000_000},
                headers={"accept": "application/x-npy"},
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert response.status_code in (200, 413, 422), shown(response)
    assert peak < 256 * 2**20, f"peak {peak / 2**20:.0f} MiB for 1,000,000 values"


# --- the real process --------------------------------------------------------------------------

DEADLINE = 15.0
"""LRSCHED_REQUEST_TIMEOUT_SECONDS of the server the costliest requests go to (the default is
30 s): past it the service answers 504. The heaviest legitimate requests (10,000,000 values of
a closed-form schedule, as JSON) take about 6 s on 2 cores."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """``python -m service`` on a free loopback port with the memory store."""

    def __init__(self, log: Path, **settings: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LRSCHED_")} | {
            "LRSCHED_STORE": "memory",
            "LRSCHED_HOST": "127.0.0.1",
            "LRSCHED_PORT": str(self.port),
            "PYTHONPATH": str(ROOT),
        }
        env |= {f"LRSCHED_{name.upper()}": value for name, value in settings.items()}
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.log = log

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"the server did not start: {self.log.read_text()[-3000:]}")

    def assert_alive(self) -> None:
        assert self.process.poll() is None, f"the server died: {self.log.read_text()[-3000:]}"
        started = time.monotonic()
        response = httpx.get(f"{self.url}/healthz", timeout=5.0)
        assert response.status_code == 200
        assert time.monotonic() - started < 2.0, "the event loop is blocked"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("live") / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _nested_request(kind: str, depth: int) -> bytes:
    return nested_text(kind, depth).encode()


LIVE_ATTACKS: dict[str, Callable[[], bytes]] = {
    **{
        f"{kind}-depth-{depth}": (lambda kind=kind, depth=depth: _nested_request(kind, depth))
        for kind in COMPOSITES
        for depth in (20, 100, 1000, 10_000, 100_000)
    },
    "brackets-1M": lambda: b"[" * 1_000_000 + b"]" * 1_000_000,
    "10000-children": lambda: json.dumps(
        {"schedule": {"type": "ChainedScheduler", "schedulers": [STEP_LR] * 10_000}, "steps": 10}
    ).encode(),
    "100k-milestones": lambda: json.dumps(
        {"schedule": {"type": "MultiStepLR", "milestones": list(range(100_000))}, "steps": 10}
    ).encode(),
    "5000-groups": lambda: json.dumps(
        {"schedule": STEP_LR, "lr": [0.1] * 5000, "steps": 10}
    ).encode(),
    "steps-1e16": lambda: json.dumps({"schedule": COMPOSITE, "steps": 10**16}).encode(),
    "nan-token": lambda: b'{"schedule": {"type": "ExponentialLR", "gamma": NaN}, "steps": 10}',
    "1e999": lambda: (
        b'{"schedule": {"type": "ExponentialLR", "gamma": 0.9}, "lr": 1e999, "steps": 10}'
    ),
    "invalid-utf8": lambda: b'{"schedule": "\xff\xfe\x8f", "steps": 10}',
}


@pytest.mark.parametrize("attack", LIVE_ATTACKS.keys())
def test_the_live_server_answers_a_hostile_body_with_a_4xx_and_survives(
    live: LiveServer, attack: str
) -> None:
    response = httpx.post(
        f"{live.url}{URL}",
        content=LIVE_ATTACKS[attack](),
        headers={"content-type": "application/json"},
        timeout=DEADLINE,
    )
    assert 400 <= response.status_code < 500, f"{response.status_code} {response.text[:500]}"
    assert response.json()["detail"]
    live.assert_alive()


def test_the_live_server_refuses_a_streamed_body_over_16_mib_with_413(live: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"schedule": {"type": "MultiStepLR", "milestones": [1'
        for _ in range(17 * 1024):
            yield b",1" * 512
        yield b"]}, " + b'"steps": 10}'

    response = httpx.post(
        f"{live.url}{URL}",
        content=chunks(),
        headers={"content-type": "application/json"},
        timeout=DEADLINE,
    )
    assert response.status_code == 413, f"{response.status_code} {response.text[:500]}"
    live.assert_alive()


COSTLY_REQUESTS: dict[str, dict[str, Any]] = {
    # 1024 distinct lr_lambdas near the language's limits: a 1 MB body (a 16th of the body
    # limit) that asks for one step per group.
    "1024-worst-case-lambdas": {
        "schedule": {
            "type": "LambdaLR",
            "lr_lambda": [worst_case_expression(group) for group in range(1024)],
        },
        "lr": [0.1] * 1024,
        "steps": 1,
    },
    # 64 stepped schedulers with 200-node lambdas, at the stepping budget
    # (8 x LRSCHED_MAX_VALUES scheduler steps), as .npy.
    "64-chained-costly-lambdas": {
        "schedule": {
            "type": "ChainedScheduler",
            "schedulers": [
                {
                    "type": "MultiplicativeLR",
                    "lr_lambda": "min(1.0, max(0.0, "
                    + " + ".join(f"sin(epoch*{i})*cos(epoch/{i + 1})" for i in range(15))
                    + "))",
                }
            ]
            * 64,
        },
        "steps": 1_250_000,
    },
}


@pytest.fixture(scope="module")
def costly_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of its own: a request that overruns keeps a worker thread busy after the
    client gives up, which must not slow the other tests down."""
    log = tmp_path_factory.mktemp("costly") / "server.log"
    server = LiveServer(log, request_timeout_seconds=str(DEADLINE))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_the_costliest_requests_the_limits_allow_neither_time_out_nor_stall_the_server(
    costly_live: LiveServer,
) -> None:
    """Bounded size and cost (API.md): whatever a request holds within the documented limits,
    the answer is a curve, or a 4xx refusing the cost up front, within the service's own
    request time limit; never its 504 (the abandoned work would go on burning a core). And
    while such requests run, the process keeps answering: /healthz within 2 s."""

    def send(name: str) -> str | None:
        started = time.monotonic()
        try:
            response = httpx.post(
                f"{costly_live.url}{URL}",
                json=COSTLY_REQUESTS[name],
                headers={"accept": "application/x-npy"},
                timeout=DEADLINE + 10,
            )
        except httpx.TimeoutException:
            return f"{name}: no answer at all within {DEADLINE + 10} s"
        elapsed = time.monotonic() - started
        if response.status_code >= 500:
            return f"{name}: {response.status_code} after {elapsed:.1f} s {response.text[:200]}"
        return None

    def probe_health(answers: list[Future[str | None]]) -> list[str]:
        stalls = []
        while not all(answer.done() for answer in answers):
            started = time.monotonic()
            try:
                httpx.get(f"{costly_live.url}/healthz", timeout=2.0).raise_for_status()
            except httpx.HTTPError as error:
                stalls.append(f"/healthz at +{started - began:.0f} s: {type(error).__name__}")
            time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))
        return stalls

    began = time.monotonic()
    with ThreadPoolExecutor(len(COSTLY_REQUESTS) + 1) as pool:
        answers = [pool.submit(send, name) for name in COSTLY_REQUESTS]
        health = pool.submit(probe_health, answers)
        problems = [p for p in (answer.result() for answer in answers) if p is not None]
        stalls = health.result()
    assert not problems + stalls, problems + stalls
