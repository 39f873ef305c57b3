"""Train a small MLP on synthetic MNIST-like data with schedules from the lrsched service.

Part 1 uses ``RemoteLR`` with a OneCycleLR spec (lr and SGD momentum per batch); part 2 uses
``RemotePlateau``, a server-side ReduceLROnPlateau fed with the validation loss per epoch.
Runs on CPU in seconds. It starts no service; run one first:

    LRSCHED_STORE=memory python -m service          # listens on http://127.0.0.1:8000
    python examples/train_mnist_like.py --url http://127.0.0.1:8000

Needs ``pip install ./client torch`` (or ``client/src`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from lrsched_client import Client, TransportError
from lrsched_client.torch import RemoteLR, RemotePlateau
from torch import nn
from torch.nn import functional

FEATURES, CLASSES = 784, 10


def say(text: str) -> None:
    """Progress for the reader of the example (stdout, flushed)."""
    print(text, flush=True)


def synthetic_mnist(samples: int, seed: int) -> dict[str, torch.Tensor]:
    """Ten noisy clusters in 784 dimensions: learnable in a few epochs, like MNIST.

    Returns train and validation images and labels, drawn from the same clusters.
    """
    generator = torch.Generator().manual_seed(seed)
    centers = 0.1 * torch.randn(CLASSES, FEATURES, generator=generator)
    data = {}
    for split, count in (("train", samples), ("val", samples // 4)):
        labels = torch.randint(0, CLASSES, (count,), generator=generator)
        noise = torch.randn(count, FEATURES, generator=generator)
        data[f"{split}_x"], data[f"{split}_y"] = centers[labels] + noise, labels
    return data


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(FEATURES, 32), nn.ReLU(), nn.Linear(32, CLASSES))


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Validation loss and accuracy."""
    with torch.no_grad():
        logits = model(images)
        loss = functional.cross_entropy(logits, labels).item()
        accuracy = (logits.argmax(dim=1) == labels).float().mean().item()
    return loss, accuracy


def batches(
    images: torch.Tensor, labels: torch.Tensor, size: int, generator: torch.Generator
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    order = torch.randperm(len(labels), generator=generator)
    return [(images[i], labels[i]) for i in order.split(size)]


def one_cycle(client: Client, data: dict[str, torch.Tensor], epochs: int, batch: int) -> float:
    """Part 1: RemoteLR(OneCycleLR) steps the lr and the momentum after every batch."""
    generator = torch.Generator().manual_seed(1)
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    steps_per_epoch = -(-len(data["train_y"]) // batch)
    total = epochs * steps_per_epoch
    spec = {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": total}
    scheduler = RemoteLR(optimizer, spec, total_steps=total, client=client)
    for epoch in range(epochs):
        for images, labels in batches(data["train_x"], data["train_y"], batch, generator):
            optimizer.zero_grad()
            functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
            scheduler.step()
        loss, accuracy = evaluate(model, data["val_x"], data["val_y"])
        group = optimizer.param_groups[0]
        say(
            f"[RemoteLR OneCycleLR] epoch {epoch}: step {scheduler.last_epoch}/{total} "
            f"lr {group['lr']:.5f} momentum {group['momentum']:.4f} "
            f"val loss {loss:.4f} accuracy {accuracy:.3f}"
        )
    return accuracy


def plateau(client: Client, data: dict[str, torch.Tensor], epochs: int, batch: int) -> float:
    """Part 2: RemotePlateau reports the validation loss, then applies the decided lr."""
    generator = torch.Generator().manual_seed(2)
    model = mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    session = client.create_session({"mode": "min", "factor": 0.5, "patience": 0}, lr=0.003)
    try:
        scheduler = RemotePlateau(optimizer, session)
        for epoch in range(epochs):
            for images, labels in batches(data["train_x"], data["train_y"], batch, generator):
                optimizer.zero_grad()
                functional.cross_entropy(model(images), labels).backward()
                optimizer.step()
            loss, accuracy = evaluate(model, data["val_x"], data["val_y"])
            report = scheduler.step(loss)
            say(
                f"[RemotePlateau] epoch {epoch}: val loss {loss:.4f} accuracy {accuracy:.3f} "
                f"-> lr {report.lr[0]:.5f}{' (reduced)' if report.reduced else ''}"
            )
        cuts = sum(row.reduced for row in session.history())
        say(f"[RemotePlateau] the session decided {epoch + 1} epochs, {cuts} lr cuts")
    finally:
        session.delete()
    return accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("LRSCHED_URL", "http://127.0.0.1:8000"),
        help="the lrsched service (default: $LRSCHED_URL or http://127.0.0.1:8000)",
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)  # a model this small trains fastest on one thread
    torch.manual_seed(0)
    data = synthetic_mnist(args.samples, seed=0)
    with Client(args.url) as client:
        try:
            first = one_cycle(client, data, args.epochs, args.batch)
            second = plateau(client, data, args.epochs, args.batch)
        except TransportError as error:
            sys.stderr.write(
                f"cannot reach the lrsched service at {args.url}: {error}\n"
                "start one with:  LRSCHED_STORE=memory python -m service\n"
                "(it listens on http://127.0.0.1:8000; LRSCHED_PORT changes the port)\n"
            )
            return 2
    say(f"final validation accuracy: OneCycleLR {first:.3f}, plateau {second:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
