r"""Hugging Face ``transformers.optimization`` schedules, as multipliers of the base lr.

Every HF factory returns ``LambdaLR(optimizer, lr_lambda)``, so the lr of group ``g`` at step
``k`` (``k`` calls of ``scheduler.step()``; the Trainer steps once per optimizer update) is
``base_lr_g * lr_lambda(k)``. Each function below is that ``lr_lambda``, vectorized, in the
order of operations of ``transformers/optimization.py`` (v5.23). Notation: ``W`` warmup steps,
``T`` training steps, ``p`` progress.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from rules.errors import Loc
from service.engine.nodes import fail_where
from service.engine.types import FloatArray, IntArray

Factor = Callable[[IntArray], FloatArray]


def _warmup(k: FloatArray, warmup: int) -> FloatArray:
    """HF's linear warmup from 0: ``k / max(1, W)``."""
    result: FloatArray = k / float(max(1, warmup))
    return result


def constant() -> Factor:
    """``get_constant_schedule``: 1."""
    return lambda k: np.ones(k.shape)


def constant_with_warmup(num_warmup_steps: int) -> Factor:
    """``get_constant_schedule_with_warmup``: ``k / max(1, W)`` for ``k < W``, then 1."""

    def factor(k: IntArray) -> FloatArray:
        kf = k.astype(np.float64)
        return np.where(k < num_warmup_steps, kf / float(max(1.0, num_warmup_steps)), 1.0)

    return factor


def linear(num_warmup_steps: int, num_training_steps: int) -> Factor:
    """``get_linear_schedule_with_warmup``: warmup, then ``max(0, (T - k) / max(1, T - W))``."""

    def factor(k: IntArray) -> FloatArray:
        kf = k.astype(np.float64)
        decay = np.maximum(
            0.0,
            (num_training_steps - k).astype(np.float64)
            / float(max(1, num_training_steps - num_warmup_steps)),
        )
        return np.where(k < num_warmup_steps, _warmup(kf, num_warmup_steps), decay)

    return factor


def _progress(k: IntArray, warmup: int, training: int) -> FloatArray:
    result: FloatArray = (k - warmup).astype(np.float64) / float(max(1, training - warmup))
    return result


def cosine(
    num_warmup_steps: int, num_training_steps: int, num_cycles: float, min_lr_rate: float = 0.0
) -> Factor:
    r"""``get_cosine_schedule_with_warmup`` (and ``..._with_min_lr`` with ``min_lr_rate`` r).

    After warmup: :math:`\max(0, (\tfrac12(1 + \cos(2\pi\,n_c\,p)))(1 - r) + r)` with
    :math:`p = (k - W) / \max(1, T - W)`; ``num_cycles > 0.5`` makes it rise again.
    """

    def factor(k: IntArray) -> FloatArray:
        kf = k.astype(np.float64)
        progress = _progress(k, num_warmup_steps, num_training_steps)
        value = 0.5 * (1.0 + np.cos(math.pi * float(num_cycles) * 2.0 * progress))
        if min_lr_rate:
            value = value * (1 - min_lr_rate) + min_lr_rate
        decay = np.maximum(0.0, value)
        return np.where(k < num_warmup_steps, _warmup(kf, num_warmup_steps), decay)

    return factor


def cosine_with_restarts(
    num_warmup_steps: int, num_training_steps: int, num_cycles: float
) -> Factor:
    r"""``get_cosine_with_hard_restarts_schedule_with_warmup``.

    After warmup: 0 once :math:`p \ge 1`, else :math:`\max(0, \tfrac12(1 + \cos(\pi\,((n_c p)
    \bmod 1))))`.
    """

    def factor(k: IntArray) -> FloatArray:
        kf = k.astype(np.float64)
        progress = _progress(k, num_warmup_steps, num_training_steps)
        wave = np.maximum(
            0.0, 0.5 * (1.0 + np.cos(math.pi * np.mod(float(num_cycles) * progress, 1.0)))
        )
        wave = np.where(progress >= 1.0, 0.0, wave)
        return np.where(k < num_warmup_steps, _warmup(kf, num_warmup_steps), wave)

    return factor


def cosine_warmup_with_min_lr(
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float,
    min_lr_rate: float,
    warmup_lr_rate: float | None,
) -> Factor:
    r"""``get_cosine_with_min_lr_schedule_with_warmup_lr_rate`` (``cosine_warmup_with_min_lr``).

    Warmup ``(k + 1) / max(1, W)``, or ``w + (1 - w) k / max(1, W - 1)`` with
    ``warmup_lr_rate`` w (both reach 1 at ``k = W - 1``); then the cosine with floor r on
    :math:`p = (k - W + 1) / \max(1, T - W)`, one step ahead of ``cosine_with_min_lr``.
    """
    warmup = float(num_warmup_steps)
    training = float(num_training_steps)

    def factor(k: IntArray) -> FloatArray:
        kf = k.astype(np.float64)
        if warmup_lr_rate is None:
            ramp = (kf + 1.0) / max(1.0, warmup)
        else:
            rate = float(warmup_lr_rate)
            ramp = rate + (1.0 - rate) * kf / max(1, warmup - 1)
        progress = (kf - warmup + 1.0) / max(1.0, training - warmup)
        value = 0.5 * (1.0 + np.cos(math.pi * num_cycles * 2.0 * progress))
        value = value * (1 - min_lr_rate) + min_lr_rate
        return np.where(kf < warmup, ramp, np.maximum(0, value))

    return factor


