"""The angle-addition kernel, tiling and range helpers against the textbook formulas."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from schemas.requests import ScheduleRequest
from schemas.schedules import build
from service.engine import StepRange, compute, fastmath
from service.engine.fastmath import Affine, Progression


def textbook(angles: Progression, n: int, alpha: float, beta: float) -> np.ndarray:
    """``alpha + beta * cos(theta_i)``, one ``np.cos`` per value."""
    x = angles.x0 + np.arange(n, dtype=np.float64) * angles.dx
    if angles.periodic:
        x = np.fmod(x, 2.0 * angles.length)
    return alpha + beta * np.cos(np.pi * x / angles.length)


def assert_close(actual: np.ndarray, expected: np.ndarray, scale: float) -> None:
    """Relative 1e-12, with an absolute floor of a few ulps of the curve's scale."""
    bound = 1e-12 * np.abs(expected) + 4e-15 * scale
    worst = np.abs(actual.astype(np.float64) - expected) - bound
    assert worst.max(initial=-1.0) <= 0, f"first bad index {int(np.argmax(worst))}"


# Sizes around the table threshold, block boundaries and partial last rows.
SIZES = [
    1,
    2,
    fastmath.TABLE_MIN - 1,
    fastmath.TABLE_MIN,
    fastmath.TABLE_MIN + 1,
    fastmath.BLOCK - 1,
    fastmath.BLOCK,
    fastmath.BLOCK + 1,
    3 * fastmath.BLOCK + 17,
    1 << 20,
    (1 << 20) + 1,
]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(
    "angles",
    [
        Progression(0.0, 1.0, 1000.0, periodic=True),
        Progression(3.0, 7.0, 123_456.0, periodic=True),
        Progression(1e12, 13.0, 2.5, periodic=True),
        Progression(0.0, 1.0, -77.0, periodic=True),
        Progression(0.5, 1.0, 299_999.5),
        Progression(-0.25, 3.0, 1e6),
    ],
)
def test_cos_affine_matches_one_cos_per_value(angles: Progression, n: int) -> None:
    out = np.empty(n)
    fastmath.cos_affine(angles, n, [Affine(0.0505, 0.0495, out)])
    assert_close(out, textbook(angles, n, 0.0505, 0.0495), 0.1)


@pytest.mark.parametrize("n", [fastmath.TABLE_MIN - 1, fastmath.BLOCK + 5, 200_003])
def test_cos_affine_rows_share_angles_and_round_float32_once(n: int) -> None:
    angles = Progression(11.0, 3.0, 5_000.0, periodic=True)
    lr = np.empty((2, n))
    momentum = np.empty((2, n), dtype=np.float32)
    rows = [
        Affine(0.3, 0.2, lr[0]),
        Affine(-1.0, 2.5, lr[1]),
        Affine(0.9, -0.05, momentum[0]),
        Affine(0.9, 0.05, momentum[1]),
    ]
    fastmath.cos_affine(angles, n, rows)
    assert_close(lr[0], textbook(angles, n, 0.3, 0.2), 0.5)
    assert_close(lr[1], textbook(angles, n, -1.0, 2.5), 3.5)
    for g, beta in enumerate((-0.05, 0.05)):
        expected = textbook(angles, n, 0.9, beta).astype(np.float32)
        ulps = np.abs(momentum[g] - expected) / np.spacing(expected)
        assert ulps.max() <= 1  # float64's result rounded once: at most its last-bit ties


def test_short_runs_are_one_cos_per_value_bit_for_bit_in_every_row() -> None:
    """Below the tables, each row is ``alpha + beta * cos((x / L) * pi)`` in float64, rounded
    once to a float32 row: the rows share one scratch buffer and none leaks into the next."""
    angles, n = Progression(5.0, 2.0, 699.0), 1000
    x = angles.x0 + np.arange(n, dtype=np.float64) * angles.dx
    cosines = np.cos((x / angles.length) * np.pi)
    parameters = [(0.3, 0.2), (-1.0, 2.5), (0.9, -0.05), (0.9, 0.05)]
    outs = [np.empty(n), np.empty(n), np.empty(n, np.float32), np.empty(n)]
    rows = [Affine(a, b, out) for (a, b), out in zip(parameters, outs, strict=True)]
    fastmath.cos_affine(angles, n, rows)
    for (alpha, beta), out in zip(parameters, outs, strict=True):
        np.testing.assert_array_equal(out, (alpha + beta * cosines).astype(out.dtype))


def test_cos_affine_writes_only_the_first_n_values() -> None:
    out = np.full(5000, 7.0)
    fastmath.cos_affine(Progression(0.0, 1.0, 100.0, periodic=True), 4000, [Affine(0, 1, out)])
    assert (out[4000:] == 7.0).all()


