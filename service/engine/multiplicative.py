"""Schedulers that multiply the current lr by a factor at each step.

StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR and PolynomialLR, in PyTorch's
recursive ("chainable") form, which is what ``scheduler.step()`` computes. ``standalone``
gives the same values in closed form for a scheduler used on its own: the product of the
recursive factors, telescoped, which can differ from PyTorch's own ``_get_closed_form_lr``
(e.g. ConstantLR with ``total_iters=0`` stays at ``factor * lr``; float ``step_size`` decays
only at exact multiples).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from rules.errors import Loc, ScheduleError
from service.engine.maps import Maps
from service.engine.nodes import Leaf, fail_where
from service.engine.types import FloatArray, IntArray


def _ones(groups: int, epochs: IntArray) -> FloatArray:
    return np.ones((groups, epochs.shape[0]))


def _is_integral(value: float) -> bool:
    return float(value).is_integer()


class StepLR(Leaf):
    r"""Decay by ``gamma`` every ``step_size`` steps: :math:`b\,\gamma^{\lfloor k/s \rfloor}`.

    Recursive form: at step k > 0 with ``k % step_size == 0`` (Python's modulo, so a
    negative or float ``step_size`` decays only at exact multiples) multiply by ``gamma``.
    """

    has_closed_form = True

    def __init__(self, loc: Loc, step_size: float, gamma: float) -> None:
        super().__init__(loc)
        self.step_size = step_size
        self.gamma = gamma

    def get_lr(self, epochs: IntArray, initial: bool) -> Maps:
        if self.step_size == 0:
            fail_where(
                epochs != 0,
                "step_size=0: PyTorch raises ZeroDivisionError (integer modulo by zero)",
                (*self.loc, "step_size"),
                at=epochs,
            )
            return Maps.factor(_ones(self.optimizer.groups, epochs))
        decays = (epochs != 0) & (np.mod(epochs, self.step_size) == 0)
        factors = np.where(decays, self.gamma, 1.0)
        return Maps.factor(
            np.broadcast_to(factors, (self.optimizer.groups, epochs.shape[0])).copy()
        )

    def closed_form(self, epochs: IntArray) -> Maps:
        if self.step_size == 0:
            raise ScheduleError(
                "step_size=0: PyTorch raises ZeroDivisionError (integer division by zero)",
                (*self.loc, "step_size"),
                epoch=0,
            )
        exponents = np.floor_divide(epochs, self.step_size)
        return Maps.absolute(self.base_lrs[:, None] * np.power(self.gamma, exponents))

    def standalone(self, k: IntArray) -> tuple[FloatArray, FloatArray | None] | None:
        if self.step_size == 0:
            fail_where(
                k != 0,
                "step_size=0: PyTorch raises ZeroDivisionError (integer modulo by zero)",
                (*self.loc, "step_size"),
                at=k,
            )
            return self.base_lrs[:, None] * _ones(self.optimizer.groups, k), None
        # Integer multiples of a float step_size p/2**n are exactly the multiples of p.
        period = abs(Fraction(self.step_size).numerator)
        decays = k // period
        return self.base_lrs[:, None] * np.power(self.gamma, decays.astype(np.float64)), None


class MultiStepLR(Leaf):
    r"""Decay by ``gamma`` at each milestone: :math:`lr_k = b\,\gamma^{\#\{m \le k\}}`.

    Milestones are counted with multiplicity (``[2, 2]`` decays twice at step 2); a
    milestone of 0 applies at construction; negative or non-integer milestones are never
    reached by PyTorch's recursion (its closed form would count negative ones).
    """

    has_closed_form = True

    def __init__(self, loc: Loc, milestones: list[float], gamma: float) -> None:
        super().__init__(loc)
        self.milestones = np.sort(np.asarray(milestones, dtype=np.float64))
        self.gamma = gamma

    def _count_at(self, epochs: IntArray) -> IntArray:
        left = np.searchsorted(self.milestones, epochs, side="left")
        right = np.searchsorted(self.milestones, epochs, side="right")
        counts: IntArray = (right - left).astype(np.int64)
        return counts

    def _fail_where_power_overflows(self, counts: IntArray, epochs: IntArray) -> None:
        """PyTorch's ``gamma ** n`` is a Python float power: OverflowError past float64."""
        fail_where(
            np.isinf(np.power(self.gamma, counts.astype(np.float64))),
            f"gamma={self.gamma!r}: gamma ** (milestones reached at once) overflows "
            "(PyTorch raises OverflowError)",
            (*self.loc, "gamma"),
            at=epochs,
        )

    def get_lr(self, epochs: IntArray, initial: bool) -> Maps:
        counts = self._count_at(epochs)
        self._fail_where_power_overflows(counts, epochs)
        factors = np.where(counts > 0, np.power(self.gamma, counts.astype(np.float64)), 1.0)
        return Maps.factor(
            np.broadcast_to(factors, (self.optimizer.groups, epochs.shape[0])).copy()
        )

    def closed_form(self, epochs: IntArray) -> Maps:
        passed = np.searchsorted(self.milestones, epochs, side="right")
        self._fail_where_power_overflows(passed, epochs)
        return Maps.absolute(
            self.base_lrs[:, None] * np.power(self.gamma, passed.astype(np.float64))
        )

    def standalone(self, k: IntArray) -> tuple[FloatArray, FloatArray | None] | None:
        reached = self.milestones[
            (self.milestones >= 0) & (self.milestones == np.floor(self.milestones))
        ]
        if k.size:
            # The recursion raises at the first milestone reached often enough at once.
            at, counts = np.unique(reached[reached <= k.max()], return_counts=True)
            self._fail_where_power_overflows(counts, at.astype(np.int64))
        passed = np.searchsorted(reached, k, side="right")
        return self.base_lrs[:, None] * np.power(self.gamma, passed.astype(np.float64)), None


