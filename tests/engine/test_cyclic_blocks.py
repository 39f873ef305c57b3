"""CyclicLR's closed form in blocks: the same bits and the same first failure as one call
over every step, with temporaries bounded by a block, not by the steps."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter

from rules.errors import ScheduleError
from schemas.schedules import ScheduleSpec, build
from service.engine import BLOCK
from service.engine.cyclic import CyclicLR
from service.engine.optimizer import Optimizer

SPEC: TypeAdapter[ScheduleSpec] = TypeAdapter(ScheduleSpec)
LRS = np.array([0.1, 0.02])


def cyclic(**options: Any) -> CyclicLR:
    spec = {"type": "CyclicLR", "base_lr": 0.001, "max_lr": [0.1, 0.05], **options}
    node = build(SPEC.validate_python(spec), len(LRS))
    assert isinstance(node, CyclicLR)
    node.construct(Optimizer(LRS.copy()))
    return node


OPTIONS = [
    {"step_size_up": 3},
    {"step_size_up": 1000, "step_size_down": 37, "mode": "triangular2"},
    {"step_size_up": 17, "mode": "exp_range", "gamma": 0.99999},
    {"step_size_up": 5, "scale_fn": "1 / (1 + 0.001 * epoch)", "scale_mode": "iterations"},
    {"step_size_up": 50, "scale_fn": "0.5 ** epoch", "cycle_momentum": False},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: str(o.get("mode", o.get("scale_fn"))))
def test_blocks_give_the_bits_of_one_call(options: dict[str, Any]) -> None:
    node = cyclic(**options)
    k = np.arange(7, 7 + 3 * BLOCK + 123, 3, dtype=np.int64)
    whole = node.get_lr(k, initial=False)
    lr, momentum = node.standalone(k)  # type: ignore[misc]
    assert lr.tobytes() == np.asarray(whole.b).tobytes()
    if whole.mb is None:
        assert momentum is None
    else:
        assert momentum is not None and momentum.tobytes() == np.asarray(whole.mb).tobytes()


def test_the_first_failure_is_the_same_step() -> None:
    node = cyclic(step_size_up=3, mode="triangular2")  # 2.0 ** (cycle - 1) overflows
    k = np.arange(0, 4 * BLOCK, dtype=np.int64)
    with pytest.raises(ScheduleError) as whole:
        node.get_lr(k, initial=False)
    with pytest.raises(ScheduleError) as blocks:
        node.standalone(k)
    assert whole.value.epoch == blocks.value.epoch == 6144


def test_temporaries_are_bounded_by_a_block() -> None:
    """At 10M steps the whole-array form held about 860 MiB; the blocks hold the two
    results (lr and momentum, two groups: 32 bytes a step) and a block's temporaries."""
    node = cyclic(step_size_up=3)
    k = np.arange(1_000_000, dtype=np.int64)
    tracemalloc.start()
    try:
        node.standalone(k)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * k.size + 200 * BLOCK
