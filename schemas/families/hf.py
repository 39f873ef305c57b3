"""Hugging Face ``transformers`` schedules (``get_*_schedule*``), as ``hf.<scheduler type>``.

Each is a ``LambdaLR`` multiplier of every param group's lr (see
:mod:`service.engine.families.hf`); where HF reads ``optimizer.defaults["lr"]``
(``polynomial``'s ``lr_init``, ``min_lr`` to ``min_lr_rate``) the first group's lr is used.
Step ``k`` is ``k`` calls of ``scheduler.step()``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, model_validator

from schemas.families.common import NonNegative, PositiveSteps, Real, Steps, config

_DOCS = "https://huggingface.co/docs/transformers/main_classes/optimizer_schedules#transformers.{}"


class HfConstant(BaseModel):
    """HF `get_constant_schedule`: the optimizer's lr, constant."""

    model_config = config({"type": "hf.constant"}, _DOCS.format("get_constant_schedule"))
    type: Literal["hf.constant"]


class HfConstantWithWarmup(BaseModel):
    """HF `get_constant_schedule_with_warmup`: lr * k/W during warmup (from 0), then lr."""

    model_config = config(
        {"type": "hf.constant_with_warmup", "num_warmup_steps": 100},
        _DOCS.format("get_constant_schedule_with_warmup"),
    )
    type: Literal["hf.constant_with_warmup"]
    num_warmup_steps: Steps


class HfLinear(BaseModel):
    """HF `get_linear_schedule_with_warmup`: warmup from 0, then linear to 0 at T."""

    model_config = config(
        {"type": "hf.linear", "num_warmup_steps": 100, "num_training_steps": 1000},
        _DOCS.format("get_linear_schedule_with_warmup"),
    )
    type: Literal["hf.linear"]
    num_warmup_steps: Steps
    num_training_steps: Steps


class HfCosine(BaseModel):
    """HF `get_cosine_schedule_with_warmup`: warmup from 0, then cosine (`num_cycles` waves)."""

    model_config = config(
        {"type": "hf.cosine", "num_warmup_steps": 100, "num_training_steps": 1000},
        _DOCS.format("get_cosine_schedule_with_warmup"),
    )
    type: Literal["hf.cosine"]
    num_warmup_steps: Steps
    num_training_steps: Steps
    num_cycles: Real = 0.5


class HfCosineWithRestarts(BaseModel):
    """HF `get_cosine_with_hard_restarts_schedule_with_warmup`: `num_cycles` hard restarts."""

    model_config = config(
        {
            "type": "hf.cosine_with_restarts",
            "num_warmup_steps": 50,
            "num_training_steps": 1000,
            "num_cycles": 3,
        },
        _DOCS.format("get_cosine_with_hard_restarts_schedule_with_warmup"),
    )
    type: Literal["hf.cosine_with_restarts"]
    num_warmup_steps: Steps
    num_training_steps: Steps
    num_cycles: Real = 1


class _MinLr(BaseModel):
    min_lr: NonNegative | None = None
    min_lr_rate: Real | None = None

    @model_validator(mode="after")
    def _one_floor(self) -> _MinLr:
        if self.min_lr is not None and self.min_lr_rate is not None:
            raise ValueError("Only one of min_lr or min_lr_rate should be set")
        if self.min_lr is None and self.min_lr_rate is None:
            raise ValueError("One of min_lr or min_lr_rate should be set")
        return self


class HfCosineWithMinLr(_MinLr):
    """HF `get_cosine_with_min_lr_schedule_with_warmup`: the cosine down to `min_lr`."""

    model_config = config(
        {
            "type": "hf.cosine_with_min_lr",
            "num_warmup_steps": 100,
            "num_training_steps": 1000,
            "min_lr_rate": 0.1,
        },
        _DOCS.format("get_cosine_with_min_lr_schedule_with_warmup"),
    )
    type: Literal["hf.cosine_with_min_lr"]
    num_warmup_steps: Steps
    num_training_steps: Steps
    num_cycles: Real = 0.5


