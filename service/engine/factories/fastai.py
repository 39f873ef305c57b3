"""fastai's ``fit_one_cycle`` and ``fit_flat_cos`` (the lr, per group; one cycle also sets
the momentum)."""

from __future__ import annotations

from rules.errors import Loc
from service.engine.factories.params import per_group
from service.engine.families import fastai
from service.engine.families.base import Closed
from service.engine.nodes import Node
from service.engine.registry import register
from service.engine.types import FloatArray


@register("fastai.one_cycle")
def one_cycle(
    loc: Loc,
    groups: int,
    *,
    n_epoch: int,
    n_iter: int,
    lr_max: float | list[float] | None,
    div: float,
    div_final: float,
    pct_start: float,
    moms: tuple[float, float, float],
) -> Node:
    """``fit_one_cycle`` over ``n_epoch * n_iter`` steps; the lr peaks at ``lr_max`` (the
    optimizer's lrs when omitted)."""
    total = n_epoch * n_iter
    peaks = _peaks(lr_max, groups, (*loc, "lr_max"))
    lr = fastai.one_cycle_lr(total, peaks, div, div_final, pct_start)
    return Closed(loc, lr, fastai.one_cycle_momentum(total, moms, pct_start))


@register("fastai.flat_cos")
def flat_cos(
    loc: Loc,
    groups: int,
    *,
    n_epoch: int,
    n_iter: int,
    lr: float | list[float] | None,
    div_final: float,
    pct_start: float,
) -> Node:
    """``fit_flat_cos`` over ``n_epoch * n_iter`` steps, flat at ``lr`` (or the optimizer's)."""
    peaks = _peaks(lr, groups, (*loc, "lr"))
    return Closed(loc, fastai.flat_cos(n_epoch * n_iter, peaks, div_final, pct_start))


def _peaks(value: float | list[float] | None, groups: int, loc: Loc) -> FloatArray | None:
    return None if value is None else per_group(value, groups, loc)
