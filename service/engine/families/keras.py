r"""Keras 3 ``keras.optimizers.schedules`` (``learning_rate_schedule.py``), in float64.

A Keras schedule is called with ``optimizer.iterations``, the number of updates already
applied, and its value is the lr itself: step ``k`` here is ``schedule(k)``. The value is the
same for every param group (use ``scale`` for per-group values); the optimizer's ``lr`` is
not used. Keras computes in the dtype of ``initial_learning_rate`` (float32 by default);
these are the float64 values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from service.engine.cancel import checkpoint
from service.engine.types import FloatArray, IntArray

Value = Callable[[IntArray], FloatArray]


def exponential_decay(
    initial_learning_rate: float, decay_steps: float, decay_rate: float, staircase: bool
) -> Value:
    r"""``ExponentialDecay``: :math:`I\,r^{k/T}` (``floor(k/T)`` if ``staircase``)."""

    def value(k: IntArray) -> FloatArray:
        p = k.astype(np.float64) / float(decay_steps)
        if staircase:
            p = np.floor(p)
        with np.errstate(all="ignore"):
            result: FloatArray = initial_learning_rate * np.power(float(decay_rate), p)
        return result

    return value


def piecewise_constant(boundaries: Sequence[float], values: Sequence[float]) -> Value:
    r"""``PiecewiseConstantDecay``: ``values[0]`` for :math:`k \le b_0`, ``values[j]`` for
    :math:`b_{j-1} < k \le b_j`, ``values[-1]`` for :math:`k > b_{-1}` (one step *after* b).

    Keras casts each boundary whose dtype differs from the step's to the step's integer
    dtype first, which truncates toward zero: ``-0.5`` becomes ``0``, so step 0 is already
    past it (for a positive ``b``, :math:`k \le b` and :math:`k \le trunc(b)` agree).
    """
    bounds = np.trunc(np.asarray(boundaries, dtype=np.float64))
    table, edges = _piecewise_table(bounds, np.asarray(values, dtype=np.float64))

    def value(k: IntArray) -> FloatArray:
        kf = k.astype(np.float64)
        out: FloatArray = table[np.searchsorted(edges, kf, side="left")]
        return out

    return value


def _piecewise_table(bounds: FloatArray, values: FloatArray) -> tuple[FloatArray, FloatArray]:
    r"""The value of each region between the distinct boundaries ``edges`` (region ``r``:
    :math:`e_{r-1} < k \le e_r`), as Keras's sum of one term per value computes it.

    Keras adds, in the order ``values[0]``, ``values[-1]``, ``values[1:-1]``, each value
    times its indicator: an inactive term is a zero with the value's sign (the values are
    finite), which leaves a nonzero sum as it is; so a region's value is the sum of its
    active terms in that order, started from the zero the inactive ones would leave (-0.0
    only if every value has its sign bit set). Sorted boundaries have one active term per
    region; unsorted ones may have several, added in Keras's order (a loop over the terms,
    each adding to the range of regions where it is active).
    """
    edges = np.unique(bounds)
    where = np.searchsorted(edges, bounds, side="left")  # each boundary's region
    # Term j is active on regions [lo, hi): values[0] up to b_0, values[-1] after b_-1,
    # values[j] after b_{j-1} up to b_j.
    lo = np.concatenate(([0, where[-1] + 1], where[:-1] + 1))
    hi = np.concatenate(([where[0] + 1, edges.shape[0] + 1], where[1:] + 1))
    terms = np.concatenate((values[:1], values[-1:], values[1:-1]))
    start = -0.0 if bool(np.all(np.signbit(values))) else 0.0
    table = np.full(edges.shape[0] + 1, start)
    if bool(np.all(bounds[1:] >= bounds[:-1])):
        # Sorted: each live term covers one region (consecutive distinct edges), each
        # region has one live term.
        live = hi > lo
        table[lo[live]] = start + terms[live]
    else:
        for first, last, term in zip(lo.tolist(), hi.tolist(), terms.tolist(), strict=True):
            if last > first:
                checkpoint()
                table[first:last] += term
    return table, edges


def polynomial_decay(
    initial_learning_rate: float,
    decay_steps: float,
    end_learning_rate: float,
    power: float,
    cycle: bool,
) -> Value:
    r"""``PolynomialDecay``: :math:`(I - E)(1 - k'/T')^P + E` with :math:`k' = \min(k, T)`,
    or with ``cycle`` :math:`T' = T\lceil k/T\rceil` (``T`` at ``k = 0``)."""

    def value(k: IntArray) -> FloatArray:
        step = k.astype(np.float64)
        steps = np.full(k.shape, float(decay_steps))
        if cycle:
            multiplier = np.where(step == 0, 1.0, np.ceil(step / decay_steps))
            steps = steps * multiplier
        else:
            step = np.minimum(step, steps)
        p = step / steps
        with np.errstate(all="ignore"):
            result: FloatArray = (initial_learning_rate - end_learning_rate) * np.power(
                1 - p, float(power)
            ) + end_learning_rate
        return result

    return value


def inverse_time_decay(
    initial_learning_rate: float, decay_steps: float, decay_rate: float, staircase: bool
) -> Value:
    r"""``InverseTimeDecay``: :math:`I / (1 + r\,k/T)` (``floor(k/T)`` if ``staircase``)."""

    def value(k: IntArray) -> FloatArray:
        p = k.astype(np.float64) / float(decay_steps)
        if staircase:
            p = np.floor(p)
        with np.errstate(all="ignore"):
            result: FloatArray = initial_learning_rate / (1.0 + decay_rate * p)
        return result

    return value


def cosine_decay(
    initial_learning_rate: float,
    decay_steps: float,
    alpha: float,
    warmup_target: float | None,
    warmup_steps: float,
) -> Value:
    r"""``CosineDecay``: :math:`I((1-\alpha)\tfrac12(1+\cos(\pi\min(k,T)/T))+\alpha)`; with
    ``warmup_target`` a linear warmup ``I -> target`` over ``warmup_steps`` first, then the
    decay from the target (``decay_steps`` *excludes* the warmup)."""
    decay = float(decay_steps)

    def decayed(step: FloatArray, start: float) -> FloatArray:
        cosine = 0.5 * (1.0 + np.cos(math.pi * (step / decay)))
        result: FloatArray = start * ((1 - alpha) * cosine + alpha)
        return result

    def value(k: IntArray) -> FloatArray:
        step = k.astype(np.float64)
        if warmup_target is None:
            return decayed(np.minimum(step, decay), initial_learning_rate)
        warmup = float(warmup_steps)
        step = np.minimum(step, decay + warmup)
        with np.errstate(all="ignore"):
            ramp = (warmup_target - initial_learning_rate) * (step / warmup) + initial_learning_rate
        return np.where(step < warmup, ramp, decayed(step - warmup, warmup_target))

    return value


def cosine_decay_restarts(
    initial_learning_rate: float,
    first_decay_steps: float,
    t_mul: float,
    m_mul: float,
    alpha: float,
) -> Value:
    r"""``CosineDecayRestarts`` (SGDR): on :math:`f = k / T_0`, cycle
    :math:`i = \lfloor\log(1 - f(1 - t))/\log t\rfloor` (``floor(f)`` for ``t_mul = 1``),
    value :math:`I((1-\alpha)\,m^i\,\tfrac12(1+\cos\pi f_i) + \alpha)`; the floor is not
    scaled by ``m_mul``, and cycles go on forever."""

    def value(k: IntArray) -> FloatArray:
        fraction = k.astype(np.float64) / float(first_decay_steps)
        if t_mul == 1.0:
            restart = np.floor(fraction)
            fraction = fraction - restart
        else:
            with np.errstate(all="ignore"):
                restart = np.floor(np.log(1.0 - fraction * (1.0 - t_mul)) / np.log(t_mul))
                sum_r = (1.0 - np.power(t_mul, restart)) / (1.0 - t_mul)
                fraction = (fraction - sum_r) / np.power(t_mul, restart)
        with np.errstate(all="ignore"):
            m_fac = np.power(float(m_mul), restart)
        cosine = 0.5 * m_fac * (1.0 + np.cos(math.pi * fraction))
        result: FloatArray = initial_learning_rate * ((1 - alpha) * cosine + alpha)
        return result

    return value
