"""Request bodies of the curve endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from schemas.fields import LearningRates
from schemas.numbers import AN_INTEGER
from schemas.schedules import ScheduleSpec
from service.limits import MAX_INT


class ScheduleRequest(BaseModel):
    """Compute the curve of ``schedule`` for steps ``range(start, steps, stride)``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "schedule": {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 1000},
                    "lr": 0.001,
                    "steps": 1000,
                }
            ]
        },
    )

    schedule: ScheduleSpec
    lr: LearningRates = Field(
        default=0.001,
        description="The optimizer's learning rate: one number, or one per param group.",
    )
    steps: Annotated[
        int,
        Field(ge=0, le=MAX_INT, description="Length of the schedule (exclusive end)."),
        AN_INTEGER,
    ]
    start: Annotated[
        int, Field(ge=0, le=MAX_INT, description="First step returned."), AN_INTEGER
    ] = 0
    stride: Annotated[
        int, Field(ge=1, le=MAX_INT, description="Distance between steps."), AN_INTEGER
    ] = 1

    @property
    def lrs(self) -> list[float]:
        """The learning rate of every param group."""
        return list(self.lr) if isinstance(self.lr, list) else [self.lr]
