"""Scheduler objects as PyTorch builds and steps them, in two phases.

*Construction* replays, scalar and exact, what PyTorch's constructors do to the optimizer
(nested schedulers are built depth-first, children in list order before their parent, as
``SequentialLR(opt, [LinearLR(opt, ...), ...])`` builds them). *Stepping* is vectorized:
:meth:`Node.advance` takes, for a block of consecutive outer steps, what happens to this
scheduler at each (nothing, ``step()``, or SequentialLR's ``_update_lr(0)`` restart) and
returns the affine maps those calls apply; the caller scans them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from rules.errors import Loc, ScheduleError
from service.engine.maps import Maps
from service.engine.optimizer import Optimizer
from service.engine.types import FloatArray, IntArray

NO_CALL = 0
STEP = 1
RESTART = 2


class Node(ABC):
    """One PyTorch scheduler object (leaf or composite) bound to an :class:`Optimizer`."""

    loc: Loc

    @abstractmethod
    def construct(self, opt: Optimizer) -> None:
        """Run the constructor (children first), including PyTorch's initial step."""

    @abstractmethod
    def initial_step(self) -> None:
        """``_initial_step()``, as SequentialLR calls it on its first active child."""

    @abstractmethod
    def step(self) -> None:
        """One ``step()`` during construction-time bookkeeping (scalar)."""

    @abstractmethod
    def restart(self, at_step: int) -> None:
        """SequentialLR's ``_update_lr(0)`` during construction-time bookkeeping."""

    @abstractmethod
    def undo(self) -> None:
        """SequentialLR's ``recursive_undo``: ``last_epoch -= 1`` on every leaf below."""

    @abstractmethod
    def advance(self, events: np.ndarray, first_step: int) -> Maps:
        """Maps for a block of outer steps given this node's calls (``events``).

        ``first_step`` is the outer step index of ``events[0]`` (for error messages).
        """

    @property
    @abstractmethod
    def cycles_momentum(self) -> bool:
        """Whether any scheduler in this subtree sets the momentum."""

    @property
    @abstractmethod
    def leaf_count(self) -> int:
        """How many leaf schedulers this subtree holds (bounds the stepping cost)."""


def local_epochs(events: np.ndarray, last_epoch: int) -> IntArray:
    """``last_epoch`` after each call in ``events``: ``step()`` adds one, a restart sets 0."""
    is_step = (events == STEP).astype(np.int64)
    steps_so_far = np.cumsum(is_step)
    positions = np.arange(events.shape[0])
    last_restart = np.maximum.accumulate(np.where(events == RESTART, positions, -1))
    since_restart = steps_so_far - steps_so_far[np.maximum(last_restart, 0)]
    epochs: IntArray = np.where(last_restart >= 0, since_restart, last_epoch + steps_so_far)
    return epochs


