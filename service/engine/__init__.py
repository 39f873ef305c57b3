"""The schedule engine: pure numpy, no I/O. ``compute(scheduler, lrs, steps)`` -> :class:`Curve`.

A scheduler tree (see :mod:`service.engine.nodes`) is constructed against a simulated
optimizer exactly as PyTorch would construct it, then evaluated on the requested steps:
in closed form, O(number of requested steps), for a scheduler used on its own; by a
vectorized scan of per-step affine maps, in blocks, for compositions and history-dependent
schedulers (O(last requested step)).

The cosine schedulers used on their own (CosineAnnealingLR, CosineAnnealingWarmRestarts,
OneCycleLR) have a faster closed form still, ``standalone_steps`` (see
:mod:`service.engine.fastmath`), that writes a whole step range at memory speed, in float64
or directly in float32 (:func:`compute_float32`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from rules.errors import ScheduleError
from service.engine import compose
from service.engine.cancel import checkpoint
from service.engine.cyclic import CyclicLR
from service.engine.expressions import Expression
from service.engine.families.base import Absolute
from service.engine.lambdas import PREFIX_CHECK_LIMIT, LambdaLR, MultiplicativeLR
from service.engine.maps import scan
from service.engine.nodes import STEP, Leaf, Node
from service.engine.optimizer import Optimizer
from service.engine.types import FloatArray, IntArray

if TYPE_CHECKING:
    from service.engine.families.composition import Sequence

BLOCK = 1 << 16
"""Outer steps evaluated per block when stepping (bounds the temporary arrays)."""


@dataclass(frozen=True, slots=True)
class StepRange:
    """``range(start, stop, stride)`` of step indices, with its length known in O(1)."""

    start: int
    stop: int
    stride: int

    def __len__(self) -> int:
        return len(range(self.start, self.stop, self.stride))

    @property
    def last(self) -> int:
        """The largest step in the range (``start - stride`` when it is empty)."""
        return self.start + (len(self) - 1) * self.stride

    @property
    def final(self) -> int:
        """The last step of the schedule, ``stop - 1``: PyTorch steps through all of them."""
        return self.stop - 1

    def indices(self) -> IntArray:
        """The steps as an int64 array."""
        return np.arange(self.start, self.stop, self.stride, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Curve:
    """lr per param group and step, shape (groups, n); momentum likewise or ``None``.

    ``warnings`` are continuity warnings of compositions (a segment that does not start
    where the previous one ended), and a note when ``start >= stop`` leaves the range empty:
    reported to the caller, not errors.
    """

    lr: FloatArray
    momentum: FloatArray | None
    warnings: tuple[str, ...] = ()


Float32Array = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Curve32:
    """A :class:`Curve` in float32 (each value float64's, rounded once)."""

    lr: Float32Array
    momentum: Float32Array | None
    warnings: tuple[str, ...] = ()


STEPPING_BUDGET = 8
"""Stepped schedules may evaluate at most this many times ``max_values`` per-step maps."""


def stepping_cost(root: Node, steps: StepRange) -> int:
    """Map evaluations ``compute`` needs: 0 for a closed form, else leaves x last step."""
    if isinstance(root, Leaf) and not root.history_dependent:
        return 0
    return root.leaf_count * max(steps.final, 0)


EXPRESSION_BUDGET = 1_500_000_000
"""Most expression work one request may ask for, in the units of :meth:`Expression.cost`
(:func:`expression_cost`), about 2 ns each here at worst: the costliest requests it allows
(remainders of huge numbers, subnormal powers and exponentials, sines of huge arguments, at the
most steps or groups allowed) take 2-2.6 s on this machine, well inside the request time limit
(30 s by default, 15 s in the tests of the costliest requests). Ordinary expressions cost less
than their units say (0.2-1.5 ns each) and fit at the most values a request may ask for:
10,000,000 steps of a 10-operation lambda cost 124,000,000 units (0.8 s with the rest of the
request), of ``0.95 ** epoch`` 826,000,000 (1.2 s), of ``0.1 ** (epoch // 30)`` 1,000,000,000
(1.1 s). Refused: 64 chained sin/cos lambdas of 185 nodes over 1,250,000 steps (50 s), 1,024
maximal lambdas even at one step (9 s of numpy's per-call overhead)."""


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
    if children.needs_stepping(child) and child.leaf_count * last > children.STEP_LIMIT:
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


def compute(root: Node, lrs: FloatArray, steps: StepRange) -> Curve:
    """The lr (and momentum) of every param group at each step of ``steps``.

    Raises :class:`ScheduleError` where PyTorch would raise constructing the scheduler or
    stepping it through the range, and where a value is not finite.
    """
    lr, momentum, found = _evaluate(root, lrs, steps, np.dtype(np.float64))
    found += _range_warnings(steps)
    return Curve(cast(FloatArray, lr), cast("FloatArray | None", momentum), found)


def compute_float32(root: Node, lrs: FloatArray, steps: StepRange) -> Curve32:
    """:func:`compute` rounded to float32; the fast closed forms write float32 directly.

    Values are computed in float64 either way and rounded once, so they equal
    ``compute(...).lr.astype(np.float32)`` up to the float64 result's own last bits.
    """
    lr, momentum, found = _evaluate(root, lrs, steps, np.dtype(np.float32))
    found += _range_warnings(steps)
    as32 = np.float32
    return Curve32(
        lr if lr.dtype == as32 else lr.astype(as32),
        None if momentum is None else momentum.astype(as32, copy=False),
        found,
    )


def _evaluate(
    root: Node, lrs: FloatArray, steps: StepRange, dtype: np.dtype[Any]
) -> tuple[NDArray[Any], NDArray[Any] | None, tuple[str, ...]]:
    """lr, momentum and warnings; in ``dtype`` where a fast closed form applies."""
    opt = Optimizer(np.asarray(lrs, dtype=np.float64))
    # Overflow and invalid operations are found by the checks below (and by each
    # scheduler's own checks where PyTorch raises), not by numpy's warnings.
    with np.errstate(all="ignore"):
        root.construct(opt)
        fast = _standalone_steps(root, steps, dtype)
        if fast is not None:
            _probe_final(root, steps)
            return fast[0], fast[1], _with_warnings(root)
        k = steps.indices()
        curve = _standalone(root, k) if isinstance(root, Leaf) else None
        if curve is None:
            curve = _stepped(root, opt, steps)
        else:
            _probe_final(root, steps)
    _check_finite(curve, k)
    return curve.lr, curve.momentum, _with_warnings(root)


PIECE = 1 << 18
"""Steps per piece of a curve that may be streamed lazily (see :func:`lr_chunks`)."""


def lr_chunks(
    root: Node, lrs: FloatArray, steps: StepRange, dtype: np.dtype[Any]
) -> Iterator[NDArray[Any]] | None:
    """The lr of a single param group in pieces of :data:`PIECE` steps, each computed on
    demand, for streaming big curves without holding them.

    Only schedulers whose fast closed form is valid on every range once it is valid on one
    qualify (``streams_lazily``: the cosine annealers, whose only failures depend on their
    parameters); the first piece is computed here, so construction errors are raised before
    anything is sent. :func:`compute` evaluates these schedulers piece by piece too, so the
    values are the same bits either way. ``None`` when the curve must be computed whole.
    """
    n = len(steps)
    if len(lrs) != 1 or n == 0 or not getattr(root, "streams_lazily", False):
        return None
    assert isinstance(root, Leaf)
    with np.errstate(all="ignore"):
        root.construct(Optimizer(np.asarray(lrs, dtype=np.float64)))
        first = _standalone_piece(root, steps, 0, dtype)
        if first is None:
            return None
        _probe_final(root, steps)

    def pieces() -> Iterator[NDArray[Any]]:
        yield first[0][0]
        for offset in range(PIECE, n, PIECE):
            with np.errstate(all="ignore"):
                piece = _standalone_piece(root, steps, offset, dtype)
            assert piece is not None  # valid on one range: valid on every range
            yield piece[0][0]

    return pieces()


class _RangeForm(Protocol):
    """A leaf with a fast closed form on step ranges (see :mod:`service.engine.fastmath`)."""

    def standalone_steps(
        self,
        start: int,
        stride: int,
        n: int,
        dtype: np.dtype[Any],
        out: NDArray[Any] | None = None,
    ) -> tuple[NDArray[Any], NDArray[Any] | None] | None:
        """lr and momentum on ``range(start, start + n * stride, stride)``, or ``None``."""


def _standalone_piece(
    root: Node,
    steps: StepRange,
    offset: int,
    dtype: np.dtype[Any],
    out: NDArray[Any] | None = None,
) -> tuple[NDArray[Any], NDArray[Any] | None] | None:
    """The fast closed form on outputs ``offset`` to ``offset + PIECE`` of ``steps``."""
    start = steps.start + offset * steps.stride
    count = min(PIECE, len(steps) - offset)
    # Only called for leaves that stream lazily, which all have a range form.
    form = cast(_RangeForm, root)
    return form.standalone_steps(start, steps.stride, count, dtype, out)


def _standalone_steps(
    root: Node, steps: StepRange, dtype: np.dtype[Any]
) -> tuple[NDArray[Any], NDArray[Any] | None] | None:
    """The fast closed form on the whole range, if the root has one that applies.

    Its values are finite by construction (it declines where they might not be). Schedulers
    that stream lazily are evaluated in the pieces :func:`lr_chunks` streams.
    """
    if not isinstance(root, Leaf) or root.history_dependent:
        return None
    method = getattr(root, "standalone_steps", None)
    if method is None:
        return None
    n = len(steps)
    if not getattr(root, "streams_lazily", False) or n <= PIECE:
        values: tuple[NDArray[Any], NDArray[Any] | None] | None = method(
            steps.start, steps.stride, n, dtype
        )
        return values
    groups = len(root.base_lrs)
    lr = np.empty((groups, n), dtype)
    if _standalone_piece(root, steps, 0, dtype, lr[:, :PIECE]) is None:
        return None
    for offset in range(PIECE, n, PIECE):
        checkpoint()
        done = _standalone_piece(root, steps, offset, dtype, lr[:, offset : offset + PIECE])
        assert done is not None  # valid on one range: valid on every range
    return lr, None


def _probe_final(root: Node, steps: StepRange) -> None:
    """Closed forms check the steps they compute; PyTorch fails on the steps after the last
    requested one too (every failure condition holds from some step on, or is found by the
    prefix checks a probe at the final step triggers)."""
    if steps.final >= 1 and (len(steps) == 0 or steps.final > steps.last):
        assert isinstance(root, Leaf)
        _standalone(root, np.array([steps.final], dtype=np.int64))


def _range_warnings(steps: StepRange) -> tuple[str, ...]:
    """A note for a range left empty by ``start >= stop``: ``steps`` is taken for a count."""
    if steps.start < steps.stop:
        return ()
    return (
        f"no values: start={steps.start} >= steps={steps.stop}, and `steps` is where "
        "range(start, steps, stride) stops, not how many values to return "
        f"(n values from step {steps.start}: steps={steps.start} + n)",
    )


def _with_warnings(root: Node) -> tuple[str, ...]:
    """The continuity warnings of a composition at the root (none for anything else)."""
    check = getattr(root, "continuity_warnings", None)
    if check is None:
        return ()
    with np.errstate(all="ignore"):
        return tuple(check())


def _standalone(root: Leaf, k: IntArray) -> Curve | None:
    try:
        values = root.standalone(k)
    except ScheduleError as error:
        if error.epoch is not None:
            raise ScheduleError(
                f"{error.message} (at step {error.epoch})", error.loc, step=error.epoch
            ) from None
        raise
    if values is None:
        return None
    lr, momentum = values
    return Curve(
        np.ascontiguousarray(lr, dtype=np.float64),
        None if momentum is None else np.ascontiguousarray(momentum),
    )


def _stepped(root: Node, opt: Optimizer, steps: StepRange) -> Curve:
    """Step the tree block by block, keeping the values at the requested steps."""
    groups, n = opt.groups, len(steps)
    lr = np.empty((groups, n))
    momentum = np.empty((groups, n)) if root.cycles_momentum else None
    current_lr, current_momentum = opt.lr.copy(), opt.momentum.copy()
    if n and steps.start == 0:
        lr[:, 0] = current_lr
        if momentum is not None:
            momentum[:, 0] = current_momentum
    first = 1
    while first <= steps.final:
        checkpoint()
        width = min(BLOCK, steps.final - first + 1)
        maps = root.advance(np.full(width, STEP, dtype=np.int8), first)
        block_lr = scan(current_lr, maps.a, maps.b)
        wanted, positions = _requested_in_block(steps, first, width)
        lr[:, wanted] = block_lr[:, positions]
        current_lr = block_lr[:, -1]
        if momentum is not None:
            if maps.ma is not None and maps.mb is not None:
                block_momentum = scan(current_momentum, maps.ma, maps.mb)
                momentum[:, wanted] = block_momentum[:, positions]
                current_momentum = block_momentum[:, -1]
            else:
                momentum[:, wanted] = current_momentum[:, None]
        first += width
    return Curve(lr, momentum)


def _requested_in_block(steps: StepRange, first: int, width: int) -> tuple[IntArray, IntArray]:
    """Indices into the output, and positions in the block, of requested steps in a block."""
    low = max(first, steps.start)
    high = first + width  # exclusive
    begin = -(-(low - steps.start) // steps.stride)  # ceil division
    end = -(-(high - steps.start) // steps.stride)
    end = min(end, len(steps))
    wanted = np.arange(begin, max(begin, end), dtype=np.int64)
    positions = steps.start + wanted * steps.stride - first
    return wanted, positions


def _check_finite(curve: Curve, k: IntArray) -> None:
    for name, values in (("lr", curve.lr), ("momentum", curve.momentum)):
        if values is None or values.size == 0:
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.add.reduce(values, axis=None)  # finite values can still overflow it
        if np.isfinite(total):
            continue  # a finite sum has no inf or nan in it (one pass, no mask)
        bad = ~np.isfinite(values)
        if bad.any():
            column = int(np.argmax(bad.any(axis=0)))
            raise ScheduleError(
                f"the schedule's {name} is not finite at step {int(k[column])} "
                f"({values[:, column].tolist()}); PyTorch would carry that value on"
            )
