"""ReduceLROnPlateau as a pure function of (config, state, metric).

Matches ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (torch 2.13) decision for decision and
floating-point operation for floating-point operation. Opt-in variants (defaults keep PyTorch's
behaviour): ``patience_semantics="keras"`` reduces once ``num_bad_epochs >= patience`` (Keras,
fastai, optax) instead of ``>``; ``threshold_mode="both"`` combines a relative and an absolute
margin (optax ``rtol``/``atol``); ``sign_safe`` measures the relative margin on ``|best|``
(so negative metrics can improve); ``accumulation_size`` averages that many metrics before
each decision (optax). :func:`step` is the single rule:
:func:`replay` folds it over a metric history, and plateau sessions apply it inside one atomic
store update, so the two cannot diverge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class PlateauConfig:
    """The constructor arguments of ``ReduceLROnPlateau``, already checked.

    ``min_lrs`` holds one floor per param group (a scalar ``min_lr`` broadcast).
    """

    mode: Literal["min", "max"]
    factor: float
    patience: int
    threshold: float
    threshold_mode: Literal["rel", "abs", "both"]
    cooldown: int
    min_lrs: tuple[float, ...]
    eps: float
    patience_semantics: Literal["torch", "keras"] = "torch"
    min_delta: float = 0.0
    """The absolute margin of ``threshold_mode="both"`` (``threshold`` is the relative one)."""
    sign_safe: bool = False
    accumulation_size: int = 1


@dataclass(frozen=True, slots=True)
class PlateauState:
    """Everything ``ReduceLROnPlateau`` remembers between two ``step(metric)`` calls.

    Attributes:
        lrs: the current LR of every param group.
        best: the best metric seen so far (``mode_worse`` before any improvement).
        num_bad_epochs: consecutive steps without improvement, since the last reset.
        cooldown_counter: steps of cooldown still to run.
        last_epoch: the number of ``step`` calls so far.
        accumulated: the mean of the metrics accumulated since the last decision.
        accumulated_count: how many (``accumulation_size > 1`` only; else always 0).
    """

    lrs: tuple[float, ...]
    best: float
    num_bad_epochs: int
    cooldown_counter: int
    last_epoch: int
    accumulated: float = 0.0
    accumulated_count: int = 0


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What :func:`replay` observed after each ``step(metric)``.

    Attributes:
        lr: float64 array of shape ``(groups, n)``; ``lr[g, i]`` is group ``g``'s LR after the
            ``i``-th metric (0-based) was stepped.
        reduced: bool array of shape ``(n,)``; whether that step changed the LR of some group.
        state: the state after the last metric.
    """

    lr: npt.NDArray[np.float64]
    reduced: npt.NDArray[np.bool_]
    state: PlateauState


def mode_worse(config: PlateauConfig) -> float:
    """The worst possible metric for ``config.mode``: ``+inf`` for "min", ``-inf`` for "max"."""
    return math.inf if config.mode == "min" else -math.inf


def initial_state(config: PlateauConfig, lrs: Sequence[float]) -> PlateauState:
    """The state right after construction on param groups with learning rates ``lrs``.

    ``best = mode_worse``, both counters 0, ``last_epoch = 0``; the LRs are left untouched.
    """
    return PlateauState(
        lrs=tuple(float(lr) for lr in lrs),
        best=mode_worse(config),
        num_bad_epochs=0,
        cooldown_counter=0,
        last_epoch=0,
    )


