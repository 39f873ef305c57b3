"""SWALR (``torch.optim.swa_utils``): the interpolation formula, alone and after other
schedulers (PyTorch's own values are in ``tests/golden/schedules.json``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from schemas.schedules import ScheduleSpec, build
from service.engine import StepRange, compute

SPEC = TypeAdapter(ScheduleSpec)


def lr(spec: dict[str, Any], steps: int, lrs: list[float]) -> np.ndarray:
    """The lr curve of ``spec`` over ``range(steps)`` for param groups ``lrs``."""
    node = build(SPEC.validate_python(spec), len(lrs))
    return compute(node, np.asarray(lrs), StepRange(0, steps, 1)).lr


def cos_weight(t: float) -> float:
    return (1 - math.cos(math.pi * min(t, 1.0))) / 2


def test_linear_anneal_interpolates_to_swa_lr_then_holds_it() -> None:
    spec = {"type": "SWALR", "swa_lr": 0.05, "anneal_epochs": 5, "anneal_strategy": "linear"}
    expected = [0.05 * min(k / 5, 1) + 0.1 * (1 - min(k / 5, 1)) for k in range(12)]
    np.testing.assert_allclose(lr(spec, 12, [0.1])[0], expected, rtol=1e-14)


def test_cosine_anneal_per_group_swa_lrs() -> None:
    spec = {"type": "SWALR", "swa_lr": [0.01, 0.5], "anneal_epochs": 7}
    curve = lr(spec, 10, [0.1, 0.2])
    for group, (start, target) in enumerate([(0.1, 0.01), (0.2, 0.5)]):
        expected = [target * cos_weight(k / 7) + start * (1 - cos_weight(k / 7)) for k in range(10)]
        np.testing.assert_allclose(curve[group], expected, rtol=1e-14)


def test_zero_anneal_epochs_sets_swa_lr_at_construction() -> None:
    spec = {"type": "SWALR", "swa_lr": 0.02, "anneal_epochs": 0}
    assert lr(spec, 4, [0.1])[0].tolist() == [0.02] * 4


def test_after_a_milestone_swalr_anneals_from_the_lr_it_takes_over() -> None:
    # The SWA recipe: decay, then anneal to the SWA lr from wherever the decay left it.
    spec = {
        "type": "SequentialLR",
        "schedulers": [
            {"type": "ExponentialLR", "gamma": 0.5},
            {"type": "SWALR", "swa_lr": 0.01, "anneal_epochs": 4, "anneal_strategy": "linear"},
        ],
        "milestones": [3],
    }
    handed_over = 0.1 * 0.5**2  # the lr at step 2, which the restart at step 3 keeps
    tail = [0.01 * (j / 4) + handed_over * (1 - j / 4) for j in range(5)] + [0.01] * 2
    np.testing.assert_allclose(lr(spec, 10, [0.1])[0], [0.1, 0.05, 0.025, *tail], rtol=1e-13)


def test_a_later_swalr_on_the_same_optimizer_sets_the_target_of_both() -> None:
    # swa_lr is a param group key: the second SWALR's constructor overwrites the first's.
    spec = {
        "type": "ChainedScheduler",
        "schedulers": [
            {"type": "SWALR", "swa_lr": 0.02, "anneal_epochs": 0},
            {"type": "ExponentialLR", "gamma": 1.0},
            {"type": "SWALR", "swa_lr": 0.3, "anneal_epochs": 0},
        ],
    }
    assert lr(spec, 3, [0.1])[0].tolist() == [0.3] * 3


def test_swalr_composes_in_chained_scheduler_like_the_recursion() -> None:
    spec = {"type": "SWALR", "swa_lr": 0.02, "anneal_epochs": 10}
    gamma = 0.9
    chained = {
        "type": "ChainedScheduler",
        "schedulers": [{"type": "ExponentialLR", "gamma": gamma}, spec],
    }
    current, expected = 0.1, [0.1]
    for k in range(1, 15):
        previous, alpha = cos_weight((k - 1) / 10), cos_weight(k / 10)
        current *= gamma
        start = 0.02 if previous == 1 else (current - previous * 0.02) / (1 - previous)
        current = 0.02 * alpha + start * (1 - alpha)
        expected.append(current)
    np.testing.assert_allclose(lr(chained, 15, [0.1])[0], expected, rtol=1e-13)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"swa_lr": 0.1, "anneal_epochs": -1}, "anneal_epochs"),
        ({"swa_lr": 0.1, "anneal_epochs": 2.0}, "anneal_epochs"),
        ({"swa_lr": 0.1, "anneal_strategy": "exp"}, "anneal_strategy"),
        ({"anneal_epochs": 3}, "swa_lr"),
    ],
)
def test_what_pytorch_refuses_is_refused_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        SPEC.validate_python({"type": "SWALR", **options})
    assert any(field in error["loc"] for error in raised.value.errors())
