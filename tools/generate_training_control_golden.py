"""Write ``tests/golden/early_stopping.json`` from the real early-stopping callbacks.

Usage (needs keras with the jax backend, transformers, pytorch-lightning and torch):
``KERAS_BACKEND=jax python -m tools.generate_training_control_golden``.

Each case is a ``POST /v1/early-stopping/replay`` body (one semantics, random options and a
random metric history with ties, near-ties below float32 precision and non-finite values)
and what the library's callback did when fed that history epoch by epoch until it asked to
stop: the epoch it stopped at (null: never), its best value, the epoch of that best, and
its patience counter. The drivers are in :mod:`tools.training_control_reference`, shared
with the live differential tests.
"""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path
from typing import Any

from tools.training_control_reference import run_early_stopping

OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "golden" / "early_stopping.json"
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
