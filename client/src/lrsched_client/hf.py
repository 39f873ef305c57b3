"""Hugging Face adapters: ``lr_scheduler_type`` names as ``hf.*`` specs, and a ``Trainer``
whose schedule the service computes.

Import it explicitly (``from lrsched_client.hf import RemoteScheduleTrainer``); it needs
transformers and torch, which ``import lrsched_client`` never imports. Install with
``pip install 'lrsched-client[hf]'``. A remote schedule also goes to any ``Trainer`` as
``optimizers=(optimizer, RemoteLR(optimizer, spec, total_steps=max_steps))``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import transformers

from lrsched_client._hf_names import SCHEDULER_TYPES, spec_for
from lrsched_client.client import Client
from lrsched_client.torch import RemoteLR

__all__ = ["SCHEDULER_TYPES", "RemoteScheduleTrainer", "spec_for"]


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
