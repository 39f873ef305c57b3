"""The adapters' values against optax, Keras and transformers as recorded in
``tests/golden/adapters.json`` (``tools/generate_adapter_golden.py``): runs without those
libraries, so the specs, the lookup past the end and the ``lr_scheduler_type`` mapping
stay tested where they are not installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lrsched_client import Client
from lrsched_client._hf_names import spec_for
from lrsched_client._table import fetch_table

GOLDEN: dict[str, list[dict[str, Any]]] = json.loads(
    (Path(__file__).resolve().parents[1] / "golden" / "adapters.json").read_text()
)
RTOL = {"optax": 1e-12, "keras": 1e-6}
"""optax computes in float64 here; Keras's schedules keep float32 constants (as in the
service's own family fixtures, ``tests/families/test_golden_families.py``)."""
TABLES = [(library, case) for library in ("optax", "keras") for case in GOLDEN[library]]


@pytest.mark.parametrize(
    ("library", "case"), TABLES, ids=[f"{lib}/{case['name']}" for lib, case in TABLES]
)
def test_table_lookup_equals_the_library_past_the_end_too(
    client: Client, library: str, case: dict[str, Any]
) -> None:
    table = fetch_table(case["spec"], case["steps"], 0.001, "float64", client)
    held = table[np.minimum(case["counts"], case["steps"] - 1)]  # what the adapters look up
    np.testing.assert_allclose(held, case["values"], rtol=RTOL[library], atol=1e-15)


@pytest.mark.parametrize("case", GOLDEN["hf"], ids=[case["name"] for case in GOLDEN["hf"]])
def test_scheduler_names_give_get_scheduler_values(client: Client, case: dict[str, Any]) -> None:
    spec = spec_for(case["name"], case["warmup"], case["total"], **case["kwargs"])
    remote = client.curve_json(spec, case["lr"], case["total"] + 1)["lr"][0]
    np.testing.assert_allclose(remote, case["values"], rtol=1e-9, atol=1e-15)


def test_every_library_has_cases() -> None:
    assert all(len(GOLDEN[library]) >= 3 for library in ("optax", "keras", "hf"))
