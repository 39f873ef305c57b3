"""Write ``tests/golden/early_stopping.json`` and ``tests/golden/lr_finder.json`` from the
real early-stopping callbacks and LR-finder suggestion code.

Usage (needs keras with the jax backend, transformers, pytorch-lightning, torch,
torch-lr-finder, matplotlib and ``pip install --no-deps fastai fastcore fastprogress``):
``KERAS_BACKEND=jax python -m tools.generate_training_control_golden``.

Each case is a ``POST /v1/early-stopping/replay`` body (one semantics, random options and a
random metric history with ties, near-ties below float32 precision and non-finite values)
and what the library's callback did when fed that history epoch by epoch until it asked to
stop: the epoch it stopped at (null: never), its best value, the epoch of that best, and
its patience counter. Each LR-finder case is a range test run by the service's own rule on a
synthetic loss curve (falling, then diverging, with noise and the odd non-finite loss), and
the suggestions of fastai, Lightning and torch-lr-finder on its (lr, smoothed loss) points.
The drivers are in :mod:`tools.training_control_reference`, shared with the live tests.
"""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path
from typing import Any

from service.engine import lr_finder
from tools.training_control_reference import run_early_stopping, run_suggestions

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"
OUTPUT = GOLDEN / "early_stopping.json"
LR_FINDER_OUTPUT = GOLDEN / "lr_finder.json"
LR_FINDER_CASES = 60
SEED = 1414
CASES_PER_SEMANTICS = 60


def wire(value: float) -> float | str:
    """A metric as JSON carries it (non-finite values as strings)."""
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def metric_history(rng: random.Random, n: int) -> list[float]:
    """A noisy walk with plateaus, exact repeats, float32 near-ties and rare non-finite values."""
    value = rng.choice([1.0, 0.5, -0.3, 100.0])
    out: list[float] = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.04:
            out.append(rng.choice([math.nan, math.inf, -math.inf]))
            continue
        if kind < 0.2:
            value += rng.choice([1e-9, -1e-9, 1e-12])  # below float32 resolution
        elif kind < 0.35:
            pass  # an exact repeat
        else:
            value += rng.choice([-0.05, -0.01, -0.002, 0.0, 0.003, 0.02, 0.05])
        out.append(round(value, 12))
    return out


def options(rng: random.Random, semantics: str) -> dict[str, Any]:
    """Random callback options valid for ``semantics``."""
    chosen: dict[str, Any] = {
        "semantics": semantics,
        "mode": rng.choice(["min", "max"]),
        "patience": rng.choice([0, 1, 2, 3, 5]),
        "min_delta": rng.choice([0.0, 0.0, 1e-9, 0.001, 0.01, 0.05]),
    }
    if semantics == "keras":
        if rng.random() < 0.3:
            chosen["baseline"] = rng.choice([0.9, 1.0, 0.5, -0.3])
        chosen["start_from_epoch"] = rng.choice([0, 0, 1, 3])
    if semantics == "lightning":
        chosen["check_finite"] = rng.random() < 0.7
        if rng.random() < 0.3:
            chosen["stopping_threshold"] = rng.choice([0.8, 0.95, 1.05])
        if rng.random() < 0.3:
            chosen["divergence_threshold"] = rng.choice([1.2, 0.2, 101.0])
    return chosen


def range_test(rng: random.Random) -> dict[str, Any]:
    """Random options and a loss curve run through the service's range-test rule."""
    options: dict[str, Any] = {
        "start_lr": rng.choice([1e-7, 1e-6, 1e-4]),
        "end_lr": rng.choice([1.0, 10.0]),
        "num_steps": rng.choice([12, 20, 50, 100, 200]),
        "mode": rng.choice(["exponential", "exponential", "linear"]),
        "smooth": rng.choice([0.0, 0.9, 0.98]),
        "smoothing": rng.choice(["debiased", "ema"]),
        "diverge_threshold": rng.choice([4.0, 5.0, 1e9]),
    }
    config = lr_finder.LrFinderConfig(**options)
    turn = rng.uniform(1e-3, 1.0)
    state = lr_finder.LrFinderState()
    lrs, losses, smoothed = [], [], []
    for k in range(config.num_steps):
        lr = lr_finder.lr_at(config, k)
        loss = 2.0 - 0.2 * math.log10(lr / config.start_lr) + rng.gauss(0.0, 0.03)
        if lr > turn:
            loss += 4.0 * (lr / turn - 1.0)
        if rng.random() < 0.002:
            loss = rng.choice([math.nan, math.inf])
        state = lr_finder.step(config, state, loss)
        assert state.smoothed is not None
        lrs.append(lr)
        losses.append(loss)
        smoothed.append(state.smoothed)
        if state.stop:
            break
    return {"options": options, "lr": lrs, "loss": losses, "smoothed": smoothed}


def lr_finder_cases(rng: random.Random) -> list[dict[str, Any]]:
    """Range tests and every library's suggestions on their smoothed curves."""
    cases = []
    for _ in range(LR_FINDER_CASES):
        run = range_test(rng)
        suggested = run_suggestions(run["lr"], run["smoothed"], run["options"]["num_steps"])
        cases.append(
            {
                "options": run["options"],
                "lr": run["lr"],
                "loss": [wire(v) for v in run["loss"]],
                "smoothed": [wire(v) for v in run["smoothed"]],
                "suggestions": suggested,
            }
        )
    return cases


def main() -> int:
    rng = random.Random(SEED)
    cases = []
    for semantics in ("keras", "hf", "lightning"):
        for _ in range(CASES_PER_SEMANTICS):
            chosen = options(rng, semantics)
            metrics = metric_history(rng, rng.randint(1, 30))
            expected = run_early_stopping(chosen, metrics)
            cases.append(
                {
                    "request": {"early_stopping": chosen, "metrics": [wire(m) for m in metrics]},
                    "expected": {
                        **expected,
                        "best": None if expected["best"] is None else wire(expected["best"]),
                    },
                }
            )
    OUTPUT.write_text(json.dumps({"early_stopping": cases}, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {OUTPUT}")
    finder_cases = lr_finder_cases(random.Random(SEED + 1))
    LR_FINDER_OUTPUT.write_text(json.dumps({"lr_finder": finder_cases}, indent=1) + "\n")
    print(f"wrote {len(finder_cases)} cases to {LR_FINDER_OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