def is_better(config: PlateauConfig, metric: float, best: float) -> bool:
    """Whether ``metric`` improves on ``best``, torch's ``_is_better`` (and the variants).

    min/rel: ``metric < best * (1 - threshold)``;  min/abs: ``metric < best - threshold``;
    max/rel: ``metric > best * (threshold + 1)``;  max/abs: ``metric > best + threshold``;
    both: the rel bar moved by ``min_delta`` more (min: ``best * (1 - threshold) - min_delta``,
    optax's ``(1 - rtol) best - atol``). NaN is never better. In rel mode a negative ``best``
    moves the bar the "wrong" way (min: best=-10, threshold=0.1 accepts -9.5), exactly as in
    PyTorch (pytorch#47513); ``sign_safe`` uses ``best -/+ threshold * |best|`` instead.
    """
    if config.sign_safe and math.isfinite(best):
        margin = config.threshold * abs(best)
        if config.threshold_mode == "abs":
            margin = config.threshold
        elif config.threshold_mode == "both":
            margin = margin + config.min_delta
        return metric < best - margin if config.mode == "min" else metric > best + margin
    if config.mode == "min":
        if config.threshold_mode == "rel":
            return metric < best * (1.0 - config.threshold)
        if config.threshold_mode == "both":
            return metric < best * (1.0 - config.threshold) - config.min_delta
        return metric < best - config.threshold
    if config.threshold_mode == "rel":
        return metric > best * (config.threshold + 1.0)
    if config.threshold_mode == "both":
        return metric > best * (config.threshold + 1.0) + config.min_delta
    return metric > best + config.threshold


def _reduce(config: PlateauConfig, lrs: tuple[float, ...]) -> tuple[tuple[float, ...], bool]:
    """Each group's ``new = max(old * factor, min_lr)``, kept only where ``old - new > eps``.

    Returns the LRs (``lrs`` itself when no group was updated) and whether any LR changed.
    """
    out = list(lrs)
    applied = changed = False
    for group, (old, min_lr) in enumerate(zip(lrs, config.min_lrs, strict=True)):
        new = max(old * config.factor, min_lr)
        if old - new > config.eps:
            out[group] = new
            applied = True
            changed = changed or new != old
    return (tuple(out) if applied else lrs), changed


def _decide(
    config: PlateauConfig, best: float, num_bad_epochs: int, cooldown_counter: int, metric: float
) -> tuple[float, int, int, bool]:
    """The counters after one metric, and whether the LRs are to be reduced now.

    The bookkeeping half of :func:`step` on plain scalars, so :func:`replay` can fold it over
    long histories without building a state record per metric.
    """
    if is_better(config, metric, best):
        best = metric
        num_bad_epochs = 0
    else:
        num_bad_epochs += 1
    cooling = cooldown_counter > 0
    if cooling:
        cooldown_counter -= 1
        num_bad_epochs = 0
    if config.patience_semantics == "keras":
        reduce_now = not cooling and num_bad_epochs >= config.patience
    else:
        reduce_now = num_bad_epochs > config.patience
    if reduce_now:
        return best, 0, config.cooldown, True
    return best, num_bad_epochs, cooldown_counter, False


def step(config: PlateauConfig, state: PlateauState, metric: float) -> tuple[PlateauState, bool]:
    """One ``ReduceLROnPlateau.step(metric)``: the next state, and whether it changed some LR.

    In order: an improvement (see :func:`is_better`) sets ``best`` and zeroes the bad-epoch
    count, anything else (NaN included) adds one bad epoch; a step in cooldown decrements the
    cooldown counter and zeroes the bad-epoch count; then, if ``num_bad_epochs > patience``,
    every group's LR becomes ``max(lr * factor, min_lr)`` unless that lowers it by ``eps`` or
    less, the cooldown counter is set to ``cooldown`` and the bad-epoch count to 0.
    A reduction that changes no group (floors, the eps block) still starts the cooldown.
    With ``accumulation_size > 1`` only every that-many-th call decides, on the mean of the
    metrics since the last decision (optax's running mean); the calls between only count.
    """
    if config.accumulation_size > 1:
        count, mean = _accumulate(state.accumulated_count, state.accumulated, metric)
        if count < config.accumulation_size:
            accumulating = replace(
                state, last_epoch=state.last_epoch + 1, accumulated=mean, accumulated_count=count
            )
            return accumulating, False
        metric = mean
    best, num_bad_epochs, cooldown_counter, reduce_now = _decide(
        config, state.best, state.num_bad_epochs, state.cooldown_counter, metric
    )
    lrs, changed = _reduce(config, state.lrs) if reduce_now else (state.lrs, False)
    new_state = PlateauState(
        lrs=lrs,
        best=best,
        num_bad_epochs=num_bad_epochs,
        cooldown_counter=cooldown_counter,
        last_epoch=state.last_epoch + 1,
    )
    return new_state, changed


