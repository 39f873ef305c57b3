"""No strings taken for numbers or booleans, the same from parsed JSON and from raw bytes.

The rule (schemas/numbers.py): an integer or number option refuses strings of any content
(``"3"``, ``"0.5"``, ``"inf"``) and keeps pydantic's other lax conversions: ``true``/``false``
are the ints 1/0, as in Python and so in PyTorch, and a float option takes a JSON integer. A
boolean option takes ``true``, ``false``, ``0`` and ``1`` and nothing else. The non-finite
spellings of a metric or a plateau ``best`` (``"inf"``, ``"nan"``) are unchanged.

FastAPI parses a body and then validates it (``model_validate``); a route may instead
validate the raw bytes (``model_validate_json``). Every check here runs both ways and requires
the same outcome: the same value, or the same errors (``loc``, ``type``, ``msg``).

Fields are enumerated from the request models' JSON schemas, so a new numeric or boolean
option declared without the markers fails here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

from schemas.families.composition import Segment
from schemas.families.optax import OptaxPiecewiseConstant, SgdrCycle
from schemas.plateau import PlateauReplayRequest, ReduceLROnPlateau
from schemas.pytorch import CyclicLR, ExponentialLR, StepLR
from schemas.requests import ScheduleRequest
from schemas.schedules import SCHEDULE_MODELS
from schemas.sessions import PlateauStateDict, ReportRequest, SessionCreate
from service.api.plot import PlotRequest
from service.config import Settings
from service.main import create_app
from tests.api.test_hostile_inputs import assert_names_field, shown

STEP_LR: dict[str, Any] = {"type": "StepLR", "step_size": 3}
STATE_DICT: dict[str, Any] = {
    "factor": 0.5,
    "min_lrs": [0.0],
    "patience": 2,
    "cooldown": 1,
    "eps": 1e-8,
    "last_epoch": 4,
    "_last_lr": [0.1],
    "mode": "min",
    "threshold": 1e-4,
    "threshold_mode": "rel",
    "best": "inf",
    "cooldown_counter": 0,
    "num_bad_epochs": 1,
}
"""A PyTorch ``ReduceLROnPlateau.state_dict()`` as JSON (the model has no documented example)."""

Error = tuple[tuple[str | int, ...], str, str]
"""An error's ``loc``, ``type`` and ``msg``."""


# --- validating both ways ----------------------------------------------------------------------


def _example(model: type[BaseModel]) -> dict[str, Any]:
    if model is PlateauStateDict:
        return dict(STATE_DICT)
    if model is PlotRequest:
        return {"schedule": STEP_LR, "steps": 10}
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict), model
    example = extra["examples"][0]  # type: ignore[index]
    assert isinstance(example, dict), model
    return dict(example)


def validate_both_ways(model: type[BaseModel], document: Any) -> dict[str, Any] | list[Error]:
    """The model as JSON, or its errors, from validating ``document`` as Python data and as
    JSON bytes; the two must agree exactly (values with their JSON types, errors with their
    locations, types and messages)."""
    outcomes: list[dict[str, Any] | list[Error]] = []
    for raw in (False, True):
        try:
            if raw:
                validated = model.model_validate_json(json.dumps(document))
            else:
                validated = model.model_validate(document)
            outcomes.append(json.loads(validated.model_dump_json(by_alias=True)))
        except ValidationError as error:
            outcomes.append([(tuple(e["loc"]), e["type"], e["msg"]) for e in error.errors()])
    python, json_bytes = outcomes
    assert _worded_alike(python) == _worded_alike(json_bytes), (document, python, json_bytes)
    return python


def _worded_alike(outcome: dict[str, Any] | list[Error]) -> object:
    """The outcome without the wording of ``list_type``/``tuple_type`` errors: pydantic says
    "a valid list" or "a valid tuple" for Python input and "a valid array" for JSON, the one
    difference it makes between the two ways (and not about numbers)."""
    if isinstance(outcome, dict):
        return outcome
    arrays = ("list_type", "tuple_type")
    return [(loc, kind, "" if kind in arrays else msg) for loc, kind, msg in outcome]


def accepted(model: type[BaseModel], document: dict[str, Any]) -> dict[str, Any]:
    """The validated model as JSON, after checking that both ways accept ``document``."""
    outcome = validate_both_ways(model, document)
    assert isinstance(outcome, dict), (model.__name__, document, outcome)
    return outcome


