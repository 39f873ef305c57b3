"""timm schedulers (``timm.scheduler.*LRScheduler``), as ``timm.<name>``.

The base value of each param group is its lr (timm's ``initial_lr``); ``lr_min`` and
``warmup_lr_init`` are absolute. Step ``k`` is timm's ``t`` (``step(t)`` / ``step_update(t)``).
``t_in_epochs`` and ``initialize`` are accepted and ignored (``k`` counts whatever ``t``
counts). The noise is timm's own, bit for bit (``torch.Generator`` seeded ``noise_seed + t``,
reproduced without torch).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, Tag, field_validator, model_validator

from schemas.families.common import NonNegative, PositiveSteps, Real, Steps, config
from schemas.fields import BoundedInt
from schemas.numbers import A_NUMBER, AN_INTEGER, Boolean
from service.limits import MAX_INT, MAX_MILESTONES, MAX_MULTIPLIER, MAX_NOISE_PCT, MAX_NOISE_SEED

_DOCS = "https://huggingface.co/docs/timm/reference/schedulers#timm.scheduler.{}"


class _Noise(BaseModel):
    noise_range_t: (
        Annotated[Steps, Tag("constrained-int")]
        | Annotated[
            list[Annotated[int, Field(ge=0, le=MAX_INT), AN_INTEGER]],
            Field(min_length=2, max_length=2),
            Tag("list[constrained-int]"),
        ]
        | None
    ) = Field(
        default=None,
        description="Noisy steps: `t >= n` for a number, `a <= t < b` for `[a, b]`; none if null.",
    )
    noise_type: Annotated[
        object,
        Field(
            description="Not accepted: timm 1.0.31's public schedulers take no `noise_type` "
            "(TypeError); their noise is `normal`.",
        ),
    ] = None
    noise_pct: Annotated[
        float,
        Field(gt=0.0, le=MAX_NOISE_PCT, allow_inf_nan=False),
        A_NUMBER,
    ] = 0.67
    noise_std: Real = 1.0
    noise_seed: Annotated[int, Field(ge=0, le=MAX_NOISE_SEED), AN_INTEGER] = 42
    t_in_epochs: Boolean = True
    initialize: Boolean = True

    @field_validator("noise_type")
    @classmethod
    def _no_noise_type(cls, value: object) -> object:
        """timm's base ``Scheduler`` has a ``noise_type``, but none of the public schedulers
        (cosine, tanh, poly, step, multistep) takes it: passing it raises TypeError."""
        raise ValueError(
            "timm 1.0.31's schedulers take no noise_type (TypeError: unexpected keyword "
            "argument 'noise_type'); their noise is always normal"
        )


class _Warmup(_Noise):
    warmup_t: Steps = 0
    warmup_lr_init: NonNegative = 0.0
    warmup_prefix: Boolean = False


class _Cycles(_Warmup):
    t_initial: PositiveSteps
    lr_min: NonNegative = 0.0
    cycle_mul: Annotated[
        float, Field(gt=0.0, le=float(MAX_MULTIPLIER), allow_inf_nan=False), A_NUMBER
    ] = 1.0
    cycle_decay: Real = 1.0
    cycle_limit: Annotated[int, Field(ge=0, le=MAX_INT), AN_INTEGER] = 1


class TimmCosine(_Cycles):
    """timm `CosineLRScheduler`: cosine cycles (`cycle_mul`, `cycle_decay`, `cycle_limit`),
    `k_decay`, warmup and noise. Without `warmup_prefix` the cosine runs on the absolute step.
    """

    model_config = config(
        {
            "type": "timm.cosine",
            "t_initial": 300,
            "lr_min": 1e-5,
            "cycle_mul": 2.0,
            "cycle_decay": 0.5,
            "cycle_limit": 3,
            "warmup_t": 20,
            "warmup_lr_init": 1e-4,
            "warmup_prefix": True,
        },
        _DOCS.format("CosineLRScheduler"),
    )
    type: Literal["timm.cosine"]
    k_decay: Real = 1.0


class TimmTanh(_Cycles):
    """timm `TanhLRScheduler`: `lr_min + (lr_max - lr_min)/2 (1 - tanh(lb (1 - r) + ub r))`."""

    model_config = config(
        {"type": "timm.tanh", "t_initial": 1000, "lb": -6.0, "ub": 4.0, "lr_min": 1e-5},
        _DOCS.format("TanhLRScheduler"),
    )
    type: Literal["timm.tanh"]
    lb: Real = -7.0
    ub: Real = 3.0

    @model_validator(mode="after")
    def _bounds(self) -> TimmTanh:
        if not self.lb < self.ub:
            raise ValueError(f"lb={self.lb} must be below ub={self.ub} (timm asserts lb < ub)")
        return self


class TimmPoly(_Cycles):
    """timm `PolyLRScheduler`: `lr_min + (lr_max - lr_min)(1 - t^k/T^k)^power` per cycle."""

    model_config = config(
        {"type": "timm.poly", "t_initial": 1000, "power": 0.9, "lr_min": 1e-5},
        _DOCS.format("PolyLRScheduler"),
    )
    type: Literal["timm.poly"]
    power: Real = 0.5
    k_decay: Real = 1.0


class TimmStep(_Warmup):
    """timm `StepLRScheduler`: `base * decay_rate ** (t // decay_t)`; prefix warmup by default."""

    model_config = config(
        {"type": "timm.step", "decay_t": 300, "decay_rate": 0.1, "warmup_t": 10},
        _DOCS.format("StepLRScheduler"),
    )
    type: Literal["timm.step"]
    decay_t: Annotated[float, Field(gt=0, le=float(MAX_INT)), A_NUMBER]
    decay_rate: Real = 1.0
    warmup_prefix: Boolean = True


class TimmMultiStep(_Warmup):
    """timm `MultiStepLRScheduler`: `base * decay_rate ** bisect_right(decay_t, t + 1)`.

    Each decay happens one step before its milestone (unlike torch's MultiStepLR).
    """

    model_config = config(
        {"type": "timm.multistep", "decay_t": [300, 600], "decay_rate": 0.1},
        _DOCS.format("MultiStepLRScheduler"),
    )
    type: Literal["timm.multistep"]
    decay_t: Annotated[list[BoundedInt], Field(max_length=MAX_MILESTONES)]
    decay_rate: Real = 1.0
    warmup_prefix: Boolean = True


TIMM_MODELS = (TimmCosine, TimmTanh, TimmPoly, TimmStep, TimmMultiStep)
