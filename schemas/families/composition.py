"""Composition types: ``sequence``, ``warmup``, ``clamp`` and ``scale`` over any specs.

Nested specs may be any type (PyTorch schedulers, families, compositions). A nested schedule
is evaluated on its own *local* step (steps since it began) against an optimizer holding the
request's lrs; see :mod:`service.engine.families.composition`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from schemas.families.common import Real, Steps, config
from schemas.fields import PerGroup
from schemas.numbers import A_NUMBER
from service.limits import MAX_SEGMENTS

if TYPE_CHECKING:
    from schemas.schedules import ScheduleSpec

_DOCS = None


class Segment(BaseModel):
    """One segment of a `sequence`: a schedule and its length (steps, or a fraction of the
    sequence's `total_steps`); the last segment's length may be omitted (it runs on)."""

    model_config = config(
        {"schedule": {"type": "hf.constant"}, "steps": 100}, _DOCS, title="Segment"
    )
    schedule: ScheduleSpec
    steps: Steps | None = None
    fraction: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False), A_NUMBER] | None = None

    @model_validator(mode="after")
    def _one_length(self) -> Segment:
        if self.steps is not None and self.fraction is not None:
            raise ValueError("give `steps` or `fraction`, not both")
        return self


class SequenceSpec(BaseModel):
    """`sequence`: segments one after another, each on its local step `k - start`.

    Fractions are of `total_steps`, boundaries rounded to the nearest step (ties to even);
    past the last boundary the last segment runs on. A segment that does not start where the
    previous one would have been is reported in `warnings`.
    """

    model_config = config(
        {
            "type": "sequence",
            "total_steps": 1000,
            "segments": [
                {
                    "schedule": {"type": "LinearLR", "start_factor": 0.01, "total_iters": 100},
                    "fraction": 0.1,
                },
                {"schedule": {"type": "hf.constant"}, "fraction": 0.6},
                {"schedule": {"type": "CosineAnnealingLR", "T_max": 300}},
            ],
        },
        _DOCS,
        title="Sequence",
    )
    type: Literal["sequence"]
    segments: Annotated[list[Segment], Field(min_length=1, max_length=MAX_SEGMENTS)]
    total_steps: Steps | None = Field(
        default=None, description="The total that segment fractions refer to."
    )

    def child_specs(self) -> list[ScheduleSpec]:
        """The nested specs."""
        return [segment.schedule for segment in self.segments]


class WarmupSpec(BaseModel):
    """`warmup`: `steps` steps from a start (`start_value`, or `start_factor` times the
    schedule's first value; default factor 0) to the schedule's first value, shaped linear,
    cosine or exponential; then the schedule from its step 0."""

    model_config = config(
        {
            "type": "warmup",
            "steps": 100,
            "shape": "cosine",
            "start_factor": 0.01,
            "schedule": {"type": "CosineAnnealingLR", "T_max": 900},
        },
        _DOCS,
        title="Warmup",
    )
    type: Literal["warmup"]
    schedule: ScheduleSpec
    steps: Steps
    shape: Literal["linear", "cosine", "exponential"] = "linear"
    start_value: Real | None = None
    start_factor: Real | None = None

    @model_validator(mode="after")
    def _one_start(self) -> WarmupSpec:
        if self.start_value is not None and self.start_factor is not None:
            raise ValueError("give `start_value` or `start_factor`, not both")
        return self

    def child_specs(self) -> list[ScheduleSpec]:
        """The nested specs."""
        return [self.schedule]


class ClampSpec(BaseModel):
    """`clamp`: the schedule clipped to `[min, max]` (give at least one)."""

    model_config = config(
        {
            "type": "clamp",
            "min": 0.001,
            "schedule": {"type": "ExponentialLR", "gamma": 0.99},
        },
        _DOCS,
        title="Clamp",
    )
    type: Literal["clamp"]
    schedule: ScheduleSpec
    min: Real | None = None
    max: Real | None = None

    @model_validator(mode="after")
    def _a_bound(self) -> ClampSpec:
        if self.min is None and self.max is None:
            raise ValueError("give `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min={self.min} is above max={self.max}")
        return self

    def child_specs(self) -> list[ScheduleSpec]:
        """The nested specs."""
        return [self.schedule]


class ScaleSpec(BaseModel):
    """`scale`: the schedule times `factor` (one number, or one per param group) — e.g. per-group
    lrs from an optax or Keras schedule, whose value is the same for every group."""

    model_config = config(
        {
            "type": "scale",
            "factor": 0.5,
            "schedule": {
                "type": "keras.CosineDecay",
                "initial_learning_rate": 0.1,
                "decay_steps": 1000,
            },
        },
        _DOCS,
        title="Scale",
    )
    type: Literal["scale"]
    schedule: ScheduleSpec
    factor: PerGroup

    def child_specs(self) -> list[ScheduleSpec]:
        """The nested specs."""
        return [self.schedule]


COMPOSITION_MODELS = (SequenceSpec, WarmupSpec, ClampSpec, ScaleSpec)
