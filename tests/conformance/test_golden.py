"""The service against golden curves recorded from PyTorch 2.13 (``tests/golden/schedules.json``).

Each fixture is a ``POST /v1/schedules`` body that was run through real torch by
``tools/generate_golden.py``. Accepted cases must come back 200 with the same values within
the contract's tolerance; rejected cases (torch raised at construction or while stepping
through the requested range) must come back 422 naming the offending field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conformance.tolerance import assert_curve_close

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "schedules.json"
CASES: list[dict[str, Any]] = json.loads(GOLDEN.read_text())
ACCEPTED = [case for case in CASES if "error" not in case]
REJECTED = [case for case in CASES if "error" in case]
SCHEDULE_TYPES = {
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "SequentialLR",
    "PolynomialLR",
    "CosineAnnealingLR",
    "ChainedScheduler",
    "CyclicLR",
    "OneCycleLR",
    "CosineAnnealingWarmRestarts",
    "SWALR",
}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    """One app with an in-memory store for the whole module."""
    from service.config import Settings
    from service.main import create_app

    with TestClient(create_app(Settings(store="memory"))) as test_client:
        yield test_client


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [case["name"] for case in cases]


def _locs(body: Any) -> list[list[Any]]:
    detail = body.get("detail") if isinstance(body, dict) else None
    assert isinstance(detail, list) and detail, f"422 detail is not a non-empty list: {body!r}"
    return [list(item.get("loc", [])) for item in detail if isinstance(item, dict)]


@pytest.mark.parametrize("case", ACCEPTED, ids=_ids(ACCEPTED))
def test_accepted_case_matches_torch(client: TestClient, case: dict[str, Any]) -> None:
    """200, the range echoed, and lr/momentum equal to torch's within the tolerance."""
    request = case["request"]
    response = client.post("/v1/schedules", json=request)
    assert response.status_code == 200, response.text[:2000]
    body = response.json()
    assert body["groups"] == len(case["lr"])
    assert body["start"] == request.get("start", 0)
    assert body["stop"] == request["steps"]
    assert body["stride"] == request.get("stride", 1)
    assert_curve_close(body["lr"], case["lr"], what=f"{case['name']} lr")
    assert "momentum" in body, "momentum must be present (null when not cycled)"
    assert_curve_close(body["momentum"], case["momentum"], what=f"{case['name']} momentum")


@pytest.mark.parametrize("case", REJECTED, ids=_ids(REJECTED))
def test_rejected_case_is_422_naming_the_field(client: TestClient, case: dict[str, Any]) -> None:
    """What torch refuses (``case['error']``) is a 422 whose ``detail`` names the field."""
    response = client.post("/v1/schedules", json=case["request"])
    assert response.status_code == 422, (
        f"torch raised {case['error']!r}; service answered {response.status_code}: "
        f"{response.text[:1000]}"
    )
    locs = _locs(response.json())
    assert any(case["field"] in loc for loc in locs), (
        f"no loc names {case['field']!r} (torch: {case['error']}); locs: {locs}"
    )


def test_every_schedule_type_has_accepted_fixtures() -> None:
    """Coverage guard: each of the 15 types is the top-level type of some accepted case."""
    seen = {case["request"]["schedule"]["type"] for case in ACCEPTED}
    assert SCHEDULE_TYPES <= seen, f"no accepted fixture for {sorted(SCHEDULE_TYPES - seen)}"


def test_fixture_file_is_large_and_well_formed() -> None:
    """At least 400 accepted and 40 rejected cases, unique names, one shape per kind."""
    assert len(ACCEPTED) >= 400
    assert len(REJECTED) >= 40
    assert len({case["name"] for case in CASES}) == len(CASES)
    for case in ACCEPTED:
        assert set(case) == {"name", "request", "lr", "momentum"}, case["name"]
    for case in REJECTED:
        assert set(case) == {"name", "request", "error", "field"}, case["name"]
