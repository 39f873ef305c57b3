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

from lrsched_client.client import Client
from lrsched_client.torch import RemoteLR

__all__ = ["SCHEDULER_TYPES", "RemoteScheduleTrainer", "spec_for"]

SCHEDULER_TYPES: dict[str, str] = {
    "linear": "hf.linear",
    "cosine": "hf.cosine",
    "cosine_with_restarts": "hf.cosine_with_restarts",
    "polynomial": "hf.polynomial",
    "constant": "hf.constant",
    "constant_with_warmup": "hf.constant_with_warmup",
    "inverse_sqrt": "hf.inverse_sqrt",
    "cosine_with_min_lr": "hf.cosine_with_min_lr",
    "cosine_warmup_with_min_lr": "hf.cosine_warmup_with_min_lr",
    "warmup_stable_decay": "hf.wsd",
}
"""``TrainingArguments.lr_scheduler_type`` names and the service's spec types."""


def spec_for(
    name: str,
    num_warmup_steps: int = 0,
    num_training_steps: int | None = None,
    **scheduler_kwargs: Any,
) -> dict[str, Any]:
    """The spec of ``transformers.get_scheduler(name, ...)``, passing arguments as it does:
    ``constant`` takes none, ``constant_with_warmup`` only the warmup, ``inverse_sqrt`` no
    ``num_training_steps``; ``scheduler_kwargs`` are ``lr_scheduler_kwargs``.

    Raises:
        ValueError: a name with no remote equivalent (``reduce_lr_on_plateau``: use a
            plateau session and ``RemotePlateau``) or a missing ``num_training_steps``.
    """
    key = str(getattr(name, "value", name))
    if key not in SCHEDULER_TYPES:
        raise ValueError(
            f"lr_scheduler_type={key!r} has no remote schedule; expected one of "
            f"{sorted(SCHEDULER_TYPES)} (for reduce_lr_on_plateau use a plateau session)"
        )
    spec: dict[str, Any] = {"type": SCHEDULER_TYPES[key]}
    if key == "constant":
        return spec
    spec["num_warmup_steps"] = num_warmup_steps
    if key == "constant_with_warmup":
        return spec
    if key not in ("inverse_sqrt", "warmup_stable_decay"):
        if num_training_steps is None:
            raise ValueError(f"{key} requires num_training_steps")
    if key != "inverse_sqrt":
        spec["num_training_steps"] = num_training_steps
    return spec | scheduler_kwargs


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
