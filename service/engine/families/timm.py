r"""timm schedulers (``timm/scheduler/*.py``, v1.0.31): cosine, tanh, poly, step, multistep.

timm sets ``lr = _get_lr(t)`` (plus noise) on ``scheduler.step(t)`` / ``step_update(t)``;
step ``k`` here is ``t = k``, in whatever unit the trainer passes (epochs with
``t_in_epochs=True``, optimizer updates otherwise). The base value of each param group is
its lr (timm's ``initial_lr``); ``lr_min`` and ``warmup_lr_init`` are absolute.

Shared structure (``cosine_lr.py`` ``_get_lr``): for ``t < warmup_t`` the lr is
``warmup_lr_init + t (base - warmup_lr_init) / warmup_t`` (base is never reached); then, with
``warmup_prefix``, ``t -= warmup_t``; cycles: ``cycle_mul == 1`` gives ``i = t // T``,
``t_i = T``, ``t_c = t - i T``; otherwise
``i = floor(log(1 - t/T (1 - m), m))``, ``t_i = m^i T``, ``t_c = t - (1 - m^i)/(1 - m) T``;
the peak of cycle ``i`` is ``base * cycle_decay^i``; from ``i >= cycle_limit`` on, ``lr_min``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rules.errors import Loc, ScheduleError
from service.engine.compose import bisect_right_many
from service.engine.families import noise
from service.engine.families.base import Formula
from service.engine.nodes import fail_where
from service.engine.types import FloatArray, IntArray


@dataclass(frozen=True, slots=True)
class Warmup:
    """timm's ``warmup_t``, ``warmup_lr_init``, ``warmup_prefix``."""

    t: int
    lr_init: float
    prefix: bool


@dataclass(frozen=True, slots=True)
class Cycles:
    """timm's ``t_initial``, ``cycle_mul``, ``cycle_decay``, ``cycle_limit``."""

    t_initial: float
    mul: float
    decay: float
    limit: int


@dataclass(frozen=True, slots=True)
class Noise:
    """timm's ``noise_range_t`` (int: from t on; pair: [a, b)), pct, std, seed.

    The noise is ``normal``: timm's public schedulers take no ``noise_type``.
    """

    range_t: int | tuple[int, int] | None
    pct: float
    std: float
    seed: int

    def applies(self, t: IntArray) -> np.ndarray:
        if self.range_t is None:
            return np.zeros(t.shape, dtype=bool)
        if isinstance(self.range_t, tuple):
            low, high = self.range_t
            return (low <= t) & (t < high)
        return t >= self.range_t


Shape = Callable[[FloatArray, FloatArray, FloatArray, FloatArray], FloatArray]
"""``shape(lr_max (G,1), t_curr (n,), t_i (n,), lr_min)`` -> (G, n)."""


def _cycle_index(t: FloatArray, cycles: Cycles, loc: Loc, k: IntArray) -> FloatArray:
    """timm's ``floor(math.log(1 - t / T * (1 - m), m))`` (math.log near integers)."""
    m = cycles.mul
    inner = 1 - t / cycles.t_initial * (1 - m)
    fail_where(
        inner <= 0,
        f"cycle_mul={m}: past the last cycle timm raises ValueError (math domain error)",
        (*loc, "cycle_mul"),
        at=k,
    )
    with np.errstate(all="ignore"):
        ratio = np.log(inner) / np.log(m)
    index: FloatArray = np.floor(ratio)
    near = np.flatnonzero(np.abs(ratio - np.round(ratio)) < 1e-9)
    for j in near:  # where rounding decides the cycle, use Python's own math.log
        index[j] = math.floor(math.log(float(inner[j]), m))
    return index


def cyclic(
    shape: Shape, cycles: Cycles, warmup: Warmup, lr_min: float, noise_: Noise, loc: Loc
) -> Formula:
    """A timm cycle scheduler (cosine, tanh, poly) as a formula of ``(k, base_lrs)``."""

    def main(t_raw: IntArray, base: FloatArray, k: IntArray) -> FloatArray:
        t = (t_raw - warmup.t if warmup.prefix else t_raw).astype(np.float64)
        if cycles.mul != 1:
            i = _cycle_index(t, cycles, loc, k)
            t_i = cycles.mul**i * cycles.t_initial
            t_curr = t - (1 - cycles.mul**i) / (1 - cycles.mul) * cycles.t_initial
        else:
            i = np.floor_divide(t, cycles.t_initial)
            t_i = np.full(t.shape, float(cycles.t_initial))
            t_curr = t - cycles.t_initial * i
        gamma = cycles.decay**i
        lr_max = base[:, None] * gamma[None, :]
        values = shape(lr_max, t_curr, t_i, np.asarray(lr_min))
        return np.where((i < cycles.limit)[None, :], values, lr_min)

    def formula(k: IntArray, base: FloatArray) -> FloatArray:
        return _with_warmup_and_noise(k, base, main, warmup, noise_, None, loc)

    return formula


def tanh_target(shape: Shape, cycles: Cycles, warmup: Warmup, lr_min: float, loc: Loc) -> Formula:
    """The value tanh's warmup aims at: base (prefix) or the tanh curve at ``warmup_t``."""
    inner = cyclic(shape, cycles, Warmup(0, 0.0, warmup.prefix), lr_min, NO_NOISE, loc)

    def target(k: IntArray, base: FloatArray) -> FloatArray:
        if warmup.prefix:
            return base[:, None] * np.ones((1, k.shape[0]))
        return inner(np.full(k.shape, warmup.t, dtype=np.int64), base)

    return target