def rejected(model: type[BaseModel], document: dict[str, Any]) -> list[Error]:
    """The errors, after checking that both ways reject ``document``."""
    outcome = validate_both_ways(model, document)
    assert isinstance(outcome, list) and outcome, (model.__name__, document, outcome)
    return outcome


def assert_rejected_at(
    model: type[BaseModel], document: dict[str, Any], field: str, message: str
) -> None:
    """Both ways reject ``document`` with errors about ``field`` only, one saying ``message``."""
    errors = rejected(model, document)
    assert all(loc[:1] == (field,) for loc, _, _ in errors), errors
    assert any(message in msg for _, _, msg in errors), errors


# --- every number and boolean of every request model -------------------------------------------

REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    *SCHEDULE_MODELS,
    Segment,
    SgdrCycle,
    ScheduleRequest,
    PlotRequest,
    ReduceLROnPlateau,
    PlateauReplayRequest,
    SessionCreate,
    PlateauStateDict,
    ReportRequest,
)
"""Every model a request body is validated with."""


class Option(NamedTuple):
    """A number or boolean field of a request model: its JSON types and a valid value (None
    if it has none without other options: it defaults to null)."""

    model: type[BaseModel]
    name: str
    types: frozenset[str]
    valid: object

    @property
    def id(self) -> str:
        return f"{self.model.__name__}.{self.name}"


def _json_types(schema: dict[str, Any]) -> set[str]:
    """JSON types a property accepts, list items as ``array:<type>`` (nested models skipped)."""
    found: set[str] = set()
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        found |= _json_types(option)
    if schema.get("type") == "array":
        for items in [schema.get("items", {}), *schema.get("prefixItems", [])]:
            found |= {f"array:{kind}" for kind in _json_types(items)}
    elif isinstance(schema.get("type"), str):
        found.add(schema["type"])
    return found


def _default(model: type[BaseModel], name: str) -> object:
    for key, info in model.model_fields.items():
        if name in (key, info.alias):
            return None if info.default is PydanticUndefined else info.default
    raise KeyError(name)


