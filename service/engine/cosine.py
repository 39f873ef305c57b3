"""Cosine annealing: CosineAnnealingLR (recursive form) and CosineAnnealingWarmRestarts."""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.errors import Loc, ScheduleError
from service.engine import fastmath
from service.engine.fastmath import Affine, Progression
from service.engine.maps import Maps
from service.engine.nodes import RESTART, STEP, Leaf, fail_where, local_epochs
from service.engine.types import FloatArray, IntArray


def cosine_value(
    base: FloatArray, eta_min: float, t_cur: FloatArray, t_max: FloatArray | float
) -> FloatArray:
    r""":math:`\eta + (b - \eta)(1 + \cos(\pi t / T))/2`, in PyTorch's operation order."""
    with np.errstate(divide="ignore", invalid="ignore"):
        angle = np.pi * t_cur / t_max
    values: FloatArray = eta_min + (base[:, None] - eta_min) * (1 + np.cos(angle)) / 2
    return values


class CosineAnnealingLR(Leaf):
    r"""Cosine annealing from the base lr to ``eta_min`` over ``T_max`` steps, not clamped.

    :math:`lr_k = \eta + (b - \eta)(1 + \cos(\pi k / T))/2`; past ``T_max`` it rises again
    (period :math:`2T`). PyTorch computes it recursively, as
    :math:`lr_k = \eta + (lr_{k-1} - \eta)\,\frac{1 + \cos(\pi k/T)}{1 + \cos(\pi (k-1)/T)}`
    with an additive branch at :math:`k \equiv T + 1 \pmod{2T}`; inside compositions that
    recursion is followed (it tracks manual and other schedulers' changes), on its own the
    closed form is used, which agrees with PyTorch's recursion to ~1e-10 relative.
    """

    has_closed_form = True
    streams_lazily = True
    """:meth:`standalone_steps` declines only for its parameters, never for a range."""

    def __init__(self, loc: Loc, T_max: float, eta_min: float) -> None:
        super().__init__(loc)
        self.t_max = T_max
        self.eta_min = eta_min

    def _zero_t_max(self, epochs: IntArray) -> None:
        fail_where(
            np.ones(epochs.shape, dtype=bool),
            "T_max=0: PyTorch raises ZeroDivisionError (modulo by zero) at the first step",
            (*self.loc, "T_max"),
            at=epochs,
        )

    def get_lr(self, epochs: IntArray, initial: bool) -> Maps:
        groups, n = self.optimizer.groups, epochs.shape[0]
        if initial:
            return Maps.identity(groups, n)
        t, eta = self.t_max, self.eta_min
        if t == 0:
            self._zero_t_max(epochs)
        restart_branch = np.mod(epochs - 1 - t, 2 * t) == 0
        e = epochs.astype(np.float64)
        angles = np.pi * e / t
        fail_where(
            ~restart_branch & np.isinf(angles),
            f"T_max={t!r}: pi * k / T_max overflows, and PyTorch's math.cos raises "
            "ValueError (math domain error)",
            (*self.loc, "T_max"),
            at=epochs,
        )
        numerators = 1 + np.cos(angles)
        denominators = 1 + np.cos(np.pi * (e - 1) / t)
        fail_where(
            ~restart_branch & (denominators == 0),
            f"T_max={t}: PyTorch raises ZeroDivisionError (1 + cos(pi (k-1) / T_max) == 0)",
            (*self.loc, "T_max"),
            at=epochs,
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = numerators / np.where(restart_branch, 1.0, denominators)
        a = np.where(restart_branch, 1.0, ratios)
        # pi / T_max overflows only where pi * 1 / T_max does, and step 1 never restarts.
        bump = (self.base_lrs[:, None] - eta) * (1 - np.cos(np.pi / t)) / 2
        b = np.where(restart_branch, bump, eta - a * eta)
        return Maps(np.broadcast_to(a, (groups, n)).copy(), np.broadcast_to(b, (groups, n)).copy())

    @property
    def history_dependent(self) -> bool:
        """A period shorter than one step (``0 < |T_max| < 1``) is stepped like PyTorch.

        There the angle grows by more than pi per step, so PyTorch's own rounding of
        ``pi * k / T_max`` decides the values; and with a tiny ``T_max`` its float test
        ``(k - 1 - T_max) % (2 T_max) == 0`` takes the additive branch at steps the closed
        form knows nothing of, and ``pi * k / T_max`` overflows (ValueError) at some step.
        """
        return 0 < abs(self.t_max) < 1

    def closed_form(self, epochs: IntArray) -> Maps:
        if self.t_max == 0:
            raise ScheduleError(
                "T_max=0: PyTorch raises ZeroDivisionError",
                (*self.loc, "T_max"),
                epoch=int(epochs[0]),
            )
        return Maps.absolute(
            cosine_value(self.base_lrs, self.eta_min, epochs.astype(np.float64), self.t_max)
        )

    def standalone(self, k: IntArray) -> tuple[FloatArray, FloatArray | None] | None:
        if self.t_max == 0:
            self._zero_t_max(k[k > 0])
            return self.base_lrs[:, None] * np.ones(k.shape), None
        if self.history_dependent:
            return None
        values = self.closed_form(k).b
        values[:, k == 0] = self.base_lrs[:, None]  # construction leaves the lr as it is
        return values, None

    def standalone_steps(
        self,
        start: int,
        stride: int,
        n: int,
        dtype: np.dtype[Any],
        out: fastmath.Values | None = None,
    ) -> tuple[fastmath.Values, fastmath.Values | None] | None:
        r""":meth:`standalone` on ``range(start, start + n * stride, stride)``, fast.

        The closed form with the angle reduced exactly (:math:`k \bmod 2T`), by
        angle-addition tables (:func:`fastmath.cos_affine`); when ``2 T`` is an integer the
        curve is periodic and one period is computed and tiled. ``None`` where the general
        path must answer (``T_max = 0``, periods shorter than a step, values that could
        overflow). ``out`` (groups, n), if given, receives the values.
        """
        if self.t_max == 0 or self.history_dependent:
            return None
        rows = _cosine_rows(self.base_lrs, self.eta_min)
        if rows is None:
            return None
        lr = np.empty((len(rows), n), dtype) if out is None else out
        two_t = 2.0 * float(self.t_max)
        m = fastmath.periodic_prefix(int(abs(two_t)), stride, n) if two_t.is_integer() else n
        angles = Progression(float(start), float(stride), float(self.t_max), periodic=True)
        fastmath.cos_affine(angles, m, [Affine(a, b, lr[g]) for g, (a, b) in enumerate(rows)])
        for g in range(len(rows)):
            fastmath.tile(lr[g], m, n)
        if start == 0 and n:
            lr[:, 0] = self.base_lrs  # construction leaves the lr as it is
        return lr, None


def _cosine_rows(base_lrs: FloatArray, eta_min: float) -> list[tuple[float, float]] | None:
    r""":math:`(\alpha, \beta)` per group with :math:`\eta + (b - \eta)(1 + \cos)/2 =
    \alpha + \beta \cos`; ``None`` if a value could overflow."""
    rows = [(eta_min + (b - eta_min) / 2, (b - eta_min) / 2) for b in base_lrs.tolist()]
    if not fastmath.bounded(eta_min, *(v for row in rows for v in row)):
        return None
    return rows


class CosineAnnealingWarmRestarts(Leaf):
    r"""SGDR: cosine from the base lr to ``eta_min`` over ``T_i`` steps, then restart.

    :math:`lr = \eta + (b - \eta)(1 + \cos(\pi T_{cur} / T_i))/2` with :math:`T_0` the first
    period and each next period ``T_mult`` times longer. Absolute: it ignores changes other
    schedulers made to the lr.
    """

    streams_lazily = True
    """:meth:`standalone_steps` declines only for its parameters, never for a range."""

    def __init__(self, loc: Loc, T_0: int, T_mult: int, eta_min: float) -> None:
        super().__init__(loc)
        self.t_0 = T_0
        self.t_mult = T_mult
        self.eta_min = eta_min
        self.position = -1
        """Steps since the schedule (re)started; encodes PyTorch's ``T_cur``/``T_i``."""

    def _period(self, position: IntArray) -> tuple[FloatArray, FloatArray]:
        """``(T_cur, T_i)`` after ``position`` increments from ``(0, T_0)``."""
        if self.t_mult == 1:
            return (position % self.t_0).astype(np.float64), np.full(
                position.shape, float(self.t_0)
            )
        starts = [0]
        length = self.t_0
        limit = int(position.max()) if position.size else 0
        while starts[-1] <= limit:
            starts.append(starts[-1] + length)
            length *= self.t_mult
        bounds = np.asarray(starts[:-1], dtype=np.int64)
        cycle = np.searchsorted(bounds, position, side="right") - 1
        t_i = self.t_0 * np.power(float(self.t_mult), cycle.astype(np.float64))
        return (position - bounds[cycle]).astype(np.float64), t_i

    def _values(self, position: IntArray) -> FloatArray:
        t_cur, t_i = self._period(position)
        return cosine_value(self.base_lrs, self.eta_min, t_cur, t_i)

    def get_lr(self, epochs: IntArray, initial: bool) -> Maps:
        # Only reached through the scalar construction path (see _step / advance).
        return Maps.absolute(self._values(np.full(epochs.shape, self.position, dtype=np.int64)))

    def _step(self, initial: bool) -> None:
        self.position = 0 if self.last_epoch < 0 else self.position + 1
        self.last_epoch = max(self.last_epoch + 1, 0)
        self.optimizer.apply(Maps.absolute(self._values(np.array([self.position]))))

    def restart(self, at_step: int) -> None:
        self.last_epoch = 0
        self.optimizer.apply(Maps.absolute(self._values(np.array([self.position]))))

    def advance(self, events: np.ndarray, first_step: int) -> Maps:
        called = np.flatnonzero(events)
        groups = self.optimizer.groups
        if called.size == 0:
            return Maps.identity(groups, events.shape[0])
        kinds = events[called]
        start = self.position
        if self.last_epoch < 0 and kinds[0] == STEP:
            start = -1  # step() from a negative last_epoch restarts the cycle at T_cur = 0
            kinds = kinds.copy()
            kinds[0] = RESTART  # ... and sets last_epoch to 0, like a restart
        positions = start + np.cumsum(events[called] == STEP)
        self.last_epoch = int(local_epochs(kinds, self.last_epoch)[-1])
        self.position = int(positions[-1])
        return Maps.absolute(self._values(positions)).scatter(called, events.shape[0])

    def standalone(self, k: IntArray) -> tuple[FloatArray, FloatArray | None] | None:
        return self._values(k), None

    def standalone_steps(
        self,
        start: int,
        stride: int,
        n: int,
        dtype: np.dtype[Any],
        out: fastmath.Values | None = None,
    ) -> tuple[fastmath.Values, fastmath.Values | None] | None:
        r""":meth:`standalone` on ``range(start, start + n * stride, stride)``, fast.

        Within one cycle the angles :math:`\pi T_{cur} / T_i` are an arithmetic
        progression, so each cycle the range crosses is one :func:`fastmath.cos_affine`
        call; with ``T_mult = 1`` the curve is periodic and one period is computed and
        tiled. When the range crosses many cycles in few steps (a stride near ``T_0``)
        every value is computed directly. ``out`` (groups, n), if given, receives the values.
        """
        rows = _cosine_rows(self.base_lrs, self.eta_min)
        if rows is None:
            return None
        lr = np.empty((len(rows), n), dtype) if out is None else out
        m = fastmath.periodic_prefix(self.t_0, stride, n) if self.t_mult == 1 else n
        runs = self._runs(start, stride, m)
        if runs is None:
            k = start + np.arange(m, dtype=np.int64) * stride
            lr[:, :m] = self._values(k)
        else:
            for first, last, position, period in runs:
                angles = Progression(float(position), float(stride), float(period))
                targets = [Affine(a, b, lr[g, first:last]) for g, (a, b) in enumerate(rows)]
                fastmath.cos_affine(angles, last - first, targets)
        for g in range(len(rows)):
            fastmath.tile(lr[g], m, n)
        return lr, None

    def _runs(self, start: int, stride: int, n: int) -> list[tuple[int, int, int, int]] | None:
        """``(first, last, T_cur at first, T_i)`` of the outputs in each cycle, in order.

        ``None`` when there are more runs than it pays to handle one by one.
        """
        if n == 0:
            return []
        final = start + (n - 1) * stride
        runs: list[tuple[int, int, int, int]] = []
        bound, length = 0, self.t_0
        if self.t_mult == 1:
            skipped = start // length
            if final // length - skipped > 8 + n // 256:
                return None
            bound = skipped * length
        while bound <= final:
            following = bound + length
            if following > start:
                first = max(0, -(-(bound - start) // stride))
                last = min(n, -(-(following - start) // stride))
                if last > first:
                    runs.append((first, last, start + first * stride - bound, length))
                    if len(runs) > 8 + n // 256:
                        return None
            bound, length = following, length * self.t_mult
        return runs
