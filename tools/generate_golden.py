"""Write ``tests/golden/schedules.json``: golden curves computed by real PyTorch.

Usage::

    python -m tools.generate_golden            # writes tests/golden/schedules.json
    python -m tools.generate_golden --check    # fails if the file on disk differs

Every case is a ``POST /v1/schedules`` body run through :mod:`tools.torch_reference`; the file
records what torch did, never what we expected. An *accepted* case is::

    {"name": ..., "request": {...}, "lr": [[...] per group], "momentum": [[...]] | null}

and a *rejected* case (torch raised at construction or while stepping through the requested
range) is::

    {"name": ..., "request": {...}, "error": "<ExceptionType: message>", "field": "<name>"}

where ``field`` is a field name that the service's 422 ``loc`` must contain. Hand-written
cases also state whether torch should accept them; a mismatch aborts the run, so a surprise
is looked at instead of silently recorded. Cases that request a stride whose last ``k`` is
below ``steps - 1`` are also run through ``steps - 1``: if that changes the outcome the case
is ambiguous and aborts the run too.

The hand-written corner cases (pytorch.md section 7) come first, one function per scheduler
family; seeded random configurations (composites nested to depth 2) fill the file up.
Output is deterministic: one case per line, ``sort_keys``, floats as ``repr``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.torch_reference import (
    LR_SCHEDULER_TYPES,
    SCHEDULE_TYPES,
    describe_error,
    requested_steps,
    run,
)

OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "golden" / "schedules.json"
SEED = 20240613
RANDOM_CASES = 260
SWALR_SEED = 20261204
RANDOM_SWALR_CASES = 40

Spec = dict[str, Any]
Request = dict[str, Any]

L1 = 0.1
L2 = [0.1, 0.01]
L3 = [0.1, 0.05, 1.0]


@dataclass
class Planned:
    """A request and what torch is expected to do with it (``field`` set: reject)."""

    name: str
    request: Request
    field: str | None = None


@dataclass
class Plan:
    """The ordered list of planned cases, with unique names."""

    cases: list[Planned] = field(default_factory=list)

    def _add(self, name: str, request: Request, field_name: str | None) -> None:
        if any(case.name == name for case in self.cases):
            raise ValueError(f"duplicate case name {name!r}")
        self.cases.append(Planned(name, request, field_name))

    def ok(self, name: str, schedule: Spec, **request: Any) -> None:
        """Plan a case torch must accept."""
        self._add(name, make_request(schedule, **request), None)

    def bad(self, name: str, field_name: str, schedule: Spec, **request: Any) -> None:
        """Plan a case torch must reject; the 422 must name ``field_name``."""
        self._add(name, make_request(schedule, **request), field_name)

    def ok_each(
        self,
        kind: str,
        variants: Mapping[str, Mapping[str, Any]],
        common: Mapping[str, Any] | None = None,
        **request: Any,
    ) -> None:
        """Plan ``kind/<slug>`` for every ``slug: options`` of ``variants``, in order, with
        ``common`` options under each (a variant's own win); torch must accept them all."""
        for slug, options in variants.items():
            self.ok(f"{kind}/{slug}", S(kind, **{**(common or {}), **options}), **request)

    def ok_rows(self, kind: str, rows: Iterable[tuple[str, Mapping[str, Any], int]]) -> None:
        """Plan ``kind/<slug>`` with ``options`` over ``steps`` for every ``(slug, options,
        steps)`` of ``rows``, in order; torch must accept them all."""
        for slug, options, steps in rows:
            self.ok(f"{kind}/{slug}", S(kind, **options), steps=steps)

    def bad_each(
        self,
        kind: str,
        variants: Mapping[str, tuple[str, Mapping[str, Any]]],
        common: Mapping[str, Any] | None = None,
        **request: Any,
    ) -> None:
        """Plan ``kind/<slug>`` for every ``slug: (field, options)`` of ``variants``, in order,
        as :meth:`ok_each` does; torch must reject each, and its 422 must name ``field``."""
        for slug, (field_name, options) in variants.items():
            schedule = S(kind, **{**(common or {}), **options})
            self.bad(f"{kind}/{slug}", field_name, schedule, **request)


def make_request(
    schedule: Spec,
    *,
    lr: Any = L1,
    steps: int = 40,
    start: int | None = None,
    stride: int | None = None,
) -> Request:
    """A request body; ``lr=None`` leaves ``lr`` out (the 0.001 default applies)."""
    request: Request = {"schedule": schedule, "steps": steps}
    if lr is not None:
        request["lr"] = lr
    if start is not None:
        request["start"] = start
    if stride is not None:
        request["stride"] = stride
    return request


def S(kind: str, **kwargs: Any) -> Spec:
    """A schedule spec ``{"type": kind, **kwargs}``."""
    return {"type": kind, **kwargs}


def seq(children: list[Spec], milestones: list[int]) -> Spec:
    """A SequentialLR spec."""
    return S("SequentialLR", schedulers=children, milestones=milestones)


def chain(children: list[Spec]) -> Spec:
    """A ChainedScheduler spec."""
    return S("ChainedScheduler", schedulers=children)


# --------------------------------------------------------------------------------------------
# Hand-written cases, one function per family.
# --------------------------------------------------------------------------------------------


def lambda_cases(p: Plan) -> None:
    """LambdaLR and MultiplicativeLR: docs lambdas, every language feature, per-group lists."""
    exprs = {
        "docs_epoch_div_30": "lambda epoch: epoch // 30",
        "docs_095_pow": "lambda epoch: 0.95 ** epoch",
        "bare_linear_decay": "max(0.0, 1 - epoch / 100)",
        "warmup_min": "min(1.0, (epoch + 1) / 10)",
        "conditional": "lambda step: 1.0 if step < 10 else 0.1",
        "math_cos": "lambda epoch: 0.5 * (1 + math.cos(math.pi * epoch / 200))",
        "bare_cos_pi": "0.5 * (1 + cos(pi * epoch / 60))",
        "rsqrt_warmup": "lambda s: min((s + 1) ** -0.5, (s + 1) * 10 ** -1.5)",
        "inv_sqrt": "1 / sqrt(max(epoch, 1))",
        "floor_ceil": "floor(epoch / 7) * 0.1 + ceil(epoch / 11) * 0.01 + 0.5",
        "exp_log": "exp(-epoch / 50) + log(epoch + 1) / 100",
        "log2_log10": "lambda x: 1 / (1 + log2(x + 1) + log10(x + 1))",
        "tanh_sin_tan": "0.5 + 0.25 * tanh(sin(epoch / 5)) + 0.01 * tan(epoch / 100)",
        "pow_abs": "pow(0.97, abs(epoch - 20))",
        "math_pow_e": "math.pow(math.e, -epoch / 40)",
        "mod": "lambda it: (it % 10 + 1) / 10",
        "and_or": "1.0 if epoch > 3 and epoch < 15 or epoch == 30 else 0.25",
        "not": "0.5 + 0.5 * (not (epoch % 3))",
        "unary_minus_cmp": "-epoch / 100 if epoch >= 50 else 1 - epoch / 100",
        "inf_const": "min(inf, 2.0 / (epoch + 2))",
        "constant_int": "lambda epoch: 1",
        "negative": "-0.5 + epoch * 0",
    }
    for slug, expr in exprs.items():
        p.ok(f"LambdaLR/{slug}", S("LambdaLR", lr_lambda=expr), steps=120)
    p.ok(
        "LambdaLR/docs_two_groups",
        S("LambdaLR", lr_lambda=["lambda epoch: epoch // 30", "lambda epoch: 0.95 ** epoch"]),
        lr=[0.05, 0.05],
        steps=100,
    )
    p.ok(
        "LambdaLR/three_groups",
        S("LambdaLR", lr_lambda=["0.9 ** epoch", "lambda e: 1 / (e + 1)", "min(1, epoch / 5)"]),
        lr=L3,
        steps=60,
    )
    p.ok("LambdaLR/scalar_lambda_two_groups", S("LambdaLR", lr_lambda="0.99 ** epoch"), lr=L2)
    p.ok(
        "LambdaLR/start_stride",
        S("LambdaLR", lr_lambda="0.98 ** epoch"),
        steps=300,
        start=17,
        stride=7,
    )
    p.ok("LambdaLR/default_lr", S("LambdaLR", lr_lambda="1 - epoch / 40"), lr=None, steps=40)
    p.ok("LambdaLR/int_lr", S("LambdaLR", lr_lambda="lambda epoch: 1"), lr=1, steps=5)
    p.ok("LambdaLR/k0_only", S("LambdaLR", lr_lambda="3 + epoch"), steps=1)

    mults = {
        "const_095": "lambda epoch: 0.95",
        "bare_const": "0.9",
        "every_10": "0.5 if epoch % 10 == 0 else 1.0",
        "one_over_epoch_not_at_0": "lambda epoch: 1 / epoch",
        "growing": "lambda e: 1 + 0.001 * e",
        "log_not_at_0": "1 + log(epoch) / 100",
    }
    for slug, expr in mults.items():
        p.ok(f"MultiplicativeLR/{slug}", S("MultiplicativeLR", lr_lambda=expr), steps=100)
    p.ok(
        "MultiplicativeLR/three_groups",
        S("MultiplicativeLR", lr_lambda=["0.9", "lambda e: 1.01", "1 if epoch < 5 else 0.8"]),
        lr=L3,
        steps=50,
    )
    p.ok(
        "MultiplicativeLR/start_stride",
        S("MultiplicativeLR", lr_lambda="0.99"),
        steps=250,
        start=3,
        stride=10,
    )


def step_cases(p: Plan) -> None:
    """StepLR and MultiStepLR, including the unvalidated arguments."""
    p.ok_each(
        "StepLR",
        {
            "default_gamma": {"step_size": 30},
            "step_1": {"step_size": 1, "gamma": 0.9},
            "step_3": {"step_size": 3, "gamma": 0.5},
            "gamma_1": {"step_size": 2, "gamma": 1.0},
            "gamma_gt_1": {"step_size": 20, "gamma": 1.5},
            "negative_step_size": {"step_size": -2, "gamma": 0.9},
            "float_step_size": {"step_size": 2.5, "gamma": 0.5},
            "gamma_0": {"step_size": 4, "gamma": 0.0},
        },
        steps=150,
    )
    p.ok("StepLR/three_groups", S("StepLR", step_size=7, gamma=0.7), lr=L3, steps=80)
    p.ok("StepLR/step_size_0_only_k0", S("StepLR", step_size=0), steps=1)
    p.ok("StepLR/long_stride", S("StepLR", step_size=100, gamma=0.95), steps=5000, stride=7)
    p.ok("StepLR/start_past_steps_mid", S("StepLR", step_size=5), steps=40, start=39)
    p.ok("StepLR/int_lr", S("StepLR", step_size=3, gamma=0.5), lr=1, steps=12)

    p.ok_each(
        "MultiStepLR",
        {
            "docs_30_80": {"milestones": [30, 80]},
            "duplicates_2_2_5": {"milestones": [2, 2, 5], "gamma": 0.5},
            "unsorted": {"milestones": [9, 2, 5], "gamma": 0.5},
            "zero": {"milestones": [0], "gamma": 0.5},
            "zero_and_3": {"milestones": [0, 3], "gamma": 0.5},
            "negative": {"milestones": [-1, 2], "gamma": 0.5},
            "empty": {"milestones": []},
            "triple": {"milestones": [4, 4, 4], "gamma": 0.5},
            "gamma_2": {"milestones": [3, 6], "gamma": 2.0},
            "beyond_range": {"milestones": [500]},
        },
        steps=100,
    )
    p.ok("MultiStepLR/two_groups", S("MultiStepLR", milestones=[5, 10], gamma=0.3), lr=L2)
    p.ok(
        "MultiStepLR/stride",
        S("MultiStepLR", milestones=[10, 20, 30]),
        lr=L3,
        steps=35,
        start=1,
        stride=3,
    )


def constant_linear_cases(p: Plan) -> None:
    """ConstantLR and LinearLR."""
    p.ok_each(
        "ConstantLR",
        {
            "default": {},
            "factor_1": {"factor": 1.0, "total_iters": 4},
            "factor_0_beyond_range": {"factor": 0.0, "total_iters": 50},
            "factor_0_total_0": {"factor": 0.0, "total_iters": 0},
            "total_iters_0": {"factor": 0.5, "total_iters": 0},
            "total_iters_negative": {"factor": 0.5, "total_iters": -3},
            "total_iters_1": {"factor": 0.25, "total_iters": 1},
            "int_factor_1": {"factor": 1, "total_iters": 2},
        },
        steps=30,
    )
    p.ok("ConstantLR/three_groups", S("ConstantLR", factor=0.1, total_iters=7), lr=L3, steps=15)
    p.ok(
        "ConstantLR/start_after_total",
        S("ConstantLR", factor=0.3, total_iters=5),
        steps=20,
        start=6,
    )

    p.ok_each(
        "LinearLR",
        {
            "default": {},
            "end_0_exact": {"start_factor": 1.0, "end_factor": 0.0, "total_iters": 10},
            "decreasing": {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 8},
            "total_iters_0": {"start_factor": 0.5, "total_iters": 0},
            "total_iters_negative": {"start_factor": 0.5, "total_iters": -2},
            "total_iters_1": {"start_factor": 0.2, "total_iters": 1},
            "final_value_quarter": {"start_factor": 0.25, "end_factor": 1.0, "total_iters": 4},
            "constant": {"start_factor": 1.0, "end_factor": 1.0, "total_iters": 5},
            "end_below_start_partial": {"start_factor": 0.8, "end_factor": 0.2, "total_iters": 3},
        },
        steps=25,
    )
    p.ok("LinearLR/three_groups", S("LinearLR", start_factor=0.1, total_iters=9), lr=L3)
    p.ok(
        "LinearLR/long_warmup",
        S("LinearLR", start_factor=0.001, total_iters=1000),
        steps=1200,
        stride=3,
    )
    # end_factor=0 is exactly 0.0 only for some start factors: (T*s + (T-1)*(0-s)) != s in
    # floating point, so the last factor leaves a signed residue (~1e-19) that then stays.
    residue = S("LinearLR", start_factor=0.1, end_factor=0.0, total_iters=10)
    p.ok("LinearLR/end_0_residue_full_row", residue, steps=30)
    p.ok("LinearLR/end_0_residue_after_total", residue, steps=30, start=10)
    p.ok(
        "LinearLR/end_0_positive_residue_after_total",
        S("LinearLR", start_factor=0.3, end_factor=0.0, total_iters=5),
        lr=L2,
        steps=20,
        start=6,
    )


def exp_poly_cases(p: Plan) -> None:
    """ExponentialLR and PolynomialLR."""
    for slug, gamma in {
        "gamma_09": 0.9,
        "gamma_0": 0.0,
        "gamma_1": 1.0,
        "gamma_minus_1": -1.0,
        "gamma_101": 1.01,
        "gamma_int_1": 1,
    }.items():
        p.ok(f"ExponentialLR/{slug}", S("ExponentialLR", gamma=gamma), steps=200)
    p.ok("ExponentialLR/two_groups", S("ExponentialLR", gamma=0.95), lr=L2, steps=100)
    p.ok(
        "ExponentialLR/long_stride",
        S("ExponentialLR", gamma=0.999),
        lr=L2,
        steps=5000,
        stride=13,
    )
    p.ok("ExponentialLR/long_dense", S("ExponentialLR", gamma=0.9995), steps=2000)

    p.ok_rows(
        "PolynomialLR",
        [
            ("default", {}, 30),
            ("power_05", {"total_iters": 4, "power": 0.5}, 30),
            ("power_0", {"total_iters": 6, "power": 0.0}, 30),
            ("power_2", {"total_iters": 10, "power": 2.0}, 30),
            ("total_iters_0", {"total_iters": 0}, 30),
            ("total_iters_1", {"total_iters": 1}, 30),
            ("power_3_long", {"total_iters": 100, "power": 3.0}, 150),
            ("negative_power_before_total", {"total_iters": 50, "power": -1.0}, 30),
            ("int_power", {"total_iters": 8, "power": 2}, 30),
        ],
    )
    p.ok("PolynomialLR/three_groups", S("PolynomialLR", total_iters=12, power=1.5), lr=L3)
    p.ok(
        "PolynomialLR/long_stride",
        S("PolynomialLR", total_iters=3000, power=0.9),
        steps=3500,
        stride=11,
    )


def cosine_cases(p: Plan) -> None:
    """CosineAnnealingLR (recursive form, not clamped past T_max)."""
    p.ok_rows(
        "CosineAnnealingLR",
        [
            ("t_max_1", {"T_max": 1}, 10),
            ("t_max_4_past", {"T_max": 4, "eta_min": 0.01}, 30),
            ("eta_min_gt_base", {"T_max": 10, "eta_min": 0.5}, 40),
            ("eta_min_eq_base", {"T_max": 10, "eta_min": 0.1}, 40),
            ("t_max_float_25", {"T_max": 2.5}, 30),
            ("t_max_3_special_branch", {"T_max": 3, "eta_min": 0.001}, 60),
            ("t_max_100", {"T_max": 100, "eta_min": 0.001}, 300),
            ("t_max_0_only_k0", {"T_max": 0}, 1),
            ("eta_min_int_0", {"T_max": 7, "eta_min": 0}, 20),
        ],
    )
    p.ok("CosineAnnealingLR/drift_1500", S("CosineAnnealingLR", T_max=10), steps=1500)
    p.ok(
        "CosineAnnealingLR/drift_eta_5000_stride",
        S("CosineAnnealingLR", T_max=37, eta_min=0.01),
        lr=L2,
        steps=5000,
        stride=9,
    )
    p.ok(
        "CosineAnnealingLR/three_groups_eta",
        S("CosineAnnealingLR", T_max=4, eta_min=0.05),
        lr=[0.1, 1.0, 0.02],
        steps=12,
    )
    p.ok(
        "CosineAnnealingLR/start_stride",
        S("CosineAnnealingLR", T_max=50),
        steps=200,
        start=5,
        stride=4,
    )


def cyclic_cases(p: Plan) -> None:
    """CyclicLR: modes, momentum, degenerate step sizes, custom scale functions."""
    base = {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2}
    p.ok_each(
        "CyclicLR",
        {
            "triangular": {},
            "triangular2": {"mode": "triangular2"},
            "exp_range": {"mode": "exp_range", "gamma": 0.9},
            "down_0": {"step_size_down": 0},
            "float_sizes": {"step_size_up": 2.5, "step_size_down": 3.7},
            "max_below_base": {"base_lr": 0.1, "max_lr": 0.01},
            "no_momentum": {"cycle_momentum": False},
            "asymmetric": {"step_size_up": 3, "step_size_down": 7, "mode": "triangular2"},
            "scale_fn_cycle": {"scale_fn": "lambda x: 1 / (2.0 ** (x - 1))", "scale_mode": "cycle"},
            "scale_fn_iterations": {"scale_fn": "0.99 ** epoch", "scale_mode": "iterations"},
            "scale_fn_default_mode_cycle": {"scale_fn": "lambda c: 1 / c"},
            "scale_fn_ignores_mode": {"scale_fn": "lambda c: 0.5", "mode": "foo"},
            "scale_mode_unknown_acts_as_iterations": {
                "scale_fn": "lambda x: 1 / (1 + x)",
                "scale_mode": "bar",
            },
            "builtin_mode_forces_scale_mode": {"mode": "triangular2", "scale_mode": "iterations"},
            "exp_range_gamma_1": {"mode": "exp_range", "gamma": 1.0},
            "gamma_ignored_triangular": {"gamma": 0.5},
            "momentum_custom": {"base_momentum": 0.5, "max_momentum": 0.95},
            "momentum_inverted": {"base_momentum": 0.95, "max_momentum": 0.85},
        },
        base,
        steps=40,
    )
    p.ok(
        "CyclicLR/per_group_lists",
        S(
            "CyclicLR",
            base_lr=[0.01, 0.001, 0.1],
            max_lr=[0.1, 0.01, 0.2],
            step_size_up=5,
            base_momentum=[0.8, 0.7, 0.85],
            max_momentum=[0.9, 0.95, 0.9],
            mode="triangular2",
        ),
        lr=L3,
        steps=60,
    )
    p.ok(
        "CyclicLR/lr_ignored_two_groups",
        S("CyclicLR", base_lr=0.001, max_lr=0.006, step_size_up=4),
        lr=L2,
        steps=30,
    )
    p.ok(
        "CyclicLR/defaults_long",
        S("CyclicLR", base_lr=0.001, max_lr=0.01),
        steps=5000,
        stride=17,
    )
    p.ok(
        "CyclicLR/exp_range_long",
        S("CyclicLR", base_lr=0.001, max_lr=0.1, step_size_up=50, mode="exp_range", gamma=0.999),
        steps=3000,
        start=2,
        stride=5,
    )
    p.ok(
        "CyclicLR/float_up_only",
        S("CyclicLR", base_lr=0.0, max_lr=1.0, step_size_up=1.5),
        lr=None,
        steps=20,
    )
    p.ok(
        "CyclicLR/no_momentum_ignores_momentum_list_length",
        S(
            "CyclicLR",
            base_lr=0.01,
            max_lr=0.1,
            step_size_up=3,
            cycle_momentum=False,
            base_momentum=[0.5, 0.6, 0.7, 0.8],
            max_momentum=[0.9],
        ),
        lr=L2,
        steps=20,
    )


def onecycle_cases(p: Plan) -> None:
    """OneCycleLR: phases, anneal strategies, degenerate widths, k == total_steps."""
    p.ok_rows(
        "OneCycleLR",
        [
            ("default_100", {"max_lr": 0.1, "total_steps": 100}, 100),
            ("docs_max_1_t10_k_eq_T", {"max_lr": 1.0, "total_steps": 10}, 11),
            (
                "linear_k_eq_T_negative",
                {"max_lr": 1.0, "total_steps": 10, "anneal_strategy": "linear"},
                11,
            ),
            ("three_phase_cos", {"max_lr": 0.5, "total_steps": 40, "three_phase": True}, 41),
            (
                "three_phase_linear",
                {
                    "max_lr": 0.5,
                    "total_steps": 40,
                    "three_phase": True,
                    "anneal_strategy": "linear",
                },
                41,
            ),
            ("pct_0", {"max_lr": 1.0, "total_steps": 10, "pct_start": 0.0}, 11),
            (
                "pct_0_three_phase",
                {"max_lr": 1.0, "total_steps": 10, "pct_start": 0.0, "three_phase": True},
                11,
            ),
            ("pct_1_below_T", {"max_lr": 1.0, "total_steps": 10, "pct_start": 1.0}, 10),
            (
                "pct_1_three_phase",
                {"max_lr": 1.0, "total_steps": 10, "pct_start": 1.0, "three_phase": True},
                11,
            ),
            (
                "pct_05_three_phase",
                {"max_lr": 1.0, "total_steps": 10, "pct_start": 0.5, "three_phase": True},
                11,
            ),
            ("epochs_times_steps", {"max_lr": 0.2, "epochs": 4, "steps_per_epoch": 9}, 37),
            (
                "total_steps_precedence",
                {"max_lr": 0.2, "total_steps": 20, "epochs": 4, "steps_per_epoch": 9},
                21,
            ),
            ("t_1", {"max_lr": 1.0, "total_steps": 1}, 2),
            ("t_2", {"max_lr": 1.0, "total_steps": 2}, 3),
            ("t_3", {"max_lr": 1.0, "total_steps": 3, "pct_start": 0.5}, 4),
            ("no_momentum", {"max_lr": 0.3, "total_steps": 30, "cycle_momentum": False}, 30),
            (
                "div_factors",
                {"max_lr": 0.4, "total_steps": 50, "div_factor": 4.0, "final_div_factor": 100.0},
                51,
            ),
            (
                "div_factor_int",
                {"max_lr": 1, "total_steps": 20, "div_factor": 10, "final_div_factor": 10},
                21,
            ),
            (
                "momentum_custom",
                {"max_lr": 0.1, "total_steps": 25, "base_momentum": 0.7, "max_momentum": 0.99},
                26,
            ),
            ("pct_start_odd", {"max_lr": 0.1, "total_steps": 37, "pct_start": 0.37}, 38),
        ],
    )
    p.ok(
        "OneCycleLR/per_group_lists",
        S(
            "OneCycleLR",
            max_lr=[0.1, 0.01, 1.0],
            total_steps=30,
            base_momentum=[0.8, 0.85, 0.5],
            max_momentum=[0.9, 0.95, 0.6],
        ),
        lr=L3,
        steps=31,
    )
    p.ok(
        "OneCycleLR/scalar_two_groups",
        S("OneCycleLR", max_lr=0.05, total_steps=15),
        lr=L2,
        steps=16,
    )
    p.ok(
        "OneCycleLR/no_momentum_ignores_momentum_list_length",
        S(
            "OneCycleLR",
            max_lr=0.05,
            total_steps=15,
            cycle_momentum=False,
            base_momentum=[0.8, 0.8, 0.8],
            max_momentum=[0.9],
        ),
        lr=L2,
        steps=16,
    )
    p.ok(
        "OneCycleLR/long_stride",
        S("OneCycleLR", max_lr=0.01, total_steps=4000, three_phase=True),
        steps=4001,
        stride=8,
    )
    p.ok(
        "OneCycleLR/start_stride",
        S("OneCycleLR", max_lr=0.01, total_steps=300),
        steps=301,
        start=10,
        stride=10,
    )


def restarts_cases(p: Plan) -> None:
    """CosineAnnealingWarmRestarts."""
    p.ok_rows(
        "CosineAnnealingWarmRestarts",
        [
            ("t0_10", {"T_0": 10}, 50),
            ("t0_3_tmult_2_eta", {"T_0": 3, "T_mult": 2, "eta_min": 0.01}, 60),
            ("t0_1_tmult_3", {"T_0": 1, "T_mult": 3}, 150),
            ("t0_1", {"T_0": 1}, 10),
            ("t0_2_tmult_1_eta", {"T_0": 2, "T_mult": 1, "eta_min": 0.05}, 20),
            ("eta_min_gt_base", {"T_0": 5, "eta_min": 0.5}, 20),
            ("eta_min_int", {"T_0": 4, "eta_min": 0}, 12),
        ],
    )
    p.ok(
        "CosineAnnealingWarmRestarts/three_groups",
        S("CosineAnnealingWarmRestarts", T_0=4, T_mult=2, eta_min=0.001),
        lr=L3,
        steps=40,
    )
    p.ok(
        "CosineAnnealingWarmRestarts/long_tmult_2",
        S("CosineAnnealingWarmRestarts", T_0=10, T_mult=2, eta_min=1e-5),
        steps=5000,
        stride=7,
    )
    p.ok(
        "CosineAnnealingWarmRestarts/long_tmult_1_dense",
        S("CosineAnnealingWarmRestarts", T_0=50),
        steps=2000,
    )


def sequential_cases(p: Plan) -> None:
    """SequentialLR: milestone quirks, restarts of every child type, nesting."""
    warm = S("LinearLR", start_factor=0.1, end_factor=1.0, total_iters=3)
    p.ok("SequentialLR/warmup_cosine", seq([warm, S("CosineAnnealingLR", T_max=4)], [3]), steps=12)
    p.ok(
        "SequentialLR/docs_constant_exponential",
        seq([S("ConstantLR", factor=0.1, total_iters=2), S("ExponentialLR", gamma=0.9)], [2]),
        lr=0.05,
        steps=30,
    )
    p.ok(
        "SequentialLR/milestone_0",
        seq([S("ConstantLR", factor=0.5), S("ExponentialLR", gamma=0.5)], [0]),
        steps=10,
    )
    p.ok(
        "SequentialLR/milestone_negative",
        seq([S("ConstantLR", factor=0.5), S("ExponentialLR", gamma=0.5)], [-2]),
        steps=10,
    )
    p.ok(
        "SequentialLR/milestones_duplicated",
        seq(
            [S("ConstantLR", factor=0.5), S("ExponentialLR", gamma=0.5), S("StepLR", step_size=2)],
            [3, 3],
        ),
        steps=15,
    )
    p.ok(
        "SequentialLR/milestones_unsorted",
        seq(
            [S("ConstantLR", factor=0.5), S("ExponentialLR", gamma=0.5), S("StepLR", step_size=2)],
            [6, 3],
        ),
        steps=15,
    )
    p.ok(
        "SequentialLR/milestones_unsorted_4",
        seq(
            [
                S("LinearLR", start_factor=0.5, total_iters=2),
                S("ExponentialLR", gamma=0.8),
                S("StepLR", step_size=2),
                S("CosineAnnealingLR", T_max=5),
            ],
            [8, 3, 5],
        ),
        steps=20,
    )
    p.ok(
        "SequentialLR/linear_multiplicative_carry_over",
        seq(
            [
                S("LinearLR", start_factor=0.5, total_iters=2),
                S("MultiplicativeLR", lr_lambda="0.5"),
            ],
            [2],
        ),
        steps=8,
    )
    p.ok(
        "SequentialLR/milestone_beyond_range",
        seq([warm, S("ExponentialLR", gamma=0.9)], [100]),
        steps=20,
    )
    restarts: dict[str, Spec] = {
        "LambdaLR": S("LambdaLR", lr_lambda="0.9 ** epoch"),
        "MultiplicativeLR": S("MultiplicativeLR", lr_lambda="0.9"),
        "StepLR": S("StepLR", step_size=3, gamma=0.5),
        "MultiStepLR": S("MultiStepLR", milestones=[2, 4], gamma=0.5),
        "MultiStepLR_zero_negative": S("MultiStepLR", milestones=[-3, 0, 4], gamma=0.5),
        "ConstantLR": S("ConstantLR", factor=0.5, total_iters=3),
        "ConstantLR_total_0": S("ConstantLR", factor=0.5, total_iters=0),
        "LinearLR": S("LinearLR", start_factor=0.2, total_iters=4),
        "ExponentialLR": S("ExponentialLR", gamma=0.8),
        "PolynomialLR": S("PolynomialLR", total_iters=6, power=2.0),
        "CosineAnnealingLR": S("CosineAnnealingLR", T_max=5, eta_min=0.01),
        "CyclicLR": S("CyclicLR", base_lr=0.01, max_lr=0.1, step_size_up=3),
        "OneCycleLR": S("OneCycleLR", max_lr=0.5, total_steps=20),
        "CosineAnnealingWarmRestarts": S("CosineAnnealingWarmRestarts", T_0=3, T_mult=2),
        "StepLR_float": S("StepLR", step_size=2.5, gamma=0.5),
    }
    first = S("ExponentialLR", gamma=0.7)
    for slug, child in restarts.items():
        p.ok(f"SequentialLR/restart_{slug}", seq([first, child], [4]), lr=L2, steps=25)
        p.ok(f"SequentialLR/first_{slug}", seq([child, S("StepLR", step_size=2)], [5]), steps=12)
    p.ok(
        "SequentialLR/four_children",
        seq(
            [
                S("LinearLR", start_factor=0.25, total_iters=5),
                S("ConstantLR", factor=0.5, total_iters=4),
                S("CosineAnnealingLR", T_max=10, eta_min=0.001),
                S("MultiStepLR", milestones=[3, 6], gamma=0.5),
            ],
            [5, 10, 25],
        ),
        lr=L3,
        steps=40,
    )
    p.ok(
        "SequentialLR/three_children_cyclic_momentum",
        seq(
            [
                warm,
                S("CyclicLR", base_lr=0.01, max_lr=0.1, step_size_up=3),
                S("OneCycleLR", max_lr=0.2, total_steps=10),
            ],
            [3, 12],
        ),
        steps=23,
    )
    p.ok("SequentialLR/single_child", seq([S("ExponentialLR", gamma=0.9)], []), steps=10)
    inner = seq([S("ConstantLR", factor=0.5, total_iters=100), S("ExponentialLR", gamma=0.5)], [3])
    p.ok(
        "SequentialLR/nested_sequential_first_child",
        seq([inner, S("StepLR", step_size=2)], [8]),
        steps=14,
    )
    p.ok(
        "SequentialLR/nested_chained_first_child",
        seq(
            [
                chain([S("ConstantLR", factor=0.5, total_iters=3), S("ExponentialLR", gamma=0.5)]),
                S("StepLR", step_size=2),
            ],
            [5],
        ),
        steps=12,
    )
    p.ok(
        "SequentialLR/nested_later_child_before_milestone",
        seq([S("StepLR", step_size=2), inner], [6]),
        steps=6,
    )
    p.ok(
        "SequentialLR/long_warmup_cosine_stride",
        seq(
            [S("LinearLR", start_factor=0.01, total_iters=500), S("CosineAnnealingLR", T_max=3500)],
            [500],
        ),
        lr=L2,
        steps=4000,
        stride=10,
    )


def chained_cases(p: Plan) -> None:
    """ChainedScheduler: multiplicative children, absolute/factor mixes, momentum, nesting."""
    p.ok(
        "ChainedScheduler/docs_constant_exponential",
        chain([S("ConstantLR", factor=0.1, total_iters=3), S("ExponentialLR", gamma=0.9)]),
        steps=10,
    )
    p.ok(
        "ChainedScheduler/docs_constant_exponential_20",
        chain([S("ConstantLR", factor=0.1, total_iters=20), S("ExponentialLR", gamma=0.9)]),
        lr=0.05,
        steps=40,
    )
    ms = S("MultiStepLR", milestones=[3, 7, 15], gamma=0.5)
    wr = S("CosineAnnealingWarmRestarts", T_0=5, eta_min=0.001)
    p.ok("ChainedScheduler/restarts_then_multistep", chain([wr, ms]), steps=25)
    p.ok("ChainedScheduler/multistep_then_restarts", chain([ms, wr]), steps=25)
    p.ok(
        "ChainedScheduler/cosine_eta_exponential",
        chain([S("CosineAnnealingLR", T_max=8, eta_min=0.01), S("ExponentialLR", gamma=0.95)]),
        lr=L2,
        steps=40,
    )
    p.ok(
        "ChainedScheduler/exponential_cosine_eta",
        chain([S("ExponentialLR", gamma=0.95), S("CosineAnnealingLR", T_max=8, eta_min=0.01)]),
        lr=L2,
        steps=40,
    )
    p.ok(
        "ChainedScheduler/linear_cosine",
        chain([S("LinearLR", start_factor=0.1, total_iters=5), S("CosineAnnealingLR", T_max=20)]),
        steps=30,
    )
    p.ok(
        "ChainedScheduler/three_multiplicative",
        chain(
            [
                S("StepLR", step_size=3),
                S("ExponentialLR", gamma=0.97),
                S("MultiplicativeLR", lr_lambda="0.99"),
            ]
        ),
        lr=L3,
        steps=30,
    )
    p.ok(
        "ChainedScheduler/linear_then_lambda_wins",
        chain(
            [
                S("LinearLR", start_factor=0.5, total_iters=4),
                S("LambdaLR", lr_lambda="0.9 ** epoch"),
            ]
        ),
        steps=10,
    )
    p.ok(
        "ChainedScheduler/lambda_then_linear",
        chain(
            [
                S("LambdaLR", lr_lambda="0.9 ** epoch"),
                S("LinearLR", start_factor=0.5, total_iters=4),
            ]
        ),
        steps=10,
    )
    p.ok(
        "ChainedScheduler/onecycle_then_linear_momentum",
        chain(
            [
                S("OneCycleLR", max_lr=1.0, total_steps=10),
                S("LinearLR", start_factor=0.5, total_iters=4),
            ]
        ),
        steps=11,
    )
    p.ok(
        "ChainedScheduler/linear_then_onecycle_momentum",
        chain(
            [
                S("LinearLR", start_factor=0.5, total_iters=4),
                S("OneCycleLR", max_lr=1.0, total_steps=10),
            ]
        ),
        steps=11,
    )
    p.ok(
        "ChainedScheduler/cyclic_exponential_momentum",
        chain(
            [S("CyclicLR", base_lr=0.01, max_lr=0.1, step_size_up=4), S("ExponentialLR", gamma=0.9)]
        ),
        lr=L2,
        steps=30,
    )
    p.ok(
        "ChainedScheduler/exponential_cyclic_momentum",
        chain(
            [S("ExponentialLR", gamma=0.9), S("CyclicLR", base_lr=0.01, max_lr=0.1, step_size_up=4)]
        ),
        steps=30,
    )
    p.ok(
        "ChainedScheduler/cyclic_no_momentum",
        chain(
            [
                S("CyclicLR", base_lr=0.01, max_lr=0.1, step_size_up=4, cycle_momentum=False),
                S("StepLR", step_size=5),
            ]
        ),
        steps=30,
    )
    p.ok("ChainedScheduler/single_child", chain([S("PolynomialLR", total_iters=10)]), steps=15)
    p.ok(
        "ChainedScheduler/nested_chained",
        chain(
            [
                chain([S("StepLR", step_size=2, gamma=0.5), S("ExponentialLR", gamma=0.9)]),
                S("ConstantLR", factor=0.5),
            ]
        ),
        steps=15,
    )
    p.ok(
        "ChainedScheduler/nested_sequential",
        chain(
            [
                seq(
                    [S("ConstantLR", factor=0.5, total_iters=100), S("ExponentialLR", gamma=0.5)],
                    [3],
                ),
                S("StepLR", step_size=2),
            ]
        ),
        steps=12,
    )
    p.ok(
        "ChainedScheduler/step_then_sequential",
        chain(
            [
                S("StepLR", step_size=4, gamma=0.5),
                seq([S("LinearLR", total_iters=3), S("CosineAnnealingLR", T_max=6)], [3]),
            ]
        ),
        lr=L2,
        steps=20,
    )
    p.ok(
        "ChainedScheduler/long_stride",
        chain(
            [S("CosineAnnealingWarmRestarts", T_0=100, T_mult=2), S("ExponentialLR", gamma=0.9995)]
        ),
        steps=3000,
        stride=6,
    )


def rejected_cases(p: Plan) -> None:
    """Configurations torch rejects at construction or while stepping."""
    wr = "CosineAnnealingWarmRestarts"
    p.bad(f"{wr}/reject_t0_0", "T_0", S(wr, T_0=0))
    p.bad(f"{wr}/reject_t0_negative", "T_0", S(wr, T_0=-1))
    p.bad(f"{wr}/reject_t0_float_25", "T_0", S(wr, T_0=2.5))
    p.bad(f"{wr}/reject_t0_float_30", "T_0", S(wr, T_0=3.0))
    p.bad(f"{wr}/reject_tmult_0", "T_mult", S(wr, T_0=3, T_mult=0))
    p.bad(f"{wr}/reject_tmult_15", "T_mult", S(wr, T_0=3, T_mult=1.5))
    p.bad(f"{wr}/reject_tmult_float_20", "T_mult", S(wr, T_0=3, T_mult=2.0))
    p.bad("ConstantLR/reject_factor_15", "factor", S("ConstantLR", factor=1.5))
    p.bad("ConstantLR/reject_factor_negative", "factor", S("ConstantLR", factor=-0.1))
    p.bad(
        "ConstantLR/reject_factor_0_reaching_total",
        "factor",
        S("ConstantLR", factor=0.0, total_iters=4),
    )
    p.bad("LinearLR/reject_start_0", "start_factor", S("LinearLR", start_factor=0.0))
    p.bad("LinearLR/reject_start_15", "start_factor", S("LinearLR", start_factor=1.5))
    p.bad("LinearLR/reject_end_15", "end_factor", S("LinearLR", end_factor=1.5))
    p.bad("LinearLR/reject_end_negative", "end_factor", S("LinearLR", end_factor=-0.5))
    oc = "OneCycleLR"
    p.bad(f"{oc}/reject_total_steps_missing", "total_steps", S(oc, max_lr=0.1))
    p.bad(f"{oc}/reject_epochs_without_steps_per_epoch", "total_steps", S(oc, max_lr=0.1, epochs=3))
    p.bad(f"{oc}/reject_total_steps_float", "total_steps", S(oc, max_lr=0.1, total_steps=10.0))
    p.bad(f"{oc}/reject_total_steps_0", "total_steps", S(oc, max_lr=0.1, total_steps=0), steps=1)
    p.bad(f"{oc}/reject_epochs_float", "epochs", S(oc, max_lr=0.1, epochs=2.0, steps_per_epoch=5))
    p.bad(
        f"{oc}/reject_steps_per_epoch_0",
        "steps_per_epoch",
        S(oc, max_lr=0.1, epochs=2, steps_per_epoch=0),
    )
    ten_step_cycle = {"max_lr": 0.1, "total_steps": 10}
    p.bad_each(
        oc,
        {
            "reject_pct_start_int_1": ("pct_start", {"pct_start": 1}),
            "reject_pct_start_int_0": ("pct_start", {"pct_start": 0}),
            "reject_pct_start_15": ("pct_start", {"pct_start": 1.5}),
            "reject_pct_start_negative": ("pct_start", {"pct_start": -0.1}),
            "reject_anneal_exp": ("anneal_strategy", {"anneal_strategy": "exp"}),
        },
        ten_step_cycle,
        steps=5,
    )
    p.bad(f"{oc}/reject_steps_beyond_total", "steps", S(oc, max_lr=0.1, total_steps=10), steps=12)
    p.bad(
        f"{oc}/reject_steps_beyond_total_strided",
        "steps",
        S(oc, max_lr=0.1, total_steps=10),
        steps=12,
        stride=11,
    )
    p.bad(
        f"{oc}/reject_pct_times_t_eq_1",
        "pct_start",
        S(oc, max_lr=1.0, total_steps=10, pct_start=0.1),
        steps=5,
    )
    p.bad(
        f"{oc}/reject_pct_1_at_k_eq_T",
        "pct_start",
        S(oc, max_lr=1.0, total_steps=10, pct_start=1.0),
        steps=11,
    )
    p.bad(
        f"{oc}/reject_pct_1_t_1",
        "pct_start",
        S(oc, max_lr=1.0, total_steps=1, pct_start=1.0),
        steps=1,
    )
    p.bad(
        f"{oc}/reject_three_phase_pct_times_t_eq_1",
        "pct_start",
        S(oc, max_lr=1.0, total_steps=4, pct_start=0.25, three_phase=True),
        steps=5,
    )
    p.bad(
        f"{oc}/reject_max_lr_list_length",
        "max_lr",
        S(oc, max_lr=[0.1, 0.2], total_steps=10),
        lr=L3,
        steps=5,
    )
    p.bad_each(
        oc,
        {
            "reject_base_momentum_list_length": ("base_momentum", {"base_momentum": [0.8, 0.8]}),
            "reject_div_factor_0": ("div_factor", {"div_factor": 0.0}),
            "reject_final_div_factor_0": ("final_div_factor", {"final_div_factor": 0}),
        },
        ten_step_cycle,
        steps=5,
    )
    cy = "CyclicLR"
    p.bad(f"{cy}/reject_mode_foo", "mode", S(cy, base_lr=0.01, max_lr=0.1, mode="foo"))
    p.bad(
        f"{cy}/reject_step_size_up_0",
        "step_size_up",
        S(cy, base_lr=0.01, max_lr=0.1, step_size_up=0),
    )
    p.bad(
        f"{cy}/reject_base_lr_list_length",
        "base_lr",
        S(cy, base_lr=[0.01, 0.02], max_lr=0.1),
        lr=L3,
    )
    p.bad(f"{cy}/reject_max_lr_list_length", "max_lr", S(cy, base_lr=0.01, max_lr=[0.1]), lr=L2)
    p.bad(
        f"{cy}/reject_max_momentum_list_length",
        "max_momentum",
        S(cy, base_lr=0.01, max_lr=0.1, max_momentum=[0.9, 0.9, 0.9]),
        lr=L2,
    )
    p.bad(
        f"{cy}/reject_scale_fn_div_0_iterations",
        "scale_fn",
        S(cy, base_lr=0.01, max_lr=0.1, scale_fn="lambda x: 1 / x", scale_mode="iterations"),
    )
    p.bad(
        f"{cy}/reject_scale_fn_raises_cycle_2",
        "scale_fn",
        S(cy, base_lr=0.01, max_lr=0.1, step_size_up=2, scale_fn="1 / (epoch - 2)"),
        steps=10,
    )
    p.bad("StepLR/reject_step_size_0", "step_size", S("StepLR", step_size=0), steps=5)
    p.bad("CosineAnnealingLR/reject_t_max_0", "T_max", S("CosineAnnealingLR", T_max=0), steps=3)
    p.bad(
        "PolynomialLR/reject_negative_power_reaching_total",
        "power",
        S("PolynomialLR", total_iters=3, power=-1.0),
        steps=10,
    )
    lam = "LambdaLR"
    p.bad(f"{lam}/reject_list_length", "lr_lambda", S(lam, lr_lambda=["0.9 ** epoch"]), lr=L2)
    p.bad(
        "MultiplicativeLR/reject_list_length",
        "lr_lambda",
        S("MultiplicativeLR", lr_lambda=["0.9", "0.9"]),
        lr=L3,
    )
    p.bad(
        f"{lam}/reject_one_over_epoch_at_0",
        "lr_lambda",
        S(lam, lr_lambda="lambda epoch: 1 / epoch"),
    )
    p.bad(f"{lam}/reject_log_epoch_at_0", "lr_lambda", S(lam, lr_lambda="log(epoch)"))
    p.bad(
        f"{lam}/reject_div_zero_while_stepping",
        "lr_lambda",
        S(lam, lr_lambda="1 / (epoch - 5)"),
        steps=10,
    )
    p.bad(
        f"{lam}/reject_sqrt_negative_while_stepping",
        "lr_lambda",
        S(lam, lr_lambda="sqrt(3 - epoch)"),
        steps=10,
        start=5,
    )
    p.bad(
        f"{lam}/reject_exp_overflow",
        "lr_lambda",
        S(lam, lr_lambda="exp(epoch)"),
        steps=800,
        stride=50,
    )
    p.bad(
        f"{lam}/reject_pow_overflow",
        "lr_lambda",
        S(lam, lr_lambda="2.0 ** epoch"),
        steps=1100,
        stride=25,
    )
    p.bad(
        f"{lam}/reject_per_group_second_raises",
        "lr_lambda",
        S(lam, lr_lambda=["0.9 ** epoch", "1 / (epoch - 2)"]),
        lr=L2,
    )
    p.bad(
        "MultiplicativeLR/reject_div_zero_while_stepping",
        "lr_lambda",
        S("MultiplicativeLR", lr_lambda="1 / (epoch - 3)"),
    )
    p.bad("LambdaLR/reject_lr_negative", "lr", S(lam, lr_lambda="1"), lr=-0.1)
    sq = "SequentialLR"
    two = [S("ExponentialLR", gamma=0.9), S("StepLR", step_size=2)]
    p.bad(f"{sq}/reject_milestone_count_high", "milestones", seq(two, [3, 5]))
    p.bad(f"{sq}/reject_milestone_count_low", "milestones", seq(two, []))
    p.bad(f"{sq}/reject_empty_schedulers", "schedulers", seq([], []))
    p.bad("ChainedScheduler/reject_empty", "schedulers", chain([]))
    inner = seq([S("ConstantLR", factor=0.5), S("ExponentialLR", gamma=0.5)], [3])
    p.bad(
        f"{sq}/reject_nested_sequential_later_child",
        "schedulers",
        seq([S("StepLR", step_size=2), inner], [4]),
        steps=10,
    )
    p.bad(
        f"{sq}/reject_nested_chained_later_child",
        "schedulers",
        seq([S("StepLR", step_size=2), chain([S("ExponentialLR", gamma=0.9)])], [4]),
        steps=10,
    )
    for slug, child, name in [
        ("linear_total_0", S("LinearLR", start_factor=0.5, total_iters=0), "total_iters"),
        ("polynomial_total_0", S("PolynomialLR", total_iters=0), "total_iters"),
        ("step_size_0", S("StepLR", step_size=0), "step_size"),
        ("cosine_t_max_0", S("CosineAnnealingLR", T_max=0), "T_max"),
        ("onecycle_exhausted", S("OneCycleLR", max_lr=0.5, total_steps=4), "steps"),
        ("lambda_raises_at_0", S("MultiplicativeLR", lr_lambda="1 / epoch"), "lr_lambda"),
    ]:
        p.bad(
            f"{sq}/reject_restart_{slug}",
            name,
            seq([S("ExponentialLR", gamma=0.9), child], [3]),
            steps=10,
        )
    p.bad(
        "ChainedScheduler/reject_child_t0_0",
        "T_0",
        chain([S("ExponentialLR", gamma=0.9), S(wr, T_0=0)]),
    )
    extreme_float_cases(p)


def extreme_float_cases(p: Plan) -> None:
    """Denormal, tiny and huge floats (issue #12, item 6 and its siblings)."""
    cos = "CosineAnnealingLR"
    for slug, t_max in [("subnormal", 1e-310), ("subnormal_negative", -1e-310)]:
        p.bad(f"{cos}/reject_t_max_{slug}", "T_max", S(cos, T_max=t_max), steps=5)
        p.bad(f"{cos}/reject_t_max_{slug}_eta", "T_max", S(cos, T_max=t_max, eta_min=0.01))
        p.bad(f"ChainedScheduler/reject_cosine_t_max_{slug}", "T_max", chain([S(cos, T_max=t_max)]))
        p.bad(
            f"SequentialLR/reject_cosine_t_max_{slug}",
            "T_max",
            seq([S("ExponentialLR", gamma=0.9), S(cos, T_max=t_max, eta_min=0.01)], [3]),
        )
    p.bad(f"{cos}/reject_t_max_1e-307_at_step_6", "T_max", S(cos, T_max=1e-307), steps=7)
    p.ok(f"{cos}/t_max_1e-307_before_overflow", S(cos, T_max=1e-307), steps=6)
    p.ok(f"{cos}/t_max_1e-300", S(cos, T_max=1e-300), steps=40)
    p.ok("ChainedScheduler/cosine_t_max_1e-300", chain([S(cos, T_max=1e-300)]), steps=40)
    p.ok(f"{cos}/t_max_smallest_normal_restarts", S(cos, T_max=2.2250738585072014e-308), steps=8)
    p.ok(f"{cos}/t_max_0_3", S(cos, T_max=0.3, eta_min=0.01), steps=40)
    p.ok(f"{cos}/eta_min_1e300_step_0", S(cos, T_max=1, eta_min=1e300), steps=1)
    ms = "MultiStepLR"
    p.bad(f"{ms}/reject_gamma_power_overflows", "gamma", S(ms, milestones=[3, 3], gamma=1e300))
    p.bad(
        "SequentialLR/reject_multistep_gamma_power_overflows_at_construction",
        "gamma",
        seq([S("ExponentialLR", gamma=0.9), S(ms, milestones=[0, 0], gamma=1e300)], [1]),
        steps=1,
    )
    p.ok(f"{ms}/gamma_1e200_one_milestone_at_a_time", S(ms, milestones=[3], gamma=1e200), steps=6)
    p.bad(
        "CyclicLR/reject_step_size_up_subnormal_scale_fn",
        "step_size_up",
        S(
            "CyclicLR",
            base_lr=0.001,
            max_lr=0.01,
            step_size_up=5e-324,
            scale_fn="lambda x: 1 / (2.0 ** (x - 1))",
            cycle_momentum=False,
        ),
        steps=3,
    )


def swalr_cases(p: Plan) -> None:
    """SWALR (torch.optim.swa_utils) alone, after other schedulers, chained, and its refusals."""
    p.ok("SWALR/cos_default_epochs", S("SWALR", swa_lr=0.05), steps=20)
    p.ok("SWALR/linear", S("SWALR", swa_lr=0.05, anneal_epochs=5, anneal_strategy="linear"))
    p.ok("SWALR/anneal_up", S("SWALR", swa_lr=0.5, anneal_epochs=7), steps=12)
    p.ok("SWALR/anneal_epochs_0", S("SWALR", swa_lr=0.02, anneal_epochs=0), steps=5)
    p.ok("SWALR/anneal_epochs_1", S("SWALR", swa_lr=0.02, anneal_epochs=1), steps=5)
    p.ok("SWALR/per_group_swa_lr", S("SWALR", swa_lr=[0.01, 0.2, 0.5], anneal_epochs=4), lr=L3)
    p.ok("SWALR/shared_swa_lr", S("SWALR", swa_lr=0.03, anneal_strategy="linear"), lr=L3)
    p.ok("SWALR/default_lr", S("SWALR", swa_lr=0.1, anneal_epochs=3), lr=None, steps=6)
    p.ok("SWALR/zero_swa_lr", S("SWALR", swa_lr=0.0, anneal_epochs=6), steps=10)
    p.ok(
        "SWALR/long_stride",
        S("SWALR", swa_lr=1e-4, anneal_epochs=3000),
        steps=3500,
        start=3,
        stride=11,
    )
    p.ok(
        "SequentialLR/swalr_after_cosine",
        seq([S("CosineAnnealingLR", T_max=50), S("SWALR", swa_lr=0.02, anneal_epochs=10)], [30]),
        steps=60,
    )
    p.ok(
        "SequentialLR/swalr_after_multiplicative",
        seq(
            [
                S("MultiplicativeLR", lr_lambda="lambda epoch: 0.9"),
                S("SWALR", swa_lr=0.05, anneal_epochs=20, anneal_strategy="linear"),
            ],
            [16],
        ),
    )
    p.ok(
        "SequentialLR/swalr_after_onecycle",
        seq([S("OneCycleLR", max_lr=0.5, total_steps=100), S("SWALR", swa_lr=0.05)], [60]),
        steps=90,
    )
    p.ok(
        "SequentialLR/swalr_anneal_0_after_exponential",
        seq([S("ExponentialLR", gamma=0.9), S("SWALR", swa_lr=0.02, anneal_epochs=0)], [5]),
        steps=12,
    )
    p.ok(
        "SequentialLR/swalr_first_then_step",
        seq([S("SWALR", swa_lr=0.3, anneal_epochs=4), S("StepLR", step_size=3, gamma=0.5)], [3]),
        lr=L2,
        steps=15,
    )
    p.ok(
        "SequentialLR/two_swalr_share_swa_lr",
        seq(
            [
                S("SWALR", swa_lr=0.02, anneal_epochs=3),
                S("StepLR", step_size=3, gamma=0.5),
                S("SWALR", swa_lr=0.2, anneal_epochs=4),
            ],
            [5, 12],
        ),
        lr=L2,
        steps=30,
    )
    p.ok(
        "ChainedScheduler/swalr_after_exponential",
        chain([S("ExponentialLR", gamma=0.9), S("SWALR", swa_lr=0.02, anneal_epochs=10)]),
    )
    p.ok(
        "ChainedScheduler/swalr_before_exponential",
        chain([S("SWALR", swa_lr=0.02, anneal_epochs=10), S("ExponentialLR", gamma=0.9)]),
    )
    p.ok(
        "ChainedScheduler/two_swalr",
        chain(
            [
                S("SWALR", swa_lr=0.02, anneal_epochs=3),
                S("SWALR", swa_lr=0.5, anneal_epochs=6, anneal_strategy="linear"),
            ]
        ),
        lr=L2,
        steps=20,
    )
    p.bad(
        "SWALR/reject_negative_anneal_epochs",
        "anneal_epochs",
        S("SWALR", swa_lr=0.1, anneal_epochs=-1),
    )
    p.bad(
        "SWALR/reject_float_anneal_epochs",
        "anneal_epochs",
        S("SWALR", swa_lr=0.1, anneal_epochs=2.0),
    )
    p.bad(
        "SWALR/reject_anneal_strategy",
        "anneal_strategy",
        S("SWALR", swa_lr=0.1, anneal_strategy="exp"),
    )
    p.bad("SWALR/reject_swa_lr_length", "swa_lr", S("SWALR", swa_lr=[0.1, 0.2]), lr=L3)
    p.bad("SWALR/reject_missing_swa_lr", "swa_lr", S("SWALR", anneal_epochs=3))
    p.bad(
        "SequentialLR/reject_swalr_child_strategy",
        "anneal_strategy",
        seq([S("ExponentialLR", gamma=0.9), S("SWALR", swa_lr=0.1, anneal_strategy="cosine")], [3]),
    )


# --------------------------------------------------------------------------------------------
# Seeded random configurations.
# --------------------------------------------------------------------------------------------

_RANDOM_LAMBDAS = [
    "{a} ** epoch",
    "lambda epoch: max({c}, 1 - epoch / {n})",
    "min(1.0, (epoch + 1) / {n})",
    "lambda s: {c} if s < {n} else {a}",
    "0.5 * (1 + cos(pi * epoch / {n}))",
    "1 / sqrt(epoch + {n})",
    "exp(-epoch / {n})",
]
_RANDOM_FACTORS = [
    "{a}",
    "lambda epoch: {a} if epoch % {m} == 0 else 1.0",
    "1 - {c} / (epoch + {n})",
]


def _r(rng: random.Random, lo: float, hi: float, digits: int = 4) -> float:
    """A rounded uniform float in ``[lo, hi]``."""
    return round(rng.uniform(lo, hi), digits)


def _fmt(rng: random.Random, template: str) -> str:
    """Fill a lambda template with random constants."""
    return template.format(
        a=_r(rng, 0.8, 0.999),
        c=_r(rng, 0.0, 0.5),
        n=rng.randint(2, 60),
        m=rng.randint(2, 9),
    )


def random_leaf(rng: random.Random, kind: str, groups: int, steps: int) -> Spec:
    """A random, probably valid spec of the non-composite ``kind``."""
    per_group = groups > 1 and rng.random() < 0.4

    def maybe_list(lo: float, hi: float) -> Any:
        if per_group:
            return [_r(rng, lo, hi) for _ in range(groups)]
        return _r(rng, lo, hi)

    if kind == "LambdaLR":
        if per_group:
            return S(
                kind, lr_lambda=[_fmt(rng, rng.choice(_RANDOM_LAMBDAS)) for _ in range(groups)]
            )
        return S(kind, lr_lambda=_fmt(rng, rng.choice(_RANDOM_LAMBDAS)))
    if kind == "MultiplicativeLR":
        return S(kind, lr_lambda=_fmt(rng, rng.choice(_RANDOM_FACTORS)))
    if kind == "StepLR":
        return S(kind, step_size=rng.randint(1, 40), gamma=_r(rng, 0.1, 1.0))
    if kind == "MultiStepLR":
        ms = sorted(rng.sample(range(1, max(steps, 6)), k=rng.randint(0, 4)))
        return S(kind, milestones=ms, gamma=_r(rng, 0.1, 0.9))
    if kind == "ConstantLR":
        return S(kind, factor=_r(rng, 0.05, 1.0), total_iters=rng.randint(1, 50))
    if kind == "LinearLR":
        return S(
            kind,
            start_factor=_r(rng, 0.01, 1.0),
            end_factor=_r(rng, 0.0, 1.0),
            total_iters=rng.randint(1, 100),
        )
    if kind == "ExponentialLR":
        return S(kind, gamma=_r(rng, 0.9, 1.0))
    if kind == "PolynomialLR":
        return S(kind, total_iters=rng.randint(1, 200), power=_r(rng, 0.1, 3.0, 2))
    if kind == "CosineAnnealingLR":
        return S(kind, T_max=rng.randint(1, 150), eta_min=rng.choice([0.0, _r(rng, 0.0, 0.01, 5)]))
    if kind == "CyclicLR":
        spec = S(
            kind,
            base_lr=maybe_list(0.0001, 0.01),
            max_lr=maybe_list(0.02, 0.2),
            step_size_up=rng.choice([rng.randint(1, 40), _r(rng, 1.0, 30.0, 1)]),
            mode=rng.choice(["triangular", "triangular2", "exp_range"]),
            cycle_momentum=rng.random() < 0.7,
        )
        if rng.random() < 0.5:
            spec["step_size_down"] = rng.randint(0, 40)
        if spec["mode"] == "exp_range":
            spec["gamma"] = _r(rng, 0.95, 1.0)
        if per_group and spec["cycle_momentum"]:
            spec["base_momentum"] = maybe_list(0.7, 0.85)
            spec["max_momentum"] = maybe_list(0.86, 0.99)
        return spec
    if kind == "OneCycleLR":
        spec = S(
            kind,
            max_lr=maybe_list(0.01, 1.0),
            pct_start=_r(rng, 0.05, 0.6, 2),
            anneal_strategy=rng.choice(["cos", "linear"]),
            three_phase=rng.random() < 0.3,
            cycle_momentum=rng.random() < 0.7,
        )
        if rng.random() < 0.3:
            spec["epochs"] = rng.randint(1, 10)
            low = max(1, -(-(steps - 1) // spec["epochs"]))
            spec["steps_per_epoch"] = rng.randint(low, max(low, 60))
        else:
            spec["total_steps"] = rng.randint(max(2, steps - 1), steps + 50)
        if rng.random() < 0.3:
            spec["div_factor"] = _r(rng, 2.0, 50.0, 1)
            spec["final_div_factor"] = _r(rng, 10.0, 1e4, 0)
        return spec
    if kind == "CosineAnnealingWarmRestarts":
        return S(
            kind,
            T_0=rng.randint(1, 60),
            T_mult=rng.choice([1, 1, 2, 3]),
            eta_min=rng.choice([0.0, _r(rng, 0.0, 0.01, 5)]),
        )
    if kind == "SWALR":
        return S(
            kind,
            swa_lr=maybe_list(0.0, 0.2),
            anneal_epochs=rng.choice([0, 1, rng.randint(2, 60)]),
            anneal_strategy=rng.choice(["cos", "linear"]),
        )
    raise ValueError(kind)


COMPOSITE_TYPES = ("SequentialLR", "ChainedScheduler")
LEAF_TYPES = [t for t in LR_SCHEDULER_TYPES if t not in COMPOSITE_TYPES]


def random_spec(rng: random.Random, kind: str, groups: int, steps: int, depth: int = 0) -> Spec:
    """A random spec of ``kind``; composites hold 1-4 children, nesting to depth 2."""
    if kind not in COMPOSITE_TYPES:
        return random_leaf(rng, kind, groups, steps)
    count = rng.randint(1, 4)
    kinds = [
        rng.choice(COMPOSITE_TYPES if depth < 1 and rng.random() < 0.25 else LEAF_TYPES)
        for _ in range(count)
    ]
    children = [random_spec(rng, k, groups, steps, depth + 1) for k in kinds]
    if kind == "ChainedScheduler":
        return chain(children)
    milestones = sorted(rng.sample(range(1, max(steps, count + 1)), k=count - 1))
    return seq(children, milestones)


def random_cases(rng: random.Random) -> Iterator[Planned]:
    """Endless seeded random accepted-or-not requests; the caller keeps the accepted ones."""
    index = 0
    while True:
        kind = LR_SCHEDULER_TYPES[index % len(LR_SCHEDULER_TYPES)]
        groups = rng.choice([1, 1, 2, 3])
        steps = rng.choice([rng.randint(1, 300)] * 9 + [rng.randint(2000, 4000)])
        lrs = [_r(rng, 0.001, 1.0) for _ in range(groups)]
        request = make_request(
            random_spec(rng, kind, groups, steps),
            lr=lrs if groups > 1 or rng.random() < 0.5 else lrs[0],
            steps=steps,
        )
        if steps > 1000:
            request["stride"] = rng.randint(7, 20)
        elif rng.random() < 0.3:
            request["start"] = rng.randint(0, steps - 1)
            request["stride"] = rng.randint(1, 9)
        yield Planned(f"{kind}/random_{index:03d}", request)
        index += 1


def random_swalr_cases(rng: random.Random) -> Iterator[Planned]:
    """Endless seeded SWALRs alone or among 1-3 random leaves in a SequentialLR or a
    ChainedScheduler (a separate stream, so the cases above stay as they were)."""
    index = 0
    while True:
        groups = rng.choice([1, 1, 2, 3])
        steps = rng.randint(1, 200)
        kind = rng.choice(["SWALR", *COMPOSITE_TYPES])
        swalr = random_leaf(rng, "SWALR", groups, steps)
        if kind == "SWALR":
            schedule = swalr
        else:
            others = [
                random_leaf(rng, rng.choice(LEAF_TYPES), groups, steps)
                for _ in range(rng.randint(1, 3))
            ]
            others.insert(rng.randint(0, len(others)), swalr)
            if kind == "ChainedScheduler":
                schedule = chain(others)
            else:
                cuts = rng.sample(range(1, max(steps, len(others) + 1)), k=len(others) - 1)
                schedule = seq(others, sorted(cuts))
        lrs = [_r(rng, 0.001, 1.0) for _ in range(groups)]
        request = make_request(schedule, lr=lrs if groups > 1 else lrs[0], steps=steps)
        yield Planned(f"SWALR/random_{kind}_{index:03d}", request)
        index += 1


# --------------------------------------------------------------------------------------------
# Running and writing.
# --------------------------------------------------------------------------------------------


def outcome(
    request: Request, *, through_end: bool = False
) -> tuple[dict[str, Any] | None, str | None]:
    """``(curves, None)`` if torch accepts ``request``, else ``(None, error description)``."""
    try:
        curves = run(request, through_end=through_end)
    except Exception as error:
        return None, describe_error(error)
    return curves, None


def _finite(curves: dict[str, Any]) -> bool:
    rows = curves["lr"] + (curves["momentum"] or [])
    return all(isinstance(v, float) and math.isfinite(v) for row in rows for v in row)


def _ambiguous(request: Request, accepted: bool) -> bool:
    """Whether stepping on to ``steps - 1`` would change torch's verdict."""
    ks = requested_steps(request)
    if ks and ks[-1] == request["steps"] - 1:
        return False
    _, error = outcome(request, through_end=True)
    return (error is None) != accepted


def accepted(planned: Planned) -> tuple[dict[str, Any] | None, str]:
    """``(fixture, "")`` when torch accepts ``planned`` with finite values and a verdict that
    does not depend on stepping past the last requested step; else ``(None, why not)``."""
    curves, error = outcome(planned.request)
    if error is not None:
        return None, f"expected torch to accept, got {error}"
    assert curves is not None
    if not _finite(curves):
        return None, "non-finite values"
    if _ambiguous(planned.request, True):
        return None, "ambiguous (raises between last k and steps-1)"
    return {"name": planned.name, "request": planned.request, **curves}, ""


def record(planned: Planned) -> dict[str, Any]:
    """Run one planned case through torch and return its fixture, checking the intent."""
    if planned.field is None:
        fixture, problem = accepted(planned)
        if fixture is None:
            raise SystemExit(f"{planned.name}: {problem}")
        return fixture
    _, error = outcome(planned.request)
    if error is None:
        raise SystemExit(f"{planned.name}: expected torch to raise, it accepted")
    return {
        "name": planned.name,
        "request": planned.request,
        "error": error,
        "field": planned.field,
    }


def build_cases() -> list[dict[str, Any]]:
    """All fixtures: the hand-written ones, then seeded random accepted configurations."""
    plan = Plan()
    for section in (
        lambda_cases,
        step_cases,
        constant_linear_cases,
        exp_poly_cases,
        cosine_cases,
        cyclic_cases,
        onecycle_cases,
        restarts_cases,
        sequential_cases,
        chained_cases,
        rejected_cases,
        swalr_cases,
    ):
        section(plan)
    cases = [record(planned) for planned in plan.cases]
    cases += accepted_cases(random_cases(random.Random(SEED)), RANDOM_CASES)
    cases += accepted_cases(random_swalr_cases(random.Random(SWALR_SEED)), RANDOM_SWALR_CASES)
    return cases


def accepted_cases(planned_cases: Iterator[Planned], count: int) -> list[dict[str, Any]]:
    """The first ``count`` of ``planned_cases`` that torch accepts with finite values, and
    whose verdict does not depend on stepping past the last requested step."""
    cases: list[dict[str, Any]] = []
    for planned in planned_cases:
        if len(cases) >= count:
            break
        fixture, _ = accepted(planned)
        if fixture is not None:
            cases.append(fixture)
    return cases


def dumps(cases: list[dict[str, Any]]) -> str:
    """The file's text: a JSON list, one case per line, keys sorted, floats as repr."""
    lines = [
        json.dumps(case, sort_keys=True, indent=None, separators=(",", ":"), allow_nan=False)
        for case in cases
    ]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def types_in(spec: Spec) -> set[str]:
    """Every ``type`` in a spec tree."""
    found = {spec["type"]}
    for child in spec.get("schedulers", []):
        found |= types_in(child)
    return found


def summary(cases: list[dict[str, Any]]) -> str:
    """Counts per top-level type: accepted, rejected, and appearances anywhere in a tree."""
    top_ok: Counter[str] = Counter()
    top_bad: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    for case in cases:
        kind = case["request"]["schedule"]["type"]
        (top_bad if "error" in case else top_ok)[kind] += 1
        if "error" not in case:
            anywhere.update(types_in(case["request"]["schedule"]))
    lines = [f"{'type':30} {'accepted':>8} {'rejected':>8} {'in tree':>8}"]
    for kind in SCHEDULE_TYPES:
        lines.append(f"{kind:30} {top_ok[kind]:8} {top_bad[kind]:8} {anywhere[kind]:8}")
    lines.append(f"{'total':30} {sum(top_ok.values()):8} {sum(top_bad.values()):8}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Generate (or ``--check``) the golden file and print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    cases = build_cases()
    text = dumps(cases)
    if args.check:
        if args.output.read_text() != text:
            print(f"{args.output} is out of date", file=sys.stderr)
            return 1
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    print(summary(cases))
    print(f"{len(text) / 1e6:.1f} MB -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