def _fields() -> list[Option]:
    """Every property that takes a number or boolean (or a list of them) and no string: the
    non-finite numbers (metrics, ``best``) take "inf", "-inf" and "nan" by design."""
    found = []
    for model in REQUEST_MODELS:
        schema = model.model_json_schema()
        if "$ref" in schema:  # a recursive model: its own schema is one of the $defs
            schema = schema["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
        example = _example(model)
        for name, prop in schema["properties"].items():
            types = frozenset(_json_types(prop))
            if types & _NUMBERS_AND_BOOLEANS and not types & {"string", "array:string"}:
                valid = example.get(name, _default(model, name))
                found.append(Option(model, name, types, valid))
    return found


_NUMBERS_AND_BOOLEANS = {
    f"{prefix}{kind}" for prefix in ("", "array:") for kind in ("integer", "number", "boolean")
}


FIELDS = _fields()
VALID_FIELDS = [field for field in FIELDS if field.valid is not None]
BOOLEANS = [field for field in FIELDS if "boolean" in field.types]


def _params(fields: list[Option]) -> list[Any]:
    return [pytest.param(field, id=field.id) for field in fields]


def _as_string(field: Option) -> object:
    """A string where the field wants a number or boolean: its valid value written as one
    (a list of such strings for a list), else a plausible one."""
    if isinstance(field.valid, list | tuple):
        return [json.dumps(item) for item in field.valid]
    if field.valid is not None:
        return json.dumps(field.valid)
    sample = "true" if "boolean" in field.types else "3" if "integer" in field.types else "0.5"
    return sample if field.types & {"integer", "number", "boolean"} else [sample]


def test_the_field_table_covers_every_kind_of_request_model() -> None:
    assert {
        "StepLR.step_size",
        "CyclicLR.cycle_momentum",
        "CyclicLR.base_lr",
        "MultiStepLR.milestones",
        "OneCycleLR.pct_start",
        "SgdrCycle.warmup_steps",
        "Segment.fraction",
        "TimmCosine.noise_range_t",
        "FastaiOneCycle.moms",
        "KerasPolynomialDecay.cycle",
        "ScheduleRequest.steps",
        "ScheduleRequest.lr",
        "PlotRequest.stride",
        "ReduceLROnPlateau.sign_safe_threshold",
        "ReduceLROnPlateau.min_lr",
        "PlateauReplayRequest.lr",
        "SessionCreate.world_size",
        "SessionCreate.warmup_start_factor",
        "PlateauStateDict._last_lr",
        "PlateauStateDict.num_bad_epochs",
        "ReportRequest.rank",
    } <= {field.id for field in FIELDS}
    assert not {"ReportRequest.metric", "PlateauStateDict.best"} & {field.id for field in FIELDS}


@pytest.mark.parametrize("field", _params(FIELDS))
def test_a_string_in_a_number_or_boolean_field_is_rejected_both_ways_naming_it(
    field: Option,
) -> None:
    document = _example(field.model) | {field.name: _as_string(field)}
    assert_rejected_at(field.model, document, field.name, "not a string")


@pytest.mark.parametrize("field", _params(VALID_FIELDS))
def test_the_valid_value_of_a_number_or_boolean_field_is_kept_both_ways(field: Option) -> None:
    value = accepted(field.model, _example(field.model) | {field.name: field.valid})[field.name]
    assert json.dumps(value) == json.dumps(_validated(field, field.valid))


def _validated(field: Option, valid: object) -> object:
    """``valid`` as the model holds it: an int becomes a float where only numbers are taken."""
    if isinstance(valid, list | tuple):
        return [_validated(field, item) for item in valid]
    integers = field.types & {"integer", "array:integer"}
    if isinstance(valid, int) and not isinstance(valid, bool) and not integers:
        return float(valid)
    return valid


ANY_VALUES: list[object] = [True, False, 0, 1, 2, -1, 0.0, 1.0, 2.5, 3.0, 10**30, None, {}, "", "x"]


@pytest.mark.parametrize("field", _params(FIELDS))
def test_any_value_of_a_number_or_boolean_field_is_judged_alike_both_ways(field: Option) -> None:
    """Each of ANY_VALUES gets the same outcome both ways (``validate_both_ways`` compares
    them), whatever it is; for the strings among them, a rejection."""
    for value in ANY_VALUES:
        outcome = validate_both_ways(field.model, _example(field.model) | {field.name: value})
        if isinstance(value, str):
            assert isinstance(outcome, list), (value, outcome)


def test_no_validator_name_leaks_into_an_error_location() -> None:
    """The markers wrap union members in validators; tags keep the members' names as pydantic
    gave them before (``[..., "base_lr", "list[float]", 0]``, not ``function-before[...]``)."""
    leaks = []
    for field in FIELDS:
        for value in ({"a": 1}, [{"a": 1}], "3", ["3"]):
            outcome = validate_both_ways(field.model, _example(field.model) | {field.name: value})
            if isinstance(outcome, list):
                leaks += [(field.id, loc) for loc, _, _ in outcome if "function-" in str(loc)]
    assert not leaks, leaks


# --- the rule on booleans ----------------------------------------------------------------------


@pytest.mark.parametrize("field", _params(BOOLEANS))
def test_a_boolean_field_takes_true_false_0_and_1_as_pytorch_reads_them(field: Option) -> None:
    for value, meaning in ((True, True), (False, False), (1, True), (0, False)):
        document = _example(field.model) | {field.name: value}
        assert accepted(field.model, document)[field.name] is meaning, value


@pytest.mark.parametrize("value", ["true", "false", "1", "0", "no", "yes", "on", ""])
@pytest.mark.parametrize("field", _params(BOOLEANS))
def test_a_boolean_field_refuses_every_string(field: Option, value: str) -> None:
    document = _example(field.model) | {field.name: value}
    assert_rejected_at(
        field.model, document, field.name, "Input should be a valid boolean, not a string"
    )


@pytest.mark.parametrize("value", [2, -1, 0.0, 1.0, 0.5, 10**30], ids=repr)
def test_a_boolean_field_refuses_other_numbers_saying_what_it_takes(value: object) -> None:
    document = {"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1, "cycle_momentum": value}
    assert_rejected_at(CyclicLR, document, "cycle_momentum", "true, false, 0 or 1")


# --- the rule on numbers -----------------------------------------------------------------------

Case = tuple[type[BaseModel], dict[str, Any], str, Any]
"""A model, a document, the field it sets and what is expected of it."""


def _per_case(cases: list[Case]) -> pytest.MarkDecorator:
    """Parametrize ``model, document, field, expected``, each case named ``Model.field=value``."""
    return pytest.mark.parametrize(
        ("model", "document", "field", "expected"),
        cases,
        ids=[f"{model.__name__}.{field}={doc[field]!r}" for model, doc, field, _ in cases],
    )


PYTHON_NUMBERS: list[Case] = [
    (ScheduleRequest, {"schedule": STEP_LR, "steps": True}, "steps", 1),
    (ScheduleRequest, {"schedule": STEP_LR, "steps": 10, "start": False}, "start", 0),
    (ScheduleRequest, {"schedule": STEP_LR, "steps": 10, "lr": True}, "lr", 1.0),
    (ScheduleRequest, {"schedule": STEP_LR, "steps": 10, "lr": 1}, "lr", 1.0),
    (ScheduleRequest, {"schedule": STEP_LR, "steps": 10, "lr": [1, 0.5]}, "lr", [1.0, 0.5]),
    (StepLR, {"type": "StepLR", "step_size": True}, "step_size", 1),
    (StepLR, {"type": "StepLR", "step_size": 2.5}, "step_size", 2.5),
    (ExponentialLR, {"type": "ExponentialLR", "gamma": 1}, "gamma", 1.0),
    (ExponentialLR, {"type": "ExponentialLR", "gamma": False}, "gamma", 0.0),
    (ReduceLROnPlateau, {"type": "ReduceLROnPlateau", "patience": True}, "patience", 1),
    (ReduceLROnPlateau, {"type": "ReduceLROnPlateau", "min_lr": 0}, "min_lr", 0.0),
    (ReportRequest, {"epoch": False, "metric": 0.5}, "epoch", 0),
    (ReportRequest, {"epoch": 0, "metric": 3}, "metric", 3.0),
]


@_per_case(PYTHON_NUMBERS)
def test_booleans_are_ints_and_ints_are_floats_as_in_python(
    model: type[BaseModel], document: dict[str, Any], field: str, expected: object
) -> None:
    value = accepted(model, document)[field]
    assert json.dumps(value) == json.dumps(expected)


NOT_AN_INTEGER = "Input should be a valid integer, not a string"
NOT_A_NUMBER = "Input should be a valid number, not a string"
NUMERIC_STRINGS: list[Case] = [
    (ScheduleRequest, {"schedule": STEP_LR, "steps": "10"}, "steps", [((), NOT_AN_INTEGER)]),
    (ScheduleRequest, {"schedule": STEP_LR, "steps": " 10 "}, "steps", [((), NOT_AN_INTEGER)]),
    (
        ScheduleRequest,
        {"schedule": STEP_LR, "steps": 10, "lr": "1e-3"},
        "lr",
        [
            (("constrained-float",), NOT_A_NUMBER),
            (("list[constrained-float]",), "Input should be a valid list"),
        ],
    ),
    (
        ScheduleRequest,
        {"schedule": STEP_LR, "steps": 10, "lr": [0.1, "0.2"]},
        "lr",
        [
            (("constrained-float",), "Input should be a valid number"),
            (("list[constrained-float]", 1), NOT_A_NUMBER),
        ],
    ),
    (
        StepLR,
        {"type": "StepLR", "step_size": "3"},
        "step_size",
        [(("constrained-int",), NOT_AN_INTEGER), (("constrained-float",), NOT_A_NUMBER)],
    ),
    (ExponentialLR, {"type": "ExponentialLR", "gamma": "inf"}, "gamma", [((), NOT_A_NUMBER)]),
    (ExponentialLR, {"type": "ExponentialLR", "gamma": "NaN"}, "gamma", [((), NOT_A_NUMBER)]),
    (
        ReduceLROnPlateau,
        {"type": "ReduceLROnPlateau", "patience": "2"},
        "patience",
        [((), NOT_AN_INTEGER)],
    ),
    (
        SessionCreate,
        {"schedule": {"type": "ReduceLROnPlateau"}, "ttl_seconds": "60"},
        "ttl_seconds",
        [((), NOT_AN_INTEGER)],
    ),
    (ReportRequest, {"epoch": "0", "metric": 0.5}, "epoch", [((), NOT_AN_INTEGER)]),
]


@_per_case(NUMERIC_STRINGS)
def test_a_numeric_string_is_rejected_at_the_field_saying_what_it_takes(
    model: type[BaseModel],
    document: dict[str, Any],
    field: str,
    expected: list[tuple[tuple[str | int, ...], str]],
) -> None:
    """The errors (``loc`` below the field, ``msg``) are pydantic's for the wrong type, a
    union's members named as before, with the message saying that a string is not taken."""
    errors = rejected(model, document)
    assert [(loc, msg) for loc, _, msg in errors] == [
        ((field, *below), msg) for below, msg in expected
    ]


def test_an_integral_float_in_an_integer_field_is_still_its_int() -> None:
    """Only strings became errors: ``3.0`` stays a valid ``steps`` (``3.5`` never was)."""
    assert accepted(ScheduleRequest, {"schedule": STEP_LR, "steps": 3.0})["steps"] == 3
    assert rejected(ScheduleRequest, {"schedule": STEP_LR, "steps": 3.5})[0][0] == ("steps",)


def test_a_scale_written_as_a_string_is_rejected_though_its_step_is_a_string_key() -> None:
    """JSON object keys are strings, so optax's ``{"300": 0.1}`` boundaries are read from
    them; the scales are numbers."""
    spec = {"type": "optax.piecewise_constant", "init_value": 0.1}
    scales = accepted(OptaxPiecewiseConstant, spec | {"boundaries_and_scales": {"300": 0.5}})
    assert scales["boundaries_and_scales"] == {"300": 0.5}
    document = spec | {"boundaries_and_scales": {"300": "0.5"}}
    errors = rejected(OptaxPiecewiseConstant, document)
    assert [loc for loc, _, _ in errors] == [("boundaries_and_scales", "300")], errors


# --- non-finite numbers, unchanged -------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "expected"),
    [("inf", "inf"), ("-Infinity", "-inf"), ("NaN", "nan"), (0.5, 0.5), (3, 3.0)],
)
def test_a_metric_keeps_its_nonfinite_spellings(metric: object, expected: object) -> None:
    value = accepted(ReportRequest, {"epoch": 0, "metric": metric})["metric"]
    assert json.dumps(value) == json.dumps(expected)


@pytest.mark.parametrize("metric", ["3", "0.5", "1e3", "", True, False, None])
def test_a_metric_refuses_other_strings_and_booleans_as_before(metric: object) -> None:
    errors = rejected(ReportRequest, {"epoch": 0, "metric": metric})
    assert [(loc, kind) for loc, kind, _ in errors] == [(("metric",), "float_or_nonfinite")]


def test_a_state_dict_keeps_its_nonfinite_best_and_refuses_a_numeric_string() -> None:
    assert accepted(PlateauStateDict, STATE_DICT | {"best": "-inf"})["best"] == "-inf"
    assert accepted(PlateauStateDict, STATE_DICT | {"best": 0.25})["best"] == 0.25
    errors = rejected(PlateauStateDict, STATE_DICT | {"best": "0.25"})
    assert [(loc, kind) for loc, kind, _ in errors] == [(("best",), "float_or_nonfinite")]


# --- the OpenAPI document ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(Settings(store="memory"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _constraint_leaks(node: object, path: str = "") -> list[str]:
    """Schemas showing pydantic's ``ge``/``gt``/``le``/``lt`` instead of JSON Schema keywords:
    a constraint that came after a validator in ``Annotated`` (the markers go last)."""
    if isinstance(node, list):
        return [
            leak for i, item in enumerate(node) for leak in _constraint_leaks(item, f"{path}/{i}")
        ]
    if not isinstance(node, dict):
        return []
    leaks = [f"{path}: {key}" for key in ("ge", "gt", "le", "lt") if key in node and "type" in node]
    for key, value in node.items():
        leaks += _constraint_leaks(value, f"{path}/{key}")
    return leaks


def test_every_constraint_is_a_json_schema_keyword_in_the_openapi_document(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()
    assert not _constraint_leaks(document)
    pct_start = document["components"]["schemas"]["OneCycleLR"]["properties"]["pct_start"]
    assert (pct_start["type"], pct_start["minimum"], pct_start["maximum"]) == ("number", 0, 1)


def test_numbers_and_booleans_are_documented_with_their_json_types(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    step_size = schemas["StepLR"]["properties"]["step_size"]
    assert [option["type"] for option in step_size["anyOf"]] == ["integer", "number"]
    assert schemas["CyclicLR"]["properties"]["cycle_momentum"]["type"] == "boolean"
    request = schemas["ScheduleRequest"]["properties"]
    assert (request["steps"]["type"], request["steps"]["minimum"]) == ("integer", 0)
    assert [option["type"] for option in request["lr"]["anyOf"]] == ["number", "array"]
    assert request["lr"]["anyOf"][1]["items"]["type"] == "number"


# --- over HTTP ---------------------------------------------------------------------------------


def test_a_schedule_option_as_a_string_is_a_422_and_as_a_number_a_curve(
    client: TestClient,
) -> None:
    spec: dict[str, Any] = {"type": "StepLR", "step_size": 2, "gamma": 0.5}
    body: dict[str, Any] = {"schedule": spec, "lr": 0.1, "steps": 4}
    response = client.post("/v1/schedules", json=body)
    assert response.status_code == 200, shown(response)
    assert response.json()["lr"] == [[0.1, 0.1, 0.05, 0.05]]
    for field, value in (("step_size", "2"), ("gamma", "0.5")):
        response = client.post("/v1/schedules", json=body | {"schedule": spec | {field: value}})
        assert_names_field(response, "schedule", field)


def test_cycle_momentum_0_is_false_and_a_string_is_a_422(client: TestClient) -> None:
    spec = {"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2}
    for value, cycles in ((0, False), (False, False), (1, True), (True, True)):
        body = {"schedule": spec | {"cycle_momentum": value}, "steps": 3}
        response = client.post("/v1/schedules", json=body)
        assert response.status_code == 200, shown(response)
        assert (response.json()["momentum"] is not None) is cycles, value
    for text in ("no", "false", "0"):
        body = {"schedule": spec | {"cycle_momentum": text}, "steps": 3}
        assert_names_field(client.post("/v1/schedules", json=body), "schedule", "cycle_momentum")


def test_a_plateau_option_as_a_string_is_a_422_naming_it(client: TestClient) -> None:
    schedule: dict[str, Any] = {"type": "ReduceLROnPlateau", "patience": 0}
    body: dict[str, Any] = {"schedule": schedule, "lr": 0.1, "metrics": [1.0, 2.0]}
    response = client.post("/v1/plateau/replay", json=body)
    assert response.status_code == 200, shown(response)
    assert response.json()["lr"] == [[0.1, 0.010000000000000002]]
    for field, value in (("patience", "0"), ("factor", "0.5"), ("sign_safe_threshold", "false")):
        response = client.post(
            "/v1/plateau/replay", json=body | {"schedule": schedule | {field: value}}
        )
        assert_names_field(response, "schedule", field)
    assert_names_field(client.post("/v1/plateau/replay", json=body | {"lr": "0.1"}), "lr")


def test_a_session_number_as_a_string_is_a_422_naming_it(client: TestClient) -> None:
    body: dict[str, Any] = {"schedule": {"type": "ReduceLROnPlateau"}, "lr": 0.1, "world_size": 2}
    for field, value in (("world_size", "2"), ("ttl_seconds", "60"), ("warmup_steps", "1")):
        assert_names_field(client.post("/v1/sessions", json=body | {field: value}), field)
    created = client.post("/v1/sessions", json=body)
    assert created.status_code == 201, shown(created)
    session = created.json()
    url = f"/v1/sessions/{session['id']}/reports"
    headers = {"Authorization": f"Bearer {session['token']}"}
    for field, value in (("epoch", "0"), ("rank", "1")):
        report = {"epoch": 0, "metric": 0.5, "rank": 0} | {field: value}
        assert_names_field(client.post(url, json=report, headers=headers), field)
    answer = client.post(url, json={"epoch": 0, "metric": "inf", "rank": 1}, headers=headers)
    assert answer.status_code == 200, shown(answer)
    assert (answer.json()["epoch"], answer.json()["decided"]) == (0, False)
