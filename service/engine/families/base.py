"""The node every family and composition is: an absolute schedule given by a closed form."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rules.errors import Loc
from service.engine.maps import Maps
from service.engine.nodes import Leaf
from service.engine.types import FloatArray, IntArray

Formula = Callable[[IntArray, FloatArray], FloatArray]
"""``f(k, base_lrs) -> values`` of shape ``(groups, len(k))``: a schedule's closed form."""
Values = tuple[FloatArray, FloatArray | None]
"""lr and momentum (or ``None``), each of shape ``(groups, n)``."""


class Absolute(Leaf):
    """A schedule whose lr at step ``k`` is a function of ``k`` and the base lrs alone.

    ``base_lrs`` are the optimizer's lrs (PyTorch's ``initial_lr``) per param group. Used on
    its own it is evaluated in closed form on the requested steps; inside PyTorch composites
    it sets the lr at every step, as ``LambdaLR`` does.
    """

    def values(self, k: IntArray) -> Values:
        """lr (and momentum) per group at steps ``k`` (shape ``(groups, len(k))``)."""
        raise NotImplementedError

    def get_lr(self, epochs: IntArray, initial: bool) -> Maps:
        lr, momentum = self.values(epochs)
        maps = Maps.absolute(np.array(lr, dtype=np.float64))
        if momentum is not None:
            maps = maps.with_momentum(np.array(momentum, dtype=np.float64))
        return maps

    def standalone(self, k: IntArray) -> Values | None:
        return self.values(k)


class Closed(Absolute):
    """An absolute schedule given by a :data:`Formula` (and optionally one for momentum)."""

    def __init__(self, loc: Loc, formula: Formula, momentum: Formula | None = None) -> None:
        super().__init__(loc)
        self.formula = formula
        self.momentum_formula = momentum
        self.sets_momentum = momentum is not None

    def values(self, k: IntArray) -> Values:
        lr = self.formula(k, self.base_lrs)
        if self.momentum_formula is None:
            return lr, None
        return lr, self.momentum_formula(k, self.base_lrs)


def per_group_rows(base_lrs: FloatArray, row: FloatArray) -> FloatArray:
    """``row`` (n,) multiplied by every group's base lr: ``(groups, n)``."""
    values: FloatArray = base_lrs[:, None] * row[None, :]
    return values


def same_for_groups(base_lrs: FloatArray, row: FloatArray) -> FloatArray:
    """``row`` (n,) as the value of every param group: ``(groups, n)``."""
    return np.broadcast_to(row[None, :], (base_lrs.shape[0], row.shape[0])).astype(np.float64)


def multiplier(factor: Callable[[IntArray], FloatArray]) -> Formula:
    """A formula ``base_lr * factor(k)`` (LambdaLR's multiplication, per group)."""
    return lambda k, base: per_group_rows(base, factor(k))


def absolute(value: Callable[[IntArray], FloatArray]) -> Formula:
    """A formula whose value is the lr of every group, whatever the optimizer's lr."""
    return lambda k, base: same_for_groups(base, value(k))
