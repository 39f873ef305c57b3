"""Lightning adapters: a remote schedule in ``LightningModule.configure_optimizers``, and
early stopping decided once for every rank.

Lightning steps any PyTorch ``LRScheduler`` it is given, so :func:`scheduler_config` is the
torch adapter (:class:`~lrsched_client.torch.RemoteLR`) in Lightning's scheduler config.
:class:`LrschedEarlyStopping` replaces ``EarlyStopping``; with ``semantics="lightning"`` the
session applies that callback's rule to the ranks' reduced metric::

    session = client.create_session(
        early_stopping={"semantics": "lightning", "patience": 3}, world_size=world_size
    )
    trainer = Trainer(callbacks=[LrschedEarlyStopping(RemoteEarlyStopping(session), "val_loss")])

Import it explicitly; it needs torch and Lightning (``lightning`` or ``pytorch_lightning``),
which ``import lrsched_client`` never imports. Install with
``pip install 'lrsched-client[lightning]'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from torch.optim import Optimizer

try:
    from lightning.pytorch import Callback  # type: ignore[import-not-found, unused-ignore]
except ImportError:
    from pytorch_lightning import Callback

from lrsched_client.client import Client
from lrsched_client.torch import RemoteLR
from lrsched_client.training import RemoteEarlyStopping

__all__ = ["LrschedEarlyStopping", "scheduler_config"]


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


class LrschedEarlyStopping(Callback):  # type: ignore[misc]
    """After each validation, report ``monitor`` and stop when the session says so.

    Args:
        early_stopping: the shared decision (its rank defaults to ``trainer.global_rank``).
        monitor: the logged metric to report (e.g. ``"val_loss"``).
    """

    def __init__(self, early_stopping: RemoteEarlyStopping, monitor: str) -> None:
        self.early_stopping = early_stopping
        self.monitor = monitor

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        """Report the epoch's metric (not during the sanity check); stop on the answer."""
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        if self.early_stopping.rank is None:
            self.early_stopping.rank = int(trainer.global_rank)
        if self.early_stopping.step(float(trainer.callback_metrics[self.monitor])):
            trainer.should_stop = True
