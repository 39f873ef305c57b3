"""PyTorch's leaf schedulers (``torch.optim.lr_scheduler``): one model per class.

Field names and defaults are the constructor's keyword arguments; constraints mirror the
checks PyTorch makes at construction, so a configuration PyTorch rejects is a 422 naming
the field. Checks that need the number of param groups, or that PyTorch only makes while
stepping, are made by the engine's factory for the type (``service.engine.factories.pytorch``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from schemas.fields import (
    ExpressionSource,
    FiniteFloat,
    Number,
    PerGroup,
    PerGroupExpression,
    PositiveStrictInt,
)
from schemas.numbers import A_NUMBER, AN_INTEGER, Boolean
from service.limits import MAX_INT, MAX_MILESTONES, MAX_MULTIPLIER, MAX_WORD_CHARS


def _config(example: dict[str, Any], doc: str) -> ConfigDict:
    return ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [example], "externalDocs": {"url": doc}},
    )


def _float_not_int(value: object) -> object:
    """PyTorch's ``isinstance(pct_start, float)``: ``1`` is rejected, ``1.0`` accepted."""
    if isinstance(value, int):
        raise ValueError(
            f"Expected float between 0 and 1 pct_start, but got {value!r} (write {value}.0)"
        )
    return value


_DOCS = "https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.{}.html"


class LambdaLR(BaseModel):
    """``lr = base_lr * lr_lambda(k)``."""

    model_config = _config(
        {"type": "LambdaLR", "lr_lambda": "lambda epoch: 0.95 ** epoch"}, _DOCS.format("LambdaLR")
    )
    type: Literal["LambdaLR"]
    lr_lambda: PerGroupExpression


class MultiplicativeLR(BaseModel):
    """``lr_k = lr_{k-1} * lr_lambda(k)`` (not applied at construction)."""

    model_config = _config(
        {"type": "MultiplicativeLR", "lr_lambda": "lambda epoch: 0.95"},
        _DOCS.format("MultiplicativeLR"),
    )
    type: Literal["MultiplicativeLR"]
    lr_lambda: PerGroupExpression


class StepLR(BaseModel):
    """Decay by ``gamma`` every ``step_size`` steps."""

    model_config = _config(
        {"type": "StepLR", "step_size": 30, "gamma": 0.1}, _DOCS.format("StepLR")
    )
    type: Literal["StepLR"]
    step_size: Number
    gamma: FiniteFloat = 0.1


class MultiStepLR(BaseModel):
    """Decay by ``gamma`` at each milestone (repeated milestones compound)."""

    model_config = _config(
        {"type": "MultiStepLR", "milestones": [30, 80], "gamma": 0.1}, _DOCS.format("MultiStepLR")
    )
    type: Literal["MultiStepLR"]
    milestones: Annotated[list[Number], Field(max_length=MAX_MILESTONES)]
    gamma: FiniteFloat = 0.1


class ConstantLR(BaseModel):
    """``factor * lr`` until step ``total_iters``, then the lr again."""

    model_config = _config(
        {"type": "ConstantLR", "factor": 0.5, "total_iters": 4}, _DOCS.format("ConstantLR")
    )
    type: Literal["ConstantLR"]
    factor: Annotated[
        float,
        Field(ge=0.0, le=1.0, description="Constant multiplicative factor, between 0 and 1."),
        A_NUMBER,
    ] = 1.0 / 3
    total_iters: Number = 5


class LinearLR(BaseModel):
    """Linear change of the factor from ``start_factor`` to ``end_factor`` over ``total_iters``."""

    model_config = _config(
        {"type": "LinearLR", "start_factor": 0.1, "end_factor": 1.0, "total_iters": 10},
        _DOCS.format("LinearLR"),
    )
    type: Literal["LinearLR"]
    start_factor: Annotated[
        float,
        Field(gt=0.0, le=1.0, description="Starting factor: greater than 0, at most 1."),
        A_NUMBER,
    ] = 1.0 / 3
    end_factor: Annotated[
        float, Field(ge=0.0, le=1.0, description="Ending factor: between 0 and 1."), A_NUMBER
    ] = 1.0
    total_iters: Number = 5


class ExponentialLR(BaseModel):
    """Multiply by ``gamma`` every step."""

    model_config = _config({"type": "ExponentialLR", "gamma": 0.95}, _DOCS.format("ExponentialLR"))
    type: Literal["ExponentialLR"]
    gamma: FiniteFloat


class PolynomialLR(BaseModel):
    """``(1 - min(k, total_iters) / total_iters) ** power`` times the lr."""

    model_config = _config(
        {"type": "PolynomialLR", "total_iters": 100, "power": 2.0}, _DOCS.format("PolynomialLR")
    )
    type: Literal["PolynomialLR"]
    total_iters: Number = 5
    power: FiniteFloat = 1.0


