"""optax's schedules (``optax.schedules``): the value is the lr of every group. Each factory
makes the checks optax makes when the schedule function is called (or that would fail in it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.errors import Loc, ScheduleError
from service.engine.factories.closed import register_closed
from service.engine.families import optax
from service.engine.families.base import Closed, absolute
from service.engine.nodes import Node
from service.engine.registry import fields, register

register_closed(
    {
        "optax.constant": optax.constant,
        "optax.polynomial": optax.polynomial,
        "optax.cosine_decay": optax.cosine_decay,
        "optax.exponential_decay": optax.exponential_decay,
    },
    absolute,
)


def _decay_after_warmup(loc: Loc, options: Mapping[str, Any]) -> None:
    """optax's ``cosine_decay_schedule`` needs ``decay_steps - warmup_steps > 0``."""
    decay_steps, warmup_steps = options["decay_steps"], options["warmup_steps"]
    if not decay_steps - warmup_steps > 0:
        raise ScheduleError(
            "The cosine_decay_schedule requires positive decay_steps, got "
            f"decay_steps={decay_steps - warmup_steps} "
            f"(decay_steps - warmup_steps = {decay_steps} - {warmup_steps})",
            (*loc, "decay_steps"),
        )


def _divisors(loc: Loc, options: Mapping[str, Any]) -> None:
    """optax divides the peak by both factors: 0 is a division by zero (no schedule)."""
    for name in ("div_factor", "final_div_factor"):
        if options[name] == 0:
            raise ScheduleError(f"{name}=0: optax divides peak_value by it", (*loc, name))


register_closed(
    {"optax.warmup_cosine_decay": optax.warmup_cosine_decay}, absolute, check=_decay_after_warmup
)
register_closed(
    {
        "optax.linear_onecycle": optax.linear_onecycle,
        "optax.cosine_onecycle": optax.cosine_onecycle,
    },
    absolute,
    check=_divisors,
)


@register("optax.linear")
def linear(
    loc: Loc,
    groups: int,
    *,
    init_value: float,
    end_value: float,
    transition_steps: int,
    transition_begin: int,
) -> Node:
    """``linear_schedule``: the polynomial schedule of power 1."""
    value = optax.polynomial(init_value, end_value, 1, transition_steps, transition_begin)
    return Closed(loc, absolute(value))


@register("optax.piecewise_constant")
def piecewise_constant(
    loc: Loc, groups: int, *, init_value: float, boundaries_and_scales: dict[int, float] | None
) -> Node:
    """``init_value`` times every scale whose boundary the step has passed."""
    value = optax.piecewise_constant(init_value, boundaries_and_scales or {})
    return Closed(loc, absolute(value))


@register("optax.piecewise_interpolate")
def piecewise_interpolate(
    loc: Loc,
    groups: int,
    *,
    interpolate_type: str,
    init_value: float,
    boundaries_and_scales: dict[int, float] | None,
) -> Node:
    """Linear or cosine interpolation between the cumulative scales at the boundaries."""
    value = optax.piecewise_interpolate(interpolate_type, init_value, boundaries_and_scales or {})
    return Closed(loc, absolute(value))


@register("optax.sgdr")
def sgdr(loc: Loc, groups: int, *, cosine_kwargs: list[object]) -> Node:
    """``warmup_cosine_decay`` cycles joined at their ``decay_steps``; each cycle's fields
    are that schedule's keyword arguments."""
    cycles: list[Mapping[str, float]] = [fields(cycle) for cycle in cosine_kwargs]
    for index, cycle in enumerate(cycles):
        if not cycle["decay_steps"] - cycle["warmup_steps"] > 0:
            raise ScheduleError(
                "The cosine_decay_schedule requires positive decay_steps, got "
                f"decay_steps={cycle['decay_steps'] - cycle['warmup_steps']}",
                (*loc, "cosine_kwargs", index, "decay_steps"),
            )
    return Closed(loc, absolute(optax.sgdr([dict(cycle) for cycle in cycles])))
