"""The part of a PyTorch optimizer that schedulers read and write: per-group values.

Schedulers are constructed against this object exactly as PyTorch constructs them against
``optimizer.param_groups``, so construction-time side effects (``initial_lr`` fixed by the
first scheduler, CyclicLR writing ``base_lr`` into ``lr``, OneCycleLR overwriting
``initial_lr``, SequentialLR resetting every lr) compose the way they do in PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from service.engine.maps import Maps, apply_once
from service.engine.types import FloatArray


@dataclass
class Optimizer:
    """Per-group state: ``lr``, ``initial_lr``, momentum and OneCycleLR's group keys."""

    lr: FloatArray
    initial_lr: FloatArray | None = None
    momentum: FloatArray = field(init=False)
    group_keys: dict[str, FloatArray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lr = np.array(self.lr, dtype=np.float64)
        self.momentum = np.full(self.lr.shape, np.nan)

    @property
    def groups(self) -> int:
        """Number of param groups."""
        return int(self.lr.shape[0])

    def setdefault_initial_lr(self) -> FloatArray:
        """``group.setdefault("initial_lr", group["lr"])`` for every group; the result."""
        if self.initial_lr is None:
            self.initial_lr = self.lr.copy()
        return self.initial_lr.copy()

    def apply(self, maps: Maps) -> None:
        """Apply one step's maps to lr and momentum."""
        self.lr, self.momentum = apply_once(maps, self.lr, self.momentum)
