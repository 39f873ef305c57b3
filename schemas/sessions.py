"""Plateau sessions on the wire: create, report, read, history, PyTorch state_dict."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.early_stopping import EarlyStopping, EarlyStoppingProgress
from schemas.fields import BoundedInt, FiniteFloat, LearningRate, LearningRates
from schemas.numbers import A_NUMBER, AN_INTEGER, NonFiniteFloat
from schemas.plateau import ReduceLROnPlateau
from service.limits import MAX_GROUPS, MAX_INT, MAX_RANKS, MAX_SESSION_TTL_SECONDS, MAX_WARMUP_STEPS

WorldSize = Annotated[
    int, Field(ge=1, le=MAX_RANKS, description="Ranks that report each epoch."), AN_INTEGER
]
Count = Annotated[int, Field(ge=0, le=MAX_INT), AN_INTEGER]
"""An epoch or step count (>= 0)."""
TtlSeconds = Annotated[
    int,
    Field(ge=1, le=MAX_SESSION_TTL_SECONDS, description="Lifetime after the last write (seconds)."),
    AN_INTEGER,
]
"""A session's lifetime after its last write."""
SessionId = Annotated[str, Field(description="The session id, as returned at creation.")]


class PlateauStateDict(BaseModel):
    """A PyTorch ``ReduceLROnPlateau.state_dict()`` (non-finite values as strings).

    Keys PyTorch adds that do not affect decisions are accepted and ignored.
    """

    model_config = ConfigDict(extra="ignore")

    factor: FiniteFloat
    default_min_lr: FiniteFloat | None = None
    min_lrs: Annotated[list[FiniteFloat], Field(min_length=1, max_length=MAX_GROUPS)]
    patience: BoundedInt
    cooldown: BoundedInt
    eps: FiniteFloat
    last_epoch: Count
    last_lr: Annotated[
        list[LearningRate] | None, Field(alias="_last_lr", max_length=MAX_GROUPS)
    ] = None
    mode: Literal["min", "max"]
    threshold: FiniteFloat
    threshold_mode: Literal["rel", "abs"]
    best: NonFiniteFloat
    cooldown_counter: BoundedInt
    num_bad_epochs: BoundedInt

    @field_validator("factor")
    @classmethod
    def _factor_below_one(cls, factor: float) -> float:
        if factor >= 1.0:
            raise ValueError(f"Factor should be < 1.0. Got factor={factor}.")
        return factor


class SessionCreate(BaseModel):
    """Start a session from ReduceLROnPlateau options, or resume one from a ``state_dict``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "schedule": {"type": "ReduceLROnPlateau", "patience": 2, "factor": 0.5},
                    "lr": 0.1,
                    "world_size": 4,
                    "reduce": "mean",
                },
                {
                    "early_stopping": {"semantics": "lightning", "patience": 3},
                    "world_size": 4,
                    "reduce": "mean",
                },
            ]
        },
    )

    schedule: ReduceLROnPlateau | None = Field(
        default=None,
        description="The options; give this or `state_dict` (or neither, with early stopping).",
    )
    early_stopping: EarlyStopping | None = Field(
        default=None,
        description=(
            "Also decide when to stop, on the same reduced metric (every answer's `stop`); "
            "alone, a session that only decides when to stop (the lr never changes)."
        ),
    )
    state_dict: PlateauStateDict | None = Field(
        default=None,
        description=(
            "Resume from PyTorch's `ReduceLROnPlateau.state_dict()`: the session continues "
            "with epoch `last_epoch`."
        ),
    )
    lr: LearningRates | None = Field(
        default=None,
        description=(
            "The optimizer's current lr, one per param group (default 0.001, or the state "
            "dict's `_last_lr` when resuming)."
        ),
    )
    world_size: WorldSize = 1
    reduce: Literal["mean", "min", "max"] = Field(
        default="mean", description="How the ranks' metrics of one epoch are combined."
    )
    ttl_seconds: TtlSeconds = 604800
    warmup_steps: Annotated[
        int,
        Field(
            ge=0,
            le=MAX_WARMUP_STEPS,
            description="Epochs of linear warmup before the plateau rule applies (0: none).",
        ),
        AN_INTEGER,
    ] = 0
    warmup_start_factor: Annotated[
        float,
        Field(gt=0.0, le=1.0, description="The warmup starts at this fraction of the lr."),
        A_NUMBER,
    ] = 0.1

    @model_validator(mode="after")
    def _one_source(self) -> SessionCreate:
        if self.schedule is not None and self.state_dict is not None:
            raise ValueError("give exactly one of `schedule` or `state_dict`")
        if self.schedule is None and self.state_dict is None and self.early_stopping is None:
            raise ValueError("give one of `schedule` or `state_dict`, or `early_stopping`")
        return self


class PlateauProgress(BaseModel):
    """The plateau rule's counters (``best`` may be ``"inf"``/``"-inf"``)."""

    best: NonFiniteFloat
    num_bad_epochs: int
    cooldown_counter: int
    last_epoch: int = Field(description="Plateau steps taken (PyTorch's `last_epoch`).")


