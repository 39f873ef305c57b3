"""Drive the real training-control code: Keras, Hugging Face and Lightning early stopping.

Used by ``tools/generate_training_control_golden.py`` to write the fixtures and by the live
differential tests when the libraries are installed. Each driver feeds a metric history
epoch by epoch, the way the library's trainer calls its callback, and stops at the first
epoch the callback asks to stop.
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

Outcome = dict[str, Any]
"""``stop_epoch`` (None: never), ``best``, ``best_epoch``, ``wait`` at that point."""


def run_early_stopping(options: dict[str, Any], metrics: list[float]) -> Outcome:
    """The named library's callback (``options["semantics"]``) fed ``metrics``."""
    drivers = {"keras": _keras, "hf": _hf, "lightning": _lightning}
    return drivers[options["semantics"]](options, metrics)


def _keras(options: dict[str, Any], metrics: list[float]) -> Outcome:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    callback = keras.callbacks.EarlyStopping(
        monitor="val_loss",
        mode=options["mode"],
        patience=options["patience"],
        min_delta=options.get("min_delta", 0.0),
        baseline=options.get("baseline"),
        start_from_epoch=options.get("start_from_epoch", 0),
    )
    model = SimpleNamespace(stop_training=False, metrics=[])
    callback.set_model(model)
    callback.on_train_begin()
    stop_epoch = None
    for epoch, metric in enumerate(metrics):
        callback.on_epoch_end(epoch, {"val_loss": metric})
        if model.stop_training:
            stop_epoch = epoch
            break
    best_epoch = callback.best_epoch if callback.best is not None else None
    return _outcome(stop_epoch, callback.best, best_epoch, callback.wait)


def _hf(options: dict[str, Any], metrics: list[float]) -> Outcome:
    from transformers import EarlyStoppingCallback, Trainer, TrainerControl, TrainerState
    from transformers.trainer_utils import SaveStrategy

    callback = EarlyStoppingCallback(
        early_stopping_patience=options["patience"],
        early_stopping_threshold=options.get("min_delta", 0.0),
    )
    args = SimpleNamespace(
        metric_for_best_model="loss",
        greater_is_better=options["mode"] == "max",
        save_strategy=SaveStrategy.NO,
    )
    state, control = TrainerState(), TrainerControl()
    trainer = SimpleNamespace(args=args, state=state)
    stop_epoch = best_epoch = None
    for epoch, metric in enumerate(metrics):
        logged = {"eval_loss": metric}
        callback.on_evaluate(args, state, control, logged)
        # What Trainer._maybe_log_save_evaluate does right after evaluating.
        if Trainer._determine_best_metric(trainer, logged, None):  # type: ignore[arg-type]
            best_epoch = epoch
        if control.should_training_stop:
            stop_epoch = epoch
            break
    return _outcome(
        stop_epoch, state.best_metric, best_epoch, callback.early_stopping_patience_counter
    )


def _lightning(options: dict[str, Any], metrics: list[float]) -> Outcome:
    import torch
    from pytorch_lightning.callbacks import EarlyStopping

    callback = EarlyStopping(
        monitor="val_loss",
        mode=options["mode"],
        patience=options["patience"],
        min_delta=options.get("min_delta", 0.0),
        check_finite=options.get("check_finite", True),
        stopping_threshold=options.get("stopping_threshold"),
        divergence_threshold=options.get("divergence_threshold"),
    )
    stop_epoch = best_epoch = best = None
    for epoch, metric in enumerate(metrics):
        before = callback.best_score
        # self.log(...) stores a Python float as a tensor of the default dtype (float32).
        should_stop, _ = callback._evaluate_stopping_criteria(torch.tensor(metric))
        if callback.best_score is not before:
            best_epoch, best = epoch, metric
        if should_stop:
            stop_epoch = epoch
            break
    return _outcome(stop_epoch, best, best_epoch, callback.wait_count)


def _outcome(stop_epoch: int | None, best: Any, best_epoch: int | None, wait: int) -> Outcome:
    return {
        "stop_epoch": stop_epoch,
        "best": None if best is None else float(best),
        "best_epoch": best_epoch,
        "wait": int(wait),
    }