def _accumulate(count: int, mean: float, metric: float) -> tuple[int, float]:
    """optax's running mean: ``(count * mean + metric) / (count + 1)``."""
    return count + 1, (count * mean + metric) / (count + 1)


def replay(config: PlateauConfig, lrs: Sequence[float], metrics: Sequence[float]) -> ReplayResult:
    """Construct on param groups with learning rates ``lrs``, then ``step`` each metric in turn.

    Returns every group's LR after every step and which steps changed an LR
    (:class:`ReplayResult`); the same numbers as folding :func:`step` over ``metrics``.
    """
    start = initial_state(config, lrs)
    best, num_bad_epochs, cooldown_counter = start.best, 0, 0
    levels = _Levels([start.lrs])
    accumulated_count, accumulated = 0, 0.0
    for i, metric in enumerate(metrics):
        value = float(metric)
        if config.accumulation_size > 1:
            accumulated_count, accumulated = _accumulate(accumulated_count, accumulated, value)
            if accumulated_count < config.accumulation_size:
                continue
            value, accumulated_count, accumulated = accumulated, 0, 0.0
        best, num_bad_epochs, cooldown_counter, reduce_now = _decide(
            config, best, num_bad_epochs, cooldown_counter, value
        )
        if reduce_now:
            levels.reduce(config, i)
    state = PlateauState(
        lrs=levels.current,
        best=best,
        num_bad_epochs=num_bad_epochs,
        cooldown_counter=cooldown_counter,
        last_epoch=start.last_epoch + len(metrics),
        accumulated=accumulated,
        accumulated_count=accumulated_count,
    )
    return ReplayResult(
        lr=levels.lr_by_step(len(metrics)),
        reduced=levels.reduced_by_step(len(metrics)),
        state=state,
    )


@dataclass(slots=True)
class _Levels:
    """The LRs of a replay, kept as levels: the LRs in force initially, then after each
    update, rather than one row per step."""

    lrs: list[tuple[float, ...]]
    updates: list[int] = field(default_factory=list)
    """The step at which each level after the first starts."""
    cuts: list[int] = field(default_factory=list)
    """The steps that changed some LR."""

    @property
    def current(self) -> tuple[float, ...]:
        """The LRs in force now."""
        return self.lrs[-1]

    def reduce(self, config: PlateauConfig, i: int) -> None:
        """Reduce the LRs at step ``i`` (see :func:`_reduce`)."""
        new, changed = _reduce(config, self.current)
        if new is not self.current:
            self.lrs.append(new)
            self.updates.append(i)
        if changed:
            self.cuts.append(i)

    def lr_by_step(self, n: int) -> npt.NDArray[np.float64]:
        """``lr[g, i]``: group ``g``'s LR after step ``i``, for ``n`` steps (C-contiguous)."""
        level_of_step = np.searchsorted(
            np.asarray(self.updates, dtype=np.int64), np.arange(n), side="right"
        )
        lr = np.asarray(self.lrs, dtype=np.float64).T[:, level_of_step]
        return np.ascontiguousarray(lr)

    def reduced_by_step(self, n: int) -> npt.NDArray[np.bool_]:
        """Whether each of ``n`` steps changed some LR."""
        reduced = np.zeros(n, dtype=np.bool_)
        reduced[self.cuts] = True
        return reduced