class SessionCreated(BaseModel):
    """A new session. ``token`` is shown only here: send it as ``Authorization: Bearer``."""

    id: str
    token: str
    lr: list[float]
    epoch: int = Field(description="The next epoch to report.")
    state: PlateauProgress
    expires_at: float = Field(description="Unix time; refreshed by every write.")


class ReportRequest(BaseModel):
    """One rank's validation metric for one epoch."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"epoch": 0, "metric": 0.731, "rank": 0}]}
    )

    epoch: Count
    metric: NonFiniteFloat
    rank: Annotated[int, Field(ge=0, le=MAX_RANKS - 1), AN_INTEGER] = 0


class ReportResponse(BaseModel):
    """The epoch's decision (``decided``), or the current lr while ranks are missing."""

    epoch: int
    decided: bool
    lr: list[float] = Field(description="The lr of every param group to use now.")
    reduced: bool = Field(description="Whether this epoch cut the lr.")
    state: PlateauProgress
    waiting_for: list[int] = Field(description="Ranks that have not reported this epoch yet.")
    stop: bool = Field(
        default=False,
        description="Early stopping: stop training now (every rank gets the same answer).",
    )
    best_epoch: int | None = Field(
        default=None, description="Early stopping: the epoch of `best_metric`."
    )
    best_metric: NonFiniteFloat | None = Field(
        default=None, description="Early stopping: the rule's best metric so far."
    )


class SessionView(BaseModel):
    """A session's current state and configuration."""

    id: str
    lr: list[float]
    epoch: int = Field(description="The next epoch expected.")
    best: NonFiniteFloat
    num_bad_epochs: int
    cooldown_counter: int
    last_epoch: int
    pending_ranks: list[int] = Field(description="Ranks that reported the pending epoch.")
    world_size: int
    reduce: str
    warmup_steps: int
    warmup_start_factor: float
    in_warmup: bool
    schedule: dict[str, Any] | None = Field(
        description="The ReduceLROnPlateau options in force (null: early stopping only)."
    )
    early_stopping: dict[str, Any] | None = Field(
        default=None, description="The early-stopping options in force."
    )
    stopping: EarlyStoppingProgress | None = Field(
        default=None, description="Where the early-stopping rule stands."
    )
    ttl_seconds: int
    expires_at: float


class HistoryRow(BaseModel):
    """One decided epoch."""

    epoch: int
    metric: NonFiniteFloat = Field(description="The ranks' metrics combined with `reduce`.")
    metrics: list[NonFiniteFloat] = Field(description="Each rank's metric, by rank.")
    lr: list[float]
    reduced: bool
    warmup: bool
    stop: bool = Field(default=False, description="Early stopping said stop at this epoch.")


class HistoryPage(BaseModel):
    """Decided epochs in order; ``next_start`` continues the listing (null at the end)."""

    rows: list[HistoryRow]
    next_start: int | None
