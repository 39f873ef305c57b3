"""PyTorch's ``SWALR`` (``torch.optim.swa_utils``): anneal to a fixed lr for weight averaging."""

from __future__ import annotations

from typing import Literal

import numpy as np

from rules.errors import Loc
from service.engine.maps import Maps
from service.engine.nodes import STEP, Leaf
from service.engine.optimizer import Optimizer
from service.engine.types import FloatArray, IntArray


class SWALR(Leaf):
    r"""Anneal each group's lr to ``swa_lr`` over ``anneal_epochs`` calls, then hold it.

    PyTorch 2.13's ``get_lr`` at call index :math:`s` (``_step_count - 1``; :math:`s \ge 1`
    when :math:`E` = ``anneal_epochs`` is 0), with :math:`\alpha_s = f(\mathrm{clip}(s /
    \max(1, E), 0, 1))` and :math:`f(t) = t` (``linear``) or :math:`(1 - \cos \pi t)/2`
    (``cos``), is the affine map of the current lr

    .. math::
        lr \leftarrow w\,\alpha_s + (1 - \alpha_s)\,\frac{lr - \alpha_{s-1} w}{1 - \alpha_{s-1}}

    (:math:`w` = ``swa_lr``; the fraction is :math:`w` when :math:`\alpha_{s-1} = 1`). Each
    call undoes the previous interpolation and applies the next, so used alone the schedule is
    :math:`lr_s = w\,\alpha_s + (1 - \alpha_s)\,lr_c`, :math:`lr_c` the lr at construction.

    ``swa_lr`` is a param group key: a SWALR built after this one on the same optimizer
    changes the target of both, as in PyTorch.

    SWALR counts calls in ``_step_count``, not ``last_epoch``: SequentialLR's undo does not
    touch it and its restart at a milestone (``_update_lr(0)``) repeats the current call index,
    so a SWALR after a milestone anneals from whatever lr the scheduler before it left. Here
    ``last_epoch`` holds that call index.
    """

    def __init__(
        self,
        loc: Loc,
        swa_lr: FloatArray,
        anneal_epochs: int,
        anneal_strategy: Literal["cos", "linear"],
    ) -> None:
        super().__init__(loc)
        self.swa_lr = swa_lr
        self.anneal_epochs = anneal_epochs
        self.anneal_strategy = anneal_strategy
        self.constructed_lr: FloatArray = np.empty(0)

    def prepare(self, opt: Optimizer) -> None:
        self.constructed_lr = opt.lr.copy()
        opt.group_keys["swa_lr"] = self.swa_lr.copy()

    @property
    def target(self) -> FloatArray:
        """``group["swa_lr"]``: the optimizer's, which the last SWALR built on it wrote."""
        return self.optimizer.group_keys["swa_lr"][:, None]

    def _anneal(self, t: FloatArray) -> FloatArray:
        if self.anneal_strategy == "linear":
            return t
        annealed: FloatArray = (1 - np.cos(np.pi * t)) / 2
        return annealed

    def _alphas(self, calls: IntArray) -> tuple[FloatArray, FloatArray]:
        """The interpolation weights before and at each call index."""
        if self.anneal_epochs == 0:
            calls = np.maximum(calls, 1)
        span = max(1, self.anneal_epochs)
        previous = self._anneal(np.clip((calls - 1) / span, 0.0, 1.0))
        current = self._anneal(np.clip(calls / span, 0.0, 1.0))
        return previous, current

    def get_lr(self, epochs: IntArray, initial: bool) -> Maps:
        previous, current = self._alphas(epochs)
        swa = self.target
        held = previous == 1
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(held, 0.0, (1 - current) / np.where(held, 1.0, 1 - previous))
        a = np.broadcast_to(scale, (self.optimizer.groups, epochs.shape[0])).copy()
        b = swa * current + np.where(held, swa * (1 - current), -(swa * previous) * scale)
        return Maps(a, b)

    def standalone(self, k: IntArray) -> tuple[FloatArray, FloatArray | None] | None:
        previous, current = self._alphas(k)
        swa = self.target
        start = np.where(previous == 1, swa, self.constructed_lr[:, None])
        values: FloatArray = swa * current + start * (1 - current)
        return values, None

    def initial_step(self) -> None:
        self.last_epoch = -1  # _initial_step() sets _step_count to 0 again
        super().initial_step()

    def restart(self, at_step: int) -> None:
        self.optimizer.apply(self.get_lr(np.array([self.last_epoch], dtype=np.int64), False))

    def undo(self) -> None:
        """SequentialLR's undo lowers ``last_epoch``, which SWALR does not read."""

    def advance(self, events: np.ndarray, first_step: int) -> Maps:
        called = np.flatnonzero(events)
        if called.size == 0:
            return Maps.identity(self.optimizer.groups, events.shape[0])
        calls = self.last_epoch + np.cumsum(events == STEP)[called]
        self.last_epoch = int(calls[-1])
        return self.get_lr(calls, initial=False).scatter(called, events.shape[0])