def polynomial(
    num_warmup_steps: int,
    num_training_steps: int,
    lr_end: float,
    power: float,
    lr_init: float,
    loc: Loc,
) -> Factor:
    r"""``get_polynomial_decay_schedule_with_warmup``; ``lr_init`` is ``optimizer.defaults["lr"]``.

    After warmup, for :math:`k \le T`: :math:`((l_0 - l_e)(1 - (k - W)/(T - W))^P + l_e) / l_0`;
    past T: :math:`l_e / l_0`. With ``T == W`` HF divides by zero at step ``T``.
    """

    def factor(k: IntArray) -> FloatArray:
        kf = k.astype(np.float64)
        decay_steps = num_training_steps - num_warmup_steps
        in_decay = (k >= num_warmup_steps) & (k <= num_training_steps)
        if decay_steps == 0:
            fail_where(
                in_decay,
                f"num_training_steps == num_warmup_steps == {decay_steps + num_warmup_steps}: "
                "transformers raises ZeroDivisionError (float division by zero)",
                (*loc, "num_training_steps"),
                at=k,
            )
        with np.errstate(all="ignore"):
            pct_remaining = 1 - (kf - num_warmup_steps) / decay_steps
            decay = (lr_init - lr_end) * np.power(np.where(in_decay, pct_remaining, 1.0), power)
        decayed = (decay + lr_end) / lr_init
        after = np.where(k > num_training_steps, lr_end / lr_init, decayed)
        return np.where(k < num_warmup_steps, _warmup(kf, num_warmup_steps), after)

    return factor


def inverse_sqrt(num_warmup_steps: int, timescale: int) -> Factor:
    r"""``get_inverse_sqrt_schedule``: after warmup :math:`1/\sqrt{(k + s - W)/s}`, s timescale."""

    def factor(k: IntArray) -> FloatArray:
        kf = k.astype(np.float64)
        shift = timescale - num_warmup_steps
        with np.errstate(all="ignore"):
            decay = 1.0 / np.sqrt((k + shift).astype(np.float64) / timescale)
        return np.where(k < num_warmup_steps, _warmup(kf, num_warmup_steps), decay)

    return factor


def _shape(kind: str, progress: FloatArray, num_cycles: float, rising: bool) -> FloatArray:
    if kind == "linear":
        return progress if rising else 1.0 - progress
    if kind == "cosine":
        if rising:
            result: FloatArray = 0.5 * (1.0 - np.cos(math.pi * progress))
            return result
        return 0.5 * (1.0 + np.cos(math.pi * float(num_cycles) * 2.0 * progress))
    with np.errstate(invalid="ignore"):
        if rising:
            return 1.0 - np.sqrt(1.0 - progress)
        return 1.0 - np.sqrt(progress)


def wsd(
    num_warmup_steps: int,
    num_stable_steps: int,
    num_decay_steps: int,
    warmup_type: str,
    decay_type: str,
    min_lr_ratio: float,
    num_cycles: float,
) -> Factor:
    r"""``get_wsd_schedule``: warmup, stable at 1, decay, then ``min_lr_ratio`` m.

    Warmup ``f(k / max(1, W))`` with f linear, cosine :math:`\tfrac12(1-\cos\pi p)` or 1-sqrt
    :math:`1-\sqrt{1-p}`; decay on :math:`p = (k - W - S)/\max(1, D)`: linear ``1 - p``, cosine
    :math:`\tfrac12(1+\cos 2\pi n_c p)` or :math:`1-\sqrt p`; both mapped by ``f (1 - m) + m``
    and clipped at 0.
    """

    def factor(k: IntArray) -> FloatArray:
        kf = k.astype(np.float64)
        up = _shape(warmup_type, kf / float(max(1, num_warmup_steps)), num_cycles, rising=True)
        up = np.maximum(0.0, up * (1.0 - min_lr_ratio) + min_lr_ratio)
        decay_start = num_warmup_steps + num_stable_steps
        progress = (k - decay_start).astype(np.float64) / float(max(1, num_decay_steps))
        down = _shape(decay_type, progress, num_cycles, rising=False)
        down = np.maximum(0.0, down * (1.0 - min_lr_ratio) + min_lr_ratio)
        return np.select(
            [k < num_warmup_steps, k < decay_start, k < decay_start + num_decay_steps],
            [up, np.ones(k.shape), down],
            float(min_lr_ratio),
        )

    return factor
