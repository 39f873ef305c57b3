"""One ReduceLROnPlateau for a whole DistributedDataParallel job, decided by the lrsched service.

Starts ``--world-size`` CPU processes (torch.distributed, gloo). Rank 0 creates a plateau
session with ``world_size`` ranks and broadcasts its id and token; every rank reports its own
validation loss each epoch through ``RemotePlateau``, which waits until all ranks reported,
and the service decides on the mean of their losses: every rank gets the same lr. It starts
no service; run one first:

    LRSCHED_STORE=memory python -m service          # listens on http://127.0.0.1:8000
    python examples/ddp_plateau.py --url http://127.0.0.1:8000 --world-size 2

Needs ``pip install ./client torch`` (or ``client/src`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Callable
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from lrsched_client import Client
from lrsched_client.torch import RemotePlateau
from torch import nn
from torch.nn import functional
from torch.nn.parallel import DistributedDataParallel

FEATURES = 32


def say(text: str) -> None:
    """Progress for the reader of the example (stdout, flushed)."""
    print(text, flush=True)


def shard(rank: int, world_size: int, samples: int) -> dict[str, torch.Tensor]:
    """This rank's slice of a noisy linear regression problem (same truth on every rank)."""
    truth = torch.randn(FEATURES, 1, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1 + rank)
    data = {}
    for split, count in (("train", samples // world_size), ("val", samples // (4 * world_size))):
        x = torch.randn(count, FEATURES, generator=generator)
        data[f"{split}_x"] = x
        data[f"{split}_y"] = x @ truth + 0.5 * torch.randn(count, 1, generator=generator)
    return data


def worker(rank: int, world_size: int, url: str, port: int, epochs: int) -> None:
    """One rank: join the group, share the session, train, step the remote plateau."""
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=timedelta(60))
    try:
        with Client(url) as client:
            ids: list[object] = [None, None]
            if rank == 0:
                options = {"mode": "min", "factor": 0.5, "patience": 0, "threshold": 0.05}
                created = client.create_session(options, lr=0.05, world_size=world_size)
                ids = [created.id, created.token]
            dist.broadcast_object_list(ids, src=0)  # the token reaches the ranks, not the logs
            session = client.session(str(ids[0]), str(ids[1]))

            torch.manual_seed(0)  # the same initial weights everywhere (DDP also syncs them)
            model = DistributedDataParallel(nn.Linear(FEATURES, 1))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
            scheduler = RemotePlateau(optimizer, session)  # rank from torch.distributed
            data = shard(rank, world_size, samples=2048)
            for epoch in range(epochs):
                for x, y in zip(data["train_x"].split(32), data["train_y"].split(32), strict=True):
                    optimizer.zero_grad()
                    functional.mse_loss(model(x), y).backward()  # gradients all-reduced by DDP
                    optimizer.step()
                with torch.no_grad():
                    val_loss = functional.mse_loss(model(data["val_x"]), data["val_y"]).item()
                report = scheduler.step(val_loss)  # waits for every rank's report
                say(
                    f"rank {rank} epoch {epoch}: val loss {val_loss:.4f} -> lr {report.lr[0]:.5f}"
                    f"{' (reduced)' if report.reduced else ''}"
                )
            dist.barrier()
            if rank == 0:
                rows = list(session.history())
                for row in rows:
                    losses = ", ".join(f"{metric:.4f}" for metric in row.metrics)
                    say(
                        f"epoch {row.epoch}: ranks' losses [{losses}] mean {row.metric:.4f} "
                        f"-> lr {row.lr[0]:.5f}"
                    )
                say(f"final lr {scheduler.get_last_lr()[0]:.5f} on all {world_size} ranks")
                session.delete()
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def spawn_ranks(
    worker: Callable[[int, int, str, int, int], None],
    description: str,
    argv: list[str] | None,
    epochs: int,
) -> int:
    """Parse ``--url``, ``--world-size``, ``--epochs``; run ``worker`` on every rank."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--url",
        default=os.environ.get("LRSCHED_URL", "http://127.0.0.1:8000"),
        help="the lrsched service (default: $LRSCHED_URL or http://127.0.0.1:8000)",
    )
    parser.add_argument("--world-size", type=int, default=2, choices=range(2, 5))
    parser.add_argument("--epochs", type=int, default=epochs)
    args = parser.parse_args(argv)
    mp.spawn(
        worker,
        args=(args.world_size, args.url, free_port(), args.epochs),
        nprocs=args.world_size,
        join=True,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    return spawn_ranks(worker, __doc__.splitlines()[0], argv, epochs=4)


if __name__ == "__main__":
    sys.exit(main())
