"""Hugging Face transformers' schedules: multipliers of each group's lr; where HF reads
``optimizer.defaults["lr"]`` that is the first group's lr."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rules.errors import Loc, ScheduleError
from service.engine.factories.closed import register_closed
from service.engine.families import hf
from service.engine.families.base import Closed, multiplier, per_group_rows
from service.engine.nodes import Node
from service.engine.registry import register
from service.engine.types import FloatArray, IntArray

register_closed(
    {
        "hf.constant": hf.constant,
        "hf.constant_with_warmup": hf.constant_with_warmup,
        "hf.linear": hf.linear,
        "hf.cosine": hf.cosine,
        "hf.cosine_with_restarts": hf.cosine_with_restarts,
    },
    multiplier,
)


def _to_floor(cosine: Callable[..., hf.Factor]) -> Callable[..., Node]:
    """A factory of the cosine ``cosine`` down to ``min_lr`` (or ``min_lr_rate`` times the
    lr); its other fields are ``cosine``'s keyword arguments."""

    def factory(
        loc: Loc, groups: int, *, min_lr: float | None, min_lr_rate: float | None, **options: Any
    ) -> Node:
        def formula(k: IntArray, base: FloatArray) -> FloatArray:
            factor = cosine(min_lr_rate=_rate(min_lr, min_lr_rate, base, loc), **options)
            return per_group_rows(base, factor(k))

        return Closed(loc, formula)

    factory.__doc__ = f"HF's {cosine.__name__} down to a floor."
    return factory


register("hf.cosine_with_min_lr")(_to_floor(hf.cosine))
register("hf.cosine_warmup_with_min_lr")(_to_floor(hf.cosine_warmup_with_min_lr))


def _rate(min_lr: float | None, min_lr_rate: float | None, base: FloatArray, loc: Loc) -> float:
    """``min_lr_rate``, or ``min_lr / optimizer.defaults["lr"]`` (the first group's lr)."""
    if min_lr_rate is not None:
        return min_lr_rate
    assert min_lr is not None  # the schema requires one of the two
    if base[0] == 0:
        raise ScheduleError(
            "min_lr / optimizer lr: the lr is 0 (transformers raises ZeroDivisionError)",
            (*loc, "min_lr"),
        )
    return min_lr / float(base[0])


@register("hf.polynomial")
def polynomial(
    loc: Loc,
    groups: int,
    *,
    num_warmup_steps: int,
    num_training_steps: int,
    lr_end: float,
    power: float,
) -> Node:
    """Warmup, then a power decay from the first group's lr to ``lr_end``, which it must
    exceed."""

    def formula(k: IntArray, base: FloatArray) -> FloatArray:
        lr_init = float(base[0])
        if not lr_init > lr_end:
            raise ScheduleError(
                f"lr_end ({lr_end}) must be smaller than initial lr ({lr_init})",
                (*loc, "lr_end"),
            )
        factor = hf.polynomial(num_warmup_steps, num_training_steps, lr_end, power, lr_init, loc)
        return per_group_rows(base, factor(k))

    return Closed(loc, formula)


@register("hf.inverse_sqrt")
def inverse_sqrt(loc: Loc, groups: int, *, num_warmup_steps: int, timescale: int | None) -> Node:
    """``timescale`` defaults to ``num_warmup_steps or 10_000``, as in HF."""
    if timescale is None:
        timescale = num_warmup_steps or 10_000
    return Closed(loc, multiplier(hf.inverse_sqrt(num_warmup_steps, timescale)))


@register("hf.wsd")
def wsd(
    loc: Loc,
    groups: int,
    *,
    num_warmup_steps: int,
    num_stable_steps: int | None,
    num_decay_steps: int,
    num_training_steps: int | None,
    warmup_type: str,
    decay_type: str,
    min_lr_ratio: float,
    num_cycles: float,
) -> Node:
    """Warmup, stable, decay; stable steps inferred as ``T - W - D`` when not given."""
    if num_stable_steps is None:
        assert num_training_steps is not None  # the schema requires one of the two
        num_stable_steps = num_training_steps - num_warmup_steps - num_decay_steps
    factor = hf.wsd(
        num_warmup_steps,
        num_stable_steps,
        num_decay_steps,
        warmup_type,
        decay_type,
        min_lr_ratio,
        num_cycles,
    )
    return Closed(loc, multiplier(factor))
