"""Response bodies of the curve endpoints (documented; the service writes them with orjson)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ScheduleResponse(BaseModel):
    """The lr (and momentum) of every param group at each step of ``range(start, stop, stride)``."""

    start: int
    stop: int
    stride: int
    groups: int = Field(description="Number of param groups: rows of `lr` and `momentum`.")
    lr: list[list[float]] = Field(description="One row per param group, one value per step.")
    momentum: list[list[float]] | None = Field(
        description=(
            "Momentum (SGD `momentum`, Adam `betas[0]`) per group and step, for schedules "
            "that cycle it (CyclicLR, OneCycleLR with `cycle_momentum`); otherwise null."
        )
    )
    warnings: list[str] = Field(
        default_factory=list,
        description=(
            "Continuity warnings of compositions: a segment that does not start where the "
            "previous one ended (the curve is still computed); and a note when "
            "`start >= steps` leaves the range empty (`steps` is the stop, not a count)."
        ),
    )
