"""The piecewise schedules (Keras ``PiecewiseConstantDecay``, optax ``piecewise_constant``,
``piecewise_interpolate``, ``join``/``sgdr``) look their pieces up instead of looping over
them on every step: bit for bit the values of the loops they replace (kept below as the
reference), at a cost of the steps plus the pieces, not their product.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from schemas.requests import ScheduleRequest
from schemas.schedules import build
from service.engine import StepRange, compute
from service.engine.cancel import Cancelled, cancellable
from service.engine.costs import check_costs
from service.engine.families import keras, optax

Value = Callable[[np.ndarray], np.ndarray]


# --- The reference: the loops over every piece, as they were --------------------------------


def keras_piecewise_reference(boundaries: Sequence[float], values: Sequence[float]) -> Value:
    bounds = np.trunc(np.asarray(boundaries, dtype=np.float64)).tolist()

    def value(k: np.ndarray) -> np.ndarray:
        kf = k.astype(np.float64)
        result = (kf <= bounds[0]) * float(values[0])
        result = result + (kf > bounds[-1]) * float(values[-1])
        for low, high, v in zip(bounds[:-1], bounds[1:], values[1:-1], strict=True):
            result = result + ((kf > low) & (kf <= high)) * float(v)
        return np.asarray(result, dtype=np.float64)

    return value


def optax_piecewise_constant_reference(init_value: float, scales: dict[int, float]) -> Value:
    def value(k: np.ndarray) -> np.ndarray:
        v = np.full(k.shape, float(init_value))
        for threshold, scale in sorted(scales.items()):
            indicator = np.maximum(0.0, np.sign(threshold - k))
            v = v * indicator + (1 - indicator) * scale * v
        return v

    return value


def optax_piecewise_interpolate_reference(
    interpolate_type: str, init_value: float, scales: dict[int, float]
) -> Value:
    items = sorted(scales.items())
    bounds = np.asarray([0] + [b for b, _ in items], dtype=np.float64)
    values = np.cumprod(np.asarray([init_value] + [s for _, s in items], dtype=np.float64))

    def value(k: np.ndarray) -> np.ndarray:
        kf = k.astype(np.float64)
        out = np.zeros(k.shape)
        sizes = np.maximum(bounds[1:] - bounds[:-1], 1)
        for i in range(bounds.shape[0] - 1):
            inside = (bounds[i] <= kf) & (kf < bounds[i + 1])
            pct = (kf - bounds[i]) / sizes[i]
            if interpolate_type == "linear":
                interp = (values[i + 1] - values[i]) * pct + values[i]
            else:
                interp = values[i + 1] + (values[i] - values[i + 1]) / 2.0 * (
                    np.cos(np.pi * pct) + 1
                )
            out = out + np.where(inside, interp, 0.0)
        result: np.ndarray = out + (bounds[-1] <= kf) * values[-1]
        return result

    return value


def join_reference(schedules: Sequence[Value], boundaries: Sequence[int]) -> Value:
    def value(k: np.ndarray) -> np.ndarray:
        chosen = np.zeros(k.shape, dtype=np.int64)
        for index, boundary in enumerate(boundaries, start=1):
            chosen = np.where(k < boundary, chosen, index)
        out = np.empty(k.shape)
        for index, schedule in enumerate(schedules):
            mask = chosen == index
            if mask.any():
                offset = 0 if index == 0 else boundaries[index - 1]
                out[mask] = schedule(k[mask] - offset)
        return out

    return value


def sgdr_reference(cycles: Sequence[dict[str, Any]]) -> Value:
    boundaries: list[int] = []
    schedules: list[Value] = []
    step = 0
    for kwargs in cycles:
        decay_steps = int(kwargs["decay_steps"])
        warmup = int(kwargs["warmup_steps"])
        peak, end = kwargs["peak_value"], kwargs.get("end_value", 0.0)
        alpha = 0.0 if peak == 0.0 else end / peak
        schedules.append(
            join_reference(
                [
                    optax.polynomial(kwargs["init_value"], peak, 1, warmup, 0),
                    optax.cosine_decay(
                        peak, decay_steps - warmup, alpha, kwargs.get("exponent", 1.0)
                    ),
                ],
                [warmup],
            )
        )
        boundaries.append(step + decay_steps)
        step += decay_steps
    return join_reference(schedules, boundaries[:-1])


# --- Random cases: signed zeros, extremes that overflow, boundaries equal or unsorted --------


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


def _assert_same(new: Value, old: Value, k: np.ndarray) -> None:
    with np.errstate(all="ignore"):
        expected, got = old(k), new(k)
    assert got.dtype == expected.dtype == np.float64
    assert got.shape == expected.shape
    np.testing.assert_array_equal(_bits(got), _bits(expected))


def _steps(rng: np.random.Generator) -> np.ndarray:
    kind = rng.integers(0, 4)
    if kind == 0:
        return np.arange(rng.integers(0, 300))
    if kind == 1:  # before and after every boundary, repeated, in order
        return np.sort(rng.integers(-50, 500, size=rng.integers(0, 200)))
    if kind == 2:  # out of order
        return rng.integers(-50, 500, size=rng.integers(0, 200))
    return np.arange(0, 10**6, 997)


def _real(rng: np.random.Generator) -> float:
    kind = rng.integers(0, 8)
    if kind == 0:
        return 0.0
    if kind == 1:
        return -0.0
    if kind == 2:
        return float(rng.choice([1e300, -1e300, 1e-300, 5e-324]))
    if kind == 3:
        return float(rng.integers(-3, 4))
    return float(rng.normal() * 10.0 ** rng.integers(-5, 5))


def _scale(rng: np.random.Generator) -> float:
    kind = rng.integers(0, 7)
    if kind == 0:
        return 0.0
    if kind == 1:
        return -0.0  # passes the schema's ">= 0"
    if kind == 2:
        return float(rng.choice([1e300, 1e-300, 1e200]))  # products over- and underflow
    return float(abs(rng.normal()) * 10.0 ** rng.integers(-3, 3))


def _scales(rng: np.random.Generator) -> dict[int, float]:
    count = int(rng.integers(0, 25))
    if rng.random() < 0.8:
        keys = rng.choice(np.arange(-60, 450), size=count, replace=False).tolist()
    else:
        keys = rng.integers(0, 3, size=count).tolist()  # 0 and few keys
    return {int(key): _scale(rng) for key in keys}


SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
def test_optax_piecewise_constant_is_the_loop_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(60):
        init, scales = _real(rng), _scales(rng)
        _assert_same(
            optax.piecewise_constant(init, scales),
            optax_piecewise_constant_reference(init, scales),
            _steps(rng),
        )


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("seed", SEEDS)
def test_optax_piecewise_interpolate_is_the_loop_bit_for_bit(seed: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(60):
        init, scales = _real(rng), _scales(rng)
        with np.errstate(all="ignore"):  # the cumulative values may overflow (as in optax)
            new = optax.piecewise_interpolate(kind, init, scales)
            old = optax_piecewise_interpolate_reference(kind, init, scales)
        _assert_same(new, old, _steps(rng))


@pytest.mark.parametrize("seed", SEEDS)
def test_keras_piecewise_constant_is_the_sum_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(60):
        count = int(rng.integers(1, 30))
        kind = rng.integers(0, 4)
        if kind == 0:
            bounds = np.sort(rng.uniform(-50, 400, count))
        elif kind == 1:  # equal boundaries, and fractions truncated onto integers
            bounds = np.sort(rng.integers(-5, 30, count)).astype(float)
            bounds = bounds + rng.choice([0.0, 0.5, -0.5], count)
        elif kind == 2:  # unsorted: several terms at once, added in Keras's order
            bounds = rng.uniform(-50, 400, count)
        else:
            bounds = rng.integers(-5, 30, count).astype(float)
        values = [_real(rng) for _ in range(count + 1)]
        if rng.random() < 0.2:  # every sign bit set: the sum of the zeros is -0.0
            values = [-abs(v) for v in values]
        _assert_same(
            keras.piecewise_constant(bounds.tolist(), values),
            keras_piecewise_reference(bounds.tolist(), values),
            _steps(rng),
        )


@pytest.mark.parametrize("seed", SEEDS)
def test_sgdr_and_join_are_the_masks_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(30):
        cycles = []
        for _ in range(int(rng.integers(1, 8))):
            warmup = int(rng.integers(-5, 40))  # negative: the boundaries go back
            cycles.append(
                {
                    "init_value": _real(rng),
                    "peak_value": _real(rng),
                    "warmup_steps": warmup,
                    "decay_steps": warmup + int(rng.integers(1, 80)),
                    "end_value": _real(rng),
                    "exponent": float(rng.choice([1.0, 2.0, 0.5])),
                }
            )
        _assert_same(optax.sgdr(cycles), sgdr_reference(cycles), _steps(rng))


def test_join_with_unsorted_boundaries_takes_the_last_one_reached_in_list_order() -> None:
    pieces = [optax.constant(float(i)) for i in range(4)]
    boundaries = [10, 5, 20]
    k = np.array([0, 4, 5, 9, 10, 19, 20, 25, 3, 12])
    _assert_same(optax.join(pieces, boundaries), join_reference(pieces, boundaries), k)
    _assert_same(
        optax.join(pieces, boundaries), join_reference(pieces, boundaries), k.reshape(2, 5)
    )


def test_optax_piecewise_constant_with_a_boundary_past_int64_still_raises() -> None:
    value = optax.piecewise_constant(1.0, {10**20: 0.5})
    with pytest.raises(OverflowError):
        value(np.arange(3))


# --- The reproducers: 10,000 pieces on 10M steps -------------------------------------------


def _curve(schedule: dict[str, Any], steps: int) -> np.ndarray:
    request = ScheduleRequest.model_validate({"schedule": schedule, "steps": steps})
    root = build(request.schedule, 1)
    check_costs([root], StepRange(0, steps, 1), 1, steps)  # not refused: cheap now
    lr: np.ndarray = compute(root, np.array([0.1]), StepRange(0, steps, 1)).lr[0]
    return lr


def test_keras_10000_boundaries_on_10m_steps_are_computed() -> None:
    values = [0.1 + i * 1e-6 for i in range(10_001)]
    schedule = {
        "type": "keras.PiecewiseConstantDecay",
        "boundaries": list(range(10_000)),
        "values": values,
    }
    lr = _curve(schedule, 10_000_000)
    assert lr.shape == (10_000_000,)
    assert lr[0] == values[0] and lr[1] == values[1] and lr[9_999] == values[9_999]
    assert lr[10_000] == values[10_000] and lr[-1] == values[10_000]


def test_optax_10000_boundaries_on_10m_steps_are_computed() -> None:
    scales = {str(i): 0.9999 for i in range(1, 10_001)}
    lr = _curve(
        {"type": "optax.piecewise_constant", "init_value": 0.1, "boundaries_and_scales": scales},
        10_000_000,
    )
    expected = optax_piecewise_constant_reference(0.1, dict.fromkeys(range(1, 10001), 0.9999))
    k = np.array([0, 1, 2, 5_000, 9_999, 10_000, 10_001, 9_999_999])
    np.testing.assert_array_equal(lr[k], expected(k))


def test_sgdr_of_1000_cycles_on_10m_steps_is_computed() -> None:
    cycle = {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 10, "decay_steps": 100}
    lr = _curve({"type": "optax.sgdr", "cosine_kwargs": [cycle] * 1000}, 10_000_000)
    expected = sgdr_reference([cycle] * 1000)
    k = np.array([0, 5, 10, 99, 100, 150, 99_999, 100_000, 9_999_999])
    np.testing.assert_array_equal(lr[k], expected(k))


def test_a_join_stops_between_pieces_when_cancelled() -> None:
    calls = 0

    def stop_at_third() -> bool:
        nonlocal calls
        calls += 1
        return calls >= 3

    cycle = {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 10, "decay_steps": 100}
    value = optax.sgdr([cycle] * 1000)
    with cancellable(stop_at_third), pytest.raises(Cancelled):
        value(np.arange(100_000))
    assert calls == 3
