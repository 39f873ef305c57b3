"""Denormal, tiny and huge floats where PyTorch raises or stops being finite (issue #12, item 6).

The values asserted here are PyTorch's (``tests/golden/schedules.json`` holds the same cases,
recorded from torch by ``tools/generate_golden.py``); these tests need no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app

COSINE_TINY = {"type": "CosineAnnealingLR", "T_max": 1e-310}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store="memory")), raise_server_exceptions=False) as c:
        yield c


def post(client: TestClient, schedule: dict[str, Any], **request: Any) -> Any:
    return client.post("/v1/schedules", json={"schedule": schedule, "lr": 0.1, **request})


def first_error(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["detail"][0]
    return error


@pytest.mark.parametrize(
    ("schedule", "loc"),
    [
        ({"type": "ChainedScheduler", "schedulers": [COSINE_TINY]}, ["schedulers", 0, "T_max"]),
        (
            {
                "type": "ChainedScheduler",
                "schedulers": [COSINE_TINY | {"eta_min": 0.01, "T_max": -1e-310}],
            },
            ["schedulers", 0, "T_max"],
        ),
        (
            {
                "type": "SequentialLR",
                "schedulers": [{"type": "ExponentialLR", "gamma": 0.9}, COSINE_TINY],
                "milestones": [2],
            },
            ["schedulers", 1, "T_max"],
        ),
        (COSINE_TINY, ["T_max"]),
    ],
    ids=["chained", "chained_negative_eta", "sequential", "alone"],
)
def test_a_subnormal_t_max_is_a_422_naming_it_where_pytorch_raises(
    client: TestClient, schedule: dict[str, Any], loc: list[str | int]
) -> None:
    """PyTorch: ``math.cos(math.pi * k / T_max)`` of an infinite angle, ValueError."""
    error = first_error(post(client, schedule, steps=10))
    assert error["loc"] == ["body", "schedule", *loc]
    assert "math domain error" in error["msg"]


def test_a_tiny_t_max_fails_at_the_step_where_the_angle_overflows(client: TestClient) -> None:
    """``pi * 5 / 1e-307`` is finite, ``pi * 6 / 1e-307`` is not: PyTorch fails at step 6."""
    schedule = {"type": "CosineAnnealingLR", "T_max": 1e-307}
    assert post(client, schedule, steps=6).status_code == 200
    error = first_error(post(client, schedule, steps=7))
    assert error["loc"] == ["body", "schedule", "T_max"]
    assert error["msg"].endswith("(at step 6)")
    # A stride that skips step 6 still steps through it.
    assert first_error(post(client, schedule, steps=7, stride=5))["msg"].endswith("(at step 6)")


def test_a_t_max_below_one_step_follows_pytorchs_recursion(client: TestClient) -> None:
    """``T_max = 2**-1021 / 2``: PyTorch's float ``(k - 1 - T) % (2 T) == 0`` holds at every
    step from 2, so it adds ``(b - eta)(1 - cos(pi / T)) / 2`` each time (values from torch
    2.13.0, as in the golden file)."""
    schedule = {"type": "CosineAnnealingLR", "T_max": 2.2250738585072014e-308}
    lr = post(client, schedule, steps=4).json()["lr"][0]
    step_1 = 0.1 * (1 + math.cos(math.pi * 1 / 2.2250738585072014e-308)) / 2
    bump = 0.1 * (1 - math.cos(math.pi / 2.2250738585072014e-308)) / 2
    assert lr == [0.1, step_1, step_1 + bump, step_1 + bump + bump]


def test_step_zero_of_cosine_annealing_is_the_lr_itself(client: TestClient) -> None:
    """Construction leaves the lr unchanged; the closed form ``eta + (b - eta)`` would
    cancel to 0 with ``eta_min = 1e300``."""
    response = post(client, {"type": "CosineAnnealingLR", "T_max": 1, "eta_min": 1e300}, steps=1)
    assert response.json()["lr"] == [[0.1]]


def test_a_subnormal_start_factor_is_refused_as_pytorchs_nan(client: TestClient) -> None:
    """``0.1 * 5e-324`` is 0 and the first factor ``1 + 1 / 5e-324`` overflows: PyTorch's lr is
    ``0 * inf = nan`` from step 1 on, which JSON cannot carry."""
    schedule = {"type": "LinearLR", "start_factor": 5e-324, "total_iters": 3}
    assert post(client, schedule, steps=1).json()["lr"] == [[0.0]]
    error = first_error(post(client, schedule, steps=5))
    assert error["loc"] == ["body", "schedule"]
    assert "not finite at step 1" in error["msg"]


def test_a_subnormal_cycle_length_with_scale_fn_is_a_422_naming_step_size_up(
    client: TestClient,
) -> None:
    """``k / 5e-324`` overflows and PyTorch's ``math.floor`` raises OverflowError."""
    schedule = {
        "type": "CyclicLR",
        "base_lr": 0.001,
        "max_lr": 0.01,
        "step_size_up": 5e-324,
        "scale_fn": "lambda x: 1 / (2.0 ** (x - 1))",
        "cycle_momentum": False,
    }
    assert first_error(post(client, schedule, steps=3))["loc"] == [
        "body",
        "schedule",
        "step_size_up",
    ]


def test_gamma_to_the_power_of_a_repeated_milestone_overflowing_is_a_422_naming_gamma(
    client: TestClient,
) -> None:
    """PyTorch's ``gamma ** 2`` is a Python float power: OverflowError at construction
    (milestone 0 counted twice), even where SequentialLR would reset the lr right after."""
    milestones = {"type": "MultiStepLR", "milestones": [0, 0], "gamma": 1e300}
    schedule = {
        "type": "SequentialLR",
        "schedulers": [{"type": "ExponentialLR", "gamma": 0.9}, milestones],
        "milestones": [1],
    }
    error = first_error(post(client, schedule, steps=1))
    assert error["loc"] == ["body", "schedule", "schedulers", 1, "gamma"]
    assert "OverflowError" in error["msg"]
