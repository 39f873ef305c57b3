"""An LR range test, then early stopping, agreed by every rank of a DistributedDataParallel job.

Starts ``--world-size`` CPU processes (torch.distributed, gloo). Rank 0 creates an LR range
test and an early-stopping session and broadcasts their ids and tokens. Every rank trains
with the lr the range test answers and reports its loss after each step: all ranks stop the
test at the same step and read the same suggestions. Then every rank trains at the fastai
``valley`` suggestion and reports its validation loss each epoch: the service stops all
ranks at the same epoch (Keras's rule on the mean loss), so no rank waits forever in an
all-reduce for a rank that stopped. It starts no service; run one first:

    LRSCHED_STORE=memory python -m service          # listens on http://127.0.0.1:8000
    python examples/ddp_training_control.py --url http://127.0.0.1:8000 --world-size 2

Needs ``pip install ./client torch`` (or ``client/src`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import itertools
import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist
from ddp_plateau import FEATURES, say, shard, spawn_ranks
from lrsched_client import Client, RemoteEarlyStopping, RemoteLRFinder
from torch import nn
from torch.nn import functional
from torch.nn.parallel import DistributedDataParallel


def shared(client: Client, rank: int, world_size: int) -> tuple[str, ...]:
    """Rank 0 creates the range test and the session; every rank gets their ids and tokens."""
    ids: list[object] = [None] * 4
    if rank == 0:
        finder = client.create_lr_finder(
            start_lr=1e-5, end_lr=10.0, num_steps=60, world_size=world_size
        )
        stopping = {"semantics": "keras", "patience": 2, "min_delta": 1e-3}
        session = client.create_session(early_stopping=stopping, world_size=world_size)
        ids = [finder.id, finder.token, session.id, session.token]
    dist.broadcast_object_list(ids, src=0)  # the tokens reach the ranks, not the logs
    return tuple(str(item) for item in ids)


def find_lr(model: nn.Module, finder: RemoteLRFinder, data: dict[str, torch.Tensor]) -> float:
    """Train one batch per step at the answered lr until the range test stops; a suggestion."""
    optimizer = torch.optim.SGD(model.parameters(), lr=finder.lr)
    finder.optimizer = optimizer
    finder.apply_lr()
    batches = zip(data["train_x"].split(32), data["train_y"].split(32), strict=True)
    for x, y in itertools.cycle(list(batches)):
        optimizer.zero_grad()
        loss = functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        if finder.step(loss.item()):
            break
    result = finder.result()
    suggested = result.suggestions["fastai_valley"] or result.suggestions["fastai_minimum"]
    say(f"range test stopped at step {finder.step_index - 1} ({result.stop_reason}); {suggested=}")
    return float(suggested or 0.01)


def worker(rank: int, world_size: int, url: str, port: int, epochs: int) -> None:
    """One rank: range test, then train with early stopping shared by all ranks."""
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=timedelta(60))
    try:
        with Client(url) as client:
            finder_id, finder_token, session_id, session_token = shared(client, rank, world_size)
            data = shard(rank, world_size, samples=2048)
            torch.manual_seed(0)
            model = DistributedDataParallel(nn.Linear(FEATURES, 1))
            initial = {k: v.clone() for k, v in model.state_dict().items()}
            lr = find_lr(model, RemoteLRFinder(client.lr_finder(finder_id, finder_token)), data)
            model.load_state_dict(initial)  # the range test trained it: start again
            optimizer = torch.optim.SGD(model.parameters(), lr=lr)
            stopping = RemoteEarlyStopping(client.session(session_id, session_token))
            for epoch in range(epochs):
                for x, y in zip(data["train_x"].split(32), data["train_y"].split(32), strict=True):
                    optimizer.zero_grad()
                    functional.mse_loss(model(x), y).backward()
                    optimizer.step()
                with torch.no_grad():
                    val_loss = functional.mse_loss(model(data["val_x"]), data["val_y"]).item()
                stop = stopping.step(val_loss)  # waits for every rank's report
                say(f"rank {rank} epoch {epoch}: val loss {val_loss:.4f} stop {stop}")
                if stop:
                    break
            dist.barrier()  # every rank gets here: none stopped alone
            if rank == 0:
                last = stopping.last
                assert last is not None
                say(f"stopped after epoch {last.epoch}; best epoch {last.best_epoch}")
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    return spawn_ranks(worker, __doc__.splitlines()[0], argv, epochs=30)


if __name__ == "__main__":
    sys.exit(main())