def test_tables_are_exact_at_huge_steps_where_textbook_loses_digits() -> None:
    # k = 1e12 + i with T = 1000: the exact angle is pi * (k mod 2000) / 1000.
    n = 10_000
    angles = Progression(1e12, 1.0, 1000.0, periodic=True)
    out = np.empty(n)
    fastmath.cos_affine(angles, n, [Affine(0.0, 1.0, out)])
    mpmath.mp.dps = 40
    naive = np.cos(np.pi * (1e12 + np.arange(n)) / 1000.0)
    worst_ours = worst_naive = 0.0
    for i in range(0, n, 997):
        k = 10**12 + i
        exact = float(mpmath.cos(mpmath.pi * (k % 2000) / 1000))
        worst_ours = max(worst_ours, abs(out[i] - exact))
        worst_naive = max(worst_naive, abs(naive[i] - exact))
    assert worst_ours < 1e-15
    assert worst_naive > 1e-9  # the textbook formula's angle error at this size


def test_linear_is_pytorchs_operation_order() -> None:
    out = np.empty(1000, dtype=np.float32)
    fastmath.linear(-0.5, 2.0, 333.5, 1000, 0.04, 1.0, out)
    pct = (-0.5 + np.arange(1000) * 2.0) / 333.5
    np.testing.assert_array_equal(out, ((1.0 - 0.04) * pct + 0.04).astype(np.float32))


@pytest.mark.parametrize("period", [1, 2, 3, 1000, 4095])
@pytest.mark.parametrize("n", [1, 999, 1000, 1001, 65_537])
def test_tile_repeats_the_first_period(period: int, n: int) -> None:
    out = np.arange(n, dtype=np.float64)
    fastmath.tile(out, min(period, n), n)
    np.testing.assert_array_equal(out, np.arange(n) % period)


@pytest.mark.parametrize(
    ("period_steps", "stride", "n", "expected"),
    [(2000, 1, 10**6, 2000), (2000, 3, 10**6, 2000), (2000, 4, 10**6, 500), (10, 10, 5, 1)],
)
def test_periodic_prefix(period_steps: int, stride: int, n: int, expected: int) -> None:
    assert fastmath.periodic_prefix(period_steps, stride, n) == expected


def test_periodic_prefix_is_n_when_the_period_is_longer() -> None:
    assert fastmath.periodic_prefix(2_000_000, 1, 1000) == 1000


@pytest.mark.parametrize("x", [-1.0, 0.0, 4.0, 4.5, 299.99999999999994, 300.0, 1e20, math.inf])
@pytest.mark.parametrize(("start", "stride", "n"), [(0, 1, 1000), (3, 7, 50), (0, 1, 0)])
def test_count_at_most_is_exact(x: float, start: int, stride: int, n: int) -> None:
    expected = sum(1 for i in range(n) if start + i * stride <= x)
    assert fastmath.count_at_most(start, stride, n, x) == expected


def test_bounded_refuses_what_could_overflow() -> None:
    assert fastmath.bounded(0.1, -3.0, 1e300)
    assert not fastmath.bounded(0.1, math.inf)
    assert not fastmath.bounded(math.nan)
    assert not fastmath.bounded(1.7e308)


def test_short_run_cosines_are_remembered_read_only_and_equal_fresh_ones() -> None:
    """A sweep's next request reuses its phases' cosines: the same array, which no caller
    can write into, equal bit for bit to a fresh computation."""
    angles = Progression(3.0, 2.0, 997.0)
    first = fastmath._cosines(angles, 500)
    assert fastmath._cosines(Progression(3.0, 2.0, 997.0), 500) is first
    assert not first.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        first[0] = 0.0
    fresh = np.cos(((3.0 + np.arange(500, dtype=np.float64) * 2.0) / 997.0) * np.pi)
    np.testing.assert_array_equal(first, fresh)
    assert fastmath._cosines(Progression(3.0, 2.0, 997.0), 499) is not first
    other = fastmath._cosines(Progression(3.0, 2.0, 998.0), 500)
    assert other[1] != first[1]


def test_curves_after_a_remembered_progression_are_the_curves_computed_fresh() -> None:
    """OneCycleLR sweeps (max_lr differs, the progression not) give the values a cold engine
    gives, whatever was computed before."""

    def curve(max_lr: float) -> tuple[np.ndarray, np.ndarray | None]:
        spec = {"type": "OneCycleLR", "max_lr": max_lr, "total_steps": 1000}
        request = ScheduleRequest.model_validate({"schedule": spec, "steps": 1000})
        result = compute(build(request.schedule, 1), np.array(request.lrs), StepRange(0, 1000, 1))
        return result.lr, result.momentum

    sweep = (0.1, 0.2, 0.3)
    warm = [curve(max_lr) for max_lr in sweep]  # the second and third reuse the cosines
    for max_lr, (lr, momentum) in zip(sweep, warm, strict=True):
        fastmath._cosines.cache_clear()
        cold_lr, cold_momentum = curve(max_lr)
        np.testing.assert_array_equal(lr, cold_lr)
        np.testing.assert_array_equal(momentum, cold_momentum)
