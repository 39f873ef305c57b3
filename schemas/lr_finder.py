"""The LR range test on the wire: create, report, result (with every library's suggestion)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from schemas.fields import FiniteFloat
from schemas.numbers import A_NUMBER, AN_INTEGER, NonFiniteFloat
from schemas.sessions import Count, TtlSeconds, WorldSize
from service.limits import MAX_LR_FINDER_STEPS, MAX_RANKS

_CREATE_EXAMPLE: dict[str, Any] = {
    "start_lr": 1e-7,
    "end_lr": 10.0,
    "num_steps": 100,
    "mode": "exponential",
    "smooth": 0.98,
    "diverge_threshold": 4.0,
    "world_size": 2,
    "reduce": "mean",
}


class LrFinderCreate(BaseModel):
    """Start an LR range test shared by ``world_size`` ranks.

    Step `k` trains with `start_lr * (end_lr / start_lr) ** (k / (num_steps - 1))`
    (exponential) or `start_lr + (end_lr - start_lr) * k / (num_steps - 1)` (linear).
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_CREATE_EXAMPLE]})

    start_lr: Annotated[float, Field(gt=0.0, allow_inf_nan=False), A_NUMBER] = Field(
        default=1e-7, description="The lr of step 0."
    )
    end_lr: FiniteFloat = Field(default=10.0, description="The lr of the last step.")
    num_steps: Annotated[int, Field(ge=2, le=MAX_LR_FINDER_STEPS), AN_INTEGER] = Field(
        default=100, description=f"Steps of the test (at most {MAX_LR_FINDER_STEPS})."
    )
    mode: Literal["exponential", "linear"] = Field(
        default="exponential", description="How the lr grows from step to step."
    )
    smooth: Annotated[float, Field(ge=0.0, lt=1.0), A_NUMBER] = Field(
        default=0.98,
        description="Weight of the past in the smoothed loss (fastai's `beta`; torch-lr-finder's "
        "`smooth_f` is `1 - smooth`). 0: no smoothing.",
    )
    smoothing: Literal["debiased", "ema"] = Field(
        default="debiased",
        description='"debiased": fastai/Lightning (average from 0, divided by '
        '`1 - smooth ** (k + 1)`); "ema": torch-lr-finder (starts at the first loss).',
    )
    diverge_threshold: Annotated[float, Field(ge=1.0, allow_inf_nan=False), A_NUMBER] = Field(
        default=4.0,
        description="Stop once the smoothed loss exceeds this times the best smoothed loss "
        "(a non-finite smoothed loss stops too).",
    )
    world_size: WorldSize = 1
    reduce: Literal["mean", "min", "max"] = Field(
        default="mean", description="How the ranks' losses of one step are combined."
    )
    ttl_seconds: TtlSeconds = 604800

    @field_validator("end_lr")
    @classmethod
    def _end_above_start(cls, end_lr: float, info: ValidationInfo) -> float:
        start_lr = info.data.get("start_lr")
        if start_lr is not None and end_lr <= start_lr:
            raise PydanticCustomError(
                "end_lr_not_above_start_lr",
                "end_lr={end_lr} must be greater than start_lr={start_lr}",
                {"end_lr": end_lr, "start_lr": start_lr},
            )
        if start_lr is not None and not math.isfinite(end_lr / start_lr):
            # The exponential steps are start_lr * (end_lr / start_lr) ** fraction.
            raise PydanticCustomError(
                "end_lr_ratio_overflow",
                "end_lr / start_lr ({end_lr} / {start_lr}) overflows a float64: the range "
                "test's learning rates could not be computed",
                {"end_lr": end_lr, "start_lr": start_lr},
            )
        return end_lr


class LrFinderCreated(BaseModel):
    """A new range test. ``token`` is shown only here: send it as ``Authorization: Bearer``."""

    id: str
    token: str
    lr: float = Field(description="The lr to train step 0 with.")
    step: int = Field(description="The next step to report (0).")
    num_steps: int
    expires_at: float


class LrFinderReport(BaseModel):
    """One rank's training loss at one step (trained with the lr the last answer gave)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"step": 0, "loss": 2.31, "rank": 0}]}
    )

    step: Count
    loss: NonFiniteFloat
    rank: Annotated[int, Field(ge=0, le=MAX_RANKS - 1), AN_INTEGER] = 0


StopReason = Literal["diverged", "num_steps"]


class LrFinderAnswer(BaseModel):
    """The step's decision (``decided``), or the current lr while ranks are missing."""

    step: int
    decided: bool
    lr: float = Field(description="The lr for the next step (the last one once stopped).")
    stop: bool = Field(description="The test is over: every rank stops (same answer for all).")
    stop_reason: StopReason | None
    smoothed_loss: NonFiniteFloat | None = Field(description="The smoothed loss of the step.")
    waiting_for: list[int] = Field(description="Ranks that have not reported this step yet.")


class LrFinderView(BaseModel):
    """A range test's current step, the lr to train it with, and its options."""

    step: int = Field(description="The next step to report.")
    lr: float = Field(description="The lr to train that step with (the last once stopped).")
    stop: bool
    stop_reason: StopReason | None
    pending_ranks: list[int] = Field(description="Ranks that reported the pending step.")
    options: LrFinderCreate


class FastaiSuggestions(BaseModel):
    """``Learner.lr_find(suggest_funcs=(minimum, steep, valley, slide))``."""

    minimum: float | None = Field(description="A tenth of the lr of the least loss.")
    steep: float | None = Field(description="The steepest fall per unit of log(lr).")
    valley: float | None = Field(description="Inside the longest valley.")
    slide: float | None = Field(description="The interval slide rule.")


class LrSuggestions(BaseModel):
    """Each library's suggestion on the test's (lr, smoothed loss) curve; null: none."""

    fastai: FastaiSuggestions
    lightning: float | None = Field(
        description="`Tuner.lr_find(...).suggestion()`: the steepest d(loss)/d(lr)."
    )
    torch_lr_finder: float | None = Field(
        description="`LRFinder.plot(suggest_lr=True)`: the least np.gradient of the loss."
    )


class LrFinderResult(BaseModel):
    """The curve so far, one point per decided step, and the suggestions on it."""

    lr: list[float] = Field(description="The lr each step trained with.")
    loss: list[NonFiniteFloat] = Field(description="The ranks' losses combined with `reduce`.")
    smoothed_loss: list[NonFiniteFloat]
    stop: bool
    stop_reason: StopReason | None
    suggestions: LrSuggestions
