"""``lrsched_client.lightning``: a remote schedule stepped by a real Lightning ``Trainer``."""

from __future__ import annotations

from typing import Any

import pytest
from lrsched_client import Client

torch = pytest.importorskip("torch")
pl = pytest.importorskip("pytorch_lightning")

from lrsched_client.lightning import scheduler_config  # noqa: E402
from lrsched_client.torch import RemoteLR  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    # Lightning's advice about dataloader workers and loggers, irrelevant on a toy model,
    # and its use of a torch pytree API that torch 2.13 deprecates.
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.* is deprecated:FutureWarning"),
]

SPEC = {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 12}


class Tiny(pl.LightningModule):  # type: ignore[misc]
    """One weight; records the lr of each training step, before the optimizer step."""

    def __init__(self, client: Client, interval: str, total: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(2))
        self.client, self.interval, self.total = client, interval, total
        self.lrs: list[float] = []

    def training_step(self, batch: Any, index: int) -> torch.Tensor:
        self.lrs.append(self.optimizers().param_groups[0]["lr"])
        return (batch[0] * self.weight).sum().pow(2)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.SGD([self.weight], lr=0.01, momentum=0.9)
        config = scheduler_config(
            optimizer, SPEC, self.total, interval=self.interval, client=self.client
        )
        return {"optimizer": optimizer, "lr_scheduler": config}


def fit(client: Client, interval: str, total: int, epochs: int) -> Tiny:
    model = Tiny(client, interval, total)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(8, 2)))
    trainer = pl.Trainer(
        max_epochs=epochs, limit_train_batches=4, accelerator="cpu", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, data)
    return model


def test_step_interval_follows_the_curve_every_batch(client: Client) -> None:
    model = fit(client, "step", 12, epochs=3)
    assert model.lrs == pytest.approx(client.curve_json(SPEC, 0.01, 12)["lr"][0], rel=1e-12)
    assert isinstance(model.lr_schedulers(), RemoteLR)


def test_epoch_interval_moves_once_per_epoch(client: Client) -> None:
    model = fit(client, "epoch", 3, epochs=3)
    per_epoch = client.curve_json(SPEC, 0.01, 3)["lr"][0]
    assert model.lrs == pytest.approx([lr for lr in per_epoch for _ in range(4)], rel=1e-12)


def test_an_unknown_interval_is_refused(client: Client) -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="interval='batch'"):
        scheduler_config(optimizer, SPEC, 12, interval="batch", client=client)  # type: ignore[arg-type]