class ConstantLR(Leaf):
    r"""Hold ``factor * lr`` until step ``total_iters``, then restore it (:math:`b f / f`)."""

    has_closed_form = True

    def __init__(self, loc: Loc, factor: float, total_iters: float) -> None:
        super().__init__(loc)
        self.factor = factor
        self.total_iters = total_iters

    def _check_restore(self, epochs: IntArray) -> None:
        if self.factor == 0:
            fail_where(
                (epochs != 0) & (epochs == self.total_iters),
                f"factor=0: PyTorch raises ZeroDivisionError restoring the lr at "
                f"total_iters={self.total_iters}",
                (*self.loc, "factor"),
                at=epochs,
            )

    def get_lr(self, epochs: IntArray, initial: bool) -> Maps:
        self._check_restore(epochs)
        restore = 1.0 / self.factor if self.factor != 0 else 1.0
        factors = np.where(
            epochs == 0, self.factor, np.where(epochs == self.total_iters, restore, 1.0)
        )
        return Maps.factor(
            np.broadcast_to(factors, (self.optimizer.groups, epochs.shape[0])).copy()
        )

    def closed_form(self, epochs: IntArray) -> Maps:
        reached = (epochs >= self.total_iters).astype(np.float64)
        return Maps.absolute(self.base_lrs[:, None] * (self.factor + reached * (1 - self.factor)))

    def standalone(self, k: IntArray) -> tuple[FloatArray, FloatArray | None] | None:
        held = self.base_lrs[:, None] * self.factor
        if (
            self.total_iters >= 1
            and _is_integral(self.total_iters)
            and k.size
            and k[-1] >= self.total_iters
        ):
            self._check_restore(np.array([int(self.total_iters)], dtype=np.int64))
            restored = held * (1.0 / self.factor)
            return np.where(k >= self.total_iters, restored, held), None
        return held * np.ones(k.shape), None


class LinearLR(Leaf):
    r"""Linear ramp of the factor from ``start_factor`` to ``end_factor`` over ``total_iters``.

    :math:`lr_k = b\,(s + (e - s)\min(k, T)/T)`; the recursion multiplies by
    :math:`1 + (e-s)/(T s + (k-1)(e-s))` for :math:`1 \le k \le T`, and with ``total_iters=0``
    stays at ``start_factor * lr`` (the closed form would divide by zero).
    """

    has_closed_form = True

    def __init__(
        self, loc: Loc, start_factor: float, end_factor: float, total_iters: float
    ) -> None:
        super().__init__(loc)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters

    def get_lr(self, epochs: IntArray, initial: bool) -> Maps:
        s, e, t = self.start_factor, self.end_factor, self.total_iters
        ramp = (epochs != 0) & ~(epochs > t) & (not initial)
        denominators = np.where(ramp, t * s + (epochs - 1) * (e - s), 1.0)
        factors = np.where(epochs == 0, s, np.where(ramp, 1.0 + (e - s) / denominators, 1.0))
        return Maps.factor(
            np.broadcast_to(factors, (self.optimizer.groups, epochs.shape[0])).copy()
        )

    def closed_form(self, epochs: IntArray) -> Maps:
        if self.total_iters == 0:
            raise ScheduleError(
                "total_iters=0: PyTorch raises ZeroDivisionError restarting LinearLR "
                "in SequentialLR",
                (*self.loc, "total_iters"),
                epoch=0,
            )
        s, e, t = self.start_factor, self.end_factor, self.total_iters
        return Maps.absolute(self.base_lrs[:, None] * (s + (e - s) * np.minimum(t, epochs) / t))

    def standalone(self, k: IntArray) -> tuple[FloatArray, FloatArray | None] | None:
        s, e, t = self.start_factor, self.end_factor, self.total_iters
        if t < 1:
            return self.base_lrs[:, None] * s * np.ones(k.shape), None
        last = float(np.floor(t))
        ramped = np.minimum(k, last)
        values = self.base_lrs[:, None] * (s + (e - s) * ramped / t)
        if last >= 2:
            # The recursion's last factor, as PyTorch rounds it: with end_factor=0 the lr
            # after total_iters is a tiny residue (even negative), not an exact 0.
            last_factor = 1.0 + (e - s) / (t * s + (last - 1) * (e - s))
            before = self.base_lrs * (s + (e - s) * (last - 1) / t)
            values = np.where(k >= last, (before * last_factor)[:, None], values)
        first = self.base_lrs * s * (1.0 + (e - s) / (t * s))
        if not np.isfinite(first).all():
            # A subnormal start_factor: PyTorch's first factor overflows, and its lr is not
            # finite from step 1 on (inf, or nan where base_lr * start_factor is 0).
            values = np.where(k >= 1, first[:, None], values)
        return values, None


