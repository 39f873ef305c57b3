"""The contract's tolerance for comparing a service curve with PyTorch's.

Per element ``|a - e| <= max(1e-9 * |e|, 1e-12 * max|e| over that group's row)``: relative
error 1e-9 (API.md), with an absolute floor tied to the row's scale so that values which
cross or touch zero (a cosine reaching ``eta_min = 0``, ``ExponentialLR(gamma=-1)``) are not
held to a relative bound they cannot meet. A row of exact zeros must be matched exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

REL = 1e-9
"""Relative tolerance per element."""
ROW_ABS = 1e-12
"""Absolute tolerance, as a fraction of the row's largest magnitude."""

Curve = Sequence[Sequence[float]]


def assert_curve_close(actual: Curve | None, expected: Curve | None, *, what: str) -> None:
    """Assert ``actual`` matches ``expected`` (one row per group) within the tolerance.

    Both ``None`` (no momentum) is a match; one ``None`` is not. ``what`` names the curve in
    the failure message (``"lr"``, ``"momentum"``, plus the case name).
    """
    if expected is None or actual is None:
        assert actual is None and expected is None, (
            f"{what}: expected {_kind(expected)}, got {_kind(actual)}"
        )
        return
    assert len(actual) == len(expected), (
        f"{what}: expected {len(expected)} group rows, got {len(actual)}"
    )
    for g, (row_a, row_e) in enumerate(zip(actual, expected, strict=True)):
        assert len(row_a) == len(row_e), (
            f"{what}[{g}]: expected {len(row_e)} values, got {len(row_a)}"
        )
        scale = max((abs(e) for e in row_e), default=0.0)
        bad = [
            (i, a, e)
            for i, (a, e) in enumerate(zip(row_a, row_e, strict=True))
            if not _close(a, e, scale)
        ]
        if bad:
            i, a, e = bad[0]
            raise AssertionError(
                f"{what}[{g}]: {len(bad)}/{len(row_e)} values out of tolerance; first at "
                f"index {i}: got {a!r}, expected {e!r} (|diff| {abs(a - e):.3g}, allowed "
                f"{_allowed(e, scale):.3g})"
            )


def _allowed(expected: float, scale: float) -> float:
    return max(REL * abs(expected), ROW_ABS * scale)


def _close(actual: float, expected: float, scale: float) -> bool:
    if not isinstance(actual, int | float) or isinstance(actual, bool):
        return False
    if not math.isfinite(actual):
        return False
    return abs(actual - expected) <= _allowed(expected, scale)


def _kind(curve: Curve | None) -> str:
    return "null" if curve is None else f"{len(curve)} rows"
