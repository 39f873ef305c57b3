"""Hugging Face adapters: ``lr_scheduler_type`` names as ``hf.*`` specs, a ``Trainer``
whose schedule the service computes, and early stopping decided once for every rank.

Import it explicitly (``from lrsched_client.hf import RemoteScheduleTrainer``); it needs
transformers and torch, which ``import lrsched_client`` never imports. Install with
``pip install 'lrsched-client[hf]'``. A remote schedule also goes to any ``Trainer`` as
``optimizers=(optimizer, RemoteLR(optimizer, spec, total_steps=max_steps))``.

:class:`LrschedEarlyStoppingCallback` replaces ``transformers.EarlyStoppingCallback``; with
``semantics="hf"`` the session applies that callback's rule (``early_stopping_patience`` =
``patience``, ``early_stopping_threshold`` = ``min_delta``) to the ranks' reduced metric::

    session = client.create_session(
        early_stopping={"semantics": "hf", "patience": 3}, world_size=world_size
    )
    trainer = Trainer(..., callbacks=[LrschedEarlyStoppingCallback(RemoteEarlyStopping(session))])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import transformers
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from lrsched_client._hf_names import SCHEDULER_TYPES, spec_for
from lrsched_client.client import Client
from lrsched_client.torch import RemoteLR
from lrsched_client.training import RemoteEarlyStopping

__all__ = ["SCHEDULER_TYPES", "LrschedEarlyStoppingCallback", "RemoteScheduleTrainer", "spec_for"]


class RemoteScheduleTrainer(transformers.Trainer):  # type: ignore[misc]
    """A ``transformers.Trainer`` whose lr schedule comes from the service.

    ``create_scheduler`` builds a :class:`~lrsched_client.torch.RemoteLR` over
    ``num_training_steps`` optimizer steps: of ``lr_schedule`` when given (any spec),
    else of the ``hf.*`` spec that ``args.lr_scheduler_type``, its warmup and
    ``args.lr_scheduler_kwargs`` map to (:func:`spec_for`), which gives HF's own values.

    Args:
        lr_schedule: the spec to follow (default: from the training arguments).
        lrsched_client: the client to fetch with (default ``Client()``: ``LRSCHED_URL``).
        *args, **kwargs: ``Trainer``'s.
    """

    def __init__(
        self,
        *args: Any,
        lr_schedule: Mapping[str, Any] | None = None,
        lrsched_client: Client | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lr_schedule = None if lr_schedule is None else dict(lr_schedule)
        self.lrsched_client = lrsched_client

    def create_scheduler(
        self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None
    ) -> torch.optim.lr_scheduler.LRScheduler:
        """The remote scheduler (created once, as ``Trainer.create_scheduler`` does)."""
        if self.lr_scheduler is None:
            spec = self.lr_schedule or spec_for(
                self.args.lr_scheduler_type,
                self.args.get_warmup_steps(num_training_steps),
                num_training_steps,
                **(self.args.lr_scheduler_kwargs or {}),
            )
            self.lr_scheduler = RemoteLR(
                optimizer or self.optimizer,
                spec,
                total_steps=num_training_steps,
                client=self.lrsched_client,
            )
            self._created_lr_scheduler = True
        return self.lr_scheduler


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
