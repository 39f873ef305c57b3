"""A Hugging Face ``Trainer`` callback: early stopping decided once for every rank.

Importable only with ``transformers`` installed. Use it instead of
``transformers.EarlyStoppingCallback``; with ``semantics="hf"`` the session applies that
callback's rule (``early_stopping_patience`` = ``patience``, ``early_stopping_threshold`` =
``min_delta``) to the ranks' reduced metric::

    session = client.create_session(
        early_stopping={"semantics": "hf", "patience": 3}, world_size=world_size
    )
    trainer = Trainer(..., callbacks=[LrschedEarlyStoppingCallback(RemoteEarlyStopping(session))])
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from lrsched_client.training import RemoteEarlyStopping

__all__ = ["LrschedEarlyStoppingCallback"]


class LrschedEarlyStoppingCallback(TrainerCallback):
    """After each evaluation, report the metric and stop when the session says so.

    Args:
        early_stopping: the shared decision (its rank defaults to the process's rank).
        metric: the metric name; default ``args.metric_for_best_model`` (``eval_`` is
            prefixed as the Trainer does).
    """

    def __init__(self, early_stopping: RemoteEarlyStopping, metric: str | None = None) -> None:
        self.early_stopping = early_stopping
        self.metric = metric

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Report this evaluation's metric; set ``control.should_training_stop`` on stop."""
        name = self.metric or args.metric_for_best_model
        if name is None or metrics is None:
            return
        key = name if name.startswith("eval_") else f"eval_{name}"
        if key not in metrics:
            return
        if self.early_stopping.rank is None:
            self.early_stopping.rank = int(args.process_index)
        if self.early_stopping.step(float(metrics[key])):
            control.should_training_stop = True
