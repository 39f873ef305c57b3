"""Early stopping as a pure function of (config, state, epoch, metric).

Three rules, each reproducing one library's callback decision for decision on the same
metric history (``tools/generate_training_control_golden.py`` checks them against the real
packages):

- ``keras``: ``keras.callbacks.EarlyStopping`` (Keras 3). Epochs before ``start_from_epoch``
  are ignored; every other epoch adds one to ``wait``; a metric that beats ``best`` by
  ``min_delta`` (min: ``metric + min_delta < best``) becomes ``best`` and, if it also beats
  ``baseline`` that way (or there is none), resets ``wait`` to 0; otherwise training stops
  once ``wait >= patience`` and ``epoch > 0``. Keras compares in float32 (``ops.less`` on
  its default float type), so the comparisons here round both sides to float32 as well.
- ``hf``: ``transformers.EarlyStoppingCallback`` with the Trainer's ``best_metric``.
  The counter resets when there is no best yet, or the metric is strictly better than
  ``best`` and ``|metric - best| > min_delta`` (``early_stopping_threshold``); else it adds
  one; stop once ``counter >= patience``. Then, as ``Trainer._determine_best_metric`` does
  after the callback, ``best`` (``inf``/``-inf`` at first) becomes the metric if strictly
  better, with no threshold. float64 (numpy on Python floats).
- ``lightning``: ``lightning.pytorch.callbacks.EarlyStopping``. In order: a non-finite
  metric stops (``check_finite``); a metric better than ``stopping_threshold`` stops; a
  metric worse than ``divergence_threshold`` stops; a metric that beats ``best`` by
  ``min_delta`` becomes ``best`` and resets ``wait_count``; else ``wait_count`` adds one
  and training stops once ``wait_count >= patience``. Lightning logs metrics as float32
  tensors, so the arithmetic and comparisons here are float32 too.

``start_from_epoch`` is Keras's; the service applies it to every rule (earlier epochs are
not shown to the rule). Once a rule says stop, the state no longer changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

Semantics = Literal["keras", "hf", "lightning"]
StopReason = Literal["patience", "non_finite", "stopping_threshold", "divergence_threshold"]


@dataclass(frozen=True, slots=True)
class EarlyStoppingConfig:
    """The callback's options, already checked (``baseline`` is Keras's only; the last three
    Lightning's only)."""

    semantics: Semantics
    mode: Literal["min", "max"]
    patience: int
    min_delta: float = 0.0
    baseline: float | None = None
    start_from_epoch: int = 0
    check_finite: bool = True
    stopping_threshold: float | None = None
    divergence_threshold: float | None = None


@dataclass(frozen=True, slots=True)
class EarlyStoppingState:
    """What the callback remembers between two epochs.

    Attributes:
        best: the rule's reference value (Keras ``best``, the Trainer's ``best_metric``,
            Lightning ``best_score``); None before the rule has one.
        best_epoch: the epoch whose metric is ``best`` (None while there is none).
        wait: Keras ``wait``, HF's patience counter, Lightning ``wait_count``.
        stop: whether training is to stop; once true it stays true.
        stop_epoch: the epoch that decided to stop.
        reason: why it stopped.
    """

    best: float | None = None
    best_epoch: int | None = None
    wait: int = 0
    stop: bool = False
    stop_epoch: int | None = None
    reason: StopReason | None = None


def _f32(value: float) -> np.float32:
    with np.errstate(over="ignore"):  # a float64 beyond float32's range is inf, as in Keras
        return np.float32(value)


def _better(mode: Literal["min", "max"], a: float | np.floating, b: float | np.floating) -> bool:
    return bool(a < b) if mode == "min" else bool(a > b)