class Leaf(Node):
    """A non-composite PyTorch scheduler; subclasses give ``get_lr`` as maps.

    ``get_lr(epochs, initial)`` returns the maps PyTorch's ``get_lr()`` applies at each
    ``last_epoch`` in ``epochs``; ``closed_form(epochs)`` is ``_get_closed_form_lr`` for the
    schedulers that have one (SequentialLR restarts those from their base lrs).
    """

    has_closed_form = False
    sets_momentum = False

    def __init__(self, loc: Loc) -> None:
        self.loc = loc
        self.opt: Optimizer | None = None
        self.base_lrs: FloatArray = np.empty(0)
        self.last_epoch = -1

    # -- what subclasses provide -------------------------------------------------------
    @abstractmethod
    def get_lr(self, epochs: IntArray, initial: bool) -> Maps:
        """The maps of ``get_lr()`` at each of ``epochs`` (vectorized)."""

    def closed_form(self, epochs: IntArray) -> Maps:
        """``_get_closed_form_lr()`` at each of ``epochs`` (only if ``has_closed_form``)."""
        raise NotImplementedError

    @property
    def history_dependent(self) -> bool:
        """Whether :meth:`standalone` cannot answer (values depend on every earlier step)."""
        return False

    def standalone(self, k: IntArray) -> tuple[FloatArray, FloatArray | None] | None:
        """Values (lr, momentum) at steps ``k`` of this scheduler used alone, in O(len(k)).

        ``None`` where the values depend on the whole history (then the caller steps).
        """
        return None

    def prepare(self, opt: Optimizer) -> None:
        """What the constructor does before ``LRScheduler.__init__`` (default: nothing)."""

    def finish(self, opt: Optimizer) -> None:
        """What the constructor does after ``LRScheduler.__init__`` (default: nothing)."""

    # -- PyTorch's LRScheduler machinery ---------------------------------------------
    @property
    def optimizer(self) -> Optimizer:
        """The optimizer this scheduler was constructed on."""
        assert self.opt is not None, "construct() first"
        return self.opt

    def construct(self, opt: Optimizer) -> None:
        self.opt = opt
        self.prepare(opt)
        self.base_lrs = opt.setdefault_initial_lr()
        self.last_epoch = -1
        self.initial_step()
        self.finish(opt)

    def initial_step(self) -> None:
        self._step(initial=True)

    def step(self) -> None:
        self._step(initial=False)

    def _step(self, initial: bool) -> None:
        self.last_epoch += 1
        epochs = np.array([self.last_epoch], dtype=np.int64)
        self.optimizer.apply(self.get_lr(epochs, initial))

    def restart(self, at_step: int) -> None:
        self.last_epoch = 0
        self.optimizer.apply(self._restart_maps(np.zeros(1, dtype=np.int64)))

    def undo(self) -> None:
        self.last_epoch -= 1

    def _restart_maps(self, zeros: IntArray) -> Maps:
        if self.has_closed_form:
            return self.closed_form(zeros)
        return self.get_lr(zeros, initial=False)

    def advance(self, events: np.ndarray, first_step: int) -> Maps:
        called = np.flatnonzero(events)
        if called.size == 0:
            return Maps.identity(self.optimizer.groups, events.shape[0])
        epochs = local_epochs(events, self.last_epoch)[called]
        kinds = events[called]
        try:
            maps = self._maps_for_calls(epochs, kinds)
        except ScheduleError as error:
            raise _at_outer_step(error, first_step, called, epochs) from None
        self.last_epoch = int(epochs[-1])
        return maps.scatter(called, events.shape[0])

    def _maps_for_calls(self, epochs: IntArray, kinds: np.ndarray) -> Maps:
        restarts = kinds == RESTART
        if not restarts.any():
            return self.get_lr(epochs, initial=False)
        width = epochs.shape[0]
        maps = Maps.identity(self.optimizer.groups, width)
        stepped = np.flatnonzero(~restarts)
        parts = [
            (np.flatnonzero(restarts), self._restart_maps(np.zeros(int(restarts.sum()), np.int64)))
        ]
        if stepped.size:
            parts.append((stepped, self.get_lr(epochs[stepped], initial=False)))
        if self.sets_momentum:
            maps.ma = np.ones_like(maps.a)
            maps.mb = np.zeros_like(maps.b)
        for positions, part in parts:
            maps.a[:, positions] = part.a
            maps.b[:, positions] = part.b
            if maps.ma is not None and maps.mb is not None and part.ma is not None:
                assert part.mb is not None
                maps.ma[:, positions] = part.ma
                maps.mb[:, positions] = part.mb
        return maps

    @property
    def cycles_momentum(self) -> bool:
        return self.sets_momentum

    @property
    def leaf_count(self) -> int:
        return 1


def _at_outer_step(
    error: ScheduleError, first_step: int, called: np.ndarray, epochs: IntArray
) -> ScheduleError:
    """Re-word an error found at some local epoch as happening at an outer step."""
    if error.epoch is not None:
        hits = np.flatnonzero(epochs == error.epoch)
        if hits.size:
            outer = first_step + int(called[hits[0]])
            return ScheduleError(f"{error.message} (at step {outer})", error.loc, step=outer)
    return error


def fail_where(mask: np.ndarray, message: str, loc: Loc, *, at: IntArray) -> None:
    """Raise ``ScheduleError(message)`` at the first epoch of ``at`` where ``mask`` holds."""
    if mask.any():
        raise ScheduleError(message, loc, epoch=int(at[int(np.argmax(mask))]))


def per_group(values: FloatArray, epochs: IntArray) -> FloatArray:
    """Broadcast per-group constants ``values`` (G,) against ``epochs`` (n,) to (G, n)."""
    return np.broadcast_to(values[:, None], (values.shape[0], epochs.shape[0])).astype(np.float64)
