"""In-process figures: the engine on 1M steps, its accuracy, and the reference loops.

References, measured in the same run: the textbook numpy closed form (one float64 ``cos``
per step), the engine's general closed form (what it did before the fast path), PyTorch's
``scheduler.step()`` loop and optax's cosine schedule under ``jax.jit`` (when importable).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
from pydantic import TypeAdapter

from bench.report import Row
from schemas.schedules import ScheduleSpec, build
from service.engine import StepRange, compute, compute_float32
from service.engine.optimizer import Optimizer

N = 1_000_000
LR = 0.1
SPEC: TypeAdapter[Any] = TypeAdapter(ScheduleSpec)
SCHEDULES: dict[str, dict[str, Any]] = {
    "CosineAnnealingLR": {"type": "CosineAnnealingLR", "T_max": N},
    "OneCycleLR": {"type": "OneCycleLR", "max_lr": LR, "total_steps": N},
    "CosineAnnealingWarmRestarts": {
        "type": "CosineAnnealingWarmRestarts",
        "T_0": 10_000,
        "T_mult": 2,
        "eta_min": 1e-5,
    },
}


@dataclass(frozen=True, slots=True)
class Timing:
    """Best and median of several runs, in seconds."""

    best: float
    median: float


def timed(run: Callable[[], object], repeat: int, budget: float = 10.0) -> Timing:
    """Run ``run`` up to ``repeat`` times (fewer if ``budget`` seconds pass); best and median.

    The machine is shared and loaded, so the best run is the figure (the least disturbed
    one); the median is kept in the JSON output.
    """
    times: list[float] = []
    stop = time.perf_counter() + budget
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
        if time.perf_counter() > stop:
            break
    times.sort()
    return Timing(times[0], times[len(times) // 2])


def engine_curve(name: str, float32: bool = False) -> Any:
    """Validate, build and compute one schedule on steps 0..N-1 (what the route does)."""
    root = build(SPEC.validate_python(SCHEDULES[name]), 1)
    calculate = compute_float32 if float32 else compute
    return calculate(root, np.array([LR]), StepRange(0, N, 1))


def general_closed_form(name: str) -> Any:
    """The engine's general closed form on the step array (the path before this work)."""
    root = build(SPEC.validate_python(SCHEDULES[name]), 1)
    root.construct(Optimizer(np.array([LR])))
    with np.errstate(all="ignore"):
        return root.standalone(np.arange(N, dtype=np.int64))


def naive_numpy(dtype: type[np.floating[Any]]) -> np.ndarray:
    """CosineAnnealingLR's closed form as one would write it: one ``cos`` per step."""
    k = np.arange(N, dtype=dtype)
    pi = dtype(np.pi)
    return dtype(LR) * (1 + np.cos(pi * k / dtype(N))) / 2


def exact(name: str, k: int) -> float:
    """The schedule's value at step ``k`` from its definition, in 40-digit arithmetic."""
    mpmath.mp.dps = 40
    pi = mpmath.pi
    if name == "CosineAnnealingLR":
        return float(LR * (1 + mpmath.cos(pi * (k % (2 * N)) / N)) / 2)
    if name == "CosineAnnealingWarmRestarts":
        start, length = 0, 10_000
        while start + length <= k:
            start, length = start + length, length * 2
        eta = mpmath.mpf("1e-5")
        return float(eta + (LR - eta) * (1 + mpmath.cos(pi * (k - start) / length)) / 2)
    initial = mpmath.mpf(LR) / 25
    low = initial / 10_000
    first_end = mpmath.mpf(0.3 * N) - 1  # PyTorch: float(pct_start * total_steps) - 1
    if k <= first_end:
        pct, start_lr, end_lr = k / first_end, initial, mpmath.mpf(LR)
    else:
        pct = (k - first_end) / (N - 1 - first_end)
        start_lr, end_lr = mpmath.mpf(LR), low
    return float(end_lr + (start_lr - end_lr) / 2 * (mpmath.cos(pi * pct) + 1))


def accuracy(name: str, values: np.ndarray, samples: int) -> tuple[float, float]:
    """Largest relative error (values >= 1e-3 of the maximum) and largest absolute error
    over the maximum, against :func:`exact` at ``samples`` steps (ends and random)."""
    rng = np.random.default_rng(7)
    steps = {0, 1, N - 1, N - 2, 299_999, 300_000, 10_000, 30_000}
    steps |= set(rng.integers(0, N, samples).tolist())
    scale = float(np.abs(values).max())
    relative = absolute = 0.0
    for k in sorted(steps):
        truth = exact(name, k)
        error = abs(float(values[k]) - truth)
        absolute = max(absolute, error / scale)
        if abs(truth) >= 1e-3 * scale:
            relative = max(relative, error / abs(truth))
    return relative, absolute


