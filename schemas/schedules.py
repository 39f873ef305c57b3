"""The schedule spec: a discriminated union on ``type`` of every supported scheduler.

Composites (SequentialLR, ChainedScheduler) nest specs, so the union is recursive.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, Field

from rules.errors import ScheduleError
from schemas.families.composition import (
    COMPOSITION_MODELS,
    ClampSpec,
    ScaleSpec,
    Segment,
    SequenceSpec,
    WarmupSpec,
)
from schemas.families.fastai import FASTAI_MODELS, FastaiFlatCos, FastaiOneCycle
from schemas.families.hf import (
    HF_MODELS,
    HfConstant,
    HfConstantWithWarmup,
    HfCosine,
    HfCosineWarmupWithMinLr,
    HfCosineWithMinLr,
    HfCosineWithRestarts,
    HfInverseSqrt,
    HfLinear,
    HfPolynomial,
    HfWsd,
)
from schemas.families.keras import (
    KERAS_MODELS,
    KerasCosineDecay,
    KerasCosineDecayRestarts,
    KerasExponentialDecay,
    KerasInverseTimeDecay,
    KerasPiecewiseConstantDecay,
    KerasPolynomialDecay,
)
from schemas.families.optax import (
    OPTAX_MODELS,
    OptaxConstant,
    OptaxCosineDecay,
    OptaxCosineOnecycle,
    OptaxExponentialDecay,
    OptaxJoinSchedules,
    OptaxLinear,
    OptaxLinearOnecycle,
    OptaxPiecewiseConstant,
    OptaxPiecewiseInterpolate,
    OptaxPolynomial,
    OptaxSgdr,
    OptaxWarmupCosineDecay,
)
from schemas.families.timm import (
    TIMM_MODELS,
    TimmCosine,
    TimmMultiStep,
    TimmPoly,
    TimmStep,
    TimmTanh,
)
from schemas.fields import Number
from schemas.pytorch import (
    LEAF_MODELS,
    SWALR,
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
from service.engine import registry
from service.engine.registry import Node
from service.limits import MAX_CHILDREN, MAX_SCHEDULE_DEPTH, MAX_SCHEDULERS

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
    | CosineAnnealingWarmRestarts
    | SWALR
    | HfConstant
    | HfConstantWithWarmup
    | HfLinear
    | HfCosine
    | HfCosineWithRestarts
    | HfCosineWithMinLr
    | HfCosineWarmupWithMinLr
    | HfPolynomial
    | HfInverseSqrt
    | HfWsd
    | OptaxConstant
    | OptaxLinear
    | OptaxPolynomial
    | OptaxCosineDecay
    | OptaxWarmupCosineDecay
    | OptaxExponentialDecay
    | OptaxPiecewiseConstant
    | OptaxPiecewiseInterpolate
    | OptaxLinearOnecycle
    | OptaxCosineOnecycle
    | OptaxSgdr
    | OptaxJoinSchedules
    | TimmCosine
    | TimmTanh
    | TimmPoly
    | TimmStep
    | TimmMultiStep
    | KerasExponentialDecay
    | KerasPiecewiseConstantDecay
    | KerasPolynomialDecay
    | KerasInverseTimeDecay
    | KerasCosineDecay
    | KerasCosineDecayRestarts
    | FastaiOneCycle
    | FastaiFlatCos
    | SequenceSpec
    | WarmupSpec
    | ClampSpec
    | ScaleSpec,
    Field(discriminator="type"),
]
"""Any supported scheduler, selected by its ``type``."""

SequentialLR.model_rebuild()
ChainedScheduler.model_rebuild()
for _nesting in (Segment, SequenceSpec, WarmupSpec, ClampSpec, ScaleSpec, OptaxJoinSchedules):
    _nesting.model_rebuild(_types_namespace={"ScheduleSpec": ScheduleSpec})

PYTORCH_MODELS: tuple[type[BaseModel], ...] = (*LEAF_MODELS, SequentialLR, ChainedScheduler)
"""The PyTorch schedulers (``torch.optim.lr_scheduler``)."""
FAMILY_MODELS: tuple[type[BaseModel], ...] = (
    *HF_MODELS,
    *OPTAX_MODELS,
    *TIMM_MODELS,
    *KERAS_MODELS,
    *FASTAI_MODELS,
    *COMPOSITION_MODELS,
)
"""The other libraries' schedules and the composition types."""
SCHEDULE_MODELS: tuple[type[BaseModel], ...] = (*PYTORCH_MODELS, *FAMILY_MODELS)


def build(spec: ScheduleSpec, groups: int) -> Node:
    """The engine scheduler tree for ``spec``; checks the size and depth of the tree."""
    count, depth = _measure(spec)
    if count > MAX_SCHEDULERS:
        raise ScheduleError(f"the spec holds {count} schedulers; at most {MAX_SCHEDULERS}", ())
    if depth > MAX_SCHEDULE_DEPTH:
        raise ScheduleError(
            f"the spec nests composites {depth} deep; at most {MAX_SCHEDULE_DEPTH}", ()
        )
    try:
        return registry.build(spec, groups)
    except ScheduleError:
        raise
    except (ArithmeticError, ValueError) as error:
        # A safety net: options no check above anticipated must not become a 500.
        raise ScheduleError(f"the schedule cannot be built: {error}", ()) from None


def _measure(spec: ScheduleSpec) -> tuple[int, int]:
    if isinstance(spec, SequentialLR | ChainedScheduler):
        children: list[ScheduleSpec] = list(spec.schedulers)
    elif isinstance(spec, SequenceSpec | WarmupSpec | ClampSpec | ScaleSpec | OptaxJoinSchedules):
        children = spec.child_specs()
    else:
        return 1, 0
    measured = [_measure(child) for child in children]
    return 1 + sum(c for c, _ in measured), 1 + max(d for _, d in measured)