class ExponentialLR(Leaf):
    r"""Multiply by ``gamma`` every step: :math:`lr_k = b\,\gamma^k`."""

    has_closed_form = True

    def __init__(self, loc: Loc, gamma: float) -> None:
        super().__init__(loc)
        self.gamma = gamma

    def get_lr(self, epochs: IntArray, initial: bool) -> Maps:
        return Maps.factor(
            np.full((self.optimizer.groups, epochs.shape[0]), 1.0 if initial else self.gamma)
        )

    def closed_form(self, epochs: IntArray) -> Maps:
        return Maps.absolute(
            self.base_lrs[:, None] * np.power(self.gamma, epochs.astype(np.float64))
        )

    def standalone(self, k: IntArray) -> tuple[FloatArray, FloatArray | None] | None:
        return self.closed_form(k).b, None


class PolynomialLR(Leaf):
    r"""Polynomial decay to zero over ``total_iters``: :math:`lr_k = b\,(1 - \min(k,T)/T)^p`."""

    has_closed_form = True

    def __init__(self, loc: Loc, total_iters: float, power: float) -> None:
        super().__init__(loc)
        self.total_iters = total_iters
        self.power = power

    def _check(self, epochs: IntArray) -> None:
        if self.power < 0:
            fail_where(
                epochs == self.total_iters,
                f"power={self.power}: PyTorch raises ZeroDivisionError (0.0 cannot be "
                "raised to a negative power) at total_iters",
                (*self.loc, "power"),
                at=epochs,
            )

    def get_lr(self, epochs: IntArray, initial: bool) -> Maps:
        t = self.total_iters
        active = ~(epochs > t) & (not initial)
        if t == 0:
            fail_where(
                active,
                "total_iters=0: PyTorch raises ZeroDivisionError",
                (*self.loc, "total_iters"),
                at=epochs,
            )
            return Maps.factor(np.ones((self.optimizer.groups, epochs.shape[0])))
        self._check(np.where(active, epochs, np.iinfo(np.int64).min))
        e = epochs.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (1.0 - e / t) / (1.0 - (e - 1) / t)
            factors = np.where(active, np.power(np.where(active, ratio, 1.0), self.power), 1.0)
        return Maps.factor(
            np.broadcast_to(factors, (self.optimizer.groups, epochs.shape[0])).copy()
        )

    def closed_form(self, epochs: IntArray) -> Maps:
        t = self.total_iters
        if t == 0:
            raise ScheduleError(
                "total_iters=0: PyTorch raises ZeroDivisionError",
                (*self.loc, "total_iters"),
                epoch=0,
            )
        remaining = 1.0 - np.minimum(t, epochs) / t
        return Maps.absolute(self.base_lrs[:, None] * np.power(remaining, self.power))

    def standalone(self, k: IntArray) -> tuple[FloatArray, FloatArray | None] | None:
        t = self.total_iters
        if t <= 0:
            return self.base_lrs[:, None] * np.ones(k.shape), None
        if _is_integral(t) and self.power < 0 and k.size and k[-1] >= t:
            raise ScheduleError(
                f"power={self.power}: PyTorch raises ZeroDivisionError (0.0 cannot be "
                f"raised to a negative power) at step {int(t)}",
                (*self.loc, "power"),
            )
        decayed = np.minimum(k, np.floor(t))
        return self.base_lrs[:, None] * np.power(1.0 - decayed / t, self.power), None
