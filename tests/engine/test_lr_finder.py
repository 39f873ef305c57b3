"""The LR range test rule and the suggestions of fastai, Lightning and torch-lr-finder."""

from __future__ import annotations

import importlib.util
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from service.engine.lr_finder import LrFinderConfig, LrFinderState, lr_at, step, suggest

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "lr_finder.json"
CASES: list[dict[str, Any]] = json.loads(GOLDEN.read_text())["lr_finder"]


def suggestions(lrs: list[float], smoothed: list[float], num_steps: int) -> dict[str, Any]:
    got = suggest(lrs, smoothed, num_steps)
    return {name: getattr(got, name) for name in got.__slots__}


def run(config: LrFinderConfig, losses: list[float]) -> list[LrFinderState]:
    states, state = [], LrFinderState()
    for loss in losses:
        state = step(config, state, loss)
        states.append(state)
    return states


def test_fixtures_cover_full_curves_and_curves_too_short_for_a_suggestion() -> None:
    lengths = [len(case["lr"]) for case in CASES]
    assert max(lengths) >= 100 and min(lengths) < 17
    for name in ("fastai_valley", "fastai_slide", "lightning", "torch_lr_finder"):
        values = [case["suggestions"][name] for case in CASES]
        assert any(v is None for v in values) and any(v is not None for v in values)


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{len(case['lr'])}-steps")
def test_suggestions_equal_each_library_on_the_same_curve(case: dict[str, Any]) -> None:
    smoothed = [float(v) for v in case["smoothed"]]
    assert suggestions(case["lr"], smoothed, case["options"]["num_steps"]) == case["suggestions"]


@pytest.mark.parametrize("case", CASES[:20], ids=lambda case: f"{len(case['lr'])}-steps")
def test_the_rule_reproduces_the_fixture_curves(case: dict[str, Any]) -> None:
    config = LrFinderConfig(**case["options"])
    states = run(config, [float(v) for v in case["loss"]])
    assert [s.smoothed for s in states] == [float(v) for v in case["smoothed"]]
    assert [lr_at(config, k) for k in range(len(states))] == case["lr"]


def test_exponential_and_linear_schedules_reach_end_lr_at_the_last_step() -> None:
    exponential = LrFinderConfig(1e-6, 1.0, 7)
    assert lr_at(exponential, 0) == 1e-6 and lr_at(exponential, 3) == pytest.approx(1e-3)
    assert lr_at(exponential, 6) == pytest.approx(1.0, rel=1e-15)
    linear = LrFinderConfig(0.1, 1.0, 10, mode="linear")
    assert [lr_at(linear, k) for k in (0, 9)] == [0.1, 1.0]


def test_debiased_smoothing_is_fastai_and_lightning_average() -> None:
    config = LrFinderConfig(1e-3, 1.0, 10, smooth=0.9)
    states = run(config, [2.0, 1.0, 4.0])
    avg = 0.0
    for k, (loss, state) in enumerate(zip([2.0, 1.0, 4.0], states, strict=True)):
        avg = 0.9 * avg + (1 - 0.9) * loss
        assert state.smoothed == avg / (1 - 0.9 ** (k + 1))


def test_ema_smoothing_is_torch_lr_finder_with_smooth_f_one_minus_smooth() -> None:
    config = LrFinderConfig(1e-3, 1.0, 10, smooth=0.95, smoothing="ema")
    states = run(config, [2.0, 1.0, 4.0])
    assert states[0].smoothed == 2.0
    assert states[1].smoothed == (1 - 0.95) * 1.0 + 0.95 * 2.0
    assert states[2].smoothed == (1 - 0.95) * 4.0 + 0.95 * states[1].smoothed


def test_stops_when_the_smoothed_loss_diverges_and_stays_stopped() -> None:
    config = LrFinderConfig(1e-3, 1.0, 100, smooth=0.0, diverge_threshold=4.0)
    states = run(config, [2.0, 1.0, 4.0, 4.5, 0.1])
    assert [s.stop for s in states] == [False, False, False, True, True]
    assert states[-1].stop_step == 3 and states[-1].reason == "diverged"
    assert states[-1].best == 1.0 and states[-1] is states[-2]


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_is_divergence(bad: float) -> None:
    states = run(LrFinderConfig(1e-3, 1.0, 100), [2.0, bad])
    assert states[-1].stop and states[-1].reason == "diverged" and states[-1].stop_step == 1


def test_stops_after_num_steps() -> None:
    states = run(LrFinderConfig(1e-3, 1.0, 3), [2.0, 1.9, 1.8, 1.7])
    assert [s.stop for s in states] == [False, False, True, True]
    assert states[-1].reason == "num_steps" and states[-1].stop_step == 2


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fastai on numpy 2 (np.log10(tensor))
def test_suggestions_match_the_installed_libraries_on_fresh_curves() -> None:
    for module in ("fastai", "pytorch_lightning", "torch_lr_finder", "matplotlib"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    from tools.generate_training_control_golden import range_test
    from tools.training_control_reference import run_suggestions

    rng = random.Random("live-lr-finder")
    for _ in range(10):
        curve = range_test(rng)
        num_steps = curve["options"]["num_steps"]
        expected = run_suggestions(curve["lr"], curve["smoothed"], num_steps)
        assert suggestions(curve["lr"], curve["smoothed"], num_steps) == expected
