"""Schemathesis against the service's own OpenAPI document, in process (ASGI).

Every operation in ``/openapi.json`` gets a bounded number of generated requests, valid and
invalid, and every request example the document shows is sent as is. Each response must be one
the document describes: no 5xx, a documented status code and content type, a body valid against
the documented schema; invalid input must be rejected, valid input must not be refused with a
status the contract never uses.

Checks and phases are configured deliberately; each deviation from schemathesis's defaults is
commented with its reason. None of them silences a behaviour API.md does not call for.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from jsonschema import Draft202012Validator
from jsonschema.validators import extend
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis.checks import CheckContext, negative_data_rejection
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import AcceptedNegativeData

from schemas.schedules import SCHEDULE_MODELS
from service.config import Settings
from service.main import create_app

MAX_EXAMPLES = 100
"""Generated requests per operation (valid and invalid). The whole file takes about 35 s on an
idle 2-core machine, about a minute on a busy one."""
CURVE_EXAMPLES = 120
"""Valid requests per curve operation: their bodies range over some sixty schedule types."""

API_KEY = "fuzz-api-key"
APP = create_app(
    Settings(store="memory", max_values=100_000, api_keys=API_KEY, metrics_key=API_KEY)
)
"""With LRSCHED_API_KEYS set, as the document's `X-API-Key` security scheme describes (without
keys every /v1 call is open, and schemathesis's ignored_auth check rightly flags that the
documented scheme is not enforced); likewise LRSCHED_METRICS_KEY for /metrics (the same value,
so the authenticated requests reach it). A smaller LRSCHED_MAX_VALUES keeps any one generated curve
cheap; the limit is part of the contract (413/422 beyond it), so the document is the same."""

CURVES = "^/v1/schedules"
"""POST /v1/schedules and /v1/schedules/plot: bodies holding the recursive schedule union."""


def _config(mode: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "checks": {
                # A request valid per the schema may still be refused with 422: API.md requires
                # rejecting every configuration PyTorch rejects, including what a JSON schema cannot
                # express (per-group list lengths vs. `lr`, milestone counts, curves that stop being
                # finite, errors PyTorch raises only while stepping); 413 when more than
                # LRSCHED_MAX_VALUES values are asked for; 406 for an `Accept` naming no supported
                # media type. 400, 405, 415 (and 5xx, via not_a_server_error) still fail.
                "positive_data_acceptance": {
                    "expected-statuses": [
                        "2xx",
                        "3xx",
                        "401",
                        "403",
                        "404",
                        "406",
                        "409",
                        "413",
                        "422",
                    ]
                },
                # Replaced by `_reject_invalid_data` below (in Python, booleans are ints).
                "negative_data_rejection": {"enabled": False},
            },
            "phases": {
                # The coverage phase is not bounded by max_examples: it enumerates every boundary
                # and every mistyped field of the recursive schedule union, 2,600 (valid only) to
                # 8,600 requests for POST /v1/schedules alone, several minutes per run.
                "coverage": {"enabled": False},
                # The examples phase also walks every `example` nested inside the body schemas and
                # combines them; on the recursive schedule union (70 component schemas) that walk
                # does not finish within minutes, at collection time. The request examples the
                # document shows, the ones the contract is about, are sent by
                # `test_every_documented_request_example_is_answered_as_documented` instead.
                "examples": {"enabled": False},
            },
            "generation": {"mode": mode},
            # Session calls also need a session's bearer token; without one they are checked
            # for rejecting unauthenticated calls (401/403/404), as API.md requires.
            "auth": {"openapi": {"APIKeyHeader": {"api_key": API_KEY}}},
        }
    )


schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=_config("all"))
curve_schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=_config("positive"))
"""Valid requests only for the curve operations: schemathesis needs 5-20 s to mutate one body
of the recursive schedule union into an invalid one (most of a minute for the plot's), so a
handful of invalid curve requests would cost more than everything else here together. Invalid
and hostile curve requests are tests/api/test_hostile_inputs.py's subject instead."""


# --- negative data, with Python's booleans ------------------------------------------------------


def _python_number(checker: Any, instance: object) -> bool:
    return isinstance(instance, int | float)


def _python_integer(checker: Any, instance: object) -> bool:
    return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())


def _python_boolean(checker: Any, instance: object) -> bool:
    return isinstance(instance, bool) or (isinstance(instance, int) and instance in (0, 1))


_PythonTypes = extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"number": _python_number, "integer": _python_integer, "boolean": _python_boolean}
    ),
)
_DOCUMENT = "urn:lrsched:openapi"
_REGISTRY: Registry[Any] = Registry().with_resource(
    _DOCUMENT, Resource(contents=schema.raw_schema, specification=DRAFT202012)
)


def _json_body_schema(case: schemathesis.Case) -> dict[str, Any] | None:
    """A ``$ref`` to the operation's JSON request-body schema inside the OpenAPI document."""
    method = case.operation.method.lower()
    operation = schema.raw_schema["paths"][case.operation.path][method]
    if "application/json" not in operation.get("requestBody", {}).get("content", {}):
        return None
    path = case.operation.path.replace("~", "~0").replace("/", "~1")
    pointer = f"/paths/{path}/{method}/requestBody/content/application~1json/schema"
    return {"$ref": f"{_DOCUMENT}#{pointer}"}