def _with_warmup_and_noise(
    k: IntArray,
    base: FloatArray,
    main: Callable[[IntArray, FloatArray, IntArray], FloatArray],
    warmup: Warmup,
    noise_: Noise,
    warmup_target: FloatArray | None,
    loc: Loc,
) -> FloatArray:
    out = np.empty((base.shape[0], k.shape[0]))
    warming = k < warmup.t
    if warming.any():
        target = base if warmup_target is None else warmup_target
        steps = (target - warmup.lr_init) / warmup.t
        out[:, warming] = warmup.lr_init + k[warming][None, :] * steps[:, None]
    if (~warming).any():
        out[:, ~warming] = main(k[~warming], base, k[~warming])
    noisy = noise_.applies(k)
    if noisy.any():
        seeds = noise_.seed + k[noisy]
        try:
            n = noise.normal_noise(seeds, noise_.pct, noise_.std)
        except ValueError as error:
            raise ScheduleError(str(error), (*loc, "noise_pct")) from None
        out[:, noisy] = out[:, noisy] + out[:, noisy] * n[None, :]
    return out


NO_NOISE = Noise(None, 0.67, 1.0, 42)


def cosine_shape(k_decay: float) -> Shape:
    r"""``CosineLRScheduler``: :math:`m + \tfrac12(M - m)(1 + \cos(\pi t_c^k / t_i^k))`."""

    def shape(
        lr_max: FloatArray, t_curr: FloatArray, t_i: FloatArray, lr_min: FloatArray
    ) -> FloatArray:
        with np.errstate(all="ignore"):
            angle = math.pi * t_curr**k_decay / t_i**k_decay
        result: FloatArray = lr_min + 0.5 * (lr_max - lr_min) * (1 + np.cos(angle))[None, :]
        return result

    return shape


def poly_shape(power: float, k_decay: float) -> Shape:
    r"""``PolyLRScheduler``: :math:`m + (M - m)(1 - t_c^k / t_i^k)^p`."""

    def shape(
        lr_max: FloatArray, t_curr: FloatArray, t_i: FloatArray, lr_min: FloatArray
    ) -> FloatArray:
        with np.errstate(all="ignore"):
            fraction = (1 - t_curr**k_decay / t_i**k_decay) ** power
        result: FloatArray = lr_min + (lr_max - lr_min) * fraction[None, :]
        return result

    return shape


def tanh_shape(lb: float, ub: float) -> Shape:
    r"""``TanhLRScheduler``: :math:`m + \tfrac12(M - m)(1 - \tanh(lb(1 - r) + ub\,r))`.

    With :math:`r = t_c / t_i`.
    """

    def shape(
        lr_max: FloatArray, t_curr: FloatArray, t_i: FloatArray, lr_min: FloatArray
    ) -> FloatArray:
        tr = t_curr / t_i
        result: FloatArray = (
            lr_min + 0.5 * (lr_max - lr_min) * (1 - np.tanh(lb * (1.0 - tr) + ub * tr))[None, :]
        )
        return result

    return shape


def tanh(
    shape: Shape, cycles: Cycles, warmup: Warmup, lr_min: float, noise_: Noise, loc: Loc
) -> Formula:
    """``TanhLRScheduler``: its warmup aims at the tanh value at ``warmup_t`` without prefix."""
    plain = cyclic(shape, cycles, Warmup(0, 0.0, warmup.prefix), lr_min, NO_NOISE, loc)
    target = tanh_target(shape, cycles, warmup, lr_min, loc)

    def main(t: IntArray, base: FloatArray, k: IntArray) -> FloatArray:
        if warmup.prefix:
            return plain(t - warmup.t, base)
        return plain(t, base)

    def formula(k: IntArray, base: FloatArray) -> FloatArray:
        aim = target(np.zeros(1, dtype=np.int64), base)[:, 0] if warmup.t else None
        return _with_warmup_and_noise(k, base, main, warmup, noise_, aim, loc)

    return formula


def step(decay_t: float, decay_rate: float, warmup: Warmup, noise_: Noise, loc: Loc) -> Formula:
    """``StepLRScheduler``: ``base * decay_rate ** (t // decay_t)`` (prefix warmup by default)."""

    def main(t_raw: IntArray, base: FloatArray, k: IntArray) -> FloatArray:
        t = t_raw - warmup.t if warmup.prefix else t_raw
        with np.errstate(all="ignore"):
            factor = float(decay_rate) ** np.floor_divide(t.astype(np.float64), decay_t)
        result: FloatArray = base[:, None] * factor[None, :]
        return result

    return lambda k, base: _with_warmup_and_noise(k, base, main, warmup, noise_, None, loc)


def multistep(
    decay_t: Sequence[float], decay_rate: float, warmup: Warmup, noise_: Noise, loc: Loc
) -> Formula:
    """``MultiStepLRScheduler``: ``base * decay_rate ** bisect_right(decay_t, t + 1)``.

    The ``t + 1`` makes each decay happen one step *before* its milestone (timm PR #2745).
    """

    def main(t_raw: IntArray, base: FloatArray, k: IntArray) -> FloatArray:
        t = t_raw - warmup.t if warmup.prefix else t_raw
        count = bisect_right_many(list(decay_t), (t + 1).astype(np.float64))
        factor = float(decay_rate) ** count.astype(np.float64)
        result: FloatArray = base[:, None] * factor[None, :]
        return result

    return lambda k, base: _with_warmup_and_noise(k, base, main, warmup, noise_, None, loc)
