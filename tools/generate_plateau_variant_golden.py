"""Write ``tests/golden/families_plateau.json``: optax ``contrib.reduce_on_plateau`` runs.

Usage (needs optax + jax): ``python -m tools.generate_plateau_variant_golden``.

Each case is a ``POST /v1/plateau/replay`` body using the plateau variants that express
optax's rule — ``patience_semantics="keras"`` (reduce when the count reaches ``patience``),
``threshold_mode="both"`` with ``threshold=rtol`` and ``min_delta=atol``,
``accumulation_size``, ``min_lr = lr * min_scale`` and ``eps=0`` — with the lr optax's
``scale`` gives: ``lr * scale`` after each ``update(..., value=metric)`` (JAX in float64).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
from optax import contrib  # noqa: E402

OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "golden" / "families_plateau.json"
SEED = 424242


def optax_lrs(options: dict[str, Any], lr: float, metrics: list[float]) -> list[float]:
    """``lr * scale`` after every metric, from optax itself."""
    transform = contrib.reduce_on_plateau(**options)
    params = jnp.zeros(1, dtype=jnp.float64)
    state = transform.init(params)
    out = []
    for metric in metrics:
        _, state = transform.update(params, state, params, value=jnp.float64(metric))
        out.append(lr * float(state.scale))
    return out


def metrics_walk(rng: random.Random, n: int, negative: bool) -> list[float]:
    value = -1.0 if negative else 1.0
    out = []
    for _ in range(n):
        value += rng.choice([-0.05, -0.01, 0.0, 0.0, 0.002, 0.02]) * (1 if not negative else 1)
        out.append(round(value, 6))
    return out


def main() -> int:
    rng = random.Random(SEED)
    cases = []
    for i in range(30):
        options = {
            "factor": rng.choice([0.1, 0.5, 0.8]),
            "patience": rng.choice([1, 2, 3, 5]),
            "rtol": rng.choice([1e-4, 0.0, 0.01]),
            "atol": rng.choice([0.0, 1e-3, 0.02]),
            "cooldown": rng.choice([0, 0, 1, 3]),
            "accumulation_size": rng.choice([1, 1, 2, 5]),
            "min_scale": rng.choice([0.0, 0.01]),
        }
        if options["rtol"] == 0.0 and options["atol"] == 0.0:
            options["atol"] = 1e-3
        lr = rng.choice([0.1, 1.0])
        metrics = metrics_walk(rng, rng.randint(20, 80), negative=i % 3 == 0)
        schedule = {
            "type": "ReduceLROnPlateau",
            "factor": options["factor"],
            "patience": options["patience"],
            "threshold": options["rtol"],
            "threshold_mode": "both",
            "min_delta": options["atol"],
            "cooldown": options["cooldown"],
            "min_lr": lr * options["min_scale"],
            "eps": 0.0,
            "patience_semantics": "keras",
            "accumulation_size": options["accumulation_size"],
        }
        cases.append(
            {
                "name": f"optax_plateau/{i}",
                "optax": options,
                "request": {"schedule": schedule, "lr": lr, "metrics": metrics},
                "lr": [optax_lrs(options, lr, metrics)],
            }
        )
    lines = [json.dumps(case, sort_keys=True, separators=(",", ":")) for case in cases]
    OUTPUT.write_text("[\n" + ",\n".join(lines) + "\n]\n")
    print(f"wrote {OUTPUT}: {len(cases)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
