"""timm's schedulers (``timm.scheduler``): cosine, tanh and poly cycles, step and multistep,
each with a warmup and noise. The options shared by several types (noise, warmup, cycles)
are read by one helper each; ``t_in_epochs``, ``initialize`` and ``noise_type`` (always
refused by the schema) do not change the curve."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rules.errors import Loc
from service.engine.families import timm
from service.engine.families.base import Closed, Formula
from service.engine.nodes import Node
from service.engine.registry import register

Family = Callable[[timm.Shape, timm.Cycles, timm.Warmup, float, timm.Noise, Loc], Formula]
"""A cycling scheduler's formula maker: :func:`timm.cyclic` or :func:`timm.tanh`."""


@register("timm.cosine")
def cosine(loc: Loc, groups: int, *, k_decay: float, **options: Any) -> Node:
    """``CosineLRScheduler``."""
    return _cyclic(loc, timm.cyclic, timm.cosine_shape(k_decay), options)


@register("timm.tanh")
def tanh(loc: Loc, groups: int, *, lb: float, ub: float, **options: Any) -> Node:
    """``TanhLRScheduler``."""
    return _cyclic(loc, timm.tanh, timm.tanh_shape(lb, ub), options)


@register("timm.poly")
def poly(loc: Loc, groups: int, *, power: float, k_decay: float, **options: Any) -> Node:
    """``PolyLRScheduler``."""
    return _cyclic(loc, timm.cyclic, timm.poly_shape(power, k_decay), options)


@register("timm.step")
def step(loc: Loc, groups: int, *, decay_t: float, decay_rate: float, **options: Any) -> Node:
    """``StepLRScheduler``."""
    formula = timm.step(decay_t, decay_rate, _warmup(options), _noise(options), loc)
    return Closed(loc, formula)


@register("timm.multistep")
def multistep(
    loc: Loc, groups: int, *, decay_t: list[int], decay_rate: float, **options: Any
) -> Node:
    """``MultiStepLRScheduler``."""
    milestones = [float(t) for t in decay_t]
    formula = timm.multistep(milestones, decay_rate, _warmup(options), _noise(options), loc)
    return Closed(loc, formula)


def _cyclic(loc: Loc, family: Family, shape: timm.Shape, options: dict[str, Any]) -> Node:
    """A cycling scheduler (``family`` is :func:`timm.cyclic` or :func:`timm.tanh`)."""
    cycles = timm.Cycles(
        float(options["t_initial"]),
        options["cycle_mul"],
        options["cycle_decay"],
        options["cycle_limit"],
    )
    formula = family(shape, cycles, _warmup(options), options["lr_min"], _noise(options), loc)
    return Closed(loc, formula)


def _warmup(options: dict[str, Any]) -> timm.Warmup:
    return timm.Warmup(options["warmup_t"], options["warmup_lr_init"], options["warmup_prefix"])


def _noise(options: dict[str, Any]) -> timm.Noise:
    range_t = options["noise_range_t"]
    return timm.Noise(
        tuple(range_t) if isinstance(range_t, list) else range_t,
        options["noise_pct"],
        options["noise_std"],
        options["noise_seed"],
    )
