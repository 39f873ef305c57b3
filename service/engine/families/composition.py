r"""Composition: ``sequence``, ``warmup``, ``clamp`` and ``scale`` over any schedules.

In the spirit of optax's ``join_schedules``: each piece is evaluated on its slice of the step
array with its *local* step (the step count since the piece began), so a composition of
closed forms costs O(number of requested steps). Children are evaluated against the same
optimizer lrs as their parent (see :mod:`service.engine.families.children`).

Continuity: a ``sequence`` reports a warning (not an error) for every boundary where a
segment does not start where the previous one would have been at that step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence as Seq

import numpy as np

from rules.errors import Loc, ScheduleError
from service.engine.families.base import Absolute, Values
from service.engine.families.children import evaluate, needs_stepping, value_at
from service.engine.nodes import Node
from service.engine.types import FloatArray, IntArray

CONTINUITY_RTOL = 1e-6
"""Relative jump below which two values at a boundary count as continuous."""


def where(loc: Loc) -> str:
    """A field path for messages: ``schedule.segments[1].schedule``."""
    text = "schedule"
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _continuous(a: FloatArray, b: FloatArray) -> bool:
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    return bool(np.all(np.abs(a - b) <= CONTINUITY_RTOL * scale + 1e-300))


class Composite(Absolute):
    """A composition: an absolute schedule computed from child schedules."""

    def __init__(self, loc: Loc, children: Seq[Node]) -> None:
        super().__init__(loc)
        self.children = list(children)
        self.sets_momentum = any(child.cycles_momentum for child in self.children)

    @property
    def leaf_count(self) -> int:
        return sum(child.leaf_count for child in self.children)

    def continuity_warnings(self) -> list[str]:
        """Warnings of this composition and of compositions nested in it."""
        found: list[str] = []
        for child in self.children:
            if isinstance(child, Composite):
                child.construct_like(self)
                found.extend(child.continuity_warnings())
        return found

    def construct_like(self, parent: Absolute) -> None:
        """Take the parent's base lrs (children are evaluated on fresh optimizers)."""
        self.base_lrs = parent.base_lrs.copy()


class Sequence(Composite):
    """Segments one after another; segment ``i`` sees the local step ``k - starts[i]``.

    The segment in force at step ``k`` is the last one (in list order) whose start ``k`` has
    reached (optax ``join_schedules``); the last segment runs on forever. Momentum (when some
    segment schedules it) is held by the segments that do not: at the value the nearest
    earlier momentum segment ended with, or before any, the first one's initial value.
    """

    def __init__(
        self, loc: Loc, children: Seq[Node], starts: Seq[int], kind: str, child_locs: Seq[Loc]
    ) -> None:
        super().__init__(loc, children)
        self.starts = list(starts)
        self.kind = kind
        self.child_locs = list(child_locs)

    def _chosen(self, k: IntArray) -> IntArray:
        chosen = np.zeros(k.shape, dtype=np.int64)
        for index, start in enumerate(self.starts[1:], start=1):
            chosen = np.where(k < start, chosen, index)
        return chosen

    def _child_loc(self, index: int) -> Loc:
        return self.child_locs[index]

    def values(self, k: IntArray) -> Values:
        groups = self.base_lrs.shape[0]
        lr = np.empty((groups, k.shape[0]))
        momentum = np.empty((groups, k.shape[0])) if self.sets_momentum else None
        chosen = self._chosen(k)
        for index, child in enumerate(self.children):
            mask = chosen == index
            if not mask.any():
                continue
            local = k[mask] - self.starts[index]
            child_lr, child_momentum = evaluate(child, self.base_lrs, local, self._child_loc(index))
            lr[:, mask] = child_lr
            if momentum is not None:
                if child_momentum is None:
                    momentum[:, mask] = self._held_momentum(index)[:, None]
                else:
                    momentum[:, mask] = child_momentum
        return lr, momentum

    def _length(self, index: int) -> int | None:
        if index + 1 >= len(self.starts):
            return None
        return self.starts[index + 1] - self.starts[index]

    def _held_momentum(self, index: int) -> FloatArray:
        earlier = [i for i in range(index) if self.children[i].cycles_momentum]
        if earlier:
            j = earlier[-1]
            end = max((self._length(j) or 1) - 1, 0)
            momentum = value_at(self.children[j], self.base_lrs, end, self._child_loc(j))[1]
        else:
            j = next(i for i, c in enumerate(self.children) if c.cycles_momentum)
            momentum = value_at(self.children[j], self.base_lrs, 0, self._child_loc(j))[1]
        assert momentum is not None
        return momentum[:, 0]

    def continuity_warnings(self) -> list[str]:
        found: list[str] = []
        for index in range(1, len(self.children)):
            previous, current = self.children[index - 1], self.children[index]
            length = self._length(index - 1)
            if length is None or length < 0:
                continue
            if needs_stepping(previous) and previous.leaf_count * length > 1_000_000:
                continue  # not worth stepping a PyTorch scheduler that far for a warning
            try:
                before = value_at(previous, self.base_lrs, length, self._child_loc(index - 1))[0]
                after = value_at(current, self.base_lrs, 0, self._child_loc(index))[0]
            except ScheduleError:
                continue
            if not _continuous(before[:, 0], after[:, 0]):
                found.append(
                    f"{where(self._child_loc(index))}: {self.kind} segment {index} starts at "
                    f"{_show(after)} at step {self.starts[index]}, but segment {index - 1} "
                    f"would be at {_show(before)} there: the lr jumps"
                )
        return found + super().continuity_warnings()


