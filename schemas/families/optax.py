"""optax schedules (``optax.<name>_schedule`` and friends), as ``optax.<name>``.

The value is the lr of every param group (the request's ``lr`` is not used; wrap in
``scale`` for per-group values); step ``k`` is optax's ``count`` (updates already applied).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from schemas.families.common import AnySteps, PositiveSteps, Real, config
from schemas.numbers import Boolean
from service.limits import MAX_CHILDREN, MAX_MILESTONES, MAX_SGDR_CYCLES

if TYPE_CHECKING:
    from schemas.schedules import ScheduleSpec

_DOCS = "https://optax.readthedocs.io/en/latest/api/optimizer_schedules.html#optax.{}"
Scales = Annotated[dict[int, Real], Field(max_length=MAX_MILESTONES)]


def _non_negative(scales: dict[int, float] | None) -> dict[int, float] | None:
    if scales is not None and not all(scale >= 0.0 for scale in scales.values()):
        raise ValueError("expects non-negative scale factors")
    return scales


class OptaxConstant(BaseModel):
    """optax `constant_schedule`: `value`."""

    model_config = config(
        {"type": "optax.constant", "value": 0.01}, _DOCS.format("constant_schedule")
    )
    type: Literal["optax.constant"]
    value: Real


class OptaxPolynomial(BaseModel):
    """optax `polynomial_schedule`: `(init - end) (1 - clip(k - begin, 0, T)/T)^power + end`."""

    model_config = config(
        {
            "type": "optax.polynomial",
            "init_value": 0.1,
            "end_value": 0.001,
            "power": 2,
            "transition_steps": 800,
            "transition_begin": 100,
        },
        _DOCS.format("polynomial_schedule"),
    )
    type: Literal["optax.polynomial"]
    init_value: Real
    end_value: Real
    power: Real
    transition_steps: AnySteps
    transition_begin: AnySteps = 0


class OptaxLinear(BaseModel):
    """optax `linear_schedule`: `init -> end` over `transition_steps` from `transition_begin`."""

    model_config = config(
        {"type": "optax.linear", "init_value": 0.0, "end_value": 0.1, "transition_steps": 100},
        _DOCS.format("linear_schedule"),
    )
    type: Literal["optax.linear"]
    init_value: Real
    end_value: Real
    transition_steps: AnySteps
    transition_begin: AnySteps = 0


class OptaxCosineDecay(BaseModel):
    """optax `cosine_decay_schedule`: `init ((1 - alpha) cos_decay^exponent + alpha)`."""

    model_config = config(
        {"type": "optax.cosine_decay", "init_value": 0.1, "decay_steps": 1000, "alpha": 0.01},
        _DOCS.format("cosine_decay_schedule"),
    )
    type: Literal["optax.cosine_decay"]
    init_value: Real
    decay_steps: PositiveSteps
    alpha: Real = 0.0
    exponent: Real = 1.0


class OptaxWarmupCosineDecay(BaseModel):
    """optax `warmup_cosine_decay_schedule`: linear warmup, then cosine to `end_value`.

    `decay_steps` includes the warmup, so it must exceed `warmup_steps`.
    """

    model_config = config(
        {
            "type": "optax.warmup_cosine_decay",
            "init_value": 0.0,
            "peak_value": 0.1,
            "warmup_steps": 100,
            "decay_steps": 1000,
            "end_value": 0.001,
        },
        _DOCS.format("warmup_cosine_decay_schedule"),
    )
    type: Literal["optax.warmup_cosine_decay"]
    init_value: Real
    peak_value: Real
    warmup_steps: AnySteps
    decay_steps: AnySteps
    end_value: Real = 0.0
    exponent: Real = 1.0


class OptaxExponentialDecay(BaseModel):
    """optax `exponential_decay`: `init * rate^((k - begin)/T)`, clipped at `end_value`."""

    model_config = config(
        {
            "type": "optax.exponential_decay",
            "init_value": 0.1,
            "transition_steps": 100,
            "decay_rate": 0.5,
            "transition_begin": 50,
            "staircase": True,
            "end_value": 0.001,
        },
        _DOCS.format("exponential_decay"),
    )
    type: Literal["optax.exponential_decay"]
    init_value: Real
    transition_steps: AnySteps
    decay_rate: Real
    transition_begin: AnySteps = 0
    staircase: Boolean = False
    end_value: Real | None = None


class OptaxPiecewiseConstant(BaseModel):
    """optax `piecewise_constant_schedule`: `init` times every scale whose boundary k reached."""

    model_config = config(
        {
            "type": "optax.piecewise_constant",
            "init_value": 0.1,
            "boundaries_and_scales": {"300": 0.1, "600": 0.1},
        },
        _DOCS.format("piecewise_constant_schedule"),
    )
    type: Literal["optax.piecewise_constant"]
    init_value: Real
    boundaries_and_scales: Scales | None = None

    _scales = field_validator("boundaries_and_scales")(_non_negative)


class OptaxPiecewiseInterpolate(BaseModel):
    """optax `piecewise_interpolate_schedule`: interpolate between cumulative scaled values."""

    model_config = config(
        {
            "type": "optax.piecewise_interpolate",
            "interpolate_type": "cosine",
            "init_value": 0.01,
            "boundaries_and_scales": {"100": 10.0, "900": 0.01},
        },
        _DOCS.format("piecewise_interpolate_schedule"),
    )
    type: Literal["optax.piecewise_interpolate"]
    interpolate_type: Literal["linear", "cosine"]
    init_value: Real
    boundaries_and_scales: Scales | None = None

    _scales = field_validator("boundaries_and_scales")(_non_negative)


class OptaxLinearOnecycle(BaseModel):
    """optax `linear_onecycle_schedule`: 3 linear phases peak/div -> peak -> peak/div -> end."""

    model_config = config(
        {"type": "optax.linear_onecycle", "transition_steps": 1000, "peak_value": 0.1},
        _DOCS.format("linear_onecycle_schedule"),
    )
    type: Literal["optax.linear_onecycle"]
    transition_steps: PositiveSteps
    peak_value: Real
    pct_start: Real = 0.3
    pct_final: Real = 0.85
    div_factor: Real = 25.0
    final_div_factor: Real = 1e4


class OptaxCosineOnecycle(BaseModel):
    """optax `cosine_onecycle_schedule`: cosine peak/div -> peak -> peak/(div final_div)."""

    model_config = config(
        {"type": "optax.cosine_onecycle", "transition_steps": 1000, "peak_value": 0.1},
        _DOCS.format("cosine_onecycle_schedule"),
    )
    type: Literal["optax.cosine_onecycle"]
    transition_steps: PositiveSteps
    peak_value: Real
    pct_start: Real = 0.3
    div_factor: Real = 25.0
    final_div_factor: Real = 1e4


class SgdrCycle(BaseModel):
    """One cycle of `optax.sgdr`: the keyword arguments of `warmup_cosine_decay_schedule`."""

    model_config = config(
        {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 10, "decay_steps": 100},
        _DOCS.format("warmup_cosine_decay_schedule"),
    )
    init_value: Real
    peak_value: Real
    warmup_steps: AnySteps
    decay_steps: AnySteps
    end_value: Real = 0.0
    exponent: Real = 1.0


class OptaxSgdr(BaseModel):
    """optax `sgdr_schedule`: `warmup_cosine_decay` cycles joined at their `decay_steps`."""

    model_config = config(
        {
            "type": "optax.sgdr",
            "cosine_kwargs": [
                {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 50, "decay_steps": 300},
                {"init_value": 0.0, "peak_value": 0.05, "warmup_steps": 50, "decay_steps": 700},
            ],
        },
        _DOCS.format("sgdr_schedule"),
    )
    type: Literal["optax.sgdr"]
    cosine_kwargs: Annotated[list[SgdrCycle], Field(min_length=1, max_length=MAX_SGDR_CYCLES)]


class OptaxJoinSchedules(BaseModel):
    """optax `join_schedules`: `schedules[i]` from `boundaries[i-1]` on, with its local step."""

    model_config = config(
        {
            "type": "optax.join_schedules",
            "schedules": [
                {
                    "type": "optax.linear",
                    "init_value": 0.0,
                    "end_value": 0.1,
                    "transition_steps": 100,
                },
                {"type": "optax.cosine_decay", "init_value": 0.1, "decay_steps": 900},
            ],
            "boundaries": [100],
        },
        _DOCS.format("join_schedules"),
    )
    type: Literal["optax.join_schedules"]
    schedules: Annotated[list[ScheduleSpec], Field(min_length=1, max_length=MAX_CHILDREN)]
    boundaries: Annotated[list[AnySteps], Field(max_length=MAX_CHILDREN)]

    def child_specs(self) -> list[ScheduleSpec]:
        """The nested specs (for the size and depth limits)."""
        return list(self.schedules)


OPTAX_MODELS = (
    OptaxConstant,
    OptaxLinear,
    OptaxPolynomial,
    OptaxCosineDecay,
    OptaxWarmupCosineDecay,
    OptaxExponentialDecay,
    OptaxPiecewiseConstant,
    OptaxPiecewiseInterpolate,
    OptaxLinearOnecycle,
    OptaxCosineOnecycle,
    OptaxSgdr,
    OptaxJoinSchedules,
)
