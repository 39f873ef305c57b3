"""Lightning adapter: a remote schedule in ``LightningModule.configure_optimizers``.

Lightning steps any PyTorch ``LRScheduler`` it is given, so this is the torch adapter
(:class:`~lrsched_client.torch.RemoteLR`) in Lightning's scheduler config. Import it
explicitly; it needs torch (not Lightning itself). Install with
``pip install 'lrsched-client[lightning]'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from torch.optim import Optimizer

from lrsched_client.client import Client
from lrsched_client.torch import RemoteLR

__all__ = ["scheduler_config"]


def scheduler_config(
    optimizer: Optimizer,
    spec: Mapping[str, Any],
    total_steps: int,
    *,
    interval: Literal["step", "epoch"] = "step",
    frequency: int = 1,
    client: Client | None = None,
) -> dict[str, Any]:
    """The ``"lr_scheduler"`` entry of ``configure_optimizers``: a ``RemoteLR`` of ``spec``
    stepped every ``frequency`` optimizer steps (``interval="step"``; ``total_steps`` is
    then the trainer's ``estimated_stepping_batches``) or epochs (``"epoch"``; ``total_steps``
    is ``max_epochs``)."""
    if interval not in ("step", "epoch"):
        raise ValueError(f"interval={interval!r}: expected 'step' or 'epoch'")
    scheduler = RemoteLR(optimizer, spec, total_steps=total_steps, client=client)
    return {"scheduler": scheduler, "interval": interval, "frequency": frequency}
