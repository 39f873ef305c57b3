"""RemoteEarlyStopping, RemoteLRFinder and the Hugging Face / Lightning callbacks, against a
real service process (and the real libraries, when installed)."""

from __future__ import annotations

import importlib.util
import math
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lrsched_client import AsyncClient, Client, NotFoundError, RemoteEarlyStopping, RemoteLRFinder

from service.engine import early_stopping as stopping_engine
from service.engine.lr_finder import LrFinderConfig, lr_at, suggest
from tests.client.conftest import FAST_RETRY
from tests.loop import run_in_fresh_loop


def run_ranks(url: str, world_size: int, work: Callable[[Client, int], Any]) -> list[Any]:
    """``work(client, rank)`` in one thread per rank, each with its own client."""
    results: list[Any] = [None] * world_size
    errors: list[BaseException] = []

    def rank_thread(rank: int) -> None:
        try:
            with Client(url, retries=FAST_RETRY) as client:
                results[rank] = work(client, rank)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=rank_thread, args=(r,)) for r in range(world_size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


METRICS = [[1.0, 1.2], [0.9, 0.9], [0.9, 0.95], [0.9, 0.91], [0.5, 0.5]]
KERAS = {"semantics": "keras", "patience": 2, "min_delta": 0.01}


def test_remote_early_stopping_stops_every_rank_at_the_same_epoch(client: Client, url: str) -> None:
    session = client.create_session(early_stopping=KERAS, world_size=2)
    means = [sum(pair) / 2 for pair in METRICS]
    expected = stopping_engine.replay(
        stopping_engine.EarlyStoppingConfig("keras", "min", 2, 0.01), means
    )

    def rank(ranked: Client, r: int) -> list[bool]:
        stopping = RemoteEarlyStopping(ranked.session(session.id, session.token), rank=r)
        stops = []
        for epoch_metrics in METRICS:
            stops.append(stopping.step(epoch_metrics[r]))
            if stopping.should_stop:
                break
        assert stopping.last is not None and stopping.last.best_epoch == 1
        return stops

    stops = run_ranks(url, 2, rank)
    assert stops[0] == stops[1] == expected.stop[: expected.state.stop_epoch + 1]  # type: ignore[operator]
    assert stops[0][-1] is True


def test_remote_lr_finder_sets_each_step_s_lr_and_stops_every_rank_together(
    client: Client, url: str
) -> None:
    options = {"start_lr": 1e-4, "end_lr": 1.0, "num_steps": 30, "smooth": 0.5}
    finder = client.create_lr_finder(**options, world_size=2)
    config = LrFinderConfig(**options)

    def rank(ranked: Client, r: int) -> list[float]:
        optimizer = SimpleNamespace(param_groups=[{"lr": 0.0}, {"lr": 0.0}])
        remote = RemoteLRFinder(ranked.lr_finder(finder.id, finder.token), optimizer, rank=r)
        used = []
        while True:
            lr = optimizer.param_groups[0]["lr"]
            assert optimizer.param_groups[1]["lr"] == lr
            used.append(lr)
            loss = 2.0 - 0.2 * math.log10(lr) + (50.0 * lr if lr > 0.1 else 0.0) + 0.01 * r
            if remote.step(loss):
                return used

    used = run_ranks(url, 2, rank)
    assert used[0] == used[1] == [lr_at(config, k) for k in range(len(used[0]))]
    result = finder.result()
    assert result.stop_reason == "diverged" and list(result.lr) == used[0]
    expected = suggest(result.lr, result.smoothed_loss, 30)
    assert result.suggestions == {name: getattr(expected, name) for name in expected.__slots__}


def test_the_async_lr_finder_gives_the_sync_one_s_answers(client: Client, url: str) -> None:
    options = {"start_lr": 1e-3, "end_lr": 10.0, "num_steps": 8, "mode": "linear"}
    config = LrFinderConfig(**options)
    losses = [3.0, 2.5, 2.0, 1.8, 1.9, 2.4, 3.5, 9.0]

    async def run() -> tuple[list[float], str, str]:
        async with AsyncClient(url) as async_client:
            finder = await async_client.create_lr_finder(**options)
            lrs = []
            for step, loss in enumerate(losses):
                lrs.append((await finder.state()).lr)
                await finder.report(step, loss)
            again = async_client.lr_finder(finder.id, finder.token)
            result = await again.result()
            assert list(result.lr) == lrs and list(result.loss) == losses
            await again.delete()
            return lrs, repr(again), finder.id

    lrs, shown, id = run_in_fresh_loop(run())
    assert lrs == [lr_at(config, k) for k in range(len(losses))]
    assert shown == f"AsyncLrFinder(id={id!r})"
    with pytest.raises(NotFoundError):
        client.lr_finder(id, "x" * 43).state()


def test_hf_callback_sets_should_training_stop_where_hf_s_rule_stops(
    client: Client, tmp_path: Path
) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from lrsched_client.hf import LrschedEarlyStoppingCallback
    from transformers import TrainerControl, TrainerState, TrainingArguments

    session = client.create_session(early_stopping={"semantics": "hf", "patience": 1})
    callback = LrschedEarlyStoppingCallback(RemoteEarlyStopping(session))
    args = TrainingArguments(output_dir=str(tmp_path), metric_for_best_model="loss", report_to=[])
    state, control = TrainerState(), TrainerControl()
    stops = []
    for loss in [1.0, 0.8, 0.9, 0.7]:
        callback.on_evaluate(args, state, control, metrics={"eval_loss": loss, "epoch": 1.0})
        stops.append(control.should_training_stop)
    assert stops == [False, False, True, True]


def _lightning_stop_epoch(callback: Any, values: list[float]) -> int:
    """Fit a one-parameter model that logs ``values[epoch]`` as ``val_loss``; the last epoch."""
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    class Module(pl.LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            return (self.weight - 1.0).pow(2).sum()

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            self.log("val_loss", values[self.current_epoch])

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = DataLoader(TensorDataset(torch.zeros(1, 1)), batch_size=1)
    trainer = pl.Trainer(
        max_epochs=len(values),
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    trainer.fit(Module(), data, data)
    return int(trainer.current_epoch)


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore")  # Lightning's advice (workers, logging) on a toy fit
def test_lightning_callback_stops_the_trainer_where_lightning_early_stopping_does(
    client: Client,
) -> None:
    if importlib.util.find_spec("pytorch_lightning") is None:
        pytest.skip("pytorch_lightning is not installed")
    from lrsched_client.lightning import LrschedEarlyStopping
    from pytorch_lightning.callbacks import EarlyStopping

    values = [1.0, 0.8, 0.85, 0.79, 0.81, 0.82, 0.5, 0.4]
    options = {"semantics": "lightning", "patience": 2, "min_delta": 0.005}
    session = client.create_session(early_stopping=options)
    remote = LrschedEarlyStopping(RemoteEarlyStopping(session), "val_loss")
    reference = EarlyStopping("val_loss", patience=2, min_delta=0.005)
    stopped = _lightning_stop_epoch(remote, values)
    assert stopped == _lightning_stop_epoch(reference, values) < len(values)
    assert remote.early_stopping.should_stop
