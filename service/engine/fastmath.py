r"""Cosine curves at memory speed: angle-addition tables, one matrix product, tiling.

A cosine schedule evaluated on ``range(start, stop, stride)`` needs
:math:`\alpha + \beta \cos\theta_i` for angles in arithmetic progression,
:math:`\theta_i = \pi\,(x_0 + i\,dx) / L`. numpy's float64 ``cos`` is not vectorized on
every CPU (10-90 ns per value here), so instead of one ``cos`` per step the progression is
split as :math:`i = rF + j` (``F`` a power of two near :math:`\sqrt n`) and

.. math:: \cos(a_r + b_j) = \cos a_r \cos b_j - \sin a_r \sin b_j

with a *coarse* table (:math:`a_r`, one row per ``F`` steps) and a *fine* table
(:math:`b_j`, ``F`` entries), each computed once per request with ``np.cos``/``np.sin`` (so
exact to an ulp at the table points). The combination with :math:`\alpha, \beta` is a
rank-3 matrix product (``dgemm``, inner dimension 3) per block of rows, written straight
into the result: one pass over memory. float32 results are computed in float64 per block
(in cache) and rounded once when stored. The absolute error is a few ulps of
:math:`\max(|\alpha|, |\beta|)` (about 1e-16 of the curve's scale), far inside the
service's contract (1e-9 relative to PyTorch, 1e-12 of the maximum near zero).

Periodic curves are computed over one period and tiled by doubling copies (:func:`tile`).

Angles are reduced *exactly*: a periodic angle :math:`\pi x / L` uses
:math:`x \bmod 2L` (``np.fmod`` is exact in IEEE arithmetic, and steps are exact in
float64 below :math:`2^{53}`), so step 1e12 of a cosine is as accurate as step 10, where
the textbook ``cos(pi * k / T)`` loses digits with the size of ``pi * k``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.limits import COSINES_KEPT

Values = NDArray[np.floating[Any]]
"""A 1-d contiguous float64 or float32 array the kernels write into."""

TABLE_MIN = 2048
"""Below this many values one ``np.cos`` per value is as fast as building tables."""
BLOCK = 1 << 15
"""Values per matrix product (256 KiB of float64: the block stays in the L2 cache)."""
_LARGEST = np.finfo(np.float64).max / 4


@dataclass(frozen=True, slots=True)
class Progression:
    r"""Angles :math:`\theta_i = \pi\,r(x_0 + i\,dx) / L` for ``i`` in ``range(n)``.

    ``r`` is ``x mod 2L`` (``periodic``) or the identity. ``x0``/``dx`` are exact in float64
    when they are integers below :math:`2^{53}` (steps always are).
    """

    x0: float
    dx: float
    length: float
    periodic: bool = False

    def angles(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        r""":math:`\pi\,r(x)/L` for positions ``x`` (already ``x0 + i dx``)."""
        if self.periodic:
            x = np.fmod(x, 2.0 * self.length)
        angles: NDArray[np.float64] = (x / self.length) * np.pi
        return angles


@dataclass(frozen=True, slots=True)
class Affine:
    """One output row: ``out[i] = alpha + beta * cos(theta_i)``."""

    alpha: float
    beta: float
    out: Values


def bounded(*values: float) -> bool:
    """Whether every value is finite and small enough that ``alpha + beta cos`` is finite."""
    return all(math.isfinite(v) and abs(v) <= _LARGEST for v in values)


def cos_affine(angles: Progression, n: int, rows: Sequence[Affine]) -> None:
    r"""Fill every ``row.out[:n]`` with ``row.alpha + row.beta * cos(theta_i)``.

    Direct ``np.cos`` for short runs. Otherwise, with :math:`i = rF + j`, each output row
    is the rank-3 product

    .. math:: v_{rj} = [\beta \cos a_r,\; -\beta \sin a_r,\; \alpha]
              \cdot [\cos b_j,\; \sin b_j,\; 1]

    evaluated as one small matrix product (BLAS ``dgemm`` with inner dimension 3) per block
    of coarse rows: a single pass over the output, at memory speed.
    """
    if n <= 0 or not rows:
        return
    if n < TABLE_MIN:
        _direct(angles, n, rows)
        return
    width = 1 << max(5, ((n - 1).bit_length() + 1) // 2)  # F, a power of two ~ sqrt(n)
    count = -(-n // width)  # coarse rows, the last one possibly partial
    fine_x = np.arange(width, dtype=np.float64) * angles.dx
    coarse_x = angles.x0 + np.arange(count, dtype=np.float64) * (width * angles.dx)
    fine, coarse = angles.angles(fine_x), angles.angles(coarse_x)
    right = np.empty((3, width))
    np.cos(fine, out=right[0])
    np.sin(fine, out=right[1])
    right[2] = 1.0
    cos_c, sin_c = np.cos(coarse), np.sin(coarse)
    scratch = np.empty((max(1, BLOCK // width), width))
    for row in rows:
        left = np.empty((count, 3))
        np.multiply(cos_c, row.beta, out=left[:, 0])
        np.multiply(sin_c, -row.beta, out=left[:, 1])
        left[:, 2] = row.alpha
        _product(left, right, row.out, n, scratch)


def _product(
    left: NDArray[np.float64],
    right: NDArray[np.float64],
    out: Values,
    n: int,
    scratch: NDArray[np.float64],
) -> None:
    """``out[:n]``, read as rows of ``right``'s width, is ``left @ right``: one matrix product
    per block of ``len(scratch)`` rows, written in place (a float32 ``out`` through ``scratch``,
    rounded once), and the last, partial row on its own."""
    width = right.shape[1]
    block_rows = scratch.shape[0]
    full = n // width
    direct = out.dtype == np.float64
    for first in range(0, full, block_rows):
        last = min(first + block_rows, full)
        view = out[first * width : last * width].reshape(last - first, width)
        if direct:
            np.matmul(left[first:last], right, out=view)
        else:
            work = scratch[: last - first]
            np.matmul(left[first:last], right, out=work)
            view[...] = work
    tail = n - full * width
    if tail:
        piece = left[full:] @ right[:, :tail]
        out[full * width : n] = piece[0]


def _direct(angles: Progression, n: int, rows: Sequence[Affine]) -> None:
    """The textbook evaluation, one ``np.cos`` per value (short runs)."""
    cosines = _cosines(angles, n)
    scratch = np.empty(n)  # each row's beta * cos, in float64
    for row in rows:
        np.multiply(cosines, row.beta, out=scratch)
        np.add(scratch, row.alpha, out=row.out[:n], casting="same_kind")


@functools.lru_cache(maxsize=COSINES_KEPT)
def _cosines(angles: Progression, n: int) -> NDArray[np.float64]:
    r""":math:`\cos\theta_i` for ``i`` in ``range(n)``, one ``np.cos`` per value; read-only.

    Remembered (short runs only, so at most ``COSINES_KEPT`` arrays of under ``TABLE_MIN``
    values): a sweep's requests differ in their magnitudes (``max_lr``, ``lr``), not in their
    progressions, so each request after the first reuses the cosines of its phases.
    """
    x = angles.x0 + np.arange(n, dtype=np.float64) * angles.dx
    cosines: NDArray[np.float64] = np.cos(angles.angles(x))
    cosines.setflags(write=False)
    return cosines


def cos_affine_stacked(
    angles: Progression, n: int, alphas: Sequence[float], betas: Sequence[float], out: Values
) -> None:
    """Fill each row ``out[r, :n]`` of a 2-d ``out`` with ``alphas[r] + betas[r] * cos(theta_i)``.

    The values of :func:`cos_affine` on each row (the same operations on each element), with
    one ufunc call per operation for all rows together on short runs, where the per-call
    overhead is the cost: a scheduler's lr and momentum rows, stacked in one array.
    """
    if n >= TABLE_MIN:
        rows = [Affine(a, b, out[r]) for r, (a, b) in enumerate(zip(alphas, betas, strict=True))]
        cos_affine(angles, n, rows)
        return
    if n <= 0:
        return
    scaled = np.multiply(_cosines(angles, n), np.array(betas, dtype=np.float64)[:, None])
    np.add(scaled, np.array(alphas, dtype=np.float64)[:, None], out=out[:, :n], casting="same_kind")


def linear(
    x0: float, dx: float, length: float, n: int, start: float, end: float, out: Values
) -> None:
    """``out[i] = (end - start) * pct_i + start`` with ``pct_i = (x0 + i dx) / length``.

    OneCycleLR's linear annealing, in PyTorch's operation order.
    """
    if n <= 0:
        return
    pct = np.arange(n, dtype=np.float64)
    np.multiply(pct, dx, out=pct)
    np.add(pct, x0, out=pct)
    np.divide(pct, length, out=pct)
    np.multiply(pct, end - start, out=pct)
    np.add(pct, start, out=out[:n], casting="same_kind")


def tile(out: Values, period: int, n: int) -> None:
    """Repeat ``out[:period]`` over ``out[:n]`` by doubling copies (memcpy speed)."""
    filled = period
    while filled < n:
        chunk = min(filled, n - filled)
        out[filled : filled + chunk] = out[:chunk]
        filled += chunk


def periodic_prefix(period_steps: int, stride: int, n: int) -> int:
    """How many outputs repeat: the period in output positions of a curve periodic in steps.

    Steps ``start + i * stride`` of a curve with period ``period_steps`` repeat every
    ``period_steps / gcd(period_steps, stride)`` outputs; ``n`` when that is no shorter.
    """
    period = period_steps // math.gcd(period_steps, stride)
    return period if 0 < period < n else n


def count_at_most(start: int, stride: int, n: int, x: float) -> int:
    """How many of the steps ``start + i * stride``, ``i`` in ``range(n)``, are ``<= x``.

    Exact for any float ``x``: Python compares ints with floats exactly.
    """
    if not math.isfinite(x):
        return 0 if x < 0 else n
    guess = math.floor((x - start) / stride) + 1
    guess = min(max(guess, 0), n)
    while guess > 0 and start + (guess - 1) * stride > x:
        guess -= 1
    while guess < n and start + guess * stride <= x:
        guess += 1
    return guess
