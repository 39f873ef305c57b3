"""A Lightning callback: early stopping decided once for every rank.

Importable only with Lightning installed (``lightning`` or ``pytorch_lightning``). Use it
instead of ``EarlyStopping``; with ``semantics="lightning"`` the session applies that
callback's rule to the ranks' reduced metric::

    session = client.create_session(
        early_stopping={"semantics": "lightning", "patience": 3}, world_size=world_size
    )
    trainer = Trainer(callbacks=[LrschedEarlyStopping(RemoteEarlyStopping(session), "val_loss")])
"""

from __future__ import annotations

from typing import Any

try:
    from lightning.pytorch import Callback  # type: ignore[import-not-found, unused-ignore]
except ImportError:
    from pytorch_lightning import Callback

from lrsched_client.training import RemoteEarlyStopping

__all__ = ["LrschedEarlyStopping"]


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
