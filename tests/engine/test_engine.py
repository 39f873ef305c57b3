"""The engine's own invariants: scan, closed forms vs stepping, blocks, ranges, bisect."""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

import service.engine as engine
from schemas.schedules import ScheduleSpec, build
from service.engine import StepRange, compute
from service.engine.compose import bisect_right_many
from service.engine.maps import scan

SPEC = TypeAdapter(ScheduleSpec)

LEAVES: list[dict[str, Any]] = [
    {"type": "LambdaLR", "lr_lambda": ["lambda e: 0.97 ** e", "1 / (1 + e)"]},
    {"type": "MultiplicativeLR", "lr_lambda": "0.98"},
    {"type": "StepLR", "step_size": 7, "gamma": 0.5},
    {"type": "StepLR", "step_size": 2.5, "gamma": 0.5},
    {"type": "StepLR", "step_size": -3, "gamma": 0.9},
    {"type": "MultiStepLR", "milestones": [0, 4, 4, 19, -2, 3.5], "gamma": 0.5},
    {"type": "ConstantLR", "factor": 0.25, "total_iters": 9},
    {"type": "ConstantLR", "factor": 0.25, "total_iters": 0},
    {"type": "LinearLR", "start_factor": 0.2, "end_factor": 0.9, "total_iters": 13},
    {"type": "LinearLR", "start_factor": 1.0, "end_factor": 0.0, "total_iters": 6},
    {"type": "LinearLR", "start_factor": 0.5, "total_iters": 2.5},
    {"type": "ExponentialLR", "gamma": 0.93},
    {"type": "PolynomialLR", "total_iters": 17, "power": 0.5},
    {"type": "PolynomialLR", "total_iters": 0},
    {"type": "CosineAnnealingLR", "T_max": 11, "eta_min": 0.0},
    {"type": "CosineAnnealingLR", "T_max": 2.5, "eta_min": 0.01},
    {
        "type": "CyclicLR",
        "base_lr": 0.01,
        "max_lr": [0.1, 0.2],
        "step_size_up": 3,
        "step_size_down": 5,
        "mode": "triangular2",
    },
    {
        "type": "CyclicLR",
        "base_lr": 0.01,
        "max_lr": 0.1,
        "step_size_up": 4,
        "scale_fn": "lambda x: 1 / (1 + x)",
        "scale_mode": "iterations",
    },
    {
        "type": "OneCycleLR",
        "max_lr": [1.0, 0.5],
        "total_steps": 60,
        "three_phase": True,
        "anneal_strategy": "linear",
    },
    {"type": "OneCycleLR", "max_lr": 1.0, "total_steps": 60},
    {"type": "CosineAnnealingWarmRestarts", "T_0": 3, "T_mult": 2, "eta_min": 0.001},
    {"type": "SWALR", "swa_lr": [0.02, 0.5], "anneal_epochs": 17},
    {"type": "SWALR", "swa_lr": 0.02, "anneal_epochs": 40, "anneal_strategy": "linear"},
    {"type": "SWALR", "swa_lr": 0.02, "anneal_epochs": 0},
]
LRS = np.array([0.1, 0.3])


def curve(spec: dict[str, Any], steps: StepRange, lrs: np.ndarray = LRS) -> engine.Curve:
    return compute(build(SPEC.validate_python(spec), len(lrs)), lrs, steps)


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    scale = np.max(np.abs(expected), axis=-1, keepdims=True)
    np.testing.assert_array_less(
        np.abs(actual - expected), np.maximum(1e-11 * np.abs(expected), 1e-13 * scale) + 1e-300
    )


def test_scan_equals_the_sequential_recurrence() -> None:
    rng = np.random.default_rng(7)
    a = rng.uniform(-1.5, 1.5, (3, 500))
    a[:, rng.integers(0, 500, 40)] = 0.0
    b = np.where(rng.random((3, 500)) < 0.3, rng.normal(size=(3, 500)), 0.0)
    initial = rng.normal(size=3)
    expected = np.empty_like(a)
    x = initial.copy()
    for j in range(a.shape[1]):
        x = a[:, j] * x + b[:, j]
        expected[:, j] = x
    np.testing.assert_allclose(scan(initial, a, b), expected, rtol=1e-9, atol=1e-12)