def _valid_with_python_types(case: schemathesis.Case) -> bool:
    """Whether the body is valid once ``true``/``false`` count as the ints 1/0, and 0/1 as
    booleans."""
    body_schema = _json_body_schema(case)
    if body_schema is None or not isinstance(case.body, dict | list):
        return False
    return bool(_PythonTypes(body_schema, registry=_REGISTRY).is_valid(case.body))


def _reject_invalid_data(
    ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """schemathesis's ``negative_data_rejection``, less one family of false positives.

    A schedule spec's fields are PyTorch constructor arguments (API.md), and Python's ``bool``
    is an ``int``: ``StepLR(opt, step_size=True)``, ``ExponentialLR(opt, gamma=False)`` or
    ``OneCycleLR(..., cycle_momentum=0)`` are configurations PyTorch accepts and computes, so
    the service accepts ``true``/``false`` where a number is documented and ``0``/``1`` where a
    boolean is (tests/api/test_hostile_inputs.py pins this down). JSON Schema keeps those
    types apart, so schemathesis generates them as invalid data. Such a case is excused only
    when the whole body is valid under Python's typing; any other accepted violation fails.
    """
    try:
        return negative_data_rejection(ctx, response, case)
    except AcceptedNegativeData:
        if _valid_with_python_types(case):
            return None
        raise


# --- generated requests ------------------------------------------------------------------------

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    # No shrinking: on these recursive bodies it can take minutes, and schemathesis's report
    # already shows the failing request as a curl command.
    phases=[Phase.explicit, Phase.generate],
    # Recursive schedule specs make large inputs that Hypothesis often discards; that says
    # nothing about the service.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


@schema.exclude(path_regex=CURVES).parametrize()
@FUZZ_SETTINGS
def test_every_operation_answers_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate(additional_checks=[_reject_invalid_data])


@curve_schema.include(path_regex=CURVES).parametrize()
@settings(FUZZ_SETTINGS, max_examples=CURVE_EXAMPLES)
def test_every_curve_operation_answers_valid_requests_as_documented(
    case: schemathesis.Case,
) -> None:
    case.call_and_validate(additional_checks=[_reject_invalid_data])


def test_the_fuzzed_operations_are_every_operation_of_the_document() -> None:
    def operations(loaded: Any) -> set[str]:
        return {result.ok().label for result in loaded.get_all_operations()}

    everything = operations(schema)
    assert {"POST /v1/schedules", "POST /v1/plateau/replay"} <= everything
    fuzzed = operations(schema.exclude(path_regex=CURVES)) | operations(
        curve_schema.include(path_regex=CURVES)
    )
    assert fuzzed == everything


# --- the document's own request examples ---------------------------------------------------------


def _documented_examples() -> list[tuple[str, str, str, Any]]:
    found = []
    for path, methods in schema.raw_schema["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {})
            for media_type, body in content.items():
                for name, example in body.get("examples", {}).items():
                    found.append((f"{method.upper()} {path}", media_type, name, example["value"]))
    return found


DOCUMENTED_EXAMPLES = _documented_examples()


def test_the_document_shows_a_request_example_for_every_schedule_type() -> None:
    shown = {name for label, _, name, _ in DOCUMENTED_EXAMPLES if label == "POST /v1/schedules"}
    missing = {model.__name__ for model in SCHEDULE_MODELS} - shown
    assert not missing, f"no request example for {sorted(missing)}"


@pytest.mark.parametrize(
    ("label", "media_type", "name", "value"),
    DOCUMENTED_EXAMPLES,
    ids=[f"{label} {name}" for label, _, name, _ in DOCUMENTED_EXAMPLES],
)
def test_every_documented_request_example_is_answered_as_documented(
    label: str, media_type: str, name: str, value: Any
) -> None:
    """API.md: "a working example for every schedule type". An example for an operation on a
    resource that must exist first (a session's reports) only has to be answered as
    documented; any other must succeed."""
    method, path = label.split(" ", 1)
    case = schema[path][method].Case(body=value, media_type=media_type)
    response = case.call_and_validate(headers={"X-API-Key": API_KEY})
    if "{" not in path:
        assert 200 <= response.status_code < 300, (response.status_code, response.text[:500])


# --- methods a path does not support -------------------------------------------------------------

DOCUMENTED_PATHS = sorted(schema.raw_schema["paths"])


@pytest.mark.parametrize("path", DOCUMENTED_PATHS)
def test_an_undocumented_method_is_405_with_an_allow_header_of_the_documented_ones(
    path: str,
) -> None:
    """RFC 9110: a 405 lists the resource's supported methods in ``Allow``. Checked here by
    hand because schemathesis sends unexpected methods only in its coverage phase (off above)."""
    documented = {method.upper() for method in schema.raw_schema["paths"][path]}
    with TestClient(APP) as client:
        response = client.request("PATCH", path.replace("{session_id}", "0" * 32))
    assert response.status_code == 405, (response.status_code, response.text[:300])
    allowed = {method.strip().upper() for method in response.headers["allow"].split(",")}
    assert allowed - {"HEAD", "OPTIONS"} == documented
