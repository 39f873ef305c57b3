"""ReduceLROnPlateau engine: exact values at every boundary, and live torch when installed."""

from __future__ import annotations

import ast
import math
import sys
from collections.abc import Sequence
from dataclasses import FrozenInstanceError, replace
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import service.engine.plateau as module
from service.engine.plateau import (
    PlateauConfig,
    PlateauState,
    initial_state,
    is_better,
    mode_worse,
    replay,
    step,
)

INF = math.inf
NAN = math.nan


def config(
    *,
    mode: Literal["min", "max"] = "min",
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: Literal["rel", "abs"] = "rel",
    cooldown: int = 0,
    min_lrs: tuple[float, ...] = (0.0,),
    eps: float = 1e-8,
) -> PlateauConfig:
    """PyTorch's defaults, one param group, unless told otherwise."""
    return PlateauConfig(
        mode=mode,
        factor=factor,
        patience=patience,
        threshold=threshold,
        threshold_mode=threshold_mode,
        cooldown=cooldown,
        min_lrs=min_lrs,
        eps=eps,
    )


def lrs_of(cfg: PlateauConfig, lrs: Sequence[float], metrics: Sequence[float]) -> list[list[float]]:
    """Every group's LR after each metric, as plain lists."""
    out: list[list[float]] = replay(cfg, lrs, metrics).lr.tolist()
    return out


def fold(
    cfg: PlateauConfig, lrs: Sequence[float], metrics: Sequence[float]
) -> tuple[list[PlateauState], list[bool]]:
    """The states and flags of calling ``step`` once per metric."""
    state = initial_state(cfg, lrs)
    states: list[PlateauState] = []
    flags: list[bool] = []
    for metric in metrics:
        state, cut = step(cfg, state, metric)
        states.append(state)
        flags.append(cut)
    return states, flags


# --- construction ---------------------------------------------------------------------------


def test_initial_state_min_mode_starts_from_plus_inf() -> None:
    cfg = config()
    assert mode_worse(cfg) == INF
    assert initial_state(cfg, [0.1, 0.2]) == PlateauState(
        lrs=(0.1, 0.2), best=INF, num_bad_epochs=0, cooldown_counter=0, last_epoch=0
    )


def test_initial_state_max_mode_starts_from_minus_inf() -> None:
    cfg = config(mode="max")
    assert mode_worse(cfg) == -INF
    assert initial_state(cfg, [1]).best == -INF
    assert initial_state(cfg, [1]).lrs == (1.0,)


def test_state_is_immutable_and_step_leaves_it_alone() -> None:
    cfg = config(patience=0)
    before = initial_state(cfg, [0.1])
    after, _ = step(cfg, before, 1.0)
    after, cut = step(cfg, after, 1.0)
    assert cut
    assert before == initial_state(cfg, [0.1])
    with pytest.raises(FrozenInstanceError):
        before.best = 0.0  # type: ignore[misc]


# --- is_better ------------------------------------------------------------------------------


def test_min_rel_improvement_must_beat_best_times_one_minus_threshold() -> None:
    cfg = config(threshold=0.1)
    bar = 1.0 * (1.0 - 0.1)
    assert not is_better(cfg, bar, 1.0)
    assert is_better(cfg, math.nextafter(bar, -INF), 1.0)


def test_min_abs_improvement_must_beat_best_minus_threshold() -> None:
    cfg = config(threshold=0.5, threshold_mode="abs")
    assert not is_better(cfg, 0.5, 1.0)
    assert is_better(cfg, math.nextafter(0.5, -INF), 1.0)


def test_max_rel_improvement_must_beat_best_times_one_plus_threshold() -> None:
    cfg = config(mode="max", threshold=0.1)
    bar = 2.0 * (0.1 + 1.0)
    assert not is_better(cfg, bar, 2.0)
    assert is_better(cfg, math.nextafter(bar, INF), 2.0)


