"""Properties of the engine over random specs: shapes, finiteness, ranges as slices."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from rules.errors import ScheduleError
from schemas.schedules import ScheduleSpec, build
from service.engine import StepRange, compute
from tests.conformance.strategies import schedule_requests

SPEC: TypeAdapter[Any] = TypeAdapter(ScheduleSpec)


def _curve(request: dict[str, Any], steps: StepRange) -> Any:
    lr = request.get("lr", 0.001)
    lrs = np.asarray(lr if isinstance(lr, list) else [lr], dtype=np.float64)
    root = build(SPEC.validate_python(request["schedule"]), len(lrs))
    return compute(root, lrs, steps)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(request=schedule_requests(), data=st.data())
def test_valid_specs_give_finite_curves_and_ranges_are_slices(
    request: dict[str, Any], data: st.DataObject
) -> None:
    steps = request["steps"]
    full_range = StepRange(0, steps, 1)
    try:
        full = _curve(request, full_range)
    except (ValidationError, ScheduleError):
        event("rejected")
        return  # a configuration PyTorch rejects: the API answers 422
    event("computed")
    groups = len(request["lr"]) if isinstance(request.get("lr"), list) else 1
    assert full.lr.shape == (groups, steps)
    assert np.isfinite(full.lr).all()
    if full.momentum is not None:
        assert full.momentum.shape == (groups, steps) and np.isfinite(full.momentum).all()
    start = data.draw(st.integers(0, steps), label="start")
    stride = data.draw(st.integers(1, 2 * steps), label="stride")
    part = _curve(request, StepRange(start, steps, stride))
    np.testing.assert_allclose(part.lr, full.lr[:, start:steps:stride], rtol=1e-12, atol=0)
    if full.momentum is not None:
        np.testing.assert_allclose(
            part.momentum, full.momentum[:, start:steps:stride], rtol=1e-12, atol=0
        )
