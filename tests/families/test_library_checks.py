"""The other libraries' own casts and checks, reproduced (issue #12, items 10, 11 and 12).

- Keras' PiecewiseConstantDecay casts each boundary to the step's integer dtype (truncation).
- fastai's ``combine_scheds`` asserts ``pct_start`` in [0, 1] (in its own float arithmetic).
- timm 1.0.31's public schedulers take no ``noise_type`` (TypeError).

Values are the libraries' (keras 3.15.1 with jax, float64; the golden file
``tests/golden/families.json`` records the same); the live Keras test runs when keras and jax
are importable.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store="memory")), raise_server_exceptions=False) as c:
        yield c


def curve(client: TestClient, schedule: dict[str, Any], steps: int) -> Any:
    response = client.post("/v1/schedules", json={"schedule": schedule, "steps": steps})
    assert response.status_code == 200, response.text
    return response.json()["lr"][0]


def refusal(client: TestClient, schedule: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/schedules", json={"schedule": schedule, "steps": 5})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    return dict(error)


# --- Keras: boundaries cast to the integer step ------------------------------------------------

PIECEWISE = [
    ([-0.5], [0.1, 0.9], [0.1, 0.9, 0.9, 0.9]),  # -0.5 -> 0: step 0 is <= 0
    ([2.7], [0.1, 0.2], [0.1, 0.1, 0.1, 0.2]),  # 2.7 -> 2, as k <= 2.7 anyway
    ([-1.5, 0.5], [0.1, 0.2, 0.3], [0.2, 0.3, 0.3, 0.3]),  # -> [-1, 0]
    ([-0.5, 1], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.3]),  # -> [0, 1]
]


@pytest.mark.parametrize(("boundaries", "values", "expected"), PIECEWISE)
def test_piecewise_constant_casts_boundaries_to_the_integer_step(
    client: TestClient, boundaries: list[float], values: list[float], expected: list[float]
) -> None:
    schedule = {"type": "keras.PiecewiseConstantDecay", "boundaries": boundaries, "values": values}
    assert curve(client, schedule, 4) == expected


def test_piecewise_constant_issue_example_is_kerass_value_at_step_0(client: TestClient) -> None:
    schedule = {"type": "keras.PiecewiseConstantDecay", "boundaries": [-0.5], "values": [0.1, 0.9]}
    assert curve(client, schedule, 2) == [0.1, 0.9]


@pytest.mark.skipif(
    importlib.util.find_spec("keras") is None or importlib.util.find_spec("jax") is None,
    reason="keras and jax are not installed",
)
@pytest.mark.parametrize(("boundaries", "values", "_"), PIECEWISE)
def test_piecewise_constant_matches_live_keras(
    client: TestClient, boundaries: list[float], values: list[float], _: list[float]
) -> None:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax

    jax.config.update("jax_enable_x64", True)
    import keras

    keras.config.set_floatx("float64")
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    expected = [float(schedule(k)) for k in range(4)]
    spec = {"type": "keras.PiecewiseConstantDecay", "boundaries": boundaries, "values": values}
    assert curve(client, spec, 4) == expected


# --- fastai: pct_start in [0, 1] ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fastai.one_cycle", "fastai.flat_cos"])
@pytest.mark.parametrize("pct_start", [1.5, -0.25, 1 + 2**-52, -1e-40, 2.0, -1e20])
def test_pct_start_outside_0_1_is_refused_naming_it(
    client: TestClient, kind: str, pct_start: float
) -> None:
    error = refusal(client, {"type": kind, "n_epoch": 1, "n_iter": 4, "pct_start": pct_start})
    assert error["loc"][-1] == "pct_start"
    assert "fastai asserts 0 <= pct_start <= 1" in error["msg"]


@pytest.mark.parametrize("pct_start", [0.0, 0.3, 0.999, -1e-50])
def test_pct_start_fastai_accepts_is_accepted(client: TestClient, pct_start: float) -> None:
    """Including ``-1e-50``: fastai's float32 ``tensor([0, pct, 1 - pct]) >= 0`` sees -0.0."""
    schedule = {"type": "fastai.flat_cos", "n_epoch": 1, "n_iter": 4, "pct_start": pct_start}
    assert curve(client, schedule, 2)[0] == 0.001


# --- timm: no noise_type -----------------------------------------------------------------------

TIMM = [
    {"type": "timm.cosine", "t_initial": 10},
    {"type": "timm.tanh", "t_initial": 10},
    {"type": "timm.poly", "t_initial": 10},
    {"type": "timm.step", "decay_t": 3},
    {"type": "timm.multistep", "decay_t": [3, 6]},
]


@pytest.mark.parametrize("spec", TIMM, ids=[s["type"] for s in TIMM])
@pytest.mark.parametrize("noise_type", ["normal", "uniform"])
def test_noise_type_is_refused_naming_it(
    client: TestClient, spec: dict[str, Any], noise_type: str
) -> None:
    error = refusal(client, spec | {"noise_range_t": 2, "noise_type": noise_type})
    assert error["loc"][-1] == "noise_type"
    assert "take no noise_type" in error["msg"]


def test_noise_without_noise_type_is_timms_normal_noise(client: TestClient) -> None:
    """``noise_seed + t`` seeds torch's generator; the first ``randn`` with |n| < 10 for seed
    42 is 0.33669036626815796 (torch 2.13 CPU)."""
    spec = {"type": "timm.step", "decay_t": 100, "noise_range_t": 0, "noise_seed": 42}
    spec |= {"noise_pct": 10.0}
    assert curve(client, spec, 1) == [0.001 + 0.001 * 0.33669036626815796]
