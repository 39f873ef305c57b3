"""Per-group options as the factories receive them: one value for all groups, or a list."""

from __future__ import annotations

import numpy as np

from rules.errors import Loc, ScheduleError
from service.engine.expressions import Expression, compiled
from service.engine.types import FloatArray


def per_group(value: float | list[float], groups: int, loc: Loc) -> FloatArray:
    """``value`` for each of ``groups`` param groups, as PyTorch's ``_format_param`` checks."""
    if isinstance(value, list):
        if len(value) != groups:
            raise ScheduleError(
                f"{loc[-1]} must have the same length as optimizer.param_groups: "
                f"{len(value)} values for {groups} param groups",
                loc,
            )
        return np.asarray(value, dtype=np.float64)
    return np.full(groups, float(value))


def expressions(value: str | list[str], groups: int, loc: Loc) -> list[Expression]:
    """The compiled expression of each param group (one list entry per group, or shared)."""
    if isinstance(value, list):
        if len(value) != groups:
            raise ScheduleError(f"Expected {groups} lr_lambdas, but got {len(value)}", loc)
        return [compiled(source) for source in value]
    return [compiled(value)] * groups
