"""Cooperative cancellation: a computation stops at its next block boundary."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.requests import ScheduleRequest
from schemas.schedules import build
from service.engine import BLOCK, StepRange, compute
from service.engine.cancel import Cancelled, cancellable, checkpoint
from service.engine.expressions import CHUNK, compile_expression


class StopAfter:
    """A cancel check that says stop on its ``calls``-th consultation, and counts them."""

    def __init__(self, calls: int) -> None:
        self.limit = calls
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.limit


def _curve(schedule: dict[str, object], steps: int) -> np.ndarray:
    request = ScheduleRequest.model_validate({"schedule": schedule, "steps": steps})
    root = build(request.schedule, 1)
    return compute(root, np.array([0.1]), StepRange(0, steps, 1)).lr


def test_checkpoint_without_a_check_does_nothing() -> None:
    checkpoint()


def test_an_expression_stops_at_the_chunk_where_the_check_says_so() -> None:
    expression = compile_expression("lambda e: 0.9 ** e")
    check = StopAfter(3)
    with cancellable(check), pytest.raises(Cancelled):
        expression.evaluate(np.arange(100 * CHUNK, dtype=np.int64))
    assert check.calls == 3  # 2 of 100 chunks evaluated, then stopped


def test_a_stepped_schedule_stops_between_blocks() -> None:
    check = StopAfter(2)
    schedule = {"type": "MultiplicativeLR", "lr_lambda": "lambda e: 0.9999 if e % 2 else 1.0"}
    with cancellable(check), pytest.raises(Cancelled):
        _curve(schedule, 50 * BLOCK)
    assert check.calls == 2


def test_a_check_that_never_fires_changes_no_value() -> None:
    schedule = {"type": "LambdaLR", "lr_lambda": "lambda e: 0.95 ** (e % 7)"}
    plain = _curve(schedule, 5 * CHUNK + 3)
    with cancellable(lambda: False):
        checked = _curve(schedule, 5 * CHUNK + 3)
    np.testing.assert_array_equal(plain, checked)
    assert checked[0, 8] == 0.1 * 0.95**1


def test_the_check_is_gone_after_the_block() -> None:
    with cancellable(lambda: True), pytest.raises(Cancelled):
        checkpoint()
    checkpoint()
