"""The cost model of :mod:`service.engine.evaluation`: what a schedule tree will cost to
evaluate on a step range, priced before any of it runs, and refused (a 422 naming
``steps``) past the budgets of :mod:`service.limits`.

Beside what it prices: a change to how a tree is evaluated changes its price here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rules.errors import ScheduleError
from service.engine import compose
from service.engine.curves import StepRange
from service.engine.cyclic import CyclicLR
from service.engine.evaluation import BLOCK
from service.engine.expressions import Expression
from service.engine.families.base import Absolute
from service.engine.lambdas import LambdaLR, MultiplicativeLR
from service.engine.nodes import Leaf, Node
from service.limits import (
    EXPRESSION_BUDGET,
    NESTED_STEP_LIMIT,
    PREFIX_CHECK_LIMIT,
    STEPPING_BUDGET,
)

if TYPE_CHECKING:
    from service.engine.families.composition import Sequence


def stepping_cost(root: Node, steps: StepRange) -> int:
    """Map evaluations ``compute`` needs: 0 for a closed form, else leaves x last step."""
    if isinstance(root, Leaf) and not root.history_dependent:
        return 0
    return root.leaf_count * max(steps.final, 0)


def expression_cost(root: Node, steps: StepRange) -> int:
    """The work of evaluating user expressions (``lr_lambda``, ``scale_fn``) that
    :func:`compute` does for ``steps``, estimated before anything is computed in the units of
    :meth:`Expression.cost`; 0 for schedules without expressions.

    It follows how the engine evaluates: a closed form on its own evaluates its expressions
    once when constructed, on the requested steps, and on the prefix of steps PyTorch would call
    them on (up to :data:`PREFIX_CHECK_LIMIT`; once more for a final step past the last one
    requested); a stepped tree evaluates every leaf at every step up to the final one, block by
    block; a composition of other libraries' schedules evaluates each child on the requested
    steps (charged as if each were evaluated on all of them), a closed-form child checking its
    own prefix every time, and probes its children at their boundaries.
    """
    return _computed_work(root, steps)


def _computed_work(node: Node, steps: StepRange) -> int:
    """What ``compute(node, ..., steps)`` evaluates."""
    if isinstance(node, Leaf) and not node.history_dependent:
        return _alone_work(node, steps)
    return _stepped_work(node, steps.final)


def _alone_work(leaf: Leaf, steps: StepRange) -> int:
    """A closed form on its own: constructed, evaluated on ``steps`` (and on the final step
    with the prefix before it, see :func:`_probe_final`)."""
    from service.engine.families import composition

    if not _expressions(leaf) and not isinstance(leaf, composition.Composite):
        return 0  # nothing but closed-form arithmetic: priced by the values alone
    n, last, final = len(steps), steps.last, steps.final
    probed = final >= 1 and (n == 0 or final > last)
    if isinstance(leaf, MultiplicativeLR):  # constant factors: b * c**k, one evaluation
        return _values_work(leaf, 1, 0) * (1 + probed)
    cost = _values_work(leaf, 1, 0) + _values_work(leaf, n, last) + _boundaries_work(leaf)
    whole_prefix = steps.start == 0 and (n == 1 or steps.stride == 1)
    if n and (isinstance(leaf, CyclicLR) or not whole_prefix):
        cost += _prefix_work(leaf, last)
    if probed:
        cost += _values_work(leaf, 1, final) + _prefix_work(leaf, final)
    return cost


def _prefix_work(leaf: Leaf, last: int) -> int:
    """Checking the arguments PyTorch would pass on the way to step ``last``
    (:func:`service.engine.lambdas.check_prefix`): each distinct expression once."""
    top = last
    if isinstance(leaf, CyclicLR) and leaf.scale_mode == "cycle":
        cycles = 1 + last / leaf.total_size
        top = int(cycles) if math.isfinite(cycles) else PREFIX_CHECK_LIMIT
    arguments = min(top, PREFIX_CHECK_LIMIT) + 1
    if arguments <= 0:
        return 0
    return sum(expression.cost(arguments) for expression in dict.fromkeys(_expressions(leaf)))


def _stepped_work(root: Node, final: int) -> int:
    """Stepping the tree through steps 1 to ``final`` (:func:`_stepped`): every leaf is
    constructed (twice in a SequentialLR), then evaluated on each block of steps (and on the
    restarts of a SequentialLR within it)."""
    blocks, rest = divmod(max(final, 0), BLOCK)
    total = 0
    for leaf in _stepped_leaves(root):
        once = _values_work(leaf, 1, 0)
        total += 2 * once + blocks * (_values_work(leaf, BLOCK, final) + once)
        if rest:
            total += _values_work(leaf, rest, final) + once
    return total


def _stepped_leaves(node: Node) -> Iterator[Node]:
    """The schedulers a stepped tree steps: below its PyTorch composites, in order."""
    if isinstance(node, compose.Composite):
        for child in node.children:
            yield from _stepped_leaves(child)
    else:
        yield node


def _expressions(node: Node) -> list[Expression]:
    """The expressions a scheduler evaluates at each call: one per group, or its scale_fn."""
    if isinstance(node, LambdaLR | MultiplicativeLR):
        return node.lr_lambdas
    if isinstance(node, CyclicLR) and node.scale_fn is not None:
        return [node.scale_fn]
    return []


def _values_work(node: Node, n: int, last: int) -> int:
    """One call of the scheduler's ``get_lr`` (a composition's ``values``) on ``n`` steps, the
    largest ``last``."""
    # The compositions import this package: they are imported once it is.
    from service.engine.families import composition

    if not isinstance(node, composition.Composite):
        return sum(expression.cost(n) for expression in _expressions(node))
    cost = sum(_nested_work(child, n, last) for child in node.children)
    if isinstance(node, composition.Warmup):  # the target: the schedule's value at step 0
        cost += _nested_work(node.children[0], 1, 0)
    if isinstance(node, composition.Sequence) and node.sets_momentum:
        # Segments that do not set the momentum hold an earlier segment's last one.
        ends = _segment_lengths(node)
        held = max(
            _nested_work(child, 1, max(end - 1, 0))
            for child, end in zip(node.children, ends, strict=True)
            if child.cycles_momentum
        )
        cost += len(node.children) * held
    return cost


def _nested_work(child: Node, n: int, last: int) -> int:
    """A composition's child evaluated on ``n`` of its local steps up to ``last``
    (:func:`service.engine.families.children.evaluate`)."""
    from service.engine.families import children

    if n <= 0 or last < 0:
        return 0
    if isinstance(child, Absolute):
        return _values_work(child, 1, 0) + _values_work(child, n, last)
    if children.needs_stepping(child) and child.leaf_count * last > NESTED_STEP_LIMIT:
        return 0  # refused before anything is evaluated
    return _computed_work(child, StepRange(max(last - n + 1, 0), last + 1, 1))


def _boundaries_work(node: Node) -> int:
    """The continuity warnings of a composition computed on its own: each sequence probes
    every segment where it ends and the next where it starts."""
    from service.engine.families import children, composition

    if not isinstance(node, composition.Composite):
        return 0
    cost = sum(_boundaries_work(child) for child in node.children)
    if isinstance(node, composition.Sequence):
        segments = list(zip(node.children, _segment_lengths(node), strict=True))
        for (previous, length), (current, _) in itertools.pairwise(segments):
            stepping = children.needs_stepping(previous)
            if length < 0 or (stepping and previous.leaf_count * length > 1_000_000):
                continue  # not probed
            cost += _nested_work(previous, 1, length) + _nested_work(current, 1, 0)
    return cost


def _segment_lengths(node: Sequence) -> list[int]:
    """How long each segment of a sequence lasts (the last one: 1, for its probes)."""
    return [later - start for start, later in itertools.pairwise(node.starts)] + [1]


def check_costs(roots: list[Node], steps: StepRange, groups: int, max_values: int) -> int:
    """Refuse up front (a 422 naming ``steps``) what would take too long to compute; the
    stepped evaluations the roots need (for the caller's choice of thread or event loop)."""
    stepped = sum(stepping_cost(root, steps) for root in roots) * groups
    budget = STEPPING_BUDGET * max_values
    if stepped > budget:
        raise ScheduleError(
            f"this schedule is computed step by step (it composes schedulers or depends on "
            f"its history), which would take {stepped} evaluations up to step {steps.last}; "
            f"at most {budget}: ask for fewer steps",
            ("steps",),
        )
    work = sum(expression_cost(root, steps) for root in roots)
    if work > EXPRESSION_BUDGET:
        raise ScheduleError(
            f"evaluating this schedule's expressions would cost about {work} units (each "
            f"expression's operations, weighted by their cost, times the steps it is evaluated "
            f"at, with a floor per evaluation for numpy's per-call overhead); at most "
            f"{EXPRESSION_BUDGET}: ask for fewer steps, or use fewer or simpler expressions",
            ("steps",),
        )
    return stepped