def test_max_abs_improvement_must_beat_best_plus_threshold() -> None:
    cfg = config(mode="max", threshold=0.25, threshold_mode="abs")
    assert not is_better(cfg, 1.25, 1.0)
    assert is_better(cfg, math.nextafter(1.25, INF), 1.0)


def test_negative_metric_in_min_rel_mode_moves_the_bar_the_wrong_way() -> None:
    # pytorch#47513: best=-10, threshold=0.1 -> bar -9.0, so a worse -9.5 "improves".
    cfg = config(threshold=0.1, patience=0)
    assert is_better(cfg, -9.5, -10.0)
    assert not is_better(cfg, -9.0, -10.0)
    # A steadily worsening negative loss therefore never cuts the LR.
    assert lrs_of(cfg, [0.1], [-10.0, -9.5, -9.0, -8.5]) == [[0.1, 0.1, 0.1, 0.1]]


def test_max_rel_mode_with_best_zero_only_accepts_positive_metrics() -> None:
    cfg = config(mode="max")
    assert not is_better(cfg, 0.0, 0.0)
    assert not is_better(cfg, -1e-300, 0.0)
    assert is_better(cfg, 5e-324, 0.0)


def test_rel_threshold_one_makes_nothing_better_than_inf() -> None:
    # best * (1 - 1) = inf * 0 = nan: no metric ever improves on the initial best.
    cfg = config(threshold=1.0, patience=1)
    assert not is_better(cfg, -1e300, INF)
    assert lrs_of(cfg, [1.0], [1.0, 0.5, 0.1]) == [[1.0, 0.1, 0.1]]


def test_negative_rel_threshold_accepts_slightly_worse_metrics() -> None:
    cfg = config(threshold=-0.1)
    assert is_better(cfg, 1.05, 1.0)
    assert not is_better(cfg, 1.1, 1.0)


# --- bad epochs, patience, cooldown ---------------------------------------------------------


def test_lr_reduced_once_more_than_patience_bad_epochs() -> None:
    cfg = config(patience=2)
    # The first metric improves on +inf; the next three are bad: 1, 2, 3 > patience.
    assert lrs_of(cfg, [0.1], [1.0, 1.0, 1.0, 1.0]) == [[0.1, 0.1, 0.1, 0.1 * 0.1]]
    states, flags = fold(cfg, [0.1], [1.0, 1.0, 1.0, 1.0])
    assert [s.num_bad_epochs for s in states] == [0, 1, 2, 0]
    assert flags == [False, False, False, True]


def test_improvement_resets_the_bad_epoch_count() -> None:
    cfg = config(patience=1)
    states, flags = fold(cfg, [0.1], [1.0, 1.0, 0.5, 0.5])
    assert [s.num_bad_epochs for s in states] == [0, 1, 0, 1]
    assert [s.best for s in states] == [1.0, 1.0, 0.5, 0.5]
    assert not any(flags)


def test_patience_zero_cuts_after_one_bad_epoch() -> None:
    cfg = config(patience=0)
    assert lrs_of(cfg, [1.0], [1.0, 1.0, 1.0]) == [[1.0, 0.1, 0.1 * 0.1]]


def test_patience_minus_one_cuts_on_every_step_even_when_improving() -> None:
    cfg = config(patience=-1)
    assert lrs_of(cfg, [1.0], [3.0, 2.0, 1.0]) == [[0.1, 0.1 * 0.1, 0.1 * 0.1 * 0.1]]


def test_lr_not_reduced_during_cooldown() -> None:
    # patience=0, cooldown=2 on a flat metric: cuts at steps 2, 5, 8 (1-based).
    cfg = config(patience=0, cooldown=2, factor=0.5)
    metrics = [1.0] * 9
    assert lrs_of(cfg, [1.0], metrics) == [[1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125]]
    states, flags = fold(cfg, [1.0], metrics)
    assert [s.cooldown_counter for s in states] == [0, 2, 1, 0, 2, 1, 0, 2, 1]
    assert flags == [False, True, False, False, True, False, False, True, False]