def _keras(
    config: EarlyStoppingConfig, state: EarlyStoppingState, epoch: int, metric: float
) -> EarlyStoppingState:
    delta = -config.min_delta if config.mode == "min" else config.min_delta

    def improves(reference: float | None) -> bool:
        if reference is None:
            return True
        return _better(config.mode, _f32(metric - delta), _f32(reference))

    wait = state.wait + 1
    if improves(state.best):
        if config.baseline is None or improves(config.baseline):
            wait = 0
        return replace(state, best=metric, best_epoch=epoch, wait=wait)
    if wait >= config.patience and epoch > 0:
        return replace(state, wait=wait, stop=True, stop_epoch=epoch, reason="patience")
    return replace(state, wait=wait)


def _hf(
    config: EarlyStoppingConfig, state: EarlyStoppingState, epoch: int, metric: float
) -> EarlyStoppingState:
    best = state.best
    if best is None or (
        _better(config.mode, metric, best) and abs(metric - best) > config.min_delta
    ):
        wait = 0
    else:
        wait = state.wait + 1
    stop = wait >= config.patience
    best_epoch = state.best_epoch
    if best is None:
        best = math.inf if config.mode == "min" else -math.inf
    if _better(config.mode, metric, best):
        best, best_epoch = metric, epoch
    updated = replace(state, best=best, best_epoch=best_epoch, wait=wait)
    return replace(updated, stop=True, stop_epoch=epoch, reason="patience") if stop else updated


def _lightning_stop(config: EarlyStoppingConfig, current: np.float32) -> StopReason | None:
    """The reasons Lightning stops before looking at ``best`` (in its order), or None."""
    if config.check_finite and not np.isfinite(current):
        return "non_finite"
    if config.stopping_threshold is not None and _better(
        config.mode, current, _f32(config.stopping_threshold)
    ):
        return "stopping_threshold"
    if config.divergence_threshold is not None and _better(
        config.mode, -current, -_f32(config.divergence_threshold)
    ):
        return "divergence_threshold"
    return None


def _lightning(
    config: EarlyStoppingConfig, state: EarlyStoppingState, epoch: int, metric: float
) -> EarlyStoppingState:
    current = _f32(metric)
    reason = _lightning_stop(config, current)
    if reason is not None:
        return replace(state, stop=True, stop_epoch=epoch, reason=reason)
    delta = _f32(config.min_delta if config.mode == "max" else -config.min_delta)
    worst = math.inf if config.mode == "min" else -math.inf
    best = _f32(worst if state.best is None else state.best)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is nan, as in torch
        shifted = current - delta
    if _better(config.mode, shifted, best):
        return replace(state, best=metric, best_epoch=epoch, wait=0)
    wait = state.wait + 1
    if wait >= config.patience:
        return replace(state, wait=wait, stop=True, stop_epoch=epoch, reason="patience")
    return replace(state, wait=wait)


_RULES = {"keras": _keras, "hf": _hf, "lightning": _lightning}


def step(
    config: EarlyStoppingConfig, state: EarlyStoppingState, epoch: int, metric: float
) -> EarlyStoppingState:
    """The state after ``metric`` was reported for ``epoch`` (see the module docstring).

    A stopped state, and an epoch before ``start_from_epoch``, are returned unchanged.
    """
    if state.stop or epoch < config.start_from_epoch:
        return state
    return _RULES[config.semantics](config, state, epoch, metric)


@dataclass(frozen=True, slots=True)
class EarlyStoppingReplay:
    """What :func:`replay` observed: ``stop[i]`` after the ``i``-th metric, and the end state."""

    stop: list[bool]
    state: EarlyStoppingState


def replay(
    config: EarlyStoppingConfig, metrics: Sequence[float], first_epoch: int = 0
) -> EarlyStoppingReplay:
    """Fold :func:`step` over ``metrics``, the ``i``-th reported for epoch ``first_epoch + i``."""
    state = EarlyStoppingState()
    stops: list[bool] = []
    for i, metric in enumerate(metrics):
        state = step(config, state, first_epoch + i, float(metric))
        stops.append(state.stop)
    return EarlyStoppingReplay(stop=stops, state=state)
