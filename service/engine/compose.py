"""Composite schedulers: SequentialLR and ChainedScheduler, with PyTorch's exact bookkeeping.

Both hold child schedulers on the same optimizer. ChainedScheduler steps every child in
order each step, so recursive children compose multiplicatively and an absolute child
overwrites what the children before it did. SequentialLR steps one child at a time, chosen
by ``bisect_right(milestones, last_epoch)``, and at a milestone calls ``_update_lr(0)`` on the
next child, which restarts schedulers that have a closed form from their base lr and
continues the others (MultiplicativeLR) from the current lr.
"""

from __future__ import annotations

import numpy as np

from rules.errors import Loc, ScheduleError
from service.engine.maps import Maps
from service.engine.nodes import RESTART, STEP, Node
from service.engine.optimizer import Optimizer
from service.engine.types import IntArray


def bisect_right_many(values: list[float], x: np.ndarray) -> IntArray:
    """``bisect.bisect_right(values, xi)`` for every ``xi``, including its answers on an
    unsorted ``values`` list (PyTorch does not sort SequentialLR's milestones)."""
    table = np.asarray(values, dtype=np.float64)
    lo = np.zeros(x.shape, dtype=np.int64)
    hi = np.full(x.shape, len(values), dtype=np.int64)
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        goes_left = x < table[np.minimum(mid, len(values) - 1)]
        hi = np.where(active & goes_left, mid, hi)
        lo = np.where(active & ~goes_left, mid + 1, lo)


def _first_restart_error(node: Node, events: np.ndarray, first_step: int) -> None:
    restarts = np.flatnonzero(events == RESTART)
    if restarts.size:
        node.restart(first_step + int(restarts[0]))


class Composite(Node):
    """Shared plumbing of the two composites: children, undo, momentum, leaf count."""

    kind = "composite"

    def __init__(self, loc: Loc, children: list[Node]) -> None:
        self.loc = loc
        self.children = children
        self.opt: Optimizer | None = None

    def restart(self, at_step: int) -> None:
        raise ScheduleError(
            f"a {self.kind} nested in SequentialLR cannot be restarted at its milestone "
            f"(step {at_step}): PyTorch raises NotImplementedError",
            self.loc,
        )

    def undo(self) -> None:
        for child in self.children:
            child.undo()

    @property
    def cycles_momentum(self) -> bool:
        return any(child.cycles_momentum for child in self.children)

    @property
    def leaf_count(self) -> int:
        return sum(child.leaf_count for child in self.children)

    def _compose(self, parts: list[Maps]) -> Maps:
        combined = parts[0]
        for part in parts[1:]:
            combined = combined.then(part)
        return combined


class ChainedScheduler(Composite):
    """Step every child, in order, at every step (``ChainedScheduler(schedulers)``)."""

    kind = "ChainedScheduler"

    def construct(self, opt: Optimizer) -> None:
        self.opt = opt
        for child in self.children:
            child.construct(opt)

    def initial_step(self) -> None:
        self.step()

    def step(self) -> None:
        for child in self.children:
            child.step()

    def advance(self, events: np.ndarray, first_step: int) -> Maps:
        _first_restart_error(self, events, first_step)
        return self._compose([child.advance(events, first_step) for child in self.children])


class SequentialLR(Composite):
    """Hand over from one child to the next at each milestone (``SequentialLR``)."""

    kind = "SequentialLR"

    def __init__(self, loc: Loc, children: list[Node], milestones: list[float]) -> None:
        super().__init__(loc, children)
        self.milestones = milestones
        self.last_epoch = 0

    def construct(self, opt: Optimizer) -> None:
        self.opt = opt
        for child in self.children:
            child.construct(opt)
        assert opt.initial_lr is not None
        opt.lr = opt.initial_lr.copy()
        self.undo()
        self.last_epoch = 0
        first = int(bisect_right_many(self.milestones, np.zeros(1))[0])
        self.children[first].initial_step()

    def initial_step(self) -> None:
        self.step()

    def step(self) -> None:
        self.last_epoch += 1
        index = int(bisect_right_many(self.milestones, np.array([self.last_epoch]))[0])
        child = self.children[index]
        if index > 0 and self.milestones[index - 1] == self.last_epoch:
            child.restart(self.last_epoch)
        else:
            child.step()

    def advance(self, events: np.ndarray, first_step: int) -> Maps:
        _first_restart_error(self, events, first_step)
        stepped = events == STEP
        epochs = self.last_epoch + np.cumsum(stepped)
        if epochs.size:
            self.last_epoch = int(epochs[-1])
        active = bisect_right_many(self.milestones, epochs.astype(np.float64))
        previous = np.asarray([np.nan, *self.milestones], dtype=np.float64)[active]
        restarting = (active > 0) & (previous == epochs)
        parts = []
        for index, child in enumerate(self.children):
            mine = stepped & (active == index)
            child_events = np.where(mine, np.where(restarting, RESTART, STEP), 0).astype(np.int8)
            parts.append(child.advance(child_events, first_step))
        return self._compose(parts)
