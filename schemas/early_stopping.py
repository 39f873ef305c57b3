"""Early stopping on the wire: the callback options (shared by sessions and replay), replay.

Field names are Keras's; ``semantics`` picks whose rule decides (Keras ``EarlyStopping``,
Hugging Face ``EarlyStoppingCallback``, Lightning ``EarlyStopping``). An option the chosen
library does not have is refused, naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from schemas.fields import FiniteFloat
from schemas.numbers import A_NUMBER, AN_INTEGER, Boolean, NonFiniteFloat
from service.limits import MAX_INT

_EXAMPLE: dict[str, Any] = {"semantics": "keras", "mode": "min", "patience": 2, "min_delta": 0.01}

_ONLY_FOR: dict[str, str] = {
    "baseline": "keras",
    "check_finite": "lightning",
    "stopping_threshold": "lightning",
    "divergence_threshold": "lightning",
}
"""Options that exist in one library only."""


class EarlyStopping(BaseModel):
    """When to stop training: one library's early-stopping rule, on the reduced metric.

    - `keras`: `keras.callbacks.EarlyStopping(monitor, min_delta, patience, mode, baseline,
      start_from_epoch)`; stop once `wait >= patience` (and epoch > 0), where `wait` counts
      epochs since the last improvement by more than `min_delta` that also beat `baseline`.
    - `hf`: `transformers.EarlyStoppingCallback(early_stopping_patience=patience,
      early_stopping_threshold=min_delta)` with `greater_is_better = mode == "max"`.
    - `lightning`: `lightning.pytorch.callbacks.EarlyStopping(min_delta, patience, mode,
      check_finite, stopping_threshold, divergence_threshold)`.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    semantics: Literal["keras", "hf", "lightning"] = Field(
        default="keras", description="Whose rule decides: Keras, Hugging Face or Lightning."
    )
    mode: Literal["min", "max"] = Field(
        default="min", description='"min": the metric should decrease; "max": increase.'
    )
    patience: Annotated[int, Field(ge=0, le=MAX_INT), AN_INTEGER] = Field(
        description="Epochs without improvement tolerated (each library's own counting)."
    )
    min_delta: Annotated[float, Field(ge=0.0, allow_inf_nan=False), A_NUMBER] = Field(
        default=0.0,
        description="The margin an improvement must beat (HF: `early_stopping_threshold`).",
    )
    baseline: FiniteFloat | None = Field(
        default=None,
        description="Keras only: `wait` resets only for metrics that also beat this value.",
    )
    start_from_epoch: Annotated[int, Field(ge=0, le=MAX_INT), AN_INTEGER] = Field(
        default=0,
        description="Epochs before this one are not shown to the rule (Keras's option).",
    )
    check_finite: Boolean | None = Field(
        default=None, description="Lightning only (default true): a non-finite metric stops."
    )
    stopping_threshold: FiniteFloat | None = Field(
        default=None, description="Lightning only: stop once the metric is better than this."
    )
    divergence_threshold: FiniteFloat | None = Field(
        default=None, description="Lightning only: stop once the metric is worse than this."
    )

    @field_validator(*_ONLY_FOR)
    @classmethod
    def _option_of_the_library(cls, value: Any, info: ValidationInfo) -> Any:
        library = _ONLY_FOR[str(info.field_name)]
        semantics = info.data.get("semantics")
        if value is not None and semantics != library:
            raise PydanticCustomError(
                "option_not_in_library",
                "{name} is an option of semantics '{library}' only, not '{semantics}'",
                {"name": info.field_name, "library": library, "semantics": semantics},
            )
        return value


class EarlyStoppingProgress(BaseModel):
    """Where the early-stopping rule stands after the last decided epoch."""

    stop: bool = Field(description="Whether training is to stop; once true it stays true.")
    best_epoch: int | None = Field(description="The epoch of `best_metric` (null: none yet).")
    best_metric: NonFiniteFloat | None = Field(
        description="The rule's best value (HF: the Trainer's `best_metric`)."
    )
    wait: int = Field(description="Epochs counted against `patience`.")
    stop_epoch: int | None = Field(description="The epoch that decided to stop.")
    stop_reason: (
        Literal["patience", "non_finite", "stopping_threshold", "divergence_threshold"] | None
    ) = Field(description="Why training stops.")


class EarlyStoppingReplayRequest(BaseModel):
    """A metric history (one value per epoch, from epoch 0) and the rule to fold over it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"early_stopping": _EXAMPLE, "metrics": [1.0, 0.9, 0.895, 0.9, 0.91]}]
        },
    )

    early_stopping: EarlyStopping
    metrics: list[NonFiniteFloat] = Field(
        min_length=1,
        description='One metric per epoch; "inf", "-inf", "nan" for non-finite values. '
        "At most `LRSCHED_MAX_VALUES` items.",
    )


class EarlyStoppingReplayResponse(BaseModel):
    """Whether training stops after each epoch, and where the rule stands at the end."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "stop": [False, False, False, True, True],
                    "stop_epoch": 3,
                    "state": {
                        "stop": True,
                        "best_epoch": 1,
                        "best_metric": 0.9,
                        "wait": 2,
                        "stop_epoch": 3,
                        "stop_reason": "patience",
                    },
                }
            ]
        }
    )

    stop: list[bool] = Field(description="One flag per metric: stop after that epoch.")
    stop_epoch: int | None = Field(description="The first epoch that says stop (null: none).")
    state: EarlyStoppingProgress
