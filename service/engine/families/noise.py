r"""timm's deterministic lr noise, reproduced without torch.

timm (``timm/scheduler/scheduler.py``, ``_calculate_noise``) seeds a fresh
``torch.Generator`` with ``noise_seed + t`` at every noisy step ``t`` and draws
``torch.randn(1)``, resampled until ``|n| < noise_pct`` (its ``uniform`` type, ``torch.rand``,
is out of reach: the public schedulers' constructors take no ``noise_type``). On CPU that is
MT19937 seeded with the low 32 bits of the seed (``init_genrand``); a ``randn`` of one
element is a double Box-Muller pair from two 53-bit uniforms (each from two 32-bit words,
the first the high half), ``r cos(theta)`` first and ``r sin(theta)`` cached for the next
draw, rounded to float32. This module runs the same generator for all noisy steps at once,
in numpy.
"""

from __future__ import annotations

import numpy as np

from service.engine.types import FloatArray, IntArray
from service.limits import MAX_NOISE_DRAWS

_N, _M = 624, 397
_UPPER, _LOWER, _MATRIX_A = np.uint32(0x80000000), np.uint32(0x7FFFFFFF), np.uint32(0x9908B0DF)
_CHUNK = 1 << 15
"""Seeds generated together (keeps the state block in cache)."""
_FIRST_PAIRS = 2
"""Normal pairs drawn per seed in a first pass; more only for the seeds that need them."""


def _init_states(seeds: IntArray, length: int) -> np.ndarray:
    """The first ``length`` words of MT19937's ``init_genrand`` state per seed: (length, n).

    uint32 arithmetic wraps modulo 2**32, as the C code's masking does.
    """
    state = np.empty((length, seeds.shape[0]), dtype=np.uint32)
    word = (seeds & 0xFFFFFFFF).astype(np.uint32)
    state[0] = word
    multiplier = np.uint32(1812433253)
    for j in range(1, length):
        word = multiplier * (word ^ (word >> np.uint32(30))) + np.uint32(j)
        state[j] = word
    return state


def _temper(words: np.ndarray) -> np.ndarray:
    words = words ^ (words >> np.uint32(11))
    words ^= (words << np.uint32(7)) & np.uint32(0x9D2C5680)
    words ^= (words << np.uint32(15)) & np.uint32(0xEFC60000)
    words ^= words >> np.uint32(18)
    return words


def _twist(state: np.ndarray) -> np.ndarray:
    """MT19937's next 624-word state for every column (a loop over positions)."""
    mt = state.copy()
    for i in range(_N):
        y = (mt[i] & _UPPER) | (mt[(i + 1) % _N] & _LOWER)
        mag = np.where((y & np.uint32(1)) == 1, _MATRIX_A, np.uint32(0))
        mt[i] = mt[(i + _M) % _N] ^ (y >> np.uint32(1)) ^ mag
    return mt


def _words(seeds: IntArray, count: int) -> np.ndarray:
    if count <= _N - _M:  # fast path: only the first words of the first twist are needed
        state = _init_states(seeds, count + _M + 1)
        y = (state[:count] & _UPPER) | (state[1 : count + 1] & _LOWER)
        mag = np.where((y & np.uint32(1)) == 1, _MATRIX_A, np.uint32(0))
        return _temper(state[_M : _M + count] ^ (y >> np.uint32(1)) ^ mag)
    state = _init_states(seeds, _N)
    blocks = []
    for _ in range(-(-count // _N)):
        state = _twist(state)
        blocks.append(_temper(state))
    return np.concatenate(blocks, axis=0)[:count]


def mt19937_words(seeds: IntArray, count: int) -> np.ndarray:
    """The first ``count`` 32-bit outputs of MT19937 ``init_genrand(seed)``, shape (n, count)."""
    parts = [_words(seeds[low : low + _CHUNK], count).T for low in range(0, seeds.shape[0], _CHUNK)]
    if not parts:
        return np.empty((0, count), dtype=np.uint32)
    return np.concatenate(parts, axis=0)


def _uniform53(high: np.ndarray, low: np.ndarray) -> FloatArray:
    bits = ((high.astype(np.uint64) << np.uint64(32)) | low) & np.uint64((1 << 53) - 1)
    result: FloatArray = bits.astype(np.float64) * 2.0**-53
    return result


def _normals(seeds: IntArray, pairs: int) -> FloatArray:
    """``2 * pairs`` successive ``torch.randn(1)`` values (as float32) per seed, (n, 2 pairs)."""
    words = mt19937_words(seeds, 4 * pairs)
    out = np.empty((seeds.shape[0], 2 * pairs))
    for p in range(pairs):
        w = words[:, 4 * p : 4 * p + 4]
        u1 = _uniform53(w[:, 0], w[:, 1])
        u2 = _uniform53(w[:, 2], w[:, 3])
        r = np.sqrt(-2.0 * np.log1p(-u2))
        theta = 2.0 * np.pi * u1
        out[:, 2 * p] = (r * np.cos(theta)).astype(np.float32)
        out[:, 2 * p + 1] = (r * np.sin(theta)).astype(np.float32)
    return out


def normal_noise(seeds: IntArray, noise_pct: float, noise_std: float) -> FloatArray:
    """timm's ``normal`` noise per seed: the first ``randn * noise_std`` with ``|n| < noise_pct``.

    Raises ``ValueError`` when no draw among the first :data:`MAX_NOISE_DRAWS` qualifies (timm
    would keep drawing).
    """
    result = np.full(seeds.shape, np.nan)
    pending = np.arange(seeds.shape[0])
    pairs = _FIRST_PAIRS
    while pending.size:
        draws = _normals(seeds[pending], pairs) * noise_std
        ok = np.abs(draws) < noise_pct
        found = ok.any(axis=1)
        first = np.argmax(ok, axis=1)
        result[pending[found]] = draws[found, first[found]]
        pending = pending[~found]
        if pending.size and 2 * pairs >= MAX_NOISE_DRAWS:
            raise ValueError(
                f"noise_pct={noise_pct}: none of the first {MAX_NOISE_DRAWS} normal draws "
                "is below it"
            )
        pairs = min(pairs * 8, MAX_NOISE_DRAWS // 2)
    return result
