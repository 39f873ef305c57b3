"""``lrsched_client.hf``: HF scheduler names as specs, and ``Trainer`` runs on remote values."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lrsched_client import Client

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lrsched_client.hf import SCHEDULER_TYPES, RemoteScheduleTrainer, spec_for  # noqa: E402
from lrsched_client.torch import RemoteLR  # noqa: E402
from transformers.optimization import get_scheduler  # noqa: E402

pytestmark = pytest.mark.torch

GOLDEN = json.loads((Path(__file__).resolve().parents[1] / "golden" / "adapters.json").read_text())
"""HF's values (``tools/generate_adapter_golden.py``); the service is held to them without
transformers in ``test_adapter_golden.py``."""


def optimizer() -> torch.optim.Optimizer:
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=0.1)


def hf_lrs(name: str, warmup: int, total: int, kwargs: dict[str, Any]) -> list[float]:
    """HF's own scheduler, stepped ``total`` times."""
    opt = optimizer()
    scheduler = get_scheduler(
        name, opt, num_warmup_steps=warmup, num_training_steps=total,
        scheduler_specific_kwargs=kwargs,
    )  # fmt: skip
    values = [opt.param_groups[0]["lr"]]
    for _ in range(total):
        opt.step()
        scheduler.step()
        values.append(opt.param_groups[0]["lr"])
    return values


@pytest.mark.parametrize("case", GOLDEN["hf"], ids=[case["name"] for case in GOLDEN["hf"]])
def test_recorded_values_are_what_this_transformers_gives(case: dict[str, Any]) -> None:
    live = hf_lrs(case["name"], case["warmup"], case["total"], case["kwargs"])
    assert live == pytest.approx(case["values"], rel=1e-12, abs=1e-15)


def test_every_name_but_the_plateau_ones_is_mapped() -> None:
    names = {kind.value for kind in transformers.trainer_utils.SchedulerType}
    assert names - set(SCHEDULER_TYPES) == {"reduce_lr_on_plateau", "greedy"}
    with pytest.raises(ValueError, match="plateau session"):
        spec_for("reduce_lr_on_plateau")
    with pytest.raises(ValueError, match="num_training_steps"):
        spec_for("linear", 10)


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(2))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": ((x * self.weight).sum(-1) - labels).pow(2).mean()}


class Recorder(transformers.TrainerCallback):  # type: ignore[misc]
    """The lr of the optimizer at the end of every step."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.lrs.append(kwargs["optimizer"].param_groups[0]["lr"])


def train(
    tmp_path: Path, make: Callable[..., transformers.Trainer], **arguments: Any
) -> list[float]:
    """Run ``max_steps=8`` of a tiny model; the lr after each step."""
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=8, per_device_train_batch_size=2,
        learning_rate=0.1, report_to=[], save_strategy="no", use_cpu=True,
        disable_tqdm=True, **arguments,
    )  # fmt: skip
    data = [{"x": torch.ones(2), "labels": torch.tensor(1.0)} for _ in range(16)]
    recorder = Recorder()
    trainer = make(model=Tiny(), args=args, train_dataset=data, callbacks=[recorder])
    trainer.train()
    return recorder.lrs, trainer


def test_trainer_create_scheduler_follows_lr_scheduler_type(client: Client, tmp_path: Path) -> None:
    def make(**kwargs: Any) -> transformers.Trainer:
        return RemoteScheduleTrainer(lrsched_client=client, **kwargs)

    got, trainer = train(tmp_path, make, lr_scheduler_type="cosine", warmup_steps=2)
    assert isinstance(trainer.lr_scheduler, RemoteLR)
    assert trainer.lr_scheduler.spec == spec_for("cosine", 2, 8)
    assert got == pytest.approx(hf_lrs("cosine", 2, 8, {})[1:], rel=1e-9, abs=1e-15)


def test_trainer_takes_any_spec_as_the_optimizers_pair(client: Client, tmp_path: Path) -> None:
    spec = {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 8}

    def make(model: torch.nn.Module, **kwargs: Any) -> transformers.Trainer:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        pair = (opt, RemoteLR(opt, spec, total_steps=8, client=client))
        return transformers.Trainer(model=model, optimizers=pair, **kwargs)

    expected = client.curve_json(spec, 0.1, 9)["lr"][0][1:]
    got, trainer = train(tmp_path, make)
    assert isinstance(trainer.lr_scheduler, RemoteLR)
    assert got == pytest.approx(expected, rel=1e-12)
