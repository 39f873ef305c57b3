"""Composition types (``sequence``, ``warmup``, ``clamp``, ``scale``) and optax's
``join_schedules``: nested specs, each built at its own field path and evaluated on its own
local step (see :mod:`service.engine.families.composition`)."""

from __future__ import annotations

from typing import Protocol

from rules.errors import Loc, ScheduleError
from service.engine.factories.params import per_group
from service.engine.families import composition
from service.engine.nodes import Node
from service.engine.registry import Spec, build, register


class Segment(Protocol):
    """One segment of a ``sequence``: its schedule and its length (or none, for the last)."""

    @property
    def schedule(self) -> Spec: ...
    @property
    def steps(self) -> int | None: ...
    @property
    def fraction(self) -> float | None: ...


@register("sequence")
def sequence(loc: Loc, groups: int, *, segments: list[Segment], total_steps: int | None) -> Node:
    """Segments one after another, each on its local step ``k - start``."""
    child_locs: list[Loc] = [
        (*loc, "segments", index, "schedule") for index in range(len(segments))
    ]
    children = [
        build(segment.schedule, groups, child_loc)
        for segment, child_loc in zip(segments, child_locs, strict=True)
    ]
    starts = _starts(segments, total_steps, loc)
    return composition.Sequence(loc, children, starts, "sequence", child_locs)


def _starts(segments: list[Segment], total_steps: int | None, loc: Loc) -> list[int]:
    """The first step of every segment; fractions of ``total_steps`` rounded half to even."""
    starts = [0]
    cumulative_steps = 0
    cumulative_fraction = 0.0
    for index, segment in enumerate(segments[:-1]):
        if segment.steps is not None:
            cumulative_steps += segment.steps
        elif segment.fraction is not None:
            if total_steps is None:
                raise ScheduleError(
                    "segment lengths given as fractions need `total_steps`",
                    (*loc, "total_steps"),
                )
            cumulative_fraction += segment.fraction
        else:
            raise ScheduleError(
                "every segment but the last needs `steps` or `fraction`",
                (*loc, "segments", index, "steps"),
            )
        starts.append(cumulative_steps + round(cumulative_fraction * (total_steps or 0)))
    return starts


@register("warmup")
def warmup(
    loc: Loc,
    groups: int,
    *,
    schedule: Spec,
    steps: int,
    shape: str,
    start_value: float | None,
    start_factor: float | None,
) -> Node:
    """``steps`` steps from the start to the schedule's first value (default factor 0)."""
    child = build(schedule, groups, (*loc, "schedule"))
    if start_value is None and start_factor is None:
        start_factor = 0.0
    return composition.Warmup(loc, child, steps, shape, start_value, start_factor)


@register("clamp")
def clamp(loc: Loc, groups: int, *, schedule: Spec, min: float | None, max: float | None) -> Node:
    """The schedule clipped to ``[min, max]``."""
    return composition.Clamp(loc, build(schedule, groups, (*loc, "schedule")), min, max)


@register("scale")
def scale(loc: Loc, groups: int, *, schedule: Spec, factor: float | list[float]) -> Node:
    """The schedule times ``factor`` (one number, or one per param group)."""
    child = build(schedule, groups, (*loc, "schedule"))
    return composition.Scale(loc, child, per_group(factor, groups, (*loc, "factor")))


@register("optax.join_schedules")
def join_schedules(loc: Loc, groups: int, *, schedules: list[Spec], boundaries: list[int]) -> Node:
    """optax's ``join_schedules``: each schedule from its boundary on, on its local step."""
    if len(boundaries) != len(schedules) - 1:
        raise ScheduleError(
            f"expected {len(schedules) - 1} boundaries (one fewer than schedules), "
            f"got {len(boundaries)}",
            (*loc, "boundaries"),
        )
    child_locs: list[Loc] = [(*loc, "schedules", index) for index in range(len(schedules))]
    children = [
        build(spec, groups, child_loc)
        for spec, child_loc in zip(schedules, child_locs, strict=True)
    ]
    return composition.Sequence(loc, children, [0, *boundaries], "join_schedules", child_locs)
