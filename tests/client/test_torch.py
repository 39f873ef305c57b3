"""RemoteLR and RemotePlateau against local PyTorch schedulers, step by step."""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from lrsched_client import Client, NotDecidedError, ValidationError

torch = pytest.importorskip("torch")

from lrsched_client.torch import RemoteLR, RemotePlateau  # noqa: E402
from torch.optim import SGD, Adagrad, Adam, Optimizer  # noqa: E402
from torch.optim import lr_scheduler as schedulers  # noqa: E402

pytestmark = pytest.mark.torch

REL = 1e-9
"""The service's promise: PyTorch's values within a relative error of 1e-9."""

OptimizerFactory = Callable[[], Optimizer]
LocalFactory = Callable[[Optimizer], Any]


def sgd() -> Optimizer:
    params = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))]
    return SGD(
        [{"params": [params[0]]}, {"params": [params[1]], "lr": 0.02}], lr=0.01, momentum=0.9
    )


def adam() -> Optimizer:
    params = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))]
    return Adam([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.02}], lr=0.01)


def momenta(optimizer: Optimizer) -> list[float]:
    """SGD's momentum or Adam's beta1, per group."""
    return [
        float(group["betas"][0] if "betas" in group else group["momentum"])
        for group in optimizer.param_groups
    ]


def lrs(optimizer: Optimizer) -> list[float]:
    return [float(group["lr"]) for group in optimizer.param_groups]


def assert_close(remote: list[float], local: list[float], what: str, step: int) -> None:
    assert all(
        math.isclose(r, ell, rel_tol=REL, abs_tol=1e-300)
        for r, ell in zip(remote, local, strict=True)
    ), f"{what} at step {step}: remote {remote} != local {local}"


