"""Evaluating a schedule tree on a step range: ``compute`` -> :class:`Curve`.

In closed form for a scheduler used on its own; by a vectorized scan of per-step affine
maps, in blocks of :data:`BLOCK` outer steps, for compositions and history-dependent
schedulers. What that costs is priced beforehand by :mod:`service.engine.costs`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from rules.errors import ScheduleError
from service.engine.cancel import checkpoint
from service.engine.curves import Curve, Curve32, StepRange
from service.engine.maps import scan
from service.engine.nodes import STEP, Leaf, Node
from service.engine.optimizer import Optimizer
from service.engine.types import FloatArray, IntArray

BLOCK = 1 << 16
"""Outer steps evaluated per block when stepping (bounds the temporary arrays)."""


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
