"""Every family fixture (``tests/golden/families.json``, recorded from the real libraries by
``tools/generate_family_golden.py``: transformers 5.23 on torch 2.13, optax 0.2.8 and Keras
3.15 on JAX in float64, timm 1.0.31, fastai 2.8.12) through ``POST /v1/schedules``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conformance.tolerance import assert_curve_close

FLOAT32_COSINE = {"keras.CosineDecay", "keras.CosineDecayRestarts"}
"""Keras 3.15's ``ops.cos`` answers float32 even for float64 input (JAX backend), so these
schedules are only float32-accurate in Keras; the service computes the formula in float64."""

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "families.json"
CASES: list[dict[str, Any]] = json.loads(GOLDEN.read_text())
ACCEPTED = [case for case in CASES if "error" not in case]
REJECTED = [case for case in CASES if "error" in case]


@pytest.fixture(scope="module")
def client() -> TestClient:
    from service.config import Settings
    from service.main import create_app

    return TestClient(create_app(Settings(store="memory")))


def test_every_family_has_at_least_twenty_configurations() -> None:
    counts = Counter(case["name"].split("/")[0] for case in CASES)
    for family in ("hf", "optax", "timm", "keras", "fastai"):
        assert counts[family] >= 20, (family, counts[family])


@pytest.mark.parametrize("case", ACCEPTED, ids=[case["name"] for case in ACCEPTED])
def test_family_curve_matches_the_library(client: TestClient, case: dict[str, Any]) -> None:
    response = client.post("/v1/schedules", json=case["request"])
    assert response.status_code == 200, response.text[:2000]
    body = response.json()
    if case["request"]["schedule"]["type"] in FLOAT32_COSINE:
        scale = max(abs(v) for v in case["lr"][0])
        np.testing.assert_allclose(body["lr"], case["lr"], rtol=1e-6, atol=1e-7 * scale)
        assert body["momentum"] is None
        return
    assert_curve_close(body["lr"], case["lr"], what=f"{case['name']} lr")
    assert_curve_close(body["momentum"], case["momentum"], what=f"{case['name']} momentum")


@pytest.mark.parametrize("case", REJECTED, ids=[case["name"] for case in REJECTED])
def test_configuration_the_library_rejects_is_422_naming_the_field(
    client: TestClient, case: dict[str, Any]
) -> None:
    response = client.post("/v1/schedules", json=case["request"])
    assert response.status_code == 422, response.text[:2000]
    locs = [entry["loc"] for entry in response.json()["detail"]]
    assert any(case["field"] in loc for loc in locs), (case["error"], locs)