class Recording(httpx.HTTPTransport):
    """An httpx transport that remembers the body of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[dict[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import json

        self.bodies.append(json.loads(request.content))
        return super().handle_request(request)


@pytest.fixture
def recording(url: str) -> Iterator[tuple[Client, Recording]]:
    transport = Recording()
    with Client(url, transport=transport) as recording_client:
        yield recording_client, transport


CASES: dict[str, tuple[OptimizerFactory, dict[str, Any], LocalFactory, int]] = {
    "OneCycleLR-SGD-momentum": (
        sgd,
        {"type": "OneCycleLR", "max_lr": [0.1, 0.2], "total_steps": 300},
        lambda o: schedulers.OneCycleLR(o, max_lr=[0.1, 0.2], total_steps=300),
        300,
    ),
    "OneCycleLR-Adam-betas": (
        adam,
        {"type": "OneCycleLR", "max_lr": 0.05, "total_steps": 250, "anneal_strategy": "linear"},
        lambda o: schedulers.OneCycleLR(o, max_lr=0.05, total_steps=250, anneal_strategy="linear"),
        250,
    ),
    "CyclicLR-SGD-momentum": (
        sgd,
        {
            "type": "CyclicLR",
            "base_lr": 0.001,
            "max_lr": 0.1,
            "step_size_up": 7,
            "mode": "triangular2",
        },
        lambda o: schedulers.CyclicLR(
            o, base_lr=0.001, max_lr=0.1, step_size_up=7, mode="triangular2"
        ),
        200,
    ),
    "SequentialLR-warmup-cosine": (
        adam,
        {
            "type": "SequentialLR",
            "schedulers": [
                {"type": "LinearLR", "start_factor": 0.1, "total_iters": 20},
                {"type": "CosineAnnealingLR", "T_max": 150, "eta_min": 1e-5},
            ],
            "milestones": [20],
        },
        lambda o: schedulers.SequentialLR(
            o,
            [
                schedulers.LinearLR(o, start_factor=0.1, total_iters=20),
                schedulers.CosineAnnealingLR(o, T_max=150, eta_min=1e-5),
            ],
            milestones=[20],
        ),
        260,
    ),
    "CosineAnnealingWarmRestarts": (
        sgd,
        {"type": "CosineAnnealingWarmRestarts", "T_0": 7, "T_mult": 2, "eta_min": 1e-4},
        lambda o: schedulers.CosineAnnealingWarmRestarts(o, T_0=7, T_mult=2, eta_min=1e-4),
        230,
    ),
    "SWALR": (  # the SWA recipe: decay, then anneal to the averaging lr
        adam,
        {
            "type": "SequentialLR",
            "schedulers": [
                {"type": "CosineAnnealingLR", "T_max": 100},
                {"type": "SWALR", "swa_lr": [0.002, 0.005], "anneal_epochs": 20},
            ],
            "milestones": [75],
        },
        lambda o: schedulers.SequentialLR(
            o,
            [
                schedulers.CosineAnnealingLR(o, T_max=100),
                torch.optim.swa_utils.SWALR(o, swa_lr=[0.002, 0.005], anneal_epochs=20),
            ],
            milestones=[75],
        ),
        130,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_remote_lr_equals_the_local_scheduler_at_every_step(case: str, client: Client) -> None:
    make_optimizer, spec, make_local, steps = CASES[case]
    local_optimizer, remote_optimizer = make_optimizer(), make_optimizer()
    local = make_local(local_optimizer)
    remote = RemoteLR(remote_optimizer, spec, steps, client=client, chunk=64)
    cycles_momentum = spec["type"] in ("OneCycleLR", "CyclicLR")
    for step in range(steps + 1):
        assert remote.last_epoch == step
        assert_close(lrs(remote_optimizer), lrs(local_optimizer), "lr", step)
        assert_close(remote.get_last_lr(), local.get_last_lr(), "get_last_lr", step)
        if cycles_momentum:
            assert_close(momenta(remote_optimizer), momenta(local_optimizer), "momentum", step)
        else:
            assert momenta(remote_optimizer) == momenta(local_optimizer)  # untouched
        if step < steps:
            local_optimizer.step()
            remote_optimizer.step()
            local.step()
            remote.step()


def test_remote_lr_fetches_in_chunks_not_per_step(recording: tuple[Client, Recording]) -> None:
    client, transport = recording
    optimizer = sgd()
    scheduler = RemoteLR(
        optimizer, {"type": "StepLR", "step_size": 10}, 300, client=client, chunk=64
    )
    for _ in range(300):
        optimizer.step()
        scheduler.step()
    ranges = [(body["start"], body["steps"]) for body in transport.bodies]
    # At construction: steps 0..63, and step 300 alone (the whole schedule is validated).
    assert ranges == [(0, 64), (300, 301), (64, 128), (128, 192), (192, 256), (256, 301)]
    assert all(body["lr"] == [0.01, 0.02] for body in transport.bodies)
    assert lrs(optimizer) == pytest.approx([0.01 * 0.1**30, 0.02 * 0.1**30], rel=REL)


@pytest.mark.parametrize("resume_at", [1, 137, 300])
def test_resume_from_state_dict_continues_like_an_uninterrupted_run(
    resume_at: int, client: Client, recording: tuple[Client, Recording]
) -> None:
    spec = {"type": "OneCycleLR", "max_lr": [0.1, 0.2], "total_steps": 300}
    optimizer = sgd()
    uninterrupted = RemoteLR(optimizer, spec, 300, client=client, chunk=50)
    expected = [(lrs(optimizer), momenta(optimizer))]
    checkpoint = io.BytesIO()
    for step in range(1, 301):
        optimizer.step()
        uninterrupted.step()
        expected.append((lrs(optimizer), momenta(optimizer)))
        if step == resume_at:
            state = {"optimizer": optimizer.state_dict(), "scheduler": uninterrupted.state_dict()}
            torch.save(state, checkpoint)

    checkpoint.seek(0)
    saved = torch.load(checkpoint, weights_only=True)  # plain data: the safe loader accepts it
    recording_client, transport = recording
    resumed_optimizer = sgd()
    resumed = RemoteLR(resumed_optimizer, spec, 300, client=recording_client, chunk=50)
    fetched_at_construction = len(transport.bodies)
    resumed.load_state_dict(saved["scheduler"])  # no optimizer.load_state_dict: still right
    assert resumed.last_epoch == resume_at
    got = [(lrs(resumed_optimizer), momenta(resumed_optimizer))]
    for _ in range(resume_at, 300):
        resumed_optimizer.step()
        resumed.step()
        got.append((lrs(resumed_optimizer), momenta(resumed_optimizer)))
    assert got == expected[resume_at:]
    assert all(body["start"] >= resume_at for body in transport.bodies[fetched_at_construction:])


def test_initial_lr_already_set_is_the_lr_sent(recording: tuple[Client, Recording]) -> None:
    client, transport = recording
    optimizer, local_optimizer = sgd(), sgd()
    for group in [*optimizer.param_groups, *local_optimizer.param_groups]:
        group["initial_lr"] = 0.5
    RemoteLR(optimizer, {"type": "LambdaLR", "lr_lambda": "lambda e: 0.9 ** e"}, 10, client=client)
    schedulers.LambdaLR(local_optimizer, lambda e: 0.9**e)
    assert transport.bodies[0]["lr"] == [0.5, 0.5]
    assert lrs(optimizer) == lrs(local_optimizer) == [0.5, 0.5]


def test_without_a_client_each_fetch_uses_lrsched_url(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LRSCHED_URL", url)
    optimizer, local_optimizer = sgd(), sgd()
    remote = RemoteLR(optimizer, {"type": "StepLR", "step_size": 3, "gamma": 0.5}, 9, chunk=4)
    local = schedulers.StepLR(local_optimizer, step_size=3, gamma=0.5)
    for step in range(1, 10):
        for each in (optimizer, local_optimizer):
            each.step()
        remote.step()
        local.step()
        assert lrs(optimizer) == pytest.approx(lrs(local_optimizer), rel=REL), step
    assert lrs(optimizer) == pytest.approx([0.01 / 8, 0.02 / 8], rel=REL)


def test_a_spec_that_fails_before_total_steps_fails_at_construction(client: Client) -> None:
    spec = {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 100}  # fine up to step 100
    with pytest.raises(ValidationError, match="total_steps=100"):
        RemoteLR(sgd(), spec, 5000, client=client, chunk=64)


def test_stepping_past_total_steps_is_refused(client: Client) -> None:
    optimizer = sgd()
    scheduler = RemoteLR(optimizer, {"type": "ConstantLR"}, 2, client=client)
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    optimizer.step()
    with pytest.raises(ValueError, match="total_steps=2"):
        scheduler.step()


def test_cycled_momentum_needs_an_optimizer_with_momentum_or_betas(client: Client) -> None:
    optimizer = Adagrad([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    with pytest.raises(ValueError, match="momentum or beta1"):
        RemoteLR(
            optimizer, {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 10}, 10, client=client
        )


# -- RemotePlateau -------------------------------------------------------------------------

PLATEAU = {"mode": "min", "factor": 0.5, "patience": 2, "cooldown": 1, "threshold": 0.01}
METRICS = [1.0, 0.9, 0.95, 0.91, 0.92, float("nan"), 0.93, 0.5, 0.49, 0.495, 0.6, float("inf")]


def plateau_optimizer() -> Optimizer:
    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    return SGD([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.01}], lr=0.1)


def test_remote_plateau_equals_local_reduce_lr_on_plateau(client: Client) -> None:
    session = client.create_session(PLATEAU | {"min_lr": [0.04, 0.0]}, [0.1, 0.01])
    local_optimizer, remote_optimizer = plateau_optimizer(), plateau_optimizer()
    local = schedulers.ReduceLROnPlateau(local_optimizer, **PLATEAU, min_lr=[0.04, 0.0])
    remote = RemotePlateau(remote_optimizer, session)
    for epoch, metric in enumerate(METRICS):
        local.step(metric)
        report = remote.step(torch.tensor(metric, dtype=torch.float64))
        assert report.epoch == epoch
        assert lrs(remote_optimizer) == lrs(local_optimizer), f"epoch {epoch}"
        assert remote.get_last_lr() == local.get_last_lr()
    assert lrs(local_optimizer) == [0.04, 0.0025]  # cut at epochs 4 and 11; group 0 at min_lr
    exported = session.state_dict()
    restored = schedulers.ReduceLROnPlateau(plateau_optimizer())
    restored.load_state_dict(exported)
    assert restored.state_dict() == local.state_dict()
    session.delete()


def test_session_resumed_from_a_fresh_torch_state_dict_continues_identically(
    client: Client,
) -> None:
    local_optimizer, remote_optimizer = plateau_optimizer(), plateau_optimizer()
    local = schedulers.ReduceLROnPlateau(local_optimizer, **PLATEAU)
    local.step(1.0)
    local.step(1.0)
    session = client.create_session(state_dict=local.state_dict())  # best=1.0; mode_worse=inf
    remote = RemotePlateau(remote_optimizer, session)
    assert remote.epoch == 2
    for metric in METRICS[2:]:
        local.step(metric)
        remote.step(metric)
        assert lrs(remote_optimizer) == lrs(local_optimizer)
    session.delete()


def test_ranks_in_threads_wait_for_each_other_and_get_the_same_lr(client: Client) -> None:
    session = client.create_session(PLATEAU, [0.1, 0.01], world_size=2)
    metrics = {0: [1.0, 1.2, 1.1, 1.3, 1.2], 1: [0.8, 0.9, 1.0, 0.95, 1.1]}
    seen: dict[int, list[list[float]]] = {}

    def train(rank: int) -> None:
        optimizer = plateau_optimizer()
        plateau = RemotePlateau(optimizer, client.session(session.id, session.token), rank=rank)
        seen[rank] = []
        for metric in metrics[rank]:
            plateau.step(metric)
            seen[rank].append(lrs(optimizer))

    threads = [threading.Thread(target=train, args=(rank,)) for rank in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    local_optimizer = plateau_optimizer()
    local = schedulers.ReduceLROnPlateau(local_optimizer, **PLATEAU)
    expected = []
    for a, b in zip(metrics[0], metrics[1], strict=True):
        local.step((a + b) / 2)
        expected.append(lrs(local_optimizer))
    assert seen[0] == seen[1] == expected
    assert expected[-1] == [0.05, 0.005]  # one cut, so the test sees a decision change
    session.delete()


def test_remote_plateau_gives_up_waiting_with_not_decided_error(client: Client) -> None:
    session = client.create_session(PLATEAU, [0.1, 0.01], world_size=3)
    plateau = RemotePlateau(plateau_optimizer(), session, rank=0, wait_timeout=0.2)
    with pytest.raises(NotDecidedError) as caught:
        plateau.step(1.0)
    assert (caught.value.epoch, caught.value.waiting_for) == (0, [1, 2])
    assert plateau.epoch == 0  # not decided, not counted
    session.delete()


def test_remote_plateau_resumed_from_an_older_checkpoint_replays_the_decisions(
    client: Client,
) -> None:
    session = client.create_session(PLATEAU | {"patience": 0}, [0.1, 0.01])
    optimizer = plateau_optimizer()
    plateau = RemotePlateau(optimizer, session)
    plateau.step(1.0)
    checkpoint = plateau.state_dict()
    assert checkpoint == {"epoch": 1, "_last_lr": [0.1, 0.01], "session_id": session.id}
    decided = [plateau.step(2.0).lr, plateau.step(3.0).lr]

    reattached = client.session(session.id, session.token)  # e.g. in a restarted job
    resumed_optimizer = plateau_optimizer()
    resumed = RemotePlateau(resumed_optimizer, reattached)
    assert resumed.epoch == 3 and lrs(resumed_optimizer) == list(decided[-1])
    resumed.load_state_dict(checkpoint)
    replayed = [resumed.step(9.0).lr, resumed.step(9.0).lr]  # other metrics: recorded answers
    assert replayed == decided
    assert [row.metric for row in session.history()] == [1.0, 2.0, 3.0]
    session.delete()
