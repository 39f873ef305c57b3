"""The early-stopping rules against Keras, Hugging Face and Lightning: fixtures and live."""

from __future__ import annotations

import importlib.util
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from service.engine.early_stopping import (
    EarlyStoppingConfig,
    EarlyStoppingState,
    replay,
    step,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "early_stopping.json"
CASES: list[dict[str, Any]] = json.loads(GOLDEN.read_text())["early_stopping"]


def outcome(options: dict[str, Any], metrics: list[float]) -> dict[str, Any]:
    state = replay(EarlyStoppingConfig(**options), metrics).state
    return {
        "stop_epoch": state.stop_epoch,
        "best": state.best,
        "best_epoch": state.best_epoch,
        "wait": state.wait,
    }


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def test_fixtures_cover_every_semantics_and_both_outcomes() -> None:
    for semantics in ("keras", "hf", "lightning"):
        mine = [c for c in CASES if c["request"]["early_stopping"]["semantics"] == semantics]
        assert any(c["expected"]["stop_epoch"] is None for c in mine) or semantics == "hf"
        assert any(c["expected"]["stop_epoch"] is not None for c in mine)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["request"]["early_stopping"]["semantics"])
def test_rule_stops_where_the_library_stops(case: dict[str, Any]) -> None:
    metrics = [float(m) for m in case["request"]["metrics"]]
    expected = dict(case["expected"])
    if expected["best"] is not None:
        expected["best"] = float(expected["best"])
    got = outcome(case["request"]["early_stopping"], metrics)
    assert all(same(got[key], expected[key]) for key in expected), (got, expected)


def test_keras_compares_in_float32() -> None:
    # 1 - 1e-9 is below 1.0 in float64 but equal to it in float32: no improvement for Keras.
    config = EarlyStoppingConfig("keras", "min", patience=1)
    assert replay(config, [1.0, 1.0 - 1e-9]).state.stop_epoch == 1
    hf = EarlyStoppingConfig("hf", "min", patience=1)
    assert replay(hf, [1.0, 1.0 - 1e-9]).state.stop_epoch is None


def test_keras_baseline_keeps_counting_until_beaten() -> None:
    config = EarlyStoppingConfig("keras", "min", patience=2, baseline=0.5)
    result = replay(config, [0.9, 0.8, 0.8])
    assert result.stop == [False, False, True]
    assert result.state.best == 0.8 and result.state.best_epoch == 1 and result.state.wait == 3
    without = EarlyStoppingConfig("keras", "min", patience=2)
    assert replay(without, [0.9, 0.8, 0.8]).state.wait == 1


def test_hf_best_moves_without_the_threshold_but_the_counter_needs_it() -> None:
    config = EarlyStoppingConfig("hf", "max", patience=2, min_delta=0.01)
    result = replay(config, [0.5, 0.505, 0.509])
    assert result.state.best == 0.509 and result.state.best_epoch == 2
    assert result.state.wait == 2 and result.state.stop_epoch == 2


def test_lightning_checks_finite_then_thresholds_then_patience() -> None:
    config = EarlyStoppingConfig("lightning", "min", patience=5, divergence_threshold=2.0)
    assert replay(config, [1.0, math.nan]).state.reason == "non_finite"
    assert replay(config, [1.0, 2.5]).state.reason == "divergence_threshold"
    unchecked = EarlyStoppingConfig("lightning", "min", patience=1, check_finite=False)
    assert replay(unchecked, [1.0, math.nan]).state.reason == "patience"


def test_a_stopped_state_never_changes() -> None:
    config = EarlyStoppingConfig("lightning", "min", patience=0)
    stopped = replay(config, [1.0, 2.0]).state
    assert stopped.stop and stopped.stop_epoch == 1
    assert step(config, stopped, 2, 0.1) is stopped


def test_epochs_before_start_from_epoch_are_not_seen() -> None:
    config = EarlyStoppingConfig("hf", "min", patience=1, start_from_epoch=2)
    result = replay(config, [0.1, 0.1, 5.0, 6.0])
    assert result.state.best == 5.0 and result.state.best_epoch == 2
    assert result.stop == [False, False, False, True]
    assert step(config, EarlyStoppingState(), 1, 0.3) == EarlyStoppingState()


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in modules)


LIVE = {
    "keras": ("keras", "jax"),
    "hf": ("transformers", "torch"),
    "lightning": ("pytorch_lightning", "torch"),
}


@pytest.mark.torch
@pytest.mark.parametrize("semantics", sorted(LIVE))
def test_rule_matches_the_installed_library_on_fresh_histories(semantics: str) -> None:
    if not _installed(*LIVE[semantics]):
        pytest.skip(f"{semantics} is not installed")
    from tools.generate_training_control_golden import metric_history, options
    from tools.training_control_reference import run_early_stopping

    rng = random.Random(f"live-{semantics}")
    for _ in range(15):
        chosen = options(rng, semantics)
        metrics = metric_history(rng, rng.randint(1, 25))
        expected = run_early_stopping(chosen, metrics)
        got = outcome(chosen, metrics)
        assert all(same(got[k], expected[k]) for k in expected), (chosen, metrics, got)
