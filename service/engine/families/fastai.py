r"""fastai's ``fit_one_cycle`` and ``fit_flat_cos`` (``fastai/callback/schedule.py``, v2.8).

fastai sets the hyper-parameters before each batch from ``pos = pct_train``, the fraction
of training done: batch ``k`` (counting from 0 over all epochs) has ``pos = k / (n_epoch
n_iter)``; step ``k`` here is that batch. Past the end (``pos >= 1``) fastai's own function is
evaluated as is (its last cosine keeps turning). The peak lr is ``lr_max`` (or, when it is
omitted, the optimizer's lr of each param group).

``combine_scheds`` keeps the phase boundaries in a float32 tensor, so the position within a
phase is float32: :math:`q = f_{32}(f_{32}(pos) - c_i) / f_{32}(c_{i+1} - c_i)`, then
``sched_cos(start, end, q) = start + (1 + cos(pi (1 - q))) (end - start) / 2`` in float64.
"""

from __future__ import annotations

import math

import numpy as np

from service.engine.families.base import Formula
from service.engine.types import FloatArray, IntArray


def _phase(k: IntArray, total: int, pct: float) -> tuple[np.ndarray, FloatArray]:
    """``combine_scheds([pct, 1 - pct], ...)``: the phase (0, 1) and float32 position in it."""
    bounds = np.cumsum(np.asarray([0.0, pct, 1 - pct], dtype=np.float32), dtype=np.float32)
    pos = (k.astype(np.float64) * (1.0 / total)).astype(np.float32)
    idx = np.minimum(np.where(pos >= bounds[1], 1, 0), 1)
    idx = np.where(pos >= bounds[2], 1, idx)
    low = bounds[idx]
    width = (bounds[idx + 1] - low).astype(np.float32)
    with np.errstate(all="ignore"):
        q = ((pos - low).astype(np.float32) / width).astype(np.float32)
    return idx, q.astype(np.float64)


def _cos(start: FloatArray, end: FloatArray, q: FloatArray) -> FloatArray:
    result: FloatArray = start + (1 + np.cos(math.pi * (1 - q))) * (end - start) / 2
    return result


def combined_cos(
    k: IntArray, total: int, pct: float, start: FloatArray, middle: FloatArray, end: FloatArray
) -> FloatArray:
    """``combined_cos(pct, start, middle, end)`` at batches ``k``; ``start`` etc. are (G, 1)."""
    idx, q = _phase(k, total, pct)
    first = _cos(start, middle, q[None, :])
    second = _cos(middle, end, q[None, :])
    return np.where(idx[None, :] == 0, first, second)


def one_cycle_lr(
    total: int, lr_max: FloatArray | None, div: float, div_final: float, pct_start: float
) -> Formula:
    """``fit_one_cycle`` lr: ``combined_cos(pct_start, lr_max/div, lr_max, lr_max/div_final)``."""

    def formula(k: IntArray, base: FloatArray) -> FloatArray:
        peak = (base if lr_max is None else lr_max)[:, None]
        return combined_cos(k, total, pct_start, peak / div, peak, peak / div_final)

    return formula


def one_cycle_momentum(total: int, moms: tuple[float, float, float], pct_start: float) -> Formula:
    """``fit_one_cycle`` momentum: ``combined_cos(pct_start, *moms)``, the same for every group."""

    def formula(k: IntArray, base: FloatArray) -> FloatArray:
        ones = np.ones((base.shape[0], 1))
        return combined_cos(k, total, pct_start, moms[0] * ones, moms[1] * ones, moms[2] * ones)

    return formula


def flat_cos(total: int, lr: FloatArray | None, div_final: float, pct_start: float) -> Formula:
    """``fit_flat_cos``: ``combined_cos(pct_start, lr, lr, lr/div_final)`` (flat, then cosine)."""

    def formula(k: IntArray, base: FloatArray) -> FloatArray:
        peak = (base if lr is None else lr)[:, None]
        return combined_cos(k, total, pct_start, peak, peak, peak / div_final)

    return formula
