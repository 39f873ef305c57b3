"""Evaluating a nested schedule (any node: a family, a composition, a PyTorch tree) on steps.

A child is evaluated on its own *local* steps against a fresh optimizer holding the parent's
base lrs: our closed forms directly, PyTorch schedulers with :func:`service.engine.compute`
(closed form when it has one, else stepped from its step 0, bounded by
:data:`~service.limits.NESTED_STEP_LIMIT`).
"""

from __future__ import annotations

import numpy as np

from rules.errors import Loc, ScheduleError
from service.engine import StepRange, compute
from service.engine.families.base import Absolute, Values
from service.engine.nodes import Leaf, Node
from service.engine.optimizer import Optimizer
from service.engine.types import FloatArray, IntArray
from service.limits import NESTED_STEP_LIMIT


def needs_stepping(node: Node) -> bool:
    """Whether ``node`` is a PyTorch tree that is computed step by step."""
    if isinstance(node, Absolute):
        return False
    return not (isinstance(node, Leaf) and not node.history_dependent)


def evaluate(node: Node, base_lrs: FloatArray, k: IntArray, loc: Loc) -> Values:
    """lr and momentum of ``node`` at its local steps ``k`` (sorted, >= 0)."""
    groups = base_lrs.shape[0]
    if k.shape[0] == 0:
        return np.empty((groups, 0)), (np.empty((groups, 0)) if node.cycles_momentum else None)
    if isinstance(node, Absolute):
        node.construct(Optimizer(base_lrs.copy()))
        return node.values(k)
    last = int(k[-1])
    if needs_stepping(node) and node.leaf_count * last > NESTED_STEP_LIMIT:
        raise ScheduleError(
            f"a nested PyTorch scheduler would be stepped {node.leaf_count * last} times "
            f"(to its step {last}); at most {NESTED_STEP_LIMIT} inside a composition",
            loc,
        )
    diffs = np.diff(k)
    if k.shape[0] == 1 or (diffs[0] > 0 and (diffs == diffs[0]).all()):
        stride = int(diffs[0]) if k.shape[0] > 1 else 1
        curve = compute(node, base_lrs, StepRange(int(k[0]), last + 1, stride))
        return curve.lr, curve.momentum
    first = int(k[0])
    curve = compute(node, base_lrs, StepRange(first, last + 1, 1))
    positions = k - first
    momentum = None if curve.momentum is None else curve.momentum[:, positions]
    return curve.lr[:, positions], momentum


def value_at(node: Node, base_lrs: FloatArray, step: int, loc: Loc) -> Values:
    """lr and momentum of ``node`` at one local step (columns of width 1)."""
    return evaluate(node, base_lrs, np.array([step], dtype=np.int64), loc)