def test_cooldown_resets_num_bad_epochs() -> None:
    cfg = config(patience=5, cooldown=3)
    state = replace(initial_state(cfg, [0.1]), best=0.0, num_bad_epochs=4, cooldown_counter=3)
    after, cut = step(cfg, state, 1.0)
    assert (after.num_bad_epochs, after.cooldown_counter, cut) == (0, 2, False)


def test_improvement_during_cooldown_still_sets_best() -> None:
    cfg = config(patience=0, cooldown=3)
    state = replace(initial_state(cfg, [0.1]), best=1.0, cooldown_counter=3)
    after, _ = step(cfg, state, 0.5)
    assert (after.best, after.num_bad_epochs, after.cooldown_counter) == (0.5, 0, 2)


def test_negative_cooldown_is_never_in_cooldown() -> None:
    cfg = config(patience=0, cooldown=-2)
    states, flags = fold(cfg, [1.0], [1.0, 1.0, 1.0])
    assert flags == [False, True, True]
    assert states[-1].cooldown_counter == -2


def test_last_epoch_counts_steps() -> None:
    states, _ = fold(config(), [0.1], [1.0, NAN, INF])
    assert [s.last_epoch for s in states] == [1, 2, 3]
    assert replay(config(), [0.1], [1.0, NAN, INF]).state.last_epoch == 3


# --- non-finite metrics ---------------------------------------------------------------------


def test_nan_metric_counts_as_bad_epoch() -> None:
    cfg = config(patience=1)
    state = replace(initial_state(cfg, [0.1]), best=1.0)
    after, cut = step(cfg, state, NAN)
    assert (after.best, after.num_bad_epochs, cut) == (1.0, 1, False)
    after, cut = step(cfg, after, NAN)
    assert (after.best, after.num_bad_epochs, after.lrs, cut) == (1.0, 0, (0.1 * 0.1,), True)


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("threshold_mode", ["rel", "abs"])
def test_nan_never_becomes_best(
    mode: Literal["min", "max"], threshold_mode: Literal["rel", "abs"]
) -> None:
    cfg = config(mode=mode, threshold_mode=threshold_mode)
    states, _ = fold(cfg, [0.1], [NAN, NAN, 1.0, NAN])
    assert [s.best for s in states] == [mode_worse(cfg), mode_worse(cfg), 1.0, 1.0]
    assert [s.num_bad_epochs for s in states] == [1, 2, 0, 1]


def test_first_inf_metric_is_bad_epoch() -> None:
    # inf < inf * (1 - 1e-4) is False: with patience 0 the LR is cut at once.
    cfg = config(patience=0)
    states, flags = fold(cfg, [0.1], [INF])
    assert states[0].best == INF
    assert states[0].lrs == (0.1 * 0.1,)
    assert flags == [True]


def test_first_minus_inf_metric_is_bad_epoch_in_max_mode() -> None:
    cfg = config(mode="max", patience=0)
    assert lrs_of(cfg, [0.1], [-INF]) == [[0.1 * 0.1]]


def test_minus_inf_becomes_best_and_nothing_beats_it() -> None:
    cfg = config(patience=1)
    states, _ = fold(cfg, [0.1], [1.0, -INF, -1e308, -INF])
    assert [s.best for s in states] == [1.0, -INF, -INF, -INF]
    assert [s.lrs[0] for s in states] == [0.1, 0.1, 0.1, 0.1 * 0.1]


# --- the reduction --------------------------------------------------------------------------


def test_eps_blocks_reducing_an_lr_of_1e_8() -> None:
    # 1e-8 - 1e-9 = 9e-9 is not > eps=1e-8: never reduced, and not flagged.
    cfg = config(patience=0)
    result = replay(cfg, [1e-8], [1.0] * 5)
    assert result.lr.tolist() == [[1e-8] * 5]
    assert result.reduced.tolist() == [False] * 5


def test_eps_lets_1e_7_drop_once_then_blocks() -> None:
    cfg = config(patience=0)
    once = 1e-7 * 0.1
    assert lrs_of(cfg, [1e-7], [1.0] * 4) == [[1e-7, once, once, once]]


