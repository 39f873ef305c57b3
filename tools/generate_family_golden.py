"""Write ``tests/golden/families.json``: curves of the other libraries, computed by them.

Usage (in an environment with transformers, optax + jax, keras, timm and fastai; see
:mod:`tools.family_reference`)::

    python -m tools.generate_family_golden            # writes the file
    python -m tools.generate_family_golden --check    # fails if the file on disk differs

Each case is a ``POST /v1/schedules`` body with a family ``type``, run through the real
library: ``{"name", "request", "lr", "momentum"}``, or, where the library raises,
``{"name", "request", "error", "field"}`` (the 422 must name ``field``). Hand-written edge
cases (zero-length warmup, decay_steps == warmup_steps, past the end, boundaries exactly at
milestones) come first; seeded random configurations follow. Long runs are strided.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tools.family_reference import run

OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "golden" / "families.json"
SEED = 20261123
Spec = dict[str, Any]


class Plan:
    """Planned cases: (name, request, expected field or None)."""

    def __init__(self) -> None:
        self.cases: list[tuple[str, dict[str, Any], str | None]] = []

    def ok(self, name: str, schedule: Spec, **request: Any) -> None:
        self._add(name, schedule, request, None)

    def bad(self, name: str, field: str, schedule: Spec, **request: Any) -> None:
        self._add(name, schedule, request, field)

    def _add(self, name: str, schedule: Spec, request: dict[str, Any], field: str | None) -> None:
        assert all(existing != name for existing, _, _ in self.cases), name
        body = {
            "schedule": schedule,
            "lr": request.pop("lr", 0.1),
            "steps": request.pop("steps", 120),
        }
        body.update(request)
        self.cases.append((name, body, field))


def S(kind: str, **kwargs: Any) -> Spec:
    return {"type": kind, **kwargs}


def hf_cases(p: Plan, rng: random.Random) -> None:
    p.ok("hf/constant", S("hf.constant"), lr=[0.1, 0.01])
    p.ok("hf/constant_with_warmup", S("hf.constant_with_warmup", num_warmup_steps=10))
    p.ok("hf/constant_with_warmup_zero", S("hf.constant_with_warmup", num_warmup_steps=0))
    p.ok("hf/linear", S("hf.linear", num_warmup_steps=10, num_training_steps=100))
    p.ok(
        "hf/linear_zero_warmup_past_end", S("hf.linear", num_warmup_steps=0, num_training_steps=50)
    )
    p.ok("hf/linear_warmup_eq_total", S("hf.linear", num_warmup_steps=40, num_training_steps=40))
    p.ok("hf/cosine", S("hf.cosine", num_warmup_steps=10, num_training_steps=100), lr=[0.1, 0.3])
    p.ok(
        "hf/cosine_one_cycle_rises",
        S("hf.cosine", num_warmup_steps=5, num_training_steps=100, num_cycles=1.0),
    )
    p.ok("hf/cosine_past_end", S("hf.cosine", num_warmup_steps=0, num_training_steps=60), steps=200)
    p.ok(
        "hf/cosine_long_strided",
        S("hf.cosine", num_warmup_steps=2000, num_training_steps=500_000),
        steps=600_000,
        stride=4999,
    )
    p.ok(
        "hf/restarts_3",
        S("hf.cosine_with_restarts", num_warmup_steps=10, num_training_steps=100, num_cycles=3),
    )
    p.ok("hf/restarts_1", S("hf.cosine_with_restarts", num_warmup_steps=0, num_training_steps=100))
    p.ok(
        "hf/min_lr_rate",
        S("hf.cosine_with_min_lr", num_warmup_steps=10, num_training_steps=100, min_lr_rate=0.1),
    )
    p.ok(
        "hf/min_lr_abs_two_groups",
        S("hf.cosine_with_min_lr", num_warmup_steps=10, num_training_steps=100, min_lr=0.001),
        lr=[0.1, 0.5],
    )
    p.ok(
        "hf/warmup_min_lr_default_rate",
        S(
            "hf.cosine_warmup_with_min_lr",
            num_warmup_steps=10,
            num_training_steps=100,
            min_lr_rate=0.05,
        ),
    )
    p.ok(
        "hf/warmup_min_lr_rate",
        S(
            "hf.cosine_warmup_with_min_lr",
            num_warmup_steps=10,
            num_training_steps=100,
            min_lr=0.002,
            warmup_lr_rate=0.1,
        ),
    )
    p.ok(
        "hf/warmup_min_lr_w1",
        S(
            "hf.cosine_warmup_with_min_lr",
            num_warmup_steps=1,
            num_training_steps=30,
            min_lr_rate=0.0,
            warmup_lr_rate=0.5,
        ),
    )
    p.ok(
        "hf/polynomial",
        S("hf.polynomial", num_warmup_steps=10, num_training_steps=100, lr_end=1e-4, power=2.0),
        lr=[0.1, 0.05],
    )
    p.ok(
        "hf/polynomial_default_past_end",
        S("hf.polynomial", num_warmup_steps=0, num_training_steps=50),
        steps=90,
    )
    p.bad(
        "hf/polynomial_lr_end_above",
        "lr_end",
        S("hf.polynomial", num_warmup_steps=0, num_training_steps=50, lr_end=0.2),
    )
    p.bad(
        "hf/polynomial_decay_eq_warmup",
        "num_training_steps",
        S("hf.polynomial", num_warmup_steps=20, num_training_steps=20),
    )
    p.ok("hf/inverse_sqrt", S("hf.inverse_sqrt", num_warmup_steps=10))
    p.ok("hf/inverse_sqrt_timescale", S("hf.inverse_sqrt", num_warmup_steps=10, timescale=40))
    p.ok(
        "hf/inverse_sqrt_no_warmup_long",
        S("hf.inverse_sqrt", num_warmup_steps=0),
        steps=1_000_000,
        stride=9973,
    )
    for warmup_type in ("linear", "cosine", "1-sqrt"):
        for decay_type in ("linear", "cosine", "1-sqrt"):
            p.ok(
                f"hf/wsd_{warmup_type}_{decay_type}",
                S(
                    "hf.wsd",
                    num_warmup_steps=10,
                    num_decay_steps=30,
                    num_training_steps=100,
                    warmup_type=warmup_type,
                    decay_type=decay_type,
                    min_lr_ratio=0.1,
                ),
            )
    p.ok(
        "hf/wsd_stable_given",
        S(
            "hf.wsd",
            num_warmup_steps=5,
            num_decay_steps=20,
            num_stable_steps=50,
            num_training_steps=999,
            num_cycles=1.0,
        ),
    )
    p.ok(
        "hf/wsd_zero_warmup",
        S("hf.wsd", num_warmup_steps=0, num_decay_steps=40, num_training_steps=60),
    )
    kinds = [
        "hf.linear",
        "hf.cosine",
        "hf.cosine_with_restarts",
        "hf.polynomial",
        "hf.cosine_with_min_lr",
    ]
    for i in range(12):
        kind = rng.choice(kinds)
        warmup = rng.choice([0, 1, 3, 17])
        total = warmup + rng.randint(1, 150)
        spec = S(kind, num_warmup_steps=warmup, num_training_steps=total)
        if kind == "hf.cosine":
            spec["num_cycles"] = rng.choice([0.25, 0.5, 1.5])
        if kind == "hf.cosine_with_restarts":
            spec["num_cycles"] = rng.randint(1, 5)
        if kind == "hf.polynomial":
            spec.update(lr_end=rng.choice([1e-7, 1e-3]), power=rng.choice([0.5, 1.0, 3.0]))
            if total == warmup:
                continue
        if kind == "hf.cosine_with_min_lr":
            spec["min_lr_rate"] = rng.choice([0.0, 0.1, 0.5])
        p.ok(f"hf/random_{i}", spec, lr=rng.choice([0.1, [0.1, 0.02], 1.0]), steps=total + 20)


def optax_cases(p: Plan, rng: random.Random) -> None:
    p.ok("optax/constant", S("optax.constant", value=0.03), lr=[0.1, 0.2])
    p.ok(
        "optax/linear",
        S("optax.linear", init_value=0.0, end_value=0.1, transition_steps=50, transition_begin=10),
    )
    p.ok(
        "optax/linear_zero_steps",
        S("optax.linear", init_value=0.05, end_value=0.1, transition_steps=0),
    )
    p.ok(
        "optax/polynomial",
        S(
            "optax.polynomial",
            init_value=0.1,
            end_value=0.001,
            power=2.5,
            transition_steps=80,
            transition_begin=-5,
        ),
    )
    p.ok(
        "optax/cosine_decay",
        S("optax.cosine_decay", init_value=0.1, decay_steps=60, alpha=0.1, exponent=2.0),
    )
    p.ok(
        "optax/warmup_cosine",
        S(
            "optax.warmup_cosine_decay",
            init_value=0.0,
            peak_value=0.1,
            warmup_steps=10,
            decay_steps=100,
            end_value=0.001,
        ),
    )
    p.ok(
        "optax/warmup_cosine_zero_warmup",
        S(
            "optax.warmup_cosine_decay",
            init_value=0.0,
            peak_value=0.1,
            warmup_steps=0,
            decay_steps=50,
            exponent=3.0,
        ),
    )
    p.ok(
        "optax/warmup_cosine_past_end",
        S(
            "optax.warmup_cosine_decay",
            init_value=0.01,
            peak_value=0.1,
            warmup_steps=5,
            decay_steps=30,
        ),
        steps=60,
    )
    p.bad(
        "optax/warmup_cosine_decay_eq_warmup",
        "decay_steps",
        S(
            "optax.warmup_cosine_decay",
            init_value=0.0,
            peak_value=0.1,
            warmup_steps=50,
            decay_steps=50,
        ),
    )
    p.ok(
        "optax/warmup_cosine_long",
        S(
            "optax.warmup_cosine_decay",
            init_value=0.0,
            peak_value=0.1,
            warmup_steps=10_000,
            decay_steps=1_000_000,
        ),
        steps=1_200_000,
        stride=9001,
    )
    p.ok(
        "optax/exp",
        S("optax.exponential_decay", init_value=0.1, transition_steps=10, decay_rate=0.5),
    )
    p.ok(
        "optax/exp_staircase_begin_end",
        S(
            "optax.exponential_decay",
            init_value=0.1,
            transition_steps=10,
            decay_rate=0.5,
            transition_begin=20,
            staircase=True,
            end_value=0.01,
        ),
    )
    p.ok(
        "optax/exp_growth_clipped",
        S(
            "optax.exponential_decay",
            init_value=0.01,
            transition_steps=7,
            decay_rate=1.5,
            end_value=0.2,
        ),
    )
    p.ok(
        "optax/exp_zero_rate",
        S("optax.exponential_decay", init_value=0.01, transition_steps=7, decay_rate=0.0),
    )
    p.ok(
        "optax/piecewise_constant",
        S(
            "optax.piecewise_constant",
            init_value=0.1,
            boundaries_and_scales={"30": 0.5, "60": 0.1, "90": 2.0},
        ),
    )
    p.ok("optax/piecewise_constant_none", S("optax.piecewise_constant", init_value=0.1))
    p.ok(
        "optax/piecewise_interpolate_linear",
        S(
            "optax.piecewise_interpolate",
            interpolate_type="linear",
            init_value=0.01,
            boundaries_and_scales={"20": 10.0, "80": 0.01},
        ),
    )
    p.ok(
        "optax/piecewise_interpolate_cosine_zero_width",
        S(
            "optax.piecewise_interpolate",
            interpolate_type="cosine",
            init_value=0.01,
            boundaries_and_scales={"0": 5.0, "30": 2.0, "31": 0.1, "100": 0.5},
        ),
    )
    p.ok("optax/linear_onecycle", S("optax.linear_onecycle", transition_steps=100, peak_value=0.1))
    p.ok(
        "optax/linear_onecycle_odd",
        S(
            "optax.linear_onecycle",
            transition_steps=37,
            peak_value=0.5,
            pct_start=0.25,
            pct_final=0.7,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
    )
    p.ok(
        "optax/cosine_onecycle",
        S("optax.cosine_onecycle", transition_steps=100, peak_value=0.1),
        steps=150,
    )
    p.ok(
        "optax/sgdr",
        S(
            "optax.sgdr",
            cosine_kwargs=[
                {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 5, "decay_steps": 30},
                {
                    "init_value": 0.01,
                    "peak_value": 0.05,
                    "warmup_steps": 0,
                    "decay_steps": 40,
                    "end_value": 0.001,
                },
                {
                    "init_value": 0.0,
                    "peak_value": 0.02,
                    "warmup_steps": 10,
                    "decay_steps": 30,
                    "exponent": 2.0,
                },
            ],
        ),
    )
    p.ok(
        "optax/join",
        S(
            "optax.join_schedules",
            schedules=[
                S("optax.linear", init_value=0.0, end_value=0.1, transition_steps=20),
                S("optax.cosine_decay", init_value=0.1, decay_steps=50),
                S("optax.constant", value=0.003),
            ],
            boundaries=[20, 70],
        ),
    )
    p.ok(
        "optax/join_unsorted",
        S(
            "optax.join_schedules",
            schedules=[
                S("optax.constant", value=0.1),
                S("optax.constant", value=0.2),
                S("optax.linear", init_value=0.3, end_value=0.0, transition_steps=30),
            ],
            boundaries=[60, 30],
        ),
    )
    for i in range(10):
        warmup = rng.choice([0, 1, 8])
        decay = warmup + rng.randint(1, 120)
        spec = S(
            "optax.warmup_cosine_decay",
            init_value=rng.choice([0.0, 0.01]),
            peak_value=rng.choice([0.1, 1.0]),
            warmup_steps=warmup,
            decay_steps=decay,
            end_value=rng.choice([0.0, 1e-4]),
            exponent=rng.choice([1.0, 0.5, 2.0]),
        )
        p.ok(f"optax/random_{i}", spec, steps=decay + 10)


def keras_cases(p: Plan, rng: random.Random) -> None:
    p.ok(
        "keras/exp",
        S("keras.ExponentialDecay", initial_learning_rate=0.1, decay_steps=10, decay_rate=0.9),
    )
    p.ok(
        "keras/exp_staircase",
        S(
            "keras.ExponentialDecay",
            initial_learning_rate=0.1,
            decay_steps=10,
            decay_rate=0.5,
            staircase=True,
            name="ExponentialDecay",
        ),
    )
    p.bad(
        "keras/exp_zero_steps",
        "decay_steps",
        S("keras.ExponentialDecay", initial_learning_rate=0.1, decay_steps=0, decay_rate=0.9),
    )
    p.ok(
        "keras/piecewise",
        S("keras.PiecewiseConstantDecay", boundaries=[30, 60], values=[0.1, 0.01, 0.001]),
    )
    p.ok(
        "keras/piecewise_one", S("keras.PiecewiseConstantDecay", boundaries=[0], values=[0.5, 0.05])
    )
    for slug, boundaries in [
        ("negative_fraction", [-0.5]),  # cast to the integer step: 0, so step 0 is past it
        ("fractions", [-1.5, 0.5, 2.7]),
        ("negative_fraction_then_int", [-0.5, 3]),
    ]:
        p.ok(
            f"keras/piecewise_{slug}",
            S(
                "keras.PiecewiseConstantDecay",
                boundaries=boundaries,
                values=[0.1 * (i + 1) for i in range(len(boundaries) + 1)],
            ),
            steps=6,
        )
    p.bad(
        "keras/piecewise_lengths",
        "values",
        S("keras.PiecewiseConstantDecay", boundaries=[30, 60], values=[0.1, 0.01]),
    )
    p.ok("keras/poly", S("keras.PolynomialDecay", initial_learning_rate=0.1, decay_steps=50))
    p.ok(
        "keras/poly_power_past_end",
        S(
            "keras.PolynomialDecay",
            initial_learning_rate=0.1,
            decay_steps=50,
            end_learning_rate=0.01,
            power=0.5,
        ),
        steps=90,
    )
    p.ok(
        "keras/poly_cycle",
        S(
            "keras.PolynomialDecay",
            initial_learning_rate=0.1,
            decay_steps=25,
            end_learning_rate=0.001,
            power=2.0,
            cycle=True,
        ),
    )
    p.ok(
        "keras/inverse_time",
        S("keras.InverseTimeDecay", initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5),
    )
    p.ok(
        "keras/inverse_time_staircase",
        S(
            "keras.InverseTimeDecay",
            initial_learning_rate=0.1,
            decay_steps=7,
            decay_rate=2.0,
            staircase=True,
        ),
    )
    p.ok(
        "keras/cosine",
        S("keras.CosineDecay", initial_learning_rate=0.1, decay_steps=100),
        steps=130,
    )
    p.ok(
        "keras/cosine_alpha",
        S("keras.CosineDecay", initial_learning_rate=0.1, decay_steps=60, alpha=0.1),
    )
    p.ok(
        "keras/cosine_warmup",
        S(
            "keras.CosineDecay",
            initial_learning_rate=0.0,
            decay_steps=80,
            warmup_target=0.1,
            warmup_steps=20,
        ),
        steps=130,
    )
    p.ok(
        "keras/cosine_warmup_zero",
        S(
            "keras.CosineDecay",
            initial_learning_rate=0.01,
            decay_steps=80,
            warmup_target=0.1,
            warmup_steps=0,
        ),
    )
    p.ok(
        "keras/restarts",
        S("keras.CosineDecayRestarts", initial_learning_rate=0.1, first_decay_steps=10),
        steps=200,
    )
    p.ok(
        "keras/restarts_equal",
        S(
            "keras.CosineDecayRestarts",
            initial_learning_rate=0.1,
            first_decay_steps=20,
            t_mul=1.0,
            m_mul=0.5,
            alpha=0.1,
        ),
    )
    p.ok(
        "keras/restarts_geometric",
        S(
            "keras.CosineDecayRestarts",
            initial_learning_rate=0.1,
            first_decay_steps=7,
            t_mul=1.5,
            m_mul=0.9,
            alpha=0.05,
        ),
        steps=300,
    )
    p.ok(
        "keras/restarts_long",
        S(
            "keras.CosineDecayRestarts",
            initial_learning_rate=0.1,
            first_decay_steps=1000,
            t_mul=2.0,
            m_mul=0.8,
        ),
        steps=2_000_000,
        stride=19_997,
    )
    for i in range(8):
        kind = rng.choice(
            [
                "keras.ExponentialDecay",
                "keras.PolynomialDecay",
                "keras.CosineDecayRestarts",
                "keras.InverseTimeDecay",
            ]
        )
        if kind == "keras.CosineDecayRestarts":
            spec = S(
                kind,
                initial_learning_rate=0.1,
                first_decay_steps=rng.randint(3, 30),
                t_mul=rng.choice([1.0, 2.0, 3.0]),
                m_mul=rng.choice([1.0, 0.7]),
                alpha=rng.choice([0.0, 0.2]),
            )
        elif kind == "keras.PolynomialDecay":
            spec = S(
                kind,
                initial_learning_rate=0.1,
                decay_steps=rng.randint(5, 60),
                power=rng.choice([0.5, 1.0, 2.0]),
                cycle=rng.choice([False, True]),
            )
        else:
            spec = S(
                kind,
                initial_learning_rate=0.1,
                decay_steps=rng.randint(1, 30),
                decay_rate=rng.choice([0.5, 0.96]),
                staircase=rng.choice([False, True]),
            )
        p.ok(f"keras/random_{i}", spec)


def timm_cases(p: Plan, rng: random.Random) -> None:
    p.ok("timm/cosine", S("timm.cosine", t_initial=100), steps=130)
    p.ok(
        "timm/cosine_warmup_no_prefix",
        S("timm.cosine", t_initial=100, lr_min=1e-4, warmup_t=10, warmup_lr_init=1e-3),
        lr=[0.1, 0.01],
    )
    p.ok(
        "timm/cosine_warmup_prefix",
        S(
            "timm.cosine",
            t_initial=100,
            lr_min=1e-4,
            warmup_t=10,
            warmup_lr_init=1e-3,
            warmup_prefix=True,
        ),
        steps=130,
    )
    p.ok(
        "timm/cosine_cycles",
        S("timm.cosine", t_initial=20, cycle_limit=4, cycle_decay=0.5),
        steps=100,
    )
    p.ok(
        "timm/cosine_cycle_mul",
        S("timm.cosine", t_initial=10, cycle_mul=2.0, cycle_limit=4, cycle_decay=0.7, lr_min=1e-3),
        steps=170,
    )
    p.ok(
        "timm/cosine_cycle_mul_fraction",
        S("timm.cosine", t_initial=9, cycle_mul=1.5, cycle_limit=5),
        steps=120,
    )
    p.ok("timm/cosine_k_decay", S("timm.cosine", t_initial=60, k_decay=2.0, lr_min=1e-3), steps=70)
    p.ok("timm/cosine_noise", S("timm.cosine", t_initial=60, noise_range_t=10), steps=80)
    p.ok(
        "timm/cosine_noise_range",
        S("timm.cosine", t_initial=60, noise_range_t=[5, 40], noise_pct=0.3, noise_seed=7),
        steps=60,
    )
    p.bad(
        "timm/reject_noise_type", "noise_type", S("timm.cosine", t_initial=60, noise_type="normal")
    )
    p.bad(
        "timm/reject_step_noise_type",
        "noise_type",
        S("timm.step", decay_t=10, noise_type="uniform"),
    )
    p.ok(
        "timm/cosine_noise_std",
        S(
            "timm.cosine",
            t_initial=60,
            noise_range_t=0,
            noise_pct=0.2,
            noise_std=0.5,
            noise_seed=1234,
        ),
        steps=60,
    )
    p.ok(
        "timm/cosine_long",
        S("timm.cosine", t_initial=100_000, warmup_t=1000, lr_min=1e-6, cycle_limit=3),
        steps=400_000,
        stride=3331,
    )
    p.ok("timm/tanh", S("timm.tanh", t_initial=100), steps=130)
    p.ok(
        "timm/tanh_warmup_no_prefix",
        S(
            "timm.tanh",
            t_initial=100,
            warmup_t=10,
            warmup_lr_init=1e-3,
            lb=-6.0,
            ub=4.0,
            lr_min=1e-4,
        ),
    )
    p.ok(
        "timm/tanh_warmup_prefix_cycles",
        S(
            "timm.tanh",
            t_initial=30,
            warmup_t=5,
            warmup_prefix=True,
            cycle_limit=3,
            cycle_decay=0.5,
        ),
    )
    p.ok("timm/poly", S("timm.poly", t_initial=100), steps=130)
    p.ok(
        "timm/poly_power_k",
        S(
            "timm.poly",
            t_initial=50,
            power=2.0,
            k_decay=0.5,
            lr_min=1e-3,
            warmup_t=5,
            warmup_lr_init=1e-4,
        ),
    )
    p.ok(
        "timm/poly_cycle_mul",
        S("timm.poly", t_initial=10, power=1.0, cycle_mul=2.0, cycle_limit=3),
        steps=80,
    )
    p.ok("timm/step", S("timm.step", decay_t=30, decay_rate=0.5), steps=100)
    p.ok(
        "timm/step_warmup",
        S("timm.step", decay_t=20, decay_rate=0.1, warmup_t=5, warmup_lr_init=1e-3),
    )
    p.ok(
        "timm/step_warmup_no_prefix",
        S("timm.step", decay_t=20, decay_rate=0.1, warmup_t=5, warmup_prefix=False),
    )
    p.ok("timm/multistep", S("timm.multistep", decay_t=[30, 60, 90], decay_rate=0.5))
    p.ok(
        "timm/multistep_at_boundary_warmup",
        S("timm.multistep", decay_t=[10, 20], decay_rate=0.1, warmup_t=3, warmup_lr_init=0.01),
        steps=40,
    )
    p.ok("timm/multistep_unsorted", S("timm.multistep", decay_t=[50, 20], decay_rate=0.5), steps=70)
    for i in range(8):
        kind = rng.choice(["timm.cosine", "timm.poly", "timm.tanh"])
        spec = S(
            kind,
            t_initial=rng.randint(5, 50),
            lr_min=rng.choice([0.0, 1e-4]),
            cycle_mul=rng.choice([1.0, 1.0, 2.0, 0.5]),
            cycle_decay=rng.choice([1.0, 0.5]),
            cycle_limit=rng.randint(1, 4),
            warmup_t=rng.choice([0, 3]),
            warmup_prefix=rng.choice([False, True]),
        )
        steps = 60
        if spec["cycle_mul"] == 0.5:
            steps = min(
                steps,
                2 * spec["t_initial"] - 1 + (spec["warmup_t"] if spec["warmup_prefix"] else 0),
            )
        p.ok(f"timm/random_{i}", spec, steps=steps)
    p.bad(
        "timm/cosine_shrinking_past_end",
        "cycle_mul",
        S("timm.cosine", t_initial=10, cycle_mul=0.5, cycle_limit=10),
        steps=30,
    )


def fastai_cases(p: Plan, rng: random.Random) -> None:
    p.ok("fastai/one_cycle_default", S("fastai.one_cycle", n_epoch=2, n_iter=50), steps=100)
    p.ok(
        "fastai/one_cycle_lr_max", S("fastai.one_cycle", n_epoch=3, n_iter=20, lr_max=0.5), steps=60
    )
    p.ok(
        "fastai/one_cycle_params",
        S(
            "fastai.one_cycle",
            n_epoch=4,
            n_iter=10,
            lr_max=0.1,
            div=10.0,
            div_final=1000.0,
            pct_start=0.3,
            moms=[0.9, 0.8, 0.9],
        ),
        steps=40,
    )
    p.ok(
        "fastai/one_cycle_pct_0",
        S("fastai.one_cycle", n_epoch=1, n_iter=30, pct_start=0.0),
        steps=30,
    )
    p.ok(
        "fastai/one_cycle_odd", S("fastai.one_cycle", n_epoch=3, n_iter=7, pct_start=0.33), steps=21
    )
    p.ok("fastai/flat_cos", S("fastai.flat_cos", n_epoch=2, n_iter=50), steps=100)
    p.ok(
        "fastai/flat_cos_params",
        S("fastai.flat_cos", n_epoch=5, n_iter=9, lr=0.3, div_final=100.0, pct_start=0.5),
        steps=45,
    )
    for i in range(15):
        kind = rng.choice(["fastai.one_cycle", "fastai.flat_cos"])
        n_epoch, n_iter = rng.randint(1, 4), rng.randint(3, 40)
        spec = S(
            kind, n_epoch=n_epoch, n_iter=n_iter, pct_start=rng.choice([0.1, 0.25, 0.5, 0.75, 0.9])
        )
        if kind == "fastai.one_cycle":
            spec.update(div=rng.choice([25.0, 5.0]), div_final=rng.choice([1e5, 1e2]))
        else:
            spec.update(div_final=rng.choice([1e5, 10.0]))
        p.ok(f"fastai/random_{i}", spec, lr=rng.choice([0.1, 0.003, 1.0]), steps=n_epoch * n_iter)


def build(reuse: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every case, run through the libraries; cases whose name starts with one of ``reuse``
    are copied from the file on disk instead (their request must not have changed)."""
    plan = Plan()
    rng = random.Random(SEED)
    for family in (hf_cases, optax_cases, keras_cases, timm_cases, fastai_cases):
        family(plan, rng)
    recorded = {case["name"]: case for case in json.loads(OUTPUT.read_text())} if reuse else {}
    out = []
    for name, request, field in plan.cases:
        if name.startswith(reuse) and reuse:
            kept = recorded.get(name)
            if kept is None or kept["request"] != request:
                raise RuntimeError(f"{name}: not on disk as planned; run its library")
            out.append(kept)
            continue
        try:
            lr, momentum = run(request)
        except Exception as error:
            if field is None:
                raise RuntimeError(f"{name}: the library raised {error!r}") from error
            out.append(
                {
                    "name": name,
                    "request": request,
                    "error": f"{type(error).__name__}: {error}",
                    "field": field,
                }
            )
            continue
        if field is not None:
            raise RuntimeError(f"{name}: expected the library to reject it")
        out.append({"name": name, "request": request, "lr": lr, "momentum": momentum})
    return out


def render(cases: list[dict[str, Any]]) -> str:
    lines = [json.dumps(case, sort_keys=True, separators=(",", ":")) for case in cases]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    parser.add_argument(
        "--reuse",
        action="append",
        default=[],
        metavar="PREFIX",
        help="copy the cases named PREFIX... from the file on disk (e.g. fastai/ where fastai "
        "cannot be imported) instead of running them",
    )
    args = parser.parse_args()
    text = render(build(tuple(args.reuse)))
    if args.check:
        return 0 if OUTPUT.read_text() == text else 1
    OUTPUT.write_text(text)
    counts = Counter(
        json.loads(line.rstrip(","))["name"].split("/")[0] for line in text.splitlines()[1:-1]
    )
    print(f"wrote {OUTPUT} ({len(text)} bytes): {dict(counts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
