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


# -- LR range test suggestions -----------------------------------------------------------------

Suggested = dict[str, float | None]
"""Each library's suggested lr (None: it makes none or fails for lack of points)."""


def _fastai_functions() -> dict[str, Any]:
    """fastai's suggestion functions, compiled from ``fastai/callback/schedule.py`` itself.

    Importing fastai needs pandas, scipy and torchvision, which the project does not install;
    the four functions only need numpy and torch, so their source is taken from the
    installed package (``pip install --no-deps fastai``) and run as it is.
    """
    import ast
    import importlib.util

    import numpy as np
    import torch

    spec = importlib.util.find_spec("fastai")
    assert spec is not None and spec.submodule_search_locations is not None
    path = f"{spec.submodule_search_locations[0]}/callback/schedule.py"
    with open(path, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    wanted = {"valley", "slide", "minimum", "steep"}
    module = ast.Module(
        body=[n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted],
        type_ignores=[],
    )
    namespace: dict[str, Any] = {"np": np, "torch": torch, "to_np": lambda t: t.numpy()}
    exec(compile(module, path, "exec"), namespace)
    return {name: namespace[name] for name in wanted}


def run_suggestions(lrs: list[float], losses: list[float], num_steps: int) -> Suggested:
    """fastai (as ``Learner.lr_find`` trims), Lightning and torch-lr-finder on the points."""
    return {**_fastai(lrs, losses, num_steps), **_lightning_suggestion(lrs, losses)} | {
        "torch_lr_finder": _torch_lr_finder(lrs, losses)
    }


def _fastai(lrs: list[float], losses: list[float], num_it: int) -> Suggested:
    import torch

    functions = _fastai_functions()
    # Learner.lr_find, verbatim but for the recorder: its lrs and (smoothed) losses.
    lr, loss = torch.tensor(lrs[num_it // 10 : -5]), torch.tensor(losses[num_it // 10 : -5])
    nan_idxs = torch.nonzero(torch.isnan(loss.view(-1)))
    if len(nan_idxs) > 0:
        drop_idx = min(nan_idxs)
        lr, loss = lr[:drop_idx], loss[:drop_idx]
    out: Suggested = {}
    for name in ("minimum", "steep", "valley", "slide"):
        try:
            out[f"fastai_{name}"] = float(functions[name](lr, loss, num_it)[0])
        except (IndexError, RuntimeError, ValueError):
            out[f"fastai_{name}"] = None
    return out


def _lightning_suggestion(lrs: list[float], losses: list[float]) -> Suggested:
    from pytorch_lightning.tuner.lr_finder import _LRFinder

    finder = _LRFinder("exponential", lrs[0], lrs[-1], len(lrs))
    finder.results = {"lr": list(lrs), "loss": list(losses)}
    suggested = finder.suggestion()
    return {"lightning": None if suggested is None else float(suggested)}


def _torch_lr_finder(lrs: list[float], losses: list[float]) -> float | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from torch_lr_finder import LRFinder

    model = torch.nn.Linear(1, 1)
    finder = LRFinder(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.MSELoss())
    finder.history = {"lr": list(lrs), "loss": list(losses)}
    figure, ax = plt.subplots()
    try:
        _, suggested = finder.plot(ax=ax, suggest_lr=True)
    except (RuntimeError, ValueError):
        return None
    finally:
        plt.close(figure)
    return float(suggested)
