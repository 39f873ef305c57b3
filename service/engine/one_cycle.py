"""OneCycleLR: the 1cycle policy, lr and momentum annealed in two or three phases (absolute)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from rules.errors import Loc, ScheduleError
from service.engine import fastmath
from service.engine.maps import Maps
from service.engine.nodes import Leaf, fail_where
from service.engine.optimizer import Optimizer
from service.engine.types import FloatArray, IntArray

Phase = tuple[float, str, str, str, str]
"""A OneCycleLR phase: its last step, and the group keys its lr and momentum go from and to."""

_EMPTY_PHASE = "pct_start * total_steps gives an empty phase: PyTorch raises ZeroDivisionError"


def _past_total_steps(total_steps: int) -> str:
    return (
        f"Tried to step past total_steps={total_steps} (PyTorch raises ValueError); "
        "steps may be at most total_steps + 1"
    )


def phases(total_steps: int, pct_start: float, three_phase: bool) -> list[Phase]:
    """PyTorch's ``_schedule_phases``: where each phase ends, and what it anneals."""
    first_end = float(pct_start * total_steps) - 1
    last = float(total_steps - 1)
    if not three_phase:
        return [
            (first_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
            (last, "max_lr", "min_lr", "base_momentum", "max_momentum"),
        ]
    second_end = float(2 * pct_start * total_steps) - 2
    return [
        (first_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
        (second_end, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
        (last, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
    ]


class OneCycleLR(Leaf):
    r"""The 1cycle policy (Smith & Topin, 2018): warm up to ``max_lr``, then anneal far below.

    Phases end at :math:`p T - 1` and :math:`T - 1` (three-phase: :math:`pT - 1`,
    :math:`2pT - 2`, :math:`T - 1`); within a phase, with :math:`t` its progress in [0, 1],
    ``cos``: :math:`end + (start - end)(1 + \cos \pi t)/2`, ``linear``:
    :math:`start + (end - start) t`. It starts at ``max_lr / div_factor`` and ends at that
    over ``final_div_factor``; step ``total_steps`` is allowed (it extrapolates), later ones
    raise. Momentum runs the opposite way between ``max_momentum`` and ``base_momentum``.
    """

    def __init__(
        self,
        loc: Loc,
        max_lr: FloatArray,
        total_steps: int,
        pct_start: float,
        anneal_strategy: Literal["cos", "linear"],
        cycle_momentum: bool,
        base_momentum: FloatArray,
        max_momentum: FloatArray,
        div_factor: float,
        final_div_factor: float,
        three_phase: bool,
    ) -> None:
        super().__init__(loc)
        self.max_lr_param = max_lr
        self.total_steps = total_steps
        self.anneal_strategy = anneal_strategy
        self.sets_momentum = cycle_momentum
        self.base_momentum_param = base_momentum
        self.max_momentum_param = max_momentum
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        if div_factor == 0:
            raise ScheduleError(
                "div_factor=0: PyTorch raises ZeroDivisionError", (*loc, "div_factor")
            )
        if final_div_factor == 0:
            raise ScheduleError(
                "final_div_factor=0: PyTorch raises ZeroDivisionError", (*loc, "final_div_factor")
            )
        self.phases = phases(total_steps, pct_start, three_phase)

    def prepare(self, opt: Optimizer) -> None:
        opt.initial_lr = self.max_lr_param / self.div_factor
        opt.group_keys["max_lr"] = self.max_lr_param.copy()
        opt.group_keys["min_lr"] = opt.initial_lr / self.final_div_factor
        if self.sets_momentum:
            opt.momentum = self.max_momentum_param.copy()
            opt.group_keys["max_momentum"] = self.max_momentum_param.copy()
            opt.group_keys["base_momentum"] = self.base_momentum_param.copy()

    def _group_value(self, key: str) -> FloatArray:
        opt = self.optimizer
        if key == "initial_lr":
            assert opt.initial_lr is not None
            return opt.initial_lr
        return opt.group_keys[key]

    def _progress(self, pct: FloatArray) -> FloatArray:
        """What :meth:`_anneal` interpolates by: ``cos(pi * pct) + 1``, or ``pct`` itself."""
        if self.anneal_strategy == "cos":
            cos_out: FloatArray = np.cos(np.pi * pct) + 1
            return cos_out
        return pct

    def _anneal(self, start: FloatArray, end: FloatArray, progress: FloatArray) -> FloatArray:
        """PyTorch's ``_annealing_cos`` or ``_annealing_linear`` from ``start`` to ``end``,
        in its operation order, at the :meth:`_progress` of each step (computed once per
        phase for lr and momentum alike)."""
        if self.anneal_strategy == "cos":
            annealed: FloatArray = end + (start - end) / 2.0 * progress
            return annealed
        linear: FloatArray = (end - start) * progress + start
        return linear

    def get_lr(self, epochs: IntArray, initial: bool) -> Maps:
        if epochs.shape[0] == 1:
            return self._lr_at(int(epochs[0]))
        fail_where(
            epochs > self.total_steps,
            _past_total_steps(self.total_steps),
            (*self.loc, "total_steps"),
            at=epochs,
        )
        groups, n = self.optimizer.groups, epochs.shape[0]
        e = epochs.astype(np.float64)
        lrs = np.empty((groups, n))
        momenta = np.empty((groups, n))
        unassigned = np.ones(n, dtype=bool)
        start_step = 0.0
        for index, phase in enumerate(self.phases):
            end_step = phase[0]
            if index == len(self.phases) - 1:
                here = unassigned  # the last phase takes every step left
            else:
                here = unassigned & (e <= end_step)
                unassigned &= ~here
            if not here.any():
                start_step = end_step
                continue
            if end_step == start_step:
                fail_where(here, _EMPTY_PHASE, (*self.loc, "pct_start"), at=epochs)
            progress = self._progress((e[here] - start_step) / (end_step - start_step))
            lrs[:, here], momentum = self._annealed(phase, progress)
            if momentum is not None:
                momenta[:, here] = momentum
            start_step = end_step
        maps = Maps.absolute(lrs)
        return maps.with_momentum(momenta) if self.sets_momentum else maps

    def _lr_at(self, epoch: int) -> Maps:
        """:meth:`get_lr` at one epoch (the construction step, each step of a stepped tree):
        PyTorch's loop over the phases, in the vectorized form's arithmetic, without masks."""
        if epoch > self.total_steps:
            raise ScheduleError(
                _past_total_steps(self.total_steps), (*self.loc, "total_steps"), epoch=epoch
            )
        start_step, phase = 0.0, self.phases[-1]
        for candidate in self.phases[:-1]:
            if epoch <= candidate[0]:
                phase = candidate
                break
            start_step = candidate[0]
        end_step = phase[0]
        if end_step == start_step:
            raise ScheduleError(_EMPTY_PHASE, (*self.loc, "pct_start"), epoch=epoch)
        progress = self._progress(np.full(1, (epoch - start_step) / (end_step - start_step)))
        lr, momentum = self._annealed(phase, progress)
        maps = Maps.absolute(lr)
        return maps if momentum is None else maps.with_momentum(momentum)

    def _annealed(self, phase: Phase, progress: FloatArray) -> tuple[FloatArray, FloatArray | None]:
        """The lr (and momentum, if cycled) of every group at ``progress`` through ``phase``."""
        _, start_lr, end_lr, start_m, end_m = phase
        value = self._group_value
        lr = self._anneal(value(start_lr)[:, None], value(end_lr)[:, None], progress)
        if not self.sets_momentum:
            return lr, None
        return lr, self._anneal(value(start_m)[:, None], value(end_m)[:, None], progress)

    def standalone(self, k: IntArray) -> tuple[FloatArray, FloatArray | None] | None:
        maps = self.get_lr(k, initial=False)
        return maps.b, maps.mb

    def standalone_steps(
        self, start: int, stride: int, n: int, dtype: np.dtype[Any]
    ) -> tuple[fastmath.Values, fastmath.Values | None] | None:
        r""":meth:`standalone` on ``range(start, start + n * stride, stride)``, fast.

        Each phase holds a contiguous run of the steps, whose progress ``pct`` is an
        arithmetic progression: cosine phases are one :func:`fastmath.cos_affine_stacked` call
        for lr and momentum together (:math:`end + (start - end)(1 + \cos \pi t)/2 = \alpha +
        \beta \cos \pi t`), linear ones a few in-place ufuncs. ``None`` where the general
        path must answer (a step past ``total_steps``, an empty phase, overflow).
        """
        if n == 0 or start + (n - 1) * stride > self.total_steps:
            return None
        phase_keys = [self._series_keys(phase) for phase in self.phases]
        values = {
            key: self._group_value(key).tolist()
            for pair in phase_keys
            for keys in pair
            for key in keys
        }
        if not fastmath.bounded(*(v for row in values.values() for v in row)):
            return None
        groups = self.optimizer.groups
        stacked = np.empty((groups * (1 + self.sets_momentum), n), dtype)  # lr, then momentum
        first, start_step = 0, 0.0
        for index, phase in enumerate(self.phases):
            end_step = phase[0]
            is_last = index == len(self.phases) - 1
            last = n if is_last else max(first, fastmath.count_at_most(start, stride, n, end_step))
            if last > first:
                if end_step == start_step:
                    return None
                start_keys, end_keys = phase_keys[index]
                starts = [v for key in start_keys for v in values[key]]
                finals = [v for key in end_keys for v in values[key]]
                x0 = float(start + first * stride) - start_step
                progression = fastmath.Progression(x0, float(stride), end_step - start_step)
                self._fill_phase(progression, starts, finals, stacked[:, first:last])
            first, start_step = last, end_step
        return stacked[:groups], (stacked[groups:] if self.sets_momentum else None)

    def _series_keys(self, phase: Phase) -> tuple[list[str], list[str]]:
        """The group keys a phase anneals from and to: lr's, then momentum's if cycled."""
        _, start_lr, end_lr, start_m, end_m = phase
        if self.sets_momentum:
            return [start_lr, start_m], [end_lr, end_m]
        return [start_lr], [end_lr]

    def _fill_phase(
        self,
        progression: fastmath.Progression,
        starts: list[float],
        ends: list[float],
        out: fastmath.Values,
    ) -> None:
        """Anneal each row ``out[r]`` from ``starts[r]`` to ``ends[r]`` over ``progression``."""
        count = out.shape[1]
        if self.anneal_strategy == "cos":
            alphas = [e + (s - e) / 2.0 for s, e in zip(starts, ends, strict=True)]
            betas = [(s - e) / 2.0 for s, e in zip(starts, ends, strict=True)]
            fastmath.cos_affine_stacked(progression, count, alphas, betas, out)
            return
        x0, dx, length = progression.x0, progression.dx, progression.length
        for row, (s, e) in enumerate(zip(starts, ends, strict=True)):
            fastmath.linear(x0, dx, length, count, s, e, out[row])