class HfCosineWarmupWithMinLr(_MinLr):
    """HF `get_cosine_with_min_lr_schedule_with_warmup_lr_rate` (`cosine_warmup_with_min_lr`).

    Warmup reaches the lr at `W - 1` (from `1/W`, or from `warmup_lr_rate`); the cosine is one
    step ahead of `hf.cosine_with_min_lr`.
    """

    model_config = config(
        {
            "type": "hf.cosine_warmup_with_min_lr",
            "num_warmup_steps": 100,
            "num_training_steps": 1000,
            "min_lr_rate": 0.1,
            "warmup_lr_rate": 0.01,
        },
        _DOCS.format("get_cosine_with_min_lr_schedule_with_warmup_lr_rate"),
    )
    type: Literal["hf.cosine_warmup_with_min_lr"]
    num_warmup_steps: Steps
    num_training_steps: Steps
    num_cycles: Real = 0.5
    warmup_lr_rate: Real | None = None


class HfPolynomial(BaseModel):
    """HF `get_polynomial_decay_schedule_with_warmup`: warmup, then a power decay to `lr_end`.

    `lr_init` is `optimizer.defaults["lr"]`, here the first group's lr; it must exceed `lr_end`.
    """

    model_config = config(
        {
            "type": "hf.polynomial",
            "num_warmup_steps": 100,
            "num_training_steps": 1000,
            "lr_end": 1e-5,
            "power": 2.0,
        },
        _DOCS.format("get_polynomial_decay_schedule_with_warmup"),
    )
    type: Literal["hf.polynomial"]
    num_warmup_steps: Steps
    num_training_steps: Steps
    lr_end: Real = 1e-7
    power: Real = 1.0


class HfInverseSqrt(BaseModel):
    """HF `get_inverse_sqrt_schedule`: warmup, then `1/sqrt((k + s - W)/s)` (s = timescale)."""

    model_config = config(
        {"type": "hf.inverse_sqrt", "num_warmup_steps": 100},
        _DOCS.format("get_inverse_sqrt_schedule"),
    )
    type: Literal["hf.inverse_sqrt"]
    num_warmup_steps: Steps
    timescale: PositiveSteps | None = None


class HfWsd(BaseModel):
    """HF `get_wsd_schedule`: warmup, stable, decay, then `min_lr_ratio`.

    Stable steps are `num_stable_steps`, else inferred as `num_training_steps - W - D`
    (transformers#34905); when both are given, `num_stable_steps` wins (as in HF).
    """

    model_config = config(
        {
            "type": "hf.wsd",
            "num_warmup_steps": 100,
            "num_decay_steps": 200,
            "num_training_steps": 1000,
            "decay_type": "1-sqrt",
            "min_lr_ratio": 0.1,
        },
        _DOCS.format("get_wsd_schedule"),
    )
    type: Literal["hf.wsd"]
    num_warmup_steps: Steps
    num_decay_steps: Steps
    num_training_steps: Steps | None = None
    num_stable_steps: Steps | None = None
    warmup_type: Literal["linear", "cosine", "1-sqrt"] = "linear"
    decay_type: Literal["linear", "cosine", "1-sqrt"] = "cosine"
    min_lr_ratio: Real = 0.0
    num_cycles: Real = 0.5

    @model_validator(mode="after")
    def _length_known(self) -> HfWsd:
        if self.num_training_steps is None and self.num_stable_steps is None:
            raise ValueError("Either num_training_steps or num_stable_steps must be specified.")
        return self


HF_MODELS = (
    HfConstant,
    HfConstantWithWarmup,
    HfLinear,
    HfCosine,
    HfCosineWithRestarts,
    HfCosineWithMinLr,
    HfCosineWarmupWithMinLr,
    HfPolynomial,
    HfInverseSqrt,
    HfWsd,
)
