"""Write ``tests/golden/adapters.json``: what optax, Keras and transformers give for the
specs the client's framework adapters are tested with.

Usage::

    python -m tools.generate_adapter_golden            # writes the file
    python -m tools.generate_adapter_golden --check    # fails if the file on disk differs

Needs optax + jax, Keras 3 and transformers + torch (see :mod:`tools.family_reference`, which
computes optax and Keras in float64). Each ``optax``/``keras`` case holds a spec, the number
of steps an adapter fetches, and the library's own values at counts past that end too (the
adapters hold the last value, as these schedules hold their end value); each ``hf`` case an
``lr_scheduler_type`` with its arguments and the lr of ``get_scheduler``'s scheduler after
``k`` steps, ``k = 0..num_training_steps``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from transformers.optimization import get_scheduler

from tools.family_reference import keras_curve, optax_curve

OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "golden" / "adapters.json"
HF_LR = 0.1

OPTAX: list[tuple[str, dict[str, Any], int]] = [
    (
        "warmup_cosine_decay",
        {
            "type": "optax.warmup_cosine_decay",
            "init_value": 0.0,
            "peak_value": 0.1,
            "warmup_steps": 10,
            "decay_steps": 60,
            "end_value": 0.001,
        },
        70,
    ),
    ("linear_onecycle", {"type": "optax.linear_onecycle", "transition_steps": 40,
                         "peak_value": 0.2}, 45),
    ("exponential_decay_staircase", {"type": "optax.exponential_decay", "init_value": 0.1,
     "transition_steps": 7, "decay_rate": 0.5, "staircase": True, "end_value": 0.001}, 60),
]  # fmt: skip
KERAS: list[tuple[str, dict[str, Any], int]] = [
    ("cosine_decay_warmup", {"type": "keras.CosineDecay", "initial_learning_rate": 0.0,
     "decay_steps": 40, "alpha": 0.1, "warmup_target": 0.1, "warmup_steps": 10}, 55),
    ("piecewise_constant", {"type": "keras.PiecewiseConstantDecay", "boundaries": [5, 12],
     "values": [0.1, 0.05, 0.01]}, 20),
    ("polynomial_decay", {"type": "keras.PolynomialDecay", "initial_learning_rate": 0.1,
     "decay_steps": 30, "end_learning_rate": 0.001, "power": 2.0}, 35),
]  # fmt: skip
HF: list[tuple[str, int, int, dict[str, Any]]] = [
    ("linear", 3, 20, {}),
    ("cosine", 4, 20, {"num_cycles": 0.75}),
    ("cosine_with_restarts", 2, 20, {"num_cycles": 3}),
    ("polynomial", 2, 20, {"power": 2.0, "lr_end": 1e-4}),
    ("constant", 5, 20, {}),
    ("constant_with_warmup", 5, 20, {}),
    ("inverse_sqrt", 4, 20, {"timescale": 3}),
    ("cosine_with_min_lr", 3, 20, {"min_lr_rate": 0.1}),
    ("cosine_warmup_with_min_lr", 3, 20, {"min_lr": 0.01}),
    ("warmup_stable_decay", 3, 20, {"num_decay_steps": 6}),
]
"""Every ``lr_scheduler_type`` with a remote equivalent."""
PAST_END = 15
"""Counts recorded past the fetched steps."""


def hf_lrs(name: str, warmup: int, total: int, kwargs: dict[str, Any]) -> list[float]:
    """The lr of ``get_scheduler(name, ...)`` on AdamW(lr=0.1), stepped ``total`` times."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=HF_LR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = get_scheduler(
            name, optimizer, num_warmup_steps=warmup, num_training_steps=total,
            scheduler_specific_kwargs=kwargs,
        )  # fmt: skip
        values = [float(optimizer.param_groups[0]["lr"])]
        for _ in range(total):
            optimizer.step()
            scheduler.step()
            values.append(float(optimizer.param_groups[0]["lr"]))
    return values


def build() -> dict[str, list[dict[str, Any]]]:
    """Every case, with the library's values."""
    tables = {"optax": (OPTAX, optax_curve), "keras": (KERAS, keras_curve)}
    golden: dict[str, list[dict[str, Any]]] = {}
    for library, (cases, curve) in tables.items():
        golden[library] = []
        for name, spec, steps in cases:
            counts = list(range(steps + PAST_END))
            values = curve(spec, [1.0], counts)[0]
            golden[library].append(
                {"name": name, "spec": spec, "steps": steps, "counts": counts, "values": values}
            )
    golden["hf"] = [
        {"name": name, "warmup": warmup, "total": total, "kwargs": kwargs, "lr": HF_LR,
         "values": hf_lrs(name, warmup, total, kwargs)}
        for name, warmup, total, kwargs in HF
    ]  # fmt: skip
    return golden


def dumps(golden: dict[str, list[dict[str, Any]]]) -> str:
    """One case per line, keys sorted."""
    parts = []
    for library, cases in golden.items():
        lines = ",\n".join("    " + json.dumps(case, sort_keys=True) for case in cases)
        parts.append(f'  "{library}": [\n{lines}\n  ]')
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    """Generate (or ``--check``) the golden file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = dumps(build())
    if args.check:
        if args.output.read_text() != text:
            print(f"{args.output} is out of date", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"{len(text) / 1e3:.0f} kB -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