def torch_loop_seconds(steps: int) -> float | None:
    """Seconds PyTorch takes to step CosineAnnealingLR ``steps`` times, reading the lr."""
    try:
        import torch
    except ImportError:
        return None
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=LR)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=N)
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        for _ in range(steps):
            scheduler.step()
            values.append(optimizer.param_groups[0]["lr"])
        return time.perf_counter() - started


def optax_seconds(float64: bool) -> float | None:
    """Best time of optax's cosine schedule on N steps under ``jax.jit`` (if installed)."""
    try:
        import jax
        import jax.numpy as jnp
        import optax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", float64)
    dtype = jnp.float64 if float64 else jnp.float32
    schedule = jax.jit(optax.cosine_decay_schedule(LR, N))
    k = jnp.arange(N, dtype=dtype)
    schedule(k).block_until_ready()
    return timed(lambda: schedule(k).block_until_ready(), 20).best


def run(rows: list[Row], quick: bool) -> dict[str, float]:
    """Measure; append rows; return figures other parts compare against."""
    repeat = 7 if quick else 25
    naive64 = timed(lambda: naive_numpy(np.float64), repeat).best
    naive32 = timed(lambda: naive_numpy(np.float32), repeat).best
    torch_steps = 20_000 if quick else 200_000
    torch_part = torch_loop_seconds(torch_steps)
    torch_1m = None if torch_part is None else torch_part * N / torch_steps
    optax64, optax32 = optax_seconds(True), optax_seconds(False)
    part = "engine (1M steps, in-process)"
    for name in SCHEDULES:
        ours = timed(lambda name=name: engine_curve(name), repeat).best
        ours32 = timed(lambda name=name: engine_curve(name, True), repeat).best
        before = timed(lambda name=name: general_closed_form(name), 3 if quick else 5).best
        values = engine_curve(name).lr[0]
        relative, absolute = accuracy(name, values, 100 if quick else 400)
        series = " (lr + momentum)" if name == "OneCycleLR" else ""
        rows.append(
            Row(
                part,
                f"{name}{series} float64",
                ours * 1e3,
                "ms",
                "before (general closed form)",
                before * 1e3,
                "faster",
                "<= 2 ms",
                ours <= 2e-3,
            )
        )
        rows.append(
            Row(
                part,
                f"{name}{series} float32",
                ours32 * 1e3,
                "ms",
                "naive numpy float32 cos",
                naive32 * 1e3,
                "of",
            )
        )
        rows.append(
            Row(
                part,
                f"{name} max relative error vs exact",
                relative,
                "",
                target="<= 1e-12",
                met=relative <= 1e-12,
                note=f"abs/max {absolute:.1e}",
            )
        )
        if name == "CosineAnnealingLR":
            rows.append(
                Row(
                    part,
                    "CosineAnnealingLR float64 vs naive numpy",
                    ours * 1e3,
                    "ms",
                    "naive numpy float64 cos",
                    naive64 * 1e3,
                    "faster",
                )
            )
            if torch_1m is not None:
                rows.append(
                    Row(
                        part,
                        "CosineAnnealingLR vs PyTorch loop",
                        ours * 1e3,
                        "ms",
                        "torch scheduler.step() loop",
                        torch_1m * 1e3,
                        "faster",
                        ">= 1,500x",
                        torch_1m / ours >= 1500,
                        note=f"{torch_steps:,} steps, scaled",
                    )
                )
            if optax64 is not None and optax32 is not None:
                rows.append(
                    Row(
                        part,
                        "CosineAnnealingLR float64 vs optax jit",
                        ours * 1e3,
                        "ms",
                        "optax cosine_decay_schedule jit f64",
                        optax64 * 1e3,
                        "faster",
                        ">= 4x",
                        optax64 / ours >= 4,
                    )
                )
                rows.append(
                    Row(
                        part,
                        "CosineAnnealingLR float32 vs optax jit",
                        ours32 * 1e3,
                        "ms",
                        "optax cosine_decay_schedule jit f32",
                        optax32 * 1e3,
                        "faster",
                    )
                )
    return {
        "naive64": naive64,
        "torch_1m": math.nan if torch_1m is None else torch_1m,
    }