def test_reduction_blocked_by_eps_still_starts_cooldown() -> None:
    cfg = config(patience=0, cooldown=3)
    states, flags = fold(cfg, [1e-8], [1.0, 1.0])
    assert states[1].cooldown_counter == 3
    assert flags == [False, False]


def test_zero_eps_keeps_cutting_tiny_lrs() -> None:
    cfg = config(patience=0, eps=0.0)
    assert lrs_of(cfg, [1e-8], [1.0, 1.0, 1.0]) == [[1e-8, 1e-8 * 0.1, 1e-8 * 0.1 * 0.1]]


def test_negative_eps_raises_the_lr_to_a_higher_min_lr() -> None:
    # old - new = 0.1 - 0.5 = -0.4 > eps=-1: PyTorch applies the "reduction" upwards.
    cfg = config(patience=0, eps=-1.0, min_lrs=(0.5,))
    result = replay(cfg, [0.1], [1.0, 1.0])
    assert result.lr.tolist() == [[0.1, 0.5]]
    assert result.reduced.tolist() == [False, True]


def test_per_group_min_lr_floors_each_group() -> None:
    cfg = config(patience=0, min_lrs=(0.05, 0.0, 0.0009))
    assert lrs_of(cfg, [0.1, 0.01, 0.001], [1.0, 1.0, 1.0]) == [
        [0.1, 0.05, 0.05],
        [0.01, 0.01 * 0.1, 0.01 * 0.1 * 0.1],
        [0.001, 0.0009, 0.0009],
    ]


def test_min_lr_above_the_lr_never_raises_it() -> None:
    cfg = config(patience=0, min_lrs=(0.1,))
    result = replay(cfg, [0.01], [1.0, 1.0, 1.0])
    assert result.lr.tolist() == [[0.01, 0.01, 0.01]]
    assert not result.reduced.any()


def test_negative_factor_sets_the_lr_to_min_lr() -> None:
    cfg = config(patience=0, factor=-2.0, min_lrs=(0.001,))
    assert lrs_of(cfg, [0.1], [1.0, 1.0, 1.0]) == [[0.1, 0.001, 0.001]]


def test_zero_factor_drops_the_lr_to_zero() -> None:
    cfg = config(patience=0, factor=0.0)
    assert lrs_of(cfg, [0.1], [1.0, 1.0]) == [[0.1, 0.0]]


def test_negative_min_lr_with_negative_factor_makes_the_lr_negative() -> None:
    cfg = config(patience=0, factor=-1.0, min_lrs=(-1.0,))
    assert lrs_of(cfg, [0.5], [1.0, 1.0, 1.0]) == [[0.5, -0.5, -0.5]]


def test_reduced_flag_marks_only_steps_that_changed_an_lr() -> None:
    cfg = config(patience=0, min_lrs=(0.05, 0.0))
    result = replay(cfg, [0.1, 1e-8], [1.0, 1.0, 1.0])
    assert result.lr.tolist() == [[0.1, 0.05, 0.05], [1e-8, 1e-8, 1e-8]]
    assert result.reduced.tolist() == [False, True, False]


# --- replay ---------------------------------------------------------------------------------


def test_replay_returns_groups_by_metrics_float64() -> None:
    result = replay(config(), [0.1, 0.2, 0.3], [1.0] * 7)
    assert result.lr.shape == (3, 7)
    assert result.lr.dtype == np.float64
    assert result.reduced.shape == (7,)
    assert result.reduced.dtype == np.bool_


def test_replay_of_no_metrics_is_empty() -> None:
    result = replay(config(), [0.1], [])
    assert result.lr.shape == (1, 0)
    assert result.state == initial_state(config(), [0.1])


_metric = st.one_of(
    st.sampled_from([0.0, 1.0, 1.0, 1.0, -1.0, 0.5, NAN, INF, -INF]),
    st.floats(min_value=-10.0, max_value=10.0),
)


