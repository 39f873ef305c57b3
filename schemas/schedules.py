"""The schedule spec: a discriminated union on ``type`` of every supported scheduler.

Composites (SequentialLR, ChainedScheduler) nest specs, so the union is recursive.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, Field

from schemas.fields import Number
from schemas.pytorch import (
    LEAF_MODELS,
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    CyclicLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiplicativeLR,
    MultiStepLR,
    OneCycleLR,
    PolynomialLR,
    StepLR,
    _config,
)
from service.engine import compose
from service.engine.errors import Loc, ScheduleError
from service.engine.nodes import Node

MAX_CHILDREN = 64
"""Most children one composite may hold."""
MAX_SCHEDULERS = 256
"""Most schedulers one spec may hold in all (bounds the cost of stepping composites)."""
MAX_DEPTH = 8
"""Deepest nesting of composites."""

_DOCS = "https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.{}.html"


class SequentialLR(BaseModel):
    """Run ``schedulers`` one after another, switching at each milestone."""

    model_config = _config(
        {
            "type": "SequentialLR",
            "schedulers": [
                {"type": "LinearLR", "start_factor": 0.01, "total_iters": 100},
                {"type": "CosineAnnealingLR", "T_max": 900},
            ],
            "milestones": [100],
        },
        _DOCS.format("SequentialLR"),
    )
    type: Literal["SequentialLR"]
    schedulers: Annotated[list[ScheduleSpec], Field(min_length=1, max_length=MAX_CHILDREN)]
    milestones: Annotated[list[Number], Field(max_length=MAX_CHILDREN)]

    def to_node(self, groups: int, loc: Loc) -> Node:
        """The engine scheduler for ``groups`` param groups."""
        if len(self.milestones) != len(self.schedulers) - 1:
            raise ScheduleError(
                "Sequential Schedulers expects number of schedulers provided to be one more than "
                "the number of milestone points, but got number of schedulers "
                f"{len(self.schedulers)} "
                f"and the number of milestones to be equal to {len(self.milestones)}",
                (*loc, "milestones"),
            )
        children = [
            child.to_node(groups, (*loc, "schedulers", index))
            for index, child in enumerate(self.schedulers)
        ]
        return compose.SequentialLR(loc, children, [float(m) for m in self.milestones])


class ChainedScheduler(BaseModel):
    """Step every one of ``schedulers`` at every step, in order."""

    model_config = _config(
        {
            "type": "ChainedScheduler",
            "schedulers": [
                {"type": "ConstantLR", "factor": 0.1, "total_iters": 2},
                {"type": "ExponentialLR", "gamma": 0.9},
            ],
        },
        _DOCS.format("ChainedScheduler"),
    )
    type: Literal["ChainedScheduler"]
    schedulers: Annotated[list[ScheduleSpec], Field(min_length=1, max_length=MAX_CHILDREN)]

    def to_node(self, groups: int, loc: Loc) -> Node:
        """The engine scheduler for ``groups`` param groups."""
        children = [
            child.to_node(groups, (*loc, "schedulers", index))
            for index, child in enumerate(self.schedulers)
        ]
        return compose.ChainedScheduler(loc, children)


ScheduleSpec: TypeAlias = Annotated[
    LambdaLR
    | MultiplicativeLR
    | StepLR
    | MultiStepLR
    | ConstantLR
    | LinearLR
    | ExponentialLR
    | SequentialLR
    | PolynomialLR
    | CosineAnnealingLR
    | ChainedScheduler
    | CyclicLR
    | OneCycleLR
    | CosineAnnealingWarmRestarts,
    Field(discriminator="type"),
]
"""Any supported scheduler, selected by its ``type``."""

SequentialLR.model_rebuild()
ChainedScheduler.model_rebuild()

SCHEDULE_MODELS: tuple[type[BaseModel], ...] = (*LEAF_MODELS, SequentialLR, ChainedScheduler)


def build(spec: ScheduleSpec, groups: int) -> Node:
    """The engine scheduler tree for ``spec``; checks the size and depth of the tree."""
    count, depth = _measure(spec)
    if count > MAX_SCHEDULERS:
        raise ScheduleError(f"the spec holds {count} schedulers; at most {MAX_SCHEDULERS}", ())
    if depth > MAX_DEPTH:
        raise ScheduleError(f"the spec nests composites {depth} deep; at most {MAX_DEPTH}", ())
    return spec.to_node(groups, ())


def _measure(spec: ScheduleSpec) -> tuple[int, int]:
    if isinstance(spec, SequentialLR | ChainedScheduler):
        measured = [_measure(child) for child in spec.schedulers]
        return 1 + sum(c for c, _ in measured), 1 + max(d for _, d in measured)
    return 1, 0
