"""ReduceLROnPlateau on the wire: its options (shared by replay and sessions) and the replay API.

Field names and defaults are PyTorch's constructor keywords; the checks are PyTorch's
constructor checks of one option, reported as validation errors that name the field. Those
that need the param groups or compare options are the engine's, as it builds the rule
(:func:`service.engine.registry.plateau_config`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Tag, field_validator
from pydantic_core import PydanticCustomError

from schemas.fields import BoundedInt, FiniteFloat, LearningRate
from schemas.numbers import A_NUMBER, AN_INTEGER, Boolean, NonFiniteFloat
from service.limits import MAX_ACCUMULATION_SIZE

__all__ = [
    "LearningRate",
    "PlateauReplayRequest",
    "PlateauReplayResponse",
    "ReduceLROnPlateau",
    "group_lrs",
]

_LearningRates = (
    Annotated[LearningRate, Tag("constrained-float")]
    | Annotated[list[LearningRate], Field(min_length=1), Tag("list[constrained-float]")]
)

_SPEC_EXAMPLE: dict[str, Any] = {
    "type": "ReduceLROnPlateau",
    "mode": "min",
    "factor": 0.5,
    "patience": 2,
    "threshold": 0.0001,
    "threshold_mode": "rel",
    "cooldown": 1,
    "min_lr": 0.0001,
    "eps": 1e-08,
}


class ReduceLROnPlateau(BaseModel):
    """`torch.optim.lr_scheduler.ReduceLROnPlateau`: cut the LR when a metric stops improving.

    After each `step(metric)`: a metric better than `best` (min/rel:
    `metric < best * (1 - threshold)`; min/abs: `metric < best - threshold`; max mode
    mirrored) resets the bad-epoch count, any other metric (NaN included) adds one bad epoch;
    during cooldown bad epochs are not counted; once more than `patience` bad epochs have
    accumulated, every group's LR becomes `max(lr * factor, min_lr)` unless that lowers it
    by `eps` or less, and a cooldown of `cooldown` steps starts.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [_SPEC_EXAMPLE]},
    )

    type: Literal["ReduceLROnPlateau"] = Field(description="The scheduler class.")
    mode: Literal["min", "max"] = Field(
        default="min",
        description='"min": the metric should decrease (a loss); "max": it should increase.',
    )
    factor: FiniteFloat = Field(
        default=0.1,
        description="Multiplier of the LR at a reduction: new_lr = lr * factor. Must be < 1.",
        json_schema_extra={"exclusiveMaximum": 1.0},
    )
    patience: BoundedInt = Field(
        default=10,
        description=(
            "Bad epochs tolerated before a reduction: the LR is cut when more than `patience` "
            "steps in a row did not improve. 0 cuts after one bad step, -1 on every step."
        ),
    )
    threshold: FiniteFloat = Field(
        default=1e-4,
        description="The margin a metric must beat `best` by to count as an improvement.",
    )
    threshold_mode: Literal["rel", "abs", "both"] = Field(
        default="rel",
        description=(
            '"rel": the margin is `best * threshold`; "abs": it is `threshold` (Keras, fastai); '
            '"both": `best * threshold + min_delta` (optax `rtol`/`atol`; not PyTorch).'
        ),
    )
    cooldown: BoundedInt = Field(
        default=0,
        description="Steps after a reduction during which bad epochs are not counted.",
    )
    min_lr: (
        Annotated[FiniteFloat, Tag("float")] | Annotated[list[FiniteFloat], Tag("list[float]")]
    ) = Field(
        default=0.0,
        description="Lower bound on the LR: one number for all groups, or one per group.",
    )
    eps: FiniteFloat = Field(
        default=1e-8,
        description="A reduction smaller than or equal to `eps` is not applied.",
    )
    patience_semantics: Literal["torch", "keras"] = Field(
        default="torch",
        description=(
            'Not PyTorch\'s. "torch": cut when `num_bad_epochs > patience`; "keras": when '
            "`num_bad_epochs >= patience` outside cooldown (Keras, fastai, optax), one epoch "
            "earlier for the same number. Everything else stays PyTorch's."
        ),
    )
    min_delta: Annotated[float, Field(ge=0.0, allow_inf_nan=False), A_NUMBER] | None = Field(
        default=None,
        description=(
            "Not PyTorch's. Keras/fastai's absolute margin: with threshold_mode \"abs\" it is "
            'the threshold (do not give `threshold` too); with "both" it is the absolute part '
            '(optax `atol`) and `threshold` the relative part (`rtol`). Not with "rel".'
        ),
    )
    sign_safe_threshold: Boolean = Field(
        default=False,
        description=(
            "Not PyTorch's. Measure the relative margin on `|best|` (min: `metric < best - "
            "threshold * |best|`), so negative metrics (NLL, -reward) can improve."
        ),
    )
    accumulation_size: Annotated[int, Field(ge=1, le=MAX_ACCUMULATION_SIZE), AN_INTEGER] = Field(
        default=1,
        description=(
            "Not PyTorch's (optax). Decide only every `accumulation_size` steps, on the mean "
            "of the metrics since the last decision; the steps between keep the lr."
        ),
    )

    @field_validator("factor")
    @classmethod
    def _factor_below_one(cls, factor: float) -> float:
        """PyTorch's constructor check (negative factors are accepted, as in PyTorch)."""
        if factor >= 1.0:
            raise PydanticCustomError(
                "factor_not_below_one",
                "Factor should be < 1.0. Got factor={factor}.",
                {"factor": factor},
            )
        return factor


def group_lrs(lr: float | list[float]) -> tuple[float, ...]:
    """One learning rate per param group: a number is one group, a list one group per item."""
    return tuple(lr) if isinstance(lr, list) else (lr,)


class PlateauReplayRequest(BaseModel):
    """What ReduceLROnPlateau would do with a metric history.

    The optimizer has one param group per item of `lr` (one for a number); then
    `step(metric)` is called for each of `metrics` in order.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "schedule": _SPEC_EXAMPLE,
                    "lr": 0.1,
                    "metrics": [1.0, 0.9, 0.95, 0.93, 0.94, 0.96, 0.97, "nan", 0.91, 0.85],
                }
            ]
        },
    )

    schedule: ReduceLROnPlateau
    lr: _LearningRates = Field(
        default=0.001,
        description="The optimizer's learning rate: a number (one param group) or one per group.",
    )
    metrics: list[NonFiniteFloat] = Field(
        min_length=1,
        description=(
            'The metric passed to each `step(metric)`; "inf", "-inf" and "nan" stand for '
            "non-finite values. At most `LRSCHED_MAX_VALUES / groups` items."
        ),
    )


class PlateauReplayResponse(BaseModel):
    """The LR of every param group after each `step(metric)`, and which steps changed it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lr": [[0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025]],
                    "reduced": [False, False, False, False, True, False, False, False, True, False],
                }
            ]
        },
    )

    lr: list[list[float]] = Field(
        description="One row per param group, one value per metric: the LR after that step.",
    )
    reduced: list[bool] = Field(
        description="One flag per metric: whether that step changed the LR of some group.",
    )
