"""The schedule engine: pure numpy, no I/O. ``compute(scheduler, lrs, steps)`` -> :class:`Curve`.

A scheduler tree (see :mod:`service.engine.nodes`) is constructed against a simulated
optimizer exactly as PyTorch would construct it, then evaluated on the requested steps:
in closed form, O(number of requested steps), for a scheduler used on its own; by a
vectorized scan of per-step affine maps, in blocks, for compositions and history-dependent
schedulers (O(last requested step)).

The cosine schedulers used on their own (CosineAnnealingLR, CosineAnnealingWarmRestarts,
OneCycleLR) have a faster closed form still, ``standalone_steps`` (see
:mod:`service.engine.fastmath`), that writes a whole step range at memory speed, in float64
or directly in float32 (:func:`compute_float32`).
"""

from __future__ import annotations

from service.engine.costs import check_costs, expression_cost, stepping_cost
from service.engine.curves import Curve, Curve32, StepRange
from service.engine.evaluation import BLOCK, PIECE, compute, compute_float32, lr_chunks

__all__ = [
    "BLOCK",
    "PIECE",
    "Curve",
    "Curve32",
    "StepRange",
    "check_costs",
    "compute",
    "compute_float32",
    "expression_cost",
    "lr_chunks",
    "stepping_cost",
]