def test_pure_product_scan_multiplies_in_pytorch_order() -> None:
    factors = np.full((1, 300), 0.9)
    x, expected = 0.1, []
    for _ in range(300):
        x = x * 0.9
        expected.append(x)
    assert scan(np.array([0.1]), factors, np.zeros((1, 300)))[0].tolist() == expected


@pytest.mark.parametrize("spec", LEAVES, ids=lambda s: f"{s['type']}")
def test_closed_form_equals_stepping_the_recursion(spec: dict[str, Any]) -> None:
    steps = StepRange(0, 61, 1)
    alone = curve(spec, steps)
    stepped = curve({"type": "ChainedScheduler", "schedulers": [spec]}, steps)
    assert_close(alone.lr, stepped.lr)
    if alone.momentum is not None:
        assert stepped.momentum is not None
        assert_close(alone.momentum, stepped.momentum)


@pytest.mark.parametrize("spec", LEAVES, ids=lambda s: f"{s['type']}")
def test_ranges_are_slices_of_the_full_curve(spec: dict[str, Any]) -> None:
    full = curve(spec, StepRange(0, 61, 1))
    for start, stride in [(0, 2), (5, 7), (60, 1), (13, 100)]:
        part = curve(spec, StepRange(start, 61, stride))
        np.testing.assert_array_equal(part.lr, full.lr[:, start:61:stride])


COMPOSITE = {
    "type": "ChainedScheduler",
    "schedulers": [
        {
            "type": "SequentialLR",
            "schedulers": [
                {"type": "LinearLR", "start_factor": 0.1, "total_iters": 10},
                {"type": "CosineAnnealingLR", "T_max": 9, "eta_min": 0.01},
                {"type": "OneCycleLR", "max_lr": 0.5, "total_steps": 200},
            ],
            "milestones": [10, 50],
        },
        {"type": "StepLR", "step_size": 5, "gamma": 0.7},
    ],
}


def test_block_boundaries_do_not_change_values(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = StepRange(0, 230, 1)
    reference = curve(COMPOSITE, steps)
    for block in (1, 2, 7, 64):
        monkeypatch.setattr(engine.evaluation, "BLOCK", block)
        blocked = curve(COMPOSITE, steps)
        # The scan's association changes with the block size: equal up to rounding.
        assert_close(blocked.lr, reference.lr)
        assert blocked.momentum is not None and reference.momentum is not None
        assert_close(blocked.momentum, reference.momentum)
        strided = curve(COMPOSITE, StepRange(3, 230, 11))
        np.testing.assert_array_equal(strided.lr, blocked.lr[:, 3:230:11])


def test_composite_momentum_is_held_until_a_cycling_child_runs() -> None:
    result = curve(COMPOSITE, StepRange(0, 60, 1))
    assert result.momentum is not None
    # OneCycleLR's constructor set max_momentum; it only moves once that child runs.
    np.testing.assert_array_equal(result.momentum[:, :50], 0.95)
    assert result.momentum[0, 51] < 0.95


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(-5, 30), min_size=1, max_size=9),
    probes=st.lists(st.integers(-10, 40), min_size=1, max_size=30),
)
def test_bisect_right_many_matches_bisect_even_unsorted(
    values: list[int], probes: list[int]
) -> None:
    got = bisect_right_many([float(v) for v in values], np.array(probes, dtype=np.float64))
    assert got.tolist() == [bisect.bisect_right(values, p) for p in probes]


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(0, 300),
    stop=st.integers(0, 300),
    stride=st.integers(1, 50),
    width=st.integers(1, 40),
)
def test_blocks_cover_each_requested_step_once(
    start: int, stop: int, stride: int, width: int
) -> None:
    steps = StepRange(start, stop, stride)
    assert len(steps) == len(range(start, stop, stride))
    seen: list[int] = []
    first = 1
    if start == 0 and len(steps):
        seen.append(0)
    while first <= steps.last:
        size = min(width, steps.last - first + 1)
        wanted, positions = engine.evaluation._requested_in_block(steps, first, size)
        assert np.all((positions >= 0) & (positions < size))
        seen.extend((first + positions).tolist())
        first += size
    assert seen == list(range(start, stop, stride))


def test_huge_finite_values_are_not_mistaken_for_overflow() -> None:
    # Their sum overflows; each value is finite, so the curve is returned (no warning either).
    result = curve(
        {"type": "MultiStepLR", "milestones": [3], "gamma": 1.0},
        StepRange(0, 5, 1),
        np.array([1e308]),
    )
    assert np.all(result.lr == 1e308)
