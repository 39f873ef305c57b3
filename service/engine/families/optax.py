r"""optax schedules (``optax/schedules/_schedule.py``, ``_join.py``, v0.2.8), in float64.

An optax schedule maps the update count to the value itself: the lr of step ``k`` is
``schedule(k)`` where ``k`` counts the updates already applied (the first update uses
``k = 0``). The value is the same for every param group (use ``scale`` for per-group
values); the optimizer's ``lr`` is not used. optax evaluates in the dtype of its inputs
(float32 under JAX's default); these are the float64 (``jax_enable_x64``) values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from service.engine.cancel import checkpoint
from service.engine.types import FloatArray, IntArray

Value = Callable[[IntArray], FloatArray]


def constant(value: float) -> Value:
    """``constant_schedule``: ``value``."""
    return lambda k: np.full(k.shape, float(value))


def polynomial(
    init_value: float, end_value: float, power: float, transition_steps: int, transition_begin: int
) -> Value:
    r"""``polynomial_schedule``: :math:`(I - E)(1 - c/T)^P + E`, ``c = clip(k - B, 0, T)``.

    ``transition_steps <= 0`` is the constant ``init_value``; a negative begin counts as 0.
    """
    if transition_steps <= 0:
        return constant(init_value)
    begin = max(transition_begin, 0)

    def value(k: IntArray) -> FloatArray:
        count = np.clip(k - begin, 0, transition_steps)
        frac = 1 - count / transition_steps
        result: FloatArray = (init_value - end_value) * (frac**power) + end_value
        return result

    return value


def piecewise_constant(init_value: float, boundaries_and_scales: dict[int, float]) -> Value:
    r"""``piecewise_constant_schedule``: :math:`I \prod_{b_i \le k} s_i` (switches *at* b).

    optax updates the value at every boundary in sorted order, ``v = v * x + (1 - x) * s * v``
    with ``x = 1`` before the boundary and 0 from it on; so the value at ``k`` depends only
    on how many boundaries ``k`` has reached, and is looked up in a table of those values.
    Entry ``j`` applies the first ``j`` updates as scalings (``v * 0 + s * v``, in order: the
    same multiplications) and the rest as ``v * 1 + (0 * s) * v``, which keeps every value
    but turns an infinite one into NaN and ``-0.0`` into ``0.0`` if some ``s`` is ``-0.0``
    (the scales are finite).
    """
    items = sorted(boundaries_and_scales.items())
    scales = [float(scale) for _, scale in items]
    try:
        thresholds: IntArray | None = np.asarray([t for t, _ in items], dtype=np.int64)
    except OverflowError:
        thresholds = None  # as optax's ``threshold - k``: an error once evaluated
    table = [float(init_value)]
    for scale in scales:
        v = table[-1]
        table.append(v * 0.0 + scale * v)
    negative_zero_scale = False  # some scale from entry j on is -0.0
    for j in range(len(scales) - 1, -1, -1):
        negative_zero_scale = negative_zero_scale or math.copysign(1.0, scales[j]) < 0
        v = table[j]
        if math.isinf(v):
            table[j] = v * 1.0 + (0.0 * scales[j]) * v
        elif v == 0.0 and negative_zero_scale:
            table[j] = 0.0
    values = np.asarray(table, dtype=np.float64)

    def value(k: IntArray) -> FloatArray:
        if thresholds is None:
            raise OverflowError("Python int too large to convert to C long")
        out: FloatArray = values[np.searchsorted(thresholds, k, side="right")]
        return out

    return value


def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int,
    staircase: bool,
    end_value: float | None,
) -> Value:
    r"""``exponential_decay``: ``I`` up to ``B``, then :math:`I r^{(k-B)/T}` (floored if
    ``staircase``), clipped below by ``end_value`` when ``r < 1``, above when ``r >= 1``.

    ``transition_steps <= 0`` or ``decay_rate == 0`` is the constant ``init_value``.
    """
    if transition_steps <= 0 or decay_rate == 0:
        return constant(init_value)
    begin = max(transition_begin, 0)

    def value(k: IntArray) -> FloatArray:
        decreased = k - begin
        p = decreased / transition_steps
        if staircase:
            p = np.floor(p)
        with np.errstate(all="ignore"):
            decayed = np.where(
                decreased <= 0, init_value, init_value * np.power(float(decay_rate), p)
            )
        if end_value is not None:
            clip = np.maximum if decay_rate < 1.0 else np.minimum
            decayed = clip(decayed, end_value)
        return np.asarray(decayed, dtype=np.float64)

    return value


def cosine_decay(init_value: float, decay_steps: int, alpha: float, exponent: float) -> Value:
    r"""``cosine_decay_schedule``.

    :math:`I((1-\alpha)(\tfrac12(1+\cos(\pi\min(k,T)/T)))^e+\alpha)`.
    """

    def value(k: IntArray) -> FloatArray:
        count = np.minimum(k.astype(np.float64), float(decay_steps))
        cosine = 0.5 * (1 + np.cos(np.pi * count / float(decay_steps)))
        decayed = (1 - alpha) * cosine**exponent + alpha
        result: FloatArray = init_value * decayed
        return result

    return value


def join(schedules: Sequence[Value], boundaries: Sequence[int]) -> Value:
    """``join_schedules``: ``schedules[i](k - boundaries[i-1])`` from each boundary on.

    As optax's ``jnp.where`` chain: the last boundary (in list order) that ``k`` has reached
    wins, and each schedule sees the step count since its own boundary.
    """

    # The last boundary (in list order) at or before k is the last one whose suffix minimum
    # is: the suffix minima are sorted, and the count of those <= k is the schedule's index.
    reached = np.minimum.accumulate(np.asarray(boundaries, dtype=np.int64)[::-1])[::-1]

    def value(k: IntArray) -> FloatArray:
        chosen = np.searchsorted(reached, k, side="right")
        out = np.empty(k.shape)
        if k.ndim != 1 or not bool(np.all(chosen[1:] >= chosen[:-1])):
            order = np.argsort(chosen.ravel(), kind="stable")  # each piece's steps, in their order
            ends = np.cumsum(np.bincount(chosen.ravel(), minlength=len(schedules)))
            for index, schedule in enumerate(schedules):
                begin = 0 if index == 0 else int(ends[index - 1])
                if ends[index] > begin:
                    checkpoint()
                    where = np.unravel_index(order[begin : ends[index]], k.shape)
                    offset = 0 if index == 0 else boundaries[index - 1]
                    out[where] = schedule(k[where] - offset)
            return out
        # Steps in order (the usual case): each piece is a slice.
        bounds = np.searchsorted(chosen, np.arange(len(schedules) + 1), side="left")
        for index, schedule in enumerate(schedules):
            begin, end = int(bounds[index]), int(bounds[index + 1])
            if end > begin:
                checkpoint()
                offset = 0 if index == 0 else boundaries[index - 1]
                out[begin:end] = schedule(k[begin:end] - offset)
        return out

    return value


def warmup_cosine_decay(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float,
    exponent: float,
) -> Value:
    r"""``warmup_cosine_decay_schedule``: linear ``I -> peak`` over ``W``, then cosine decay to
    ``end_value`` over ``decay_steps - W`` (``decay_steps`` *includes* the warmup)."""
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    return join(
        [
            polynomial(init_value, peak_value, 1, warmup_steps, 0),
            cosine_decay(peak_value, decay_steps - warmup_steps, alpha, exponent),
        ],
        [warmup_steps],
    )


def sgdr(cycles: Sequence[dict[str, float]]) -> Value:
    """``sgdr_schedule``: ``warmup_cosine_decay`` cycles joined at their ``decay_steps``."""
    boundaries: list[int] = []
    schedules: list[Value] = []
    step = 0
    for kwargs in cycles:
        decay_steps = int(kwargs["decay_steps"])
        schedules.append(
            warmup_cosine_decay(
                kwargs["init_value"],
                kwargs["peak_value"],
                int(kwargs["warmup_steps"]),
                decay_steps,
                kwargs.get("end_value", 0.0),
                kwargs.get("exponent", 1.0),
            )
        )
        boundaries.append(step + decay_steps)
        step += decay_steps
    return join(schedules, boundaries[:-1])


def piecewise_interpolate(
    interpolate_type: str, init_value: float, boundaries_and_scales: dict[int, float]
) -> Value:
    r"""``piecewise_interpolate_schedule``: interpolate (linear or cosine) between the
    *cumulative* values :math:`I\prod_{j \le i} s_j` at the sorted boundaries; hold the last."""
    items = sorted(boundaries_and_scales.items())
    bounds = np.asarray([0] + [b for b, _ in items], dtype=np.float64)
    values = np.cumprod(np.asarray([init_value] + [s for _, s in items], dtype=np.float64))

    sizes = np.maximum(bounds[1:] - bounds[:-1], 1)
    with np.errstate(all="ignore"):  # as optax: an overflowed value makes NaNs, no warning
        low, rise, half = bounds[:-1], values[1:] - values[:-1], (values[:-1] - values[1:]) / 2.0
    pieces = bounds.shape[0] - 1

    def value(k: IntArray) -> FloatArray:
        # optax adds one term per piece (its interpolation inside it, 0.0 elsewhere), then
        # the last value from the last boundary on. The pieces [b_i, b_{i+1}) are disjoint
        # (the boundaries after 0 are sorted; the first piece ends at the smallest), so each
        # step has at most one, found by bisection: the sum is 0.0 + that term + 0.0s.
        kf = k.astype(np.float64)
        if pieces == 0:
            out = np.zeros(k.shape)
        else:
            piece = np.searchsorted(bounds[1:], kf, side="right")  # boundaries reached
            inside = (piece < pieces) & ((piece > 0) | (kf >= 0.0))
            i = np.minimum(piece, pieces - 1)
            pct = (kf - low[i]) / sizes[i]
            if interpolate_type == "linear":
                interp = rise[i] * pct + values[:-1][i]
            else:
                interp = values[1:][i] + half[i] * (np.cos(np.pi * pct) + 1)
            out = np.where(inside, interp, 0.0) + 0.0
        result: FloatArray = out + (bounds[-1] <= kf) * values[-1]
        return result

    return value


def linear_onecycle(
    transition_steps: int,
    peak_value: float,
    pct_start: float,
    pct_final: float,
    div_factor: float,
    final_div_factor: float,
) -> Value:
    """``linear_onecycle_schedule``: linear knots at ``int(pct_start T)``, ``int(pct_final T)``.

    The values: ``peak/div`` at 0, ``peak`` at the first knot, ``peak/div`` at the second,
    ``peak/div/final_div`` at ``T``.
    """
    return piecewise_interpolate(
        "linear",
        peak_value / div_factor,
        {
            int(pct_start * transition_steps): div_factor,
            int(pct_final * transition_steps): 1.0 / div_factor,
            transition_steps: 1.0 / final_div_factor,
        },
    )


def cosine_onecycle(
    transition_steps: int,
    peak_value: float,
    pct_start: float,
    div_factor: float,
    final_div_factor: float,
) -> Value:
    """``cosine_onecycle_schedule``: cosine knots ``peak/div -> peak -> peak/(div final_div)``."""
    return piecewise_interpolate(
        "cosine",
        peak_value / div_factor,
        {
            int(pct_start * transition_steps): div_factor,
            int(transition_steps): 1.0 / (div_factor * final_div_factor),
        },
    )
