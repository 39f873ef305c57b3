"""Hypothesis strategies for ``POST /v1/schedules`` bodies, for the live differential test.

:func:`schedule_requests` draws request bodies over all 15 PyTorch scheduler types, with
SequentialLR/ChainedScheduler nested up to depth 2, 1-3 param groups, 1-200 steps and random
``start``/``stride``. Most draws are valid; a minority hit the configurations torch rejects
(bad factors, ``T_0 = 0``, float ``T_mult``, wrong per-group list lengths, lambdas that raise,
OneCycleLR asked past ``total_steps``, milestone-count mismatches ...), so the test also checks
that the service answers those with a 4xx. Values stay small enough that torch never
overflows within 200 steps.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

Spec = dict[str, Any]

LEAF_TYPES = (
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "PolynomialLR",
    "CosineAnnealingLR",
    "CyclicLR",
    "OneCycleLR",
    "CosineAnnealingWarmRestarts",
    "SWALR",
)
COMPOSITE_TYPES = ("SequentialLR", "ChainedScheduler")
ALL_TYPES = LEAF_TYPES + COMPOSITE_TYPES

LAMBDAS = (
    "lambda epoch: 0.95 ** epoch",
    "max(0.0, 1 - epoch / 100)",
    "min(1.0, (epoch + 1) / 10)",
    "lambda step: 1.0 if step < 10 else 0.1",
    "lambda e: 0.5 * (1 + math.cos(math.pi * e / 50))",
    "1 / sqrt(epoch + 1)",
    "exp(-epoch / 30) + log(epoch + 1) / 100",
    "floor(epoch / 7) * 0.1 + 0.2",
    "lambda x: (x % 10 + 1) / 10",
    "pow(0.99, abs(epoch - 20))",
    "0.5 + 0.5 * (not (epoch % 3))",
    "tanh(epoch / 10) + 0.01",
)
"""Lambdas torch evaluates without error for every epoch >= 0."""
RAISING_LAMBDAS = ("1 / epoch", "log(epoch)", "lambda e: 1 / (e - 7)", "sqrt(5 - epoch)")
"""Lambdas that raise at some epoch in 0..200 (ZeroDivisionError / math domain error)."""
FACTORS = ("0.95", "lambda epoch: 0.9 if epoch % 5 == 0 else 1.0", "1 - 0.5 / (epoch + 2)")
"""MultiplicativeLR factors that stay bounded over 200 steps."""
SCALE_FNS = ("lambda x: 1 / (2.0 ** (x - 1))", "0.99 ** epoch", "lambda c: 1 / (c + 1)")

_unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False).map(lambda x: round(x, 4))


def _rounded(lo: float, hi: float, digits: int = 4) -> st.SearchStrategy[float]:
    return st.floats(min_value=lo, max_value=hi, allow_nan=False).map(lambda x: round(x, digits))


def _mostly(valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any]) -> Any:
    """``valid`` nine times in ten (shrinks towards valid), else ``invalid``."""
    return st.integers(0, 9).flatmap(lambda i: invalid if i == 9 else valid)


def _per_group(draw: st.DrawFn, groups: int, values: st.SearchStrategy[Any]) -> Any:
    """A scalar or a list of ``groups`` values; one time in ten a list of the wrong length."""
    roll = draw(st.integers(0, 9))
    if roll < 5:
        return draw(values)
    length = groups
    if roll == 9:
        length = draw(st.sampled_from([n for n in (1, 2, 3, 4) if n != groups]))
    return [draw(values) for _ in range(length)]


@st.composite
def leaf_specs(draw: st.DrawFn, kind: str, groups: int, steps: int) -> Spec:
    """A spec of the non-composite ``kind`` for ``groups`` param groups."""
    spec: Spec = {"type": kind}
    if kind in ("LambdaLR", "MultiplicativeLR"):
        pool = LAMBDAS if kind == "LambdaLR" else FACTORS
        one = _mostly(st.sampled_from(pool), st.sampled_from(RAISING_LAMBDAS))
        spec["lr_lambda"] = _per_group(draw, groups, one)
    elif kind == "StepLR":
        spec["step_size"] = draw(_mostly(st.integers(1, 40), st.sampled_from([0, -2, 2.5])))
        spec["gamma"] = draw(_rounded(0.1, 1.2))
    elif kind == "MultiStepLR":
        spec["milestones"] = draw(st.lists(st.integers(-2, steps + 5), max_size=5))
        spec["gamma"] = draw(_rounded(0.1, 1.0))
    elif kind == "ConstantLR":
        spec["factor"] = draw(_mostly(_rounded(0.05, 1.0), st.sampled_from([0.0, 1.5, -0.1])))
        spec["total_iters"] = draw(st.integers(-1, 60))
    elif kind == "LinearLR":
        spec["start_factor"] = draw(_mostly(_rounded(0.01, 1.0), st.sampled_from([0.0, 1.5])))
        spec["end_factor"] = draw(_mostly(_unit, st.just(1.5)))
        spec["total_iters"] = draw(st.integers(0, 120))
    elif kind == "ExponentialLR":
        spec["gamma"] = draw(st.one_of(_rounded(0.8, 1.02), st.sampled_from([0.0, 1.0, -1.0])))
    elif kind == "PolynomialLR":
        spec["total_iters"] = draw(st.integers(0, 220))
        spec["power"] = draw(_mostly(_rounded(0.0, 3.0, 2), st.just(-1.0)))
    elif kind == "CosineAnnealingLR":
        spec["T_max"] = draw(_mostly(st.integers(1, 150), st.sampled_from([0, 2.5])))
        spec["eta_min"] = draw(st.one_of(st.just(0.0), _rounded(0.0, 0.2, 5)))
    elif kind == "CyclicLR":
        spec["base_lr"] = _per_group(draw, groups, _rounded(0.0001, 0.01, 5))
        spec["max_lr"] = _per_group(draw, groups, _rounded(0.0, 0.2))
        spec["step_size_up"] = draw(
            _mostly(st.one_of(st.integers(1, 50), _rounded(0.5, 30.0, 1)), st.just(0))
        )
        if draw(st.booleans()):
            spec["step_size_down"] = draw(st.integers(0, 50))
        spec["mode"] = draw(
            _mostly(st.sampled_from(["triangular", "triangular2", "exp_range"]), st.just("foo"))
        )
        spec["gamma"] = draw(_rounded(0.95, 1.0))
        if draw(st.integers(0, 4)) == 0:
            spec["scale_fn"] = draw(st.sampled_from(SCALE_FNS))
            spec["scale_mode"] = draw(st.sampled_from(["cycle", "iterations"]))
        spec["cycle_momentum"] = draw(st.booleans())
        if draw(st.booleans()):
            spec["base_momentum"] = _per_group(draw, groups, _rounded(0.5, 0.85))
            spec["max_momentum"] = _per_group(draw, groups, _rounded(0.85, 0.99))
    elif kind == "OneCycleLR":
        spec["max_lr"] = _per_group(draw, groups, _rounded(0.01, 1.0))
        if draw(st.integers(0, 3)) == 0:
            spec["epochs"] = draw(st.integers(1, 10))
            spec["steps_per_epoch"] = draw(st.integers(1, 40))
        else:
            total = st.integers(max(1, steps - 2), steps + 50)
            spec["total_steps"] = draw(_mostly(total, st.sampled_from([0, 10.0])))
        spec["pct_start"] = draw(_mostly(_rounded(0.05, 0.95, 2), st.sampled_from([0.0, 1.0, 1])))
        spec["anneal_strategy"] = draw(_mostly(st.sampled_from(["cos", "linear"]), st.just("exp")))
        spec["three_phase"] = draw(st.booleans())
        spec["cycle_momentum"] = draw(st.booleans())
        if draw(st.booleans()):
            spec["div_factor"] = draw(_rounded(1.0, 50.0, 1))
            spec["final_div_factor"] = draw(_rounded(1.0, 1e4, 0))
    elif kind == "CosineAnnealingWarmRestarts":
        spec["T_0"] = draw(_mostly(st.integers(1, 60), st.sampled_from([0, 2.5, 3.0])))
        spec["T_mult"] = draw(_mostly(st.integers(1, 3), st.sampled_from([0, 1.5])))
        spec["eta_min"] = draw(st.one_of(st.just(0.0), _rounded(0.0, 0.05, 5)))
    elif kind == "SWALR":
        spec["swa_lr"] = _per_group(draw, groups, _rounded(0.0, 0.2, 5))
        spec["anneal_epochs"] = draw(_mostly(st.integers(0, 60), st.sampled_from([-1, 2.0])))
        spec["anneal_strategy"] = draw(_mostly(st.sampled_from(["cos", "linear"]), st.just("exp")))
    else:
        raise ValueError(kind)
    return spec


@st.composite
def schedule_specs(draw: st.DrawFn, kind: str, groups: int, steps: int, depth: int = 0) -> Spec:
    """A spec of ``kind``; composites hold 1-4 children and nest to depth 2."""
    if kind not in COMPOSITE_TYPES:
        return draw(leaf_specs(kind, groups, steps))
    kinds = st.sampled_from(ALL_TYPES if depth < 1 else LEAF_TYPES)
    child_kinds = draw(st.lists(kinds, min_size=1, max_size=4))
    children = [draw(schedule_specs(k, groups, steps, depth + 1)) for k in child_kinds]
    if kind == "ChainedScheduler":
        return {"type": kind, "schedulers": children}
    count = len(children) - 1
    milestones = draw(
        _mostly(
            st.lists(st.integers(1, max(steps, 2)), min_size=count, max_size=count).map(sorted),
            st.lists(st.integers(-1, steps + 2), max_size=4),
        )
    )
    return {"type": kind, "schedulers": children, "milestones": milestones}


@st.composite
def schedule_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A ``POST /v1/schedules`` body over any of the 15 types (see the module docstring)."""
    groups = draw(st.integers(1, 3))
    steps = draw(st.integers(1, 200))
    kind = draw(st.sampled_from(ALL_TYPES))
    lrs = [draw(_rounded(0.0001, 1.0, 5)) for _ in range(groups)]
    request: dict[str, Any] = {
        "schedule": draw(schedule_specs(kind, groups, steps)),
        "steps": steps,
    }
    if groups > 1 or draw(st.booleans()):
        request["lr"] = lrs if groups > 1 else lrs[0]
    if draw(st.booleans()):
        request["start"] = draw(st.integers(0, steps - 1))
    if draw(st.booleans()):
        request["stride"] = draw(st.integers(1, 12))
    return request