class CosineAnnealingLR(BaseModel):
    """Cosine from the lr to ``eta_min`` over ``T_max`` steps; then rises again."""

    model_config = _config(
        {"type": "CosineAnnealingLR", "T_max": 100, "eta_min": 0.0},
        _DOCS.format("CosineAnnealingLR"),
    )
    type: Literal["CosineAnnealingLR"]
    T_max: Number
    eta_min: FiniteFloat = 0.0


class CosineAnnealingWarmRestarts(BaseModel):
    """SGDR: cosine over ``T_0`` steps, restarting with periods growing by ``T_mult``."""

    model_config = _config(
        {"type": "CosineAnnealingWarmRestarts", "T_0": 10, "T_mult": 2, "eta_min": 0.0001},
        _DOCS.format("CosineAnnealingWarmRestarts"),
    )
    type: Literal["CosineAnnealingWarmRestarts"]
    T_0: Annotated[PositiveStrictInt, Field(description="Expected positive integer T_0.")]
    T_mult: Annotated[
        StrictInt,
        Field(ge=1, le=MAX_MULTIPLIER, description="Expected integer T_mult >= 1."),
        AN_INTEGER,
    ] = 1
    eta_min: FiniteFloat = 0.0


class CyclicLR(BaseModel):
    """Triangle waves between ``base_lr`` and ``max_lr`` (and momentum the other way)."""

    model_config = _config(
        {
            "type": "CyclicLR",
            "base_lr": 0.001,
            "max_lr": 0.01,
            "step_size_up": 200,
            "mode": "triangular2",
        },
        _DOCS.format("CyclicLR"),
    )
    type: Literal["CyclicLR"]
    base_lr: PerGroup
    max_lr: PerGroup
    step_size_up: Number = 2000
    step_size_down: Number | None = None
    mode: Annotated[
        str,
        Field(
            max_length=MAX_WORD_CHARS,
            description="triangular, triangular2 or exp_range; ignored when scale_fn is given.",
        ),
    ] = "triangular"
    gamma: FiniteFloat = 1.0
    scale_fn: ExpressionSource | None = None
    scale_mode: Annotated[
        str,
        Field(
            max_length=MAX_WORD_CHARS,
            description="`cycle` or `iterations` (PyTorch treats any other value as iterations).",
        ),
    ] = "cycle"
    cycle_momentum: Boolean = True
    base_momentum: PerGroup = 0.8
    max_momentum: PerGroup = 0.9


class OneCycleLR(BaseModel):
    """The 1cycle policy: warm up to ``max_lr``, then anneal to ``max_lr / div / final_div``."""

    model_config = _config(
        {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 1000}, _DOCS.format("OneCycleLR")
    )
    type: Literal["OneCycleLR"]
    max_lr: PerGroup
    total_steps: PositiveStrictInt | None = None
    epochs: PositiveStrictInt | None = None
    steps_per_epoch: PositiveStrictInt | None = None
    pct_start: Annotated[
        float,
        Field(ge=0.0, le=1.0, allow_inf_nan=False, description="A float between 0 and 1."),
        BeforeValidator(_float_not_int),
        A_NUMBER,
    ] = 0.3
    anneal_strategy: Literal["cos", "linear"] = "cos"
    cycle_momentum: Boolean = True
    base_momentum: PerGroup = 0.85
    max_momentum: PerGroup = 0.95
    div_factor: FiniteFloat = 25.0
    final_div_factor: FiniteFloat = 1e4
    three_phase: Boolean = False


class SWALR(BaseModel):
    """``torch.optim.swa_utils.SWALR``: anneal every lr to ``swa_lr`` over ``anneal_epochs``
    steps (cosine or linear), then hold it; after another scheduler in SequentialLR it anneals
    from the lr that scheduler left."""

    model_config = _config(
        {"type": "SWALR", "swa_lr": 0.05, "anneal_epochs": 5, "anneal_strategy": "linear"},
        "https://pytorch.org/docs/stable/generated/torch.optim.swa_utils.SWALR.html",
    )
    type: Literal["SWALR"]
    swa_lr: PerGroup
    anneal_epochs: Annotated[
        StrictInt,
        Field(ge=0, le=MAX_INT, description="anneal_epochs must be equal or greater than 0."),
        AN_INTEGER,
    ] = 10
    anneal_strategy: Literal["cos", "linear"] = "cos"


LEAF_MODELS = (
    LambdaLR,
    MultiplicativeLR,
    StepLR,
    MultiStepLR,
    ConstantLR,
    LinearLR,
    ExponentialLR,
    PolynomialLR,
    CosineAnnealingLR,
    CyclicLR,
    OneCycleLR,
    CosineAnnealingWarmRestarts,
    SWALR,
)
