"""The fast closed forms of CosineAnnealingLR, CosineAnnealingWarmRestarts and OneCycleLR.

Every optimized path (tables, tiling, cycle runs, phases, float32) against the schedule's
textbook formula evaluated one value at a time, and against the general closed form the
engine used before (``Leaf.standalone``), at range, table, period and phase boundaries.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter

import service.engine as engine
from rules.errors import ScheduleError
from schemas.schedules import ScheduleSpec, build
from service.engine import StepRange, compute, compute_float32, lr_chunks
from service.engine.optimizer import Optimizer

SPEC: TypeAdapter[Any] = TypeAdapter(ScheduleSpec)


def curve(spec: dict[str, Any], lrs: list[float], steps: StepRange) -> Any:
    root = build(SPEC.validate_python(spec), len(lrs))
    return compute(root, np.array(lrs), steps)


def curve32(spec: dict[str, Any], lrs: list[float], steps: StepRange) -> Any:
    root = build(SPEC.validate_python(spec), len(lrs))
    return compute_float32(root, np.array(lrs), steps)


def general(spec: dict[str, Any], lrs: list[float], steps: StepRange) -> Any:
    """The general closed form (``standalone`` on the step array), as before the fast path."""
    root = build(SPEC.validate_python(spec), len(lrs))
    root.construct(Optimizer(np.array(lrs)))
    with np.errstate(all="ignore"):
        return root.standalone(steps.indices())


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """Relative 1e-12 per value, absolute floor 4e-15 of the row's largest value."""
    assert actual.shape == expected.shape
    for a, e in zip(np.atleast_2d(actual), np.atleast_2d(expected), strict=True):
        scale = float(np.abs(e).max(initial=0.0))
        excess = np.abs(a - e) - (1e-12 * np.abs(e) + 4e-15 * scale)
        assert excess.max(initial=-1.0) <= 0, f"first bad index {int(np.argmax(excess))}"


def assert_float32_is_rounded_float64(actual: np.ndarray, expected64: np.ndarray) -> None:
    assert actual.dtype == np.float32
    expected = expected64.astype(np.float32)
    ulps = np.abs(actual.astype(np.float64) - expected) / np.spacing(np.abs(expected))
    assert ulps.max(initial=0.0) <= 1


def cosine_reference(k: np.ndarray, t_max: float, base: float, eta: float) -> np.ndarray:
    """:math:`\\eta + (b - \\eta)(1 + \\cos(\\pi (k \\bmod 2T) / T))/2`, exactly reduced."""
    reduced = np.fmod(k.astype(np.float64), 2.0 * t_max)
    return eta + (base - eta) * (1 + np.cos(np.pi * reduced / t_max)) / 2


RANGES = [
    StepRange(0, 1, 1),
    StepRange(0, 2047, 1),
    StepRange(0, 2049, 1),
    StepRange(0, 100_003, 1),
    StepRange(5, 300_000, 7),
    StepRange(10**12, 10**12 + 70_001, 1),
    StepRange(10**15 - 50_000, 10**15, 3),
]


@pytest.mark.parametrize("steps", RANGES)
@pytest.mark.parametrize("t_max", [1, 7, 1000, 250_000, 2.5, 123.7, -77, -1, 10**15])
def test_cosine_annealing_matches_the_formula(t_max: float, steps: StepRange) -> None:
    spec = {"type": "CosineAnnealingLR", "T_max": t_max, "eta_min": 0.001}
    lr = curve(spec, [0.1, 2.0], steps).lr
    k = steps.indices()
    expected = np.stack([cosine_reference(k, t_max, b, 0.001) for b in (0.1, 2.0)])
    assert_close(lr, expected)
    assert_float32_is_rounded_float64(curve32(spec, [0.1, 2.0], steps).lr, expected)