def _show(values: FloatArray) -> str:
    row = [float(f"{v:.6g}") for v in values[:, 0]]
    return str(row[0]) if len(row) == 1 else str(row)


class Warmup(Composite):
    r"""A warmup of ``steps`` steps before ``schedule``, which then runs from its local step 0.

    For :math:`k < W`, with :math:`p = k / W`, start ``s`` and target ``t`` (the schedule's
    value at its step 0, per group): linear :math:`s + (t - s)p`, cosine
    :math:`s + (t - s)(1 - \cos\pi p)/2`, exponential :math:`s (t/s)^p`. The target is reached
    at :math:`k = W` (timm's ``warmup_prefix=True`` total length W + the schedule).
    """

    def __init__(
        self,
        loc: Loc,
        child: Node,
        steps: int,
        shape: str,
        start_value: float | None,
        start_factor: float | None,
    ) -> None:
        super().__init__(loc, [child])
        self.steps = steps
        self.shape = shape
        self.start_value = start_value
        self.start_factor = start_factor

    def values(self, k: IntArray) -> Values:
        child = self.children[0]
        child_loc = (*self.loc, "schedule")
        warming = k < self.steps
        lr, momentum = evaluate(child, self.base_lrs, k[~warming] - self.steps, child_loc)
        if not warming.any():
            return lr, momentum
        target, target_momentum = value_at(child, self.base_lrs, 0, child_loc)
        if self.start_value is not None:
            start = np.full(target.shape, float(self.start_value))
        else:
            start = target * float(self.start_factor if self.start_factor is not None else 0.0)
        p = k[warming].astype(np.float64)[None, :] / self.steps
        ramp = self._ramp(start, target, p)
        out = np.empty((self.base_lrs.shape[0], k.shape[0]))
        out[:, warming] = ramp
        out[:, ~warming] = lr
        if momentum is None or target_momentum is None:
            return out, None
        full = np.empty_like(out)
        full[:, warming] = target_momentum
        full[:, ~warming] = momentum
        return out, full

    def _ramp(self, start: FloatArray, target: FloatArray, p: FloatArray) -> FloatArray:
        if self.shape == "linear":
            result: FloatArray = start + (target - start) * p
            return result
        if self.shape == "cosine":
            cosine: FloatArray = start + (target - start) * (1 - np.cos(math.pi * p)) / 2
            return cosine
        if (start <= 0).any() or (target <= 0).any():
            raise ScheduleError(
                "an exponential warmup needs a positive start and a positive target "
                f"(start {start[:, 0].tolist()}, target {target[:, 0].tolist()})",
                (*self.loc, "shape"),
            )
        return start * (target / start) ** p


class Clamp(Composite):
    """``schedule`` clipped to ``[min, max]`` (either bound optional)."""

    def __init__(self, loc: Loc, child: Node, low: float | None, high: float | None) -> None:
        super().__init__(loc, [child])
        self.low = low
        self.high = high

    def values(self, k: IntArray) -> Values:
        lr, momentum = evaluate(self.children[0], self.base_lrs, k, (*self.loc, "schedule"))
        return np.clip(lr, self.low, self.high), momentum


class Scale(Composite):
    """``schedule`` times a factor per param group (one number for all, or one per group)."""

    def __init__(self, loc: Loc, child: Node, factors: FloatArray) -> None:
        super().__init__(loc, [child])
        self.factors = factors

    def values(self, k: IntArray) -> Values:
        lr, momentum = evaluate(self.children[0], self.base_lrs, k, (*self.loc, "schedule"))
        return lr * self.factors[:, None], momentum
