"""Per-step affine maps on the learning rate, and the scan that applies them in order.

Every PyTorch scheduler updates ``group["lr"]`` at a step as an affine function of the
current value: multiplicative schedulers (StepLR, LinearLR, ...) as ``A * lr``, absolute
ones (LambdaLR, CyclicLR, ...) as ``0 * lr + B``, CosineAnnealingLR's recursion as
``A * (lr - eta_min) + eta_min``. Composites (ChainedScheduler, SequentialLR) compose those
maps, so a whole scheduler tree is one map per step, and the curve is a prefix scan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.engine.types import FloatArray


@dataclass(slots=True)
class Maps:
    """Affine maps ``x -> a * x + b`` for G param groups over n consecutive steps.

    ``a``/``b`` act on the lr; ``ma``/``mb`` on the momentum, or are ``None`` when no
    scheduler in the tree touches momentum in these steps.
    """

    a: FloatArray
    b: FloatArray
    ma: FloatArray | None = None
    mb: FloatArray | None = None

    @classmethod
    def identity(cls, groups: int, n: int) -> Maps:
        """Maps that leave lr and momentum as they are."""
        return cls(np.ones((groups, n)), np.zeros((groups, n)))

    @classmethod
    def absolute(cls, values: FloatArray) -> Maps:
        """Maps that set the lr to ``values`` whatever it was."""
        return cls(np.zeros_like(values), values)

    @classmethod
    def factor(cls, factors: FloatArray) -> Maps:
        """Maps that multiply the lr by ``factors``."""
        return cls(factors, np.zeros_like(factors))

    def with_momentum(self, momentum: FloatArray) -> Maps:
        """The same lr maps, also setting the momentum to ``momentum``."""
        self.ma = np.zeros_like(momentum)
        self.mb = momentum
        return self

    @property
    def width(self) -> int:
        """How many steps these maps cover."""
        return int(self.a.shape[1])

    def then(self, later: Maps) -> Maps:
        """Apply ``self`` first, then ``later`` (per step)."""
        a = later.a * self.a
        b = later.a * self.b + later.b
        ma, mb = _compose_optional(self.ma, self.mb, later.ma, later.mb)
        return Maps(a, b, ma, mb)

    def scatter(self, positions: np.ndarray, width: int) -> Maps:
        """These maps (one per position) placed into identity maps of ``width`` steps."""
        groups = self.a.shape[0]
        out = Maps.identity(groups, width)
        out.a[:, positions] = self.a
        out.b[:, positions] = self.b
        if self.ma is not None and self.mb is not None:
            out.ma = np.ones((groups, width))
            out.mb = np.zeros((groups, width))
            out.ma[:, positions] = self.ma
            out.mb[:, positions] = self.mb
        return out


def _compose_optional(
    a1: FloatArray | None, b1: FloatArray | None, a2: FloatArray | None, b2: FloatArray | None
) -> tuple[FloatArray | None, FloatArray | None]:
    if a2 is None or b2 is None:
        return a1, b1
    if a1 is None or b1 is None:
        return a2, b2
    return a2 * a1, a2 * b1 + b2


def apply_once(maps: Maps, lr: FloatArray, momentum: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Apply single-step maps (width 1) to the current lr and momentum of every group."""
    new_lr = maps.a[:, 0] * lr + maps.b[:, 0]
    if maps.ma is None or maps.mb is None:
        return new_lr, momentum
    return new_lr, maps.ma[:, 0] * momentum + maps.mb[:, 0]


def scan(initial: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
    """The sequence ``x[j] = a[j] * x[j-1] + b[j]`` with ``x[-1] = initial``, per group.

    Pure products (all ``b == 0``) use ``cumprod`` seeded with the initial value, which
    multiplies in exactly PyTorch's order; pure assignments need no scan; the general case
    is a log-depth (Hillis-Steele) scan of the affine maps, with no division, so decays
    that underflow to zero stay exact zeros.
    """
    groups, n = a.shape
    if n == 0:
        return np.empty((groups, 0))
    if not b.any():
        seeded = np.concatenate([initial[:, None], a], axis=1)
        return np.cumprod(seeded, axis=1)[:, 1:]
    if not a.any():
        return b.copy()
    # Fold the initial value in as a leading "set to initial" map, then scan.
    acc_a = np.concatenate([np.zeros((groups, 1)), a], axis=1)
    acc_b = np.concatenate([initial[:, None], b], axis=1)
    shift = 1
    total = n + 1
    while shift < total:
        prev_a = acc_a[:, :-shift]
        prev_b = acc_b[:, :-shift]
        new_b = acc_a[:, shift:] * prev_b + acc_b[:, shift:]
        new_a = acc_a[:, shift:] * prev_a
        acc_b[:, shift:] = new_b
        acc_a[:, shift:] = new_a
        shift *= 2
    return acc_b[:, 1:]