@pytest.mark.parametrize("t_max", [11, 2.5, 400, -9])
def test_cosine_annealing_agrees_with_the_general_closed_form_at_small_steps(
    t_max: float,
) -> None:
    # Up to a few periods the textbook angle pi * k / T is itself exact to ~1e-13.
    steps = StepRange(0, 5000, 1)
    spec = {"type": "CosineAnnealingLR", "T_max": t_max}
    expected, _ = general(spec, [0.1], steps)
    np.testing.assert_allclose(curve(spec, [0.1], steps).lr, expected, rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("t_max", [-0.3, 1e-3, 0.75, 2.2250738585072014e-308])
def test_a_period_shorter_than_a_step_is_pytorchs_recursion(t_max: float) -> None:
    """``0 < |T_max| < 1`` declines the fast forms and steps PyTorch's recursion: the same
    bits as the scheduler inside a ChainedScheduler (always stepped)."""
    steps = StepRange(0, 3000, 1)
    spec = {"type": "CosineAnnealingLR", "T_max": t_max, "eta_min": 0.001}
    chained = {"type": "ChainedScheduler", "schedulers": [spec]}
    lr = curve(spec, [0.1, 2.0], steps).lr
    np.testing.assert_array_equal(lr, curve(chained, [0.1, 2.0], steps).lr)
    np.testing.assert_array_equal(lr[:, 0], [0.1, 2.0])
    root = build(SPEC.validate_python(spec), 1)
    assert lr_chunks(root, np.array([0.1]), steps, np.dtype(np.float64)) is None


def test_cosine_annealing_t_max_zero_still_fails_at_the_first_step() -> None:
    with pytest.raises(ScheduleError, match="T_max=0"):
        curve({"type": "CosineAnnealingLR", "T_max": 0}, [0.1], StepRange(0, 5000, 1))


def sgdr_reference(k: np.ndarray, t_0: int, t_mult: int, base: float, eta: float) -> np.ndarray:
    """PyTorch's T_cur/T_i bookkeeping one step at a time (Python ints), then the cosine."""
    values = []
    for step in k.tolist():
        if t_mult == 1:
            t_cur, t_i = step % t_0, t_0
        else:
            n = int(math.log(step / t_0 * (t_mult - 1) + 1, t_mult))
            start = t_0 * (t_mult**n - 1) // (t_mult - 1)
            while start > step:  # the float log may land one cycle off
                n -= 1
                start = t_0 * (t_mult**n - 1) // (t_mult - 1)
            while start + t_0 * t_mult**n <= step:
                start += t_0 * t_mult**n
                n += 1
            t_cur, t_i = step - start, t_0 * t_mult**n
        values.append(eta + (base - eta) * (1 + math.cos(math.pi * t_cur / t_i)) / 2)
    return np.array(values)


@pytest.mark.parametrize(
    ("t_0", "t_mult", "steps"),
    [
        (1, 1, StepRange(0, 5000, 1)),
        (10, 1, StepRange(3, 50_003, 1)),
        (1000, 1, StepRange(17, 200_000, 3)),
        (7, 1, StepRange(0, 100_000, 6)),  # stride near T_0: many short cycles
        (7, 1, StepRange(0, 100_000, 7)),  # stride = T_0: a constant curve
        (1, 2, StepRange(0, 100_000, 1)),
        (10, 2, StepRange(0, 100_000, 1)),
        (7, 3, StepRange(1, 200_000, 5)),
        (1000, 2, StepRange(999, 3000, 1)),  # starts on the last step of a cycle
        (13, 1, StepRange(10**12, 10**12 + 40_000, 1)),
        (5, 1_000_000, StepRange(0, 20_000, 1)),
    ],
)
def test_warm_restarts_match_the_formula(t_0: int, t_mult: int, steps: StepRange) -> None:
    spec = {"type": "CosineAnnealingWarmRestarts", "T_0": t_0, "T_mult": t_mult, "eta_min": 1e-4}
    lr = curve(spec, [0.1, 1.0], steps).lr
    k = steps.indices()
    expected = np.stack([sgdr_reference(k, t_0, t_mult, b, 1e-4) for b in (0.1, 1.0)])
    assert_close(lr, expected)
    general_lr, _ = general(spec, [0.1, 1.0], steps)
    assert_close(lr, general_lr)
    assert_float32_is_rounded_float64(curve32(spec, [0.1, 1.0], steps).lr, expected)


ONE_CYCLES = [
    {"type": "OneCycleLR", "max_lr": [0.1, 0.5], "total_steps": 10},
    {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 100_000},
    {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 100_000, "three_phase": True},
    {
        "type": "OneCycleLR",
        "max_lr": 1.0,
        "total_steps": 30_001,
        "pct_start": 0.333,
        "anneal_strategy": "linear",
    },
    {
        "type": "OneCycleLR",
        "max_lr": 1.0,
        "total_steps": 30_001,
        "pct_start": 0.7,
        "three_phase": True,
        "cycle_momentum": False,
    },
    {"type": "OneCycleLR", "max_lr": 0.3, "total_steps": 7, "pct_start": 0.5},
]


@pytest.mark.parametrize("spec", ONE_CYCLES)
@pytest.mark.parametrize("stride", [1, 3, 1000])
@pytest.mark.parametrize("offset", [0, 1, 2999])
def test_one_cycle_matches_the_general_closed_form(
    spec: dict[str, Any], stride: int, offset: int
) -> None:
    total = spec["total_steps"]
    start = min(offset, total)
    steps = StepRange(start, total + 1, stride)  # step total_steps is allowed
    groups = len(spec["max_lr"]) if isinstance(spec["max_lr"], list) else 1
    lrs = [0.001] * groups
    result = curve(spec, lrs, steps)
    expected_lr, expected_momentum = general(spec, lrs, steps)
    assert_close(result.lr, expected_lr)
    if expected_momentum is None:
        assert result.momentum is None
    else:
        assert_close(result.momentum, expected_momentum)
    as32 = curve32(spec, lrs, steps)
    assert_float32_is_rounded_float64(as32.lr, expected_lr)
    if expected_momentum is not None:
        assert_float32_is_rounded_float64(as32.momentum, expected_momentum)


def one_cycle_textbook(k: int, total: int, max_lr: float, pct_start: float) -> float:
    """Two-phase cosine 1cycle from its definition (PyTorch's defaults otherwise)."""
    initial, minimum = max_lr / 25.0, max_lr / 25.0 / 1e4
    first_end = pct_start * total - 1
    if k <= first_end:
        pct, start, end = k / first_end, initial, max_lr
    else:
        pct, start, end = (k - first_end) / (total - 1 - first_end), max_lr, minimum
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def test_one_cycle_matches_its_definition_across_the_phase_boundary() -> None:
    total = 1_000_000
    spec = {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": total}
    steps = StepRange(299_000, 301_001, 1)
    lr = curve(spec, [0.001], steps).lr[0]
    expected = np.array([one_cycle_textbook(k, total, 0.1, 0.3) for k in range(299_000, 301_001)])
    assert_close(lr, expected)


def test_one_cycle_past_total_steps_still_fails_at_that_step() -> None:
    spec = {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 5000}
    with pytest.raises(ScheduleError, match="total_steps=5000") as raised:
        curve(spec, [0.001], StepRange(0, 5002, 1))
    assert raised.value.step == 5001


def test_one_cycle_empty_phase_still_fails() -> None:
    spec = {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 5000, "pct_start": 1.0}
    with pytest.raises(ScheduleError, match="empty phase"):
        curve(spec, [0.001], StepRange(0, 5001, 1))


def test_overflowing_parameters_take_the_general_path_and_fail_there() -> None:
    spec = {"type": "CosineAnnealingLR", "T_max": 100, "eta_min": -1.7e308}
    with pytest.raises(ScheduleError, match="not finite"):
        curve(spec, [1.7e308], StepRange(0, 5000, 1))


def test_float32_of_a_stepped_schedule_is_the_float64_curve_rounded() -> None:
    spec = {
        "type": "SequentialLR",
        "schedulers": [
            {"type": "LinearLR", "start_factor": 0.1, "total_iters": 100},
            {"type": "CosineAnnealingLR", "T_max": 900},
        ],
        "milestones": [100],
    }
    steps = StepRange(0, 1000, 1)
    np.testing.assert_array_equal(
        curve32(spec, [0.1], steps).lr, curve(spec, [0.1], steps).lr.astype(np.float32)
    )


@pytest.mark.parametrize("piece", [1, 999, 1000, 4096])
@pytest.mark.parametrize(
    "spec",
    [
        {"type": "CosineAnnealingWarmRestarts", "T_0": 50, "T_mult": 3},
        {"type": "CosineAnnealingLR", "T_max": 150_000, "eta_min": 1e-4},
        {"type": "CosineAnnealingLR", "T_max": 33},
    ],
)
def test_lr_chunks_are_the_curve_in_pieces_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, piece: int, spec: dict[str, Any]
) -> None:
    monkeypatch.setattr(engine.evaluation, "PIECE", piece)
    steps = StepRange(7, 20_000, 3)
    for dtype, whole in ((np.float32, curve32), (np.float64, curve)):
        root = build(SPEC.validate_python(spec), 1)
        pieces = lr_chunks(root, np.array([0.1]), steps, np.dtype(dtype))
        assert pieces is not None
        joined = np.concatenate(list(pieces))
        np.testing.assert_array_equal(joined, whole(spec, [0.1], steps).lr[0])
    k = steps.indices()
    if spec["type"] == "CosineAnnealingLR":
        assert_close(
            curve(spec, [0.1], steps).lr[0],
            cosine_reference(k, spec["T_max"], 0.1, 1e-4 if "eta_min" in spec else 0.0),
        )


def test_lr_chunks_decline_what_must_be_computed_whole() -> None:
    steps = StepRange(0, 100, 1)
    for spec, lrs in (
        ({"type": "CosineAnnealingLR", "T_max": 10}, [0.1, 0.2]),  # two groups
        ({"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 100}, [0.1]),  # range-dependent
        ({"type": "CosineAnnealingLR", "T_max": 0}, [0.1]),  # fails: the general path says how
    ):
        root = build(SPEC.validate_python(spec), len(lrs))
        assert lr_chunks(root, np.array(lrs), steps, np.dtype(np.float64)) is None
