"""CyclicLR: lr and momentum cycled together between two bounds (absolute; OneCycleLR is
:mod:`service.engine.one_cycle`)."""

from __future__ import annotations

import math

import numpy as np

from rules.errors import Loc, ScheduleError
from service.engine.cancel import checkpoint
from service.engine.evaluation import BLOCK
from service.engine.expressions import Expression
from service.engine.lambdas import first_failure_up_to
from service.engine.maps import Maps
from service.engine.nodes import Leaf, fail_where
from service.engine.optimizer import Optimizer
from service.engine.types import FloatArray, IntArray


class CyclicLR(Leaf):
    r"""Cyclical learning rate (Smith, 2017): a triangle between ``base_lr`` and ``max_lr``.

    With :math:`S = up + down`, :math:`c = \lfloor 1 + k/S \rfloor`, :math:`x = 1 + k/S - c`:
    the scale factor is :math:`x / r` while :math:`x \le r = up/S`, else :math:`(x-1)/(r-1)`;
    :math:`lr = base + (max - base)\,sf\,s(\cdot)` where the amplitude scale :math:`s` is
    1 (triangular), :math:`2^{-(c-1)}` (triangular2), :math:`\gamma^k` (exp_range) or the
    user's ``scale_fn`` of the cycle or the step. Momentum moves inversely between
    ``max_momentum`` and ``base_momentum``.
    """

    def __init__(
        self,
        loc: Loc,
        base_lr: FloatArray,
        max_lr: FloatArray,
        step_size_up: float,
        step_size_down: float | None,
        mode: str,
        gamma: float,
        scale_fn: Expression | None,
        scale_mode: str,
        cycle_momentum: bool,
        base_momentum: FloatArray,
        max_momentum: FloatArray,
    ) -> None:
        super().__init__(loc)
        self.base_lr_param = base_lr
        self.max_lrs = max_lr
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.total_size = up + down
        if self.total_size == 0:
            raise ScheduleError(
                "step_size_up + step_size_down = 0: PyTorch raises ZeroDivisionError",
                (*loc, "step_size_up"),
            )
        self.step_ratio = up / self.total_size
        self.mode = mode
        self.gamma = gamma
        self.scale_fn = scale_fn
        if scale_fn is None:
            scale_mode = "iterations" if mode == "exp_range" else "cycle"
        self.scale_mode = "cycle" if scale_mode == "cycle" else "iterations"
        self.sets_momentum = cycle_momentum
        self.base_momentums = base_momentum
        self.max_momentums = max_momentum

    def prepare(self, opt: Optimizer) -> None:
        opt.lr = self.base_lr_param.copy()
        if self.sets_momentum:
            opt.momentum = self.max_momentums.copy()
            opt.group_keys["max_momentum"] = self.max_momentums.copy()
            opt.group_keys["base_momentum"] = self.base_momentums.copy()

    def finish(self, opt: Optimizer) -> None:
        self.base_lrs = self.base_lr_param.copy()

    def _scale(self, cycle: FloatArray, epochs: IntArray) -> FloatArray:
        """The amplitude scale at each step, raising where PyTorch's float pow overflows."""
        argument = cycle if self.scale_mode == "cycle" else epochs.astype(np.float64)
        if self.scale_fn is not None:
            evaluation = self.scale_fn.evaluate(argument.astype(np.int64))
            if evaluation.first_error is not None:
                index, reason = evaluation.first_error
                value = int(argument[index])
                raise ScheduleError(
                    f"scale_fn {self.scale_fn.source!r} fails at "
                    f"{self.scale_mode} {value}: {reason}",
                    (*self.loc, "scale_fn"),
                    epoch=int(epochs[index]),
                )
            return evaluation.values
        if self.mode == "triangular":
            return np.ones(epochs.shape)
        with np.errstate(over="ignore"):
            if self.mode == "triangular2":
                powers = np.power(2.0, cycle - 1)
                fail_where(
                    np.isinf(powers),
                    "triangular2: 2.0 ** (cycle - 1) overflows (PyTorch raises OverflowError)",
                    (*self.loc, "mode"),
                    at=epochs,
                )
                return 1 / powers
            scales = np.power(self.gamma, epochs.astype(np.float64))
        fail_where(
            np.isinf(scales) & np.isfinite(self.gamma),
            f"gamma={self.gamma}: gamma ** step overflows (PyTorch raises OverflowError)",
            (*self.loc, "gamma"),
            at=epochs,
        )
        return scales

    def get_lr(self, epochs: IntArray, initial: bool) -> Maps:
        e = epochs.astype(np.float64)
        cycle = np.floor(1 + e / self.total_size)
        fail_where(
            ~np.isfinite(cycle),
            f"step_size_up + step_size_down = {self.total_size}: k / total overflows "
            "(PyTorch raises OverflowError in math.floor)",
            (*self.loc, "step_size_up"),
            at=epochs,
        )
        x = 1.0 + e / self.total_size - cycle
        rising = x <= self.step_ratio
        fail_where(
            rising & (self.step_ratio == 0),
            "step_size_up=0: PyTorch raises ZeroDivisionError (0 / 0 at the start of a cycle)",
            (*self.loc, "step_size_up"),
            at=epochs,
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(rising, x / self.step_ratio, (x - 1) / (self.step_ratio - 1))
        scale = self._scale(cycle, epochs)
        lrs = self.base_lrs[:, None] + (self.max_lrs - self.base_lrs)[:, None] * factor * scale
        maps = Maps.absolute(lrs)
        if self.sets_momentum:
            heights = (self.max_momentums - self.base_momentums)[:, None] * factor
            maps.with_momentum(self.max_momentums[:, None] - heights * scale)
        return maps

    def standalone(self, k: IntArray) -> tuple[FloatArray, FloatArray | None] | None:
        if self.scale_fn is not None and k.size:
            # PyTorch calls scale_fn at every step on the way to the requested ones.
            last = int(k[-1])
            cycle_mode = self.scale_mode == "cycle"
            cycle = float(np.floor(1 + last / self.total_size)) if cycle_mode else last
            # A cycle that overflows fails in get_lr below, after scale_fn's first call
            # (cycle 1, at construction) and before any later one.
            top = int(cycle) if math.isfinite(cycle) else 1
            failure = first_failure_up_to(self.scale_fn, top, first=1 if cycle_mode else 0)
            if failure is not None:
                value, reason = failure
                raise ScheduleError(
                    f"scale_fn {self.scale_fn.source!r} fails at "
                    f"{self.scale_mode} {value}: {reason}",
                    (*self.loc, "scale_fn"),
                )
        if k.size <= BLOCK:
            maps = self.get_lr(k, initial=False)
            return maps.b, maps.mb
        # In blocks: get_lr holds about ten temporaries of the steps' size (860 MiB at 10M
        # steps), which the curve pool's estimate does not allow for. Steps are independent.
        lr = np.empty((self.base_lrs.shape[0], k.size))
        momentum = np.empty_like(lr) if self.sets_momentum else None
        for begin in range(0, k.size, BLOCK):
            checkpoint()
            block = slice(begin, begin + BLOCK)
            maps = self.get_lr(k[block], initial=False)
            lr[:, block] = maps.b
            if momentum is not None:
                momentum[:, block] = maps.mb
        return lr, momentum