@st.composite
def plateau_configs(draw: st.DrawFn, groups: int) -> PlateauConfig:
    min_lr = st.sampled_from([0.0, 1e-4, 0.05, 0.5, -0.1])
    per_group = draw(st.booleans())
    return PlateauConfig(
        mode=draw(st.sampled_from(["min", "max"])),
        factor=draw(st.sampled_from([0.1, 0.5, 0.0, -0.5, 0.999999]) | st.floats(-2.0, 0.99)),
        patience=draw(st.integers(-2, 4)),
        threshold=draw(st.sampled_from([1e-4, 0.0, 0.1, -0.1, 1.0]) | st.floats(-0.5, 0.5)),
        threshold_mode=draw(st.sampled_from(["rel", "abs"])),
        cooldown=draw(st.integers(-1, 3)),
        min_lrs=(
            tuple(draw(min_lr) for _ in range(groups)) if per_group else (draw(min_lr),) * groups
        ),
        eps=draw(st.sampled_from([1e-8, 0.0, 1e-3, -1.0])),
    )


@st.composite
def replays(draw: st.DrawFn) -> tuple[PlateauConfig, list[float], list[float]]:
    groups = draw(st.integers(1, 3))
    lrs = [
        draw(st.sampled_from([0.1, 1.0, 1e-7, 1e-8, 0.0]) | st.floats(0.0, 2.0))
        for _ in range(groups)
    ]
    metrics = draw(st.lists(_metric, min_size=0, max_size=40))
    return draw(plateau_configs(groups)), lrs, metrics


@given(replays())
@settings(max_examples=200, deadline=None)
def test_replay_equals_folding_step(case: tuple[PlateauConfig, list[float], list[float]]) -> None:
    cfg, lrs, metrics = case
    states, flags = fold(cfg, lrs, metrics)
    result = replay(cfg, lrs, metrics)
    assert result.lr.tolist() == [[s.lrs[g] for s in states] for g in range(len(lrs))]
    assert result.reduced.tolist() == flags
    if states:
        final, end = states[-1], result.state
        assert (final.lrs, final.num_bad_epochs, final.cooldown_counter) == (
            end.lrs,
            end.num_bad_epochs,
            end.cooldown_counter,
        )
        assert final.last_epoch == end.last_epoch
        assert final.best == end.best or (math.isnan(final.best) and math.isnan(end.best))


def _torch_replay(cfg: PlateauConfig, lrs: list[float], metrics: list[float]) -> Any:
    torch = pytest.importorskip("torch")
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    optimizer = torch.optim.SGD(groups)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode=cfg.mode,
        factor=cfg.factor,
        patience=cfg.patience,
        threshold=cfg.threshold,
        threshold_mode=cfg.threshold_mode,
        cooldown=cfg.cooldown,
        min_lr=list(cfg.min_lrs),
        eps=cfg.eps,
    )
    rows: list[list[float]] = [[] for _ in lrs]
    for metric in metrics:
        scheduler.step(metric)
        for row, group in zip(rows, optimizer.param_groups, strict=True):
            row.append(float(group["lr"]))
    return rows, scheduler


@pytest.mark.torch
@given(replays())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_replay_matches_live_torch(case: tuple[PlateauConfig, list[float], list[float]]) -> None:
    cfg, lrs, metrics = case
    expected, scheduler = _torch_replay(cfg, lrs, metrics)
    result = replay(cfg, lrs, metrics)
    assert result.lr.tolist() == expected
    assert result.state.num_bad_epochs == scheduler.num_bad_epochs
    assert result.state.cooldown_counter == scheduler.cooldown_counter
    assert result.state.last_epoch == scheduler.last_epoch
    assert result.state.best == scheduler.best or (
        math.isnan(result.state.best) and math.isnan(scheduler.best)
    )


def test_engine_module_imports_only_numpy_and_the_standard_library() -> None:
    assert module.__file__ is not None
    with open(module.__file__, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    roots = {
        (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert roots - {"numpy", "__future__"} <= set(sys.stdlib_module_names)
