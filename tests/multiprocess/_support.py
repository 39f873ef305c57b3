"""Sessions, reference values and the exactly-once checks shared by the multi-process tests.

The reference for every decision is ``service.engine.plateau.replay`` (itself checked against
PyTorch by the golden fixtures) fed the ranks' metrics combined with ``reduce``; when PyTorch
is importable, a live ``ReduceLROnPlateau`` fed the same metrics is a second reference, for
the lrs and for ``state_dict()``.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from service.engine import early_stopping
from service.engine.plateau import PlateauConfig, PlateauState, replay

REPO = Path(__file__).resolve().parents[2]
"""The repository root: the working directory of the client processes."""

Metric = float | str
"""A metric as sent on the wire: a number, or ``"inf"``, ``"-inf"``, ``"nan"``."""


def wire(value: Any) -> Any:
    """``value`` as the service writes it in JSON: non-finite floats as strings, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list | tuple):
        return [wire(item) for item in value]
    if isinstance(value, dict):
        return {key: wire(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class SessionPlan:
    """What a test's session is created with and what its ranks report.

    Attributes:
        schedule: the ReduceLROnPlateau options (``type`` included), as sent.
        lr: the lr of every param group.
        world_size: ranks per epoch.
        reduce: ``mean``, ``min`` or ``max``.
        metrics: ``metrics[epoch][rank]``, as sent (retries send the same value).
        early_stopping: the session's early-stopping options, if any.
    """

    schedule: dict[str, Any]
    lr: list[float]
    world_size: int
    reduce: str
    metrics: list[list[Metric]]
    early_stopping: dict[str, Any] | None = None

    @property
    def epochs(self) -> int:
        """How many epochs the ranks report."""
        return len(self.metrics)

    def create_body(self, **extra: Any) -> dict[str, Any]:
        """The ``POST /v1/sessions`` body."""
        return {
            "schedule": self.schedule,
            "lr": self.lr,
            "world_size": self.world_size,
            "reduce": self.reduce,
            **({} if self.early_stopping is None else {"early_stopping": self.early_stopping}),
            **extra,
        }

    def rank_metrics(self, rank: int) -> list[Metric]:
        """What ``rank`` reports for each epoch."""
        return [row[rank] for row in self.metrics]

    def config(self) -> PlateauConfig:
        """The engine configuration, built from the options with PyTorch's defaults."""
        options = self.schedule
        min_lr = options.get("min_lr", 0.0)
        groups = len(self.lr)
        return PlateauConfig(
            mode=options.get("mode", "min"),
            factor=float(options.get("factor", 0.1)),
            patience=int(options.get("patience", 10)),
            threshold=float(options.get("threshold", 1e-4)),
            threshold_mode=options.get("threshold_mode", "rel"),
            cooldown=int(options.get("cooldown", 0)),
            min_lrs=tuple(float(m) for m in min_lr)
            if isinstance(min_lr, list)
            else (float(min_lr),) * groups,
            eps=float(options.get("eps", 1e-8)),
        )

    def reduced_metric(self, epoch: int) -> float:
        """The ranks' metrics of ``epoch`` combined with ``reduce`` (NaN if any is NaN)."""
        values = [float(m) for m in self.metrics[epoch]]
        if any(math.isnan(v) for v in values):
            return math.nan
        if self.reduce == "min":
            return min(values)
        if self.reduce == "max":
            return max(values)
        return sum(values) / len(values)


def random_plan(
    rng: random.Random,
    *,
    world_size: int,
    epochs: int,
    reduce: str,
    mode: str,
    nonfinite: int = 1,
    with_early_stopping: bool = False,
) -> SessionPlan:
    """A session whose metrics improve for a while then plateau, so the lr gets cut.

    Finite metrics are multiples of 1/64: sums of a few are exact, so the combined metric
    does not depend on summation order. ``nonfinite`` metrics are ``"nan"``, ``"inf"`` or
    ``"-inf"`` (in the direction that is a bad epoch for ``mode``). ``with_early_stopping``
    adds random early-stopping options (drawn last: the rest of the plan is the same).
    """
    schedule: dict[str, Any] = {
        "type": "ReduceLROnPlateau",
        "mode": mode,
        "factor": rng.choice([0.5, 0.3]),
        "patience": rng.choice([0, 1, 2]),
        "threshold": rng.choice([0.01, 0.001]),
        "threshold_mode": rng.choice(["rel", "abs"]),
        "cooldown": rng.choice([0, 1]),
        "min_lr": rng.choice([1e-3, [1e-3, 0.0]]),
    }
    sign = 1 if mode == "min" else -1
    metrics: list[list[Metric]] = []
    for epoch in range(epochs):
        trend = 64 - 2 * min(epoch, 8)
        metrics.append([sign * (trend + rng.randint(0, 10)) / 64 for _ in range(world_size)])
    bad = "inf" if mode == "min" else "-inf"
    for _ in range(nonfinite):
        epoch, rank = rng.randrange(2, epochs), rng.randrange(world_size)
        metrics[epoch][rank] = rng.choice(["nan", bad])
    stopping = None
    if with_early_stopping:
        stopping = {
            "semantics": rng.choice(["keras", "hf", "lightning"]),
            "mode": mode,
            "patience": rng.choice([1, 2, 3]),
            "min_delta": rng.choice([0.0, 0.01]),
        }
    return SessionPlan(schedule, [0.1, 0.05], world_size, reduce, metrics, stopping)


@dataclass(frozen=True)
class Expected:
    """The reference run of a plan: after each epoch, the lrs, whether cut, and the state."""

    lrs: list[list[float]]
    reduced: list[bool]
    states: list[dict[str, Any]]
    state_dict: dict[str, Any]
    torch_lrs: list[list[float]] | None
    torch_state_dict: dict[str, Any] | None
    stopping: list[dict[str, Any]]
    """After each epoch, the early-stopping fields of the answer (all false/null without)."""


def _progress(state: PlateauState) -> dict[str, Any]:
    return {
        "best": wire(state.best),
        "num_bad_epochs": state.num_bad_epochs,
        "cooldown_counter": state.cooldown_counter,
        "last_epoch": state.last_epoch,
    }


def expected_run(plan: SessionPlan, epochs: int | None = None) -> Expected:
    """``replay`` (and live PyTorch, when installed) fed the first ``epochs`` reduced metrics."""
    epochs = plan.epochs if epochs is None else epochs
    config = plan.config()
    reduced_metrics = [plan.reduced_metric(epoch) for epoch in range(epochs)]
    full = replay(config, plan.lr, reduced_metrics)
    states = [
        _progress(replay(config, plan.lr, reduced_metrics[: epoch + 1]).state)
        for epoch in range(epochs)
    ]
    min_lr = plan.schedule.get("min_lr", 0.0)
    state = full.state
    state_dict = {
        "factor": config.factor,
        "default_min_lr": None if isinstance(min_lr, list) else min_lr,
        "min_lrs": list(config.min_lrs),
        "patience": config.patience,
        "cooldown": config.cooldown,
        "eps": config.eps,
        "last_epoch": state.last_epoch,
        "_last_lr": list(state.lrs),
        "mode_worse": "inf" if config.mode == "min" else "-inf",
        "mode": config.mode,
        "threshold": config.threshold,
        "threshold_mode": config.threshold_mode,
        "best": wire(state.best),
        "cooldown_counter": state.cooldown_counter,
        "num_bad_epochs": state.num_bad_epochs,
    }
    torch_run = _torch_run(plan, reduced_metrics)
    stopping = [{"stop": False, "best_epoch": None, "best_metric": None}] * epochs
    if plan.early_stopping is not None:
        config = early_stopping.EarlyStoppingConfig(**plan.early_stopping)
        folded = early_stopping.EarlyStoppingState()
        stopping = []
        for epoch, metric in enumerate(reduced_metrics):
            folded = early_stopping.step(config, folded, epoch, metric)
            best = None if folded.best is None else wire(folded.best)
            stopping.append(
                {"stop": folded.stop, "best_epoch": folded.best_epoch, "best_metric": best}
            )
    return Expected(
        lrs=full.lr.T.tolist(),
        reduced=full.reduced.tolist(),
        states=states,
        state_dict=state_dict,
        torch_lrs=None if torch_run is None else torch_run[0],
        torch_state_dict=None if torch_run is None else torch_run[1],
        stopping=stopping,
    )


def _torch_run(
    plan: SessionPlan, metrics: list[float]
) -> tuple[list[list[float]], dict[str, Any]] | None:
    """Live ``ReduceLROnPlateau`` on SGD param groups with ``plan.lr``; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in plan.lr]
    optimizer = torch.optim.SGD(
        [{"params": [p], "lr": lr} for p, lr in zip(params, plan.lr, strict=True)], lr=plan.lr[0]
    )
    options = {key: value for key, value in plan.schedule.items() if key != "type"}
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **options)
    lrs = []
    for metric in metrics:
        scheduler.step(metric)
        lrs.append([float(group["lr"]) for group in optimizer.param_groups])
    return lrs, wire(dict(scheduler.state_dict()))


# -- creating sessions and running client processes -----------------------------------------


@dataclass(frozen=True)
class Created:
    """A session created over HTTP: its id, the Authorization header, and its plan."""

    id: str
    headers: dict[str, str]
    plan: SessionPlan
    token: str


def create_session(client: httpx.Client, url: str, plan: SessionPlan, **extra: Any) -> Created:
    """``POST /v1/sessions`` for ``plan``; asserts 201."""
    response = client.post(f"{url}/v1/sessions", json=plan.create_body(**extra))
    assert response.status_code == 201, response.text
    body = response.json()
    return Created(body["id"], {"Authorization": f"Bearer {body['token']}"}, plan, body["token"])


@dataclass
class Observed:
    """What every client process saw, merged."""

    answers: list[dict[str, Any]]
    unexpected: list[dict[str, Any]]
    failures: list[str]
    busy: int
    transport_errors: int
    requests: int


class ClientRun:
    """Client processes started by :func:`client_processes`; :meth:`collect` merges results."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []

    def collect(self, timeout: float = 60.0) -> Observed:
        """Wait for every client (killing any still running at ``timeout``) and merge results."""
        deadline = time.monotonic() + timeout
        observed = Observed([], [], [], 0, 0, 0)
        for index, process in enumerate(self.processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log = self.directory / f"client-{index}.log"
            result_file = self.directory / f"client-{index}.result.json"
            if process.returncode != 0 or not result_file.exists():
                output = log.read_text(encoding="utf-8", errors="replace")
                observed.failures.append(f"client {index} exited {process.returncode}:\n{output}")
                continue
            result = json.loads(result_file.read_text(encoding="utf-8"))
            observed.answers += result["answers"]
            observed.unexpected += result["unexpected"]
            observed.failures += result["failures"]
            observed.busy += result["busy"]
            observed.transport_errors += result["transport_errors"]
            observed.requests += result["requests"]
        return observed

    def stop(self) -> None:
        """Kill (by its own handle) every client still running, and reap them all."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()


@contextmanager
def client_processes(
    directory: Path,
    urls: list[str],
    sessions: list[Created],
    *,
    processes: int,
    seed: int,
    tolerate_transport_errors: bool = False,
    deadline_seconds: float = 40.0,
) -> Iterator[ClientRun]:
    """Start ``processes`` client processes that share every rank of ``sessions`` at random.

    The ranks of one session are dealt to different processes (round robin over a shuffle),
    so they race each other. Clients still running when the block exits are killed.
    """
    rng = random.Random(seed)
    jobs = [
        {
            "session": session.id,
            "token": session.token,
            "rank": rank,
            "metrics": session.plan.rank_metrics(rank),
        }
        for session in sessions
        for rank in range(session.plan.world_size)
    ]
    rng.shuffle(jobs)
    run = ClientRun(directory)
    try:
        for index in range(processes):
            plan = {
                "urls": urls,
                "seed": rng.randrange(2**32),
                "deadline_seconds": deadline_seconds,
                "tolerate_transport_errors": tolerate_transport_errors,
                "jobs": jobs[index::processes],
            }
            plan_file = directory / f"client-{index}.plan.json"
            plan_file.write_text(json.dumps(plan), encoding="utf-8")
            with (directory / f"client-{index}.log").open("wb") as log:
                run.processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "tests.multiprocess._rankclient",
                            str(plan_file),
                            str(directory / f"client-{index}.result.json"),
                        ],
                        cwd=REPO,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        yield run
    finally:
        run.stop()


# -- the checks -------------------------------------------------------------------------------


def get_json(client: httpx.Client, url: str, path: str, headers: dict[str, str]) -> Any:
    """``GET url + path``; asserts 200 and returns the JSON body."""
    response = client.get(f"{url}{path}", headers=headers)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response.json()


def history(client: httpx.Client, url: str, session: Created) -> list[dict[str, Any]]:
    """Every history row of ``session`` (following ``next_start``; bounded)."""
    rows: list[dict[str, Any]] = []
    start: int | None = 0
    for _ in range(100):
        if start is None:
            return rows
        page = get_json(
            client, url, f"/v1/sessions/{session.id}/history?start={start}", session.headers
        )
        rows += page["rows"]
        start = page["next_start"]
    raise AssertionError("history did not end after 100 pages")


def check_history(rows: list[dict[str, Any]], plan: SessionPlan, expected: Expected) -> None:
    """One row per epoch ``0..n-1``, each with the ranks' metrics and the reference decision."""
    assert [row["epoch"] for row in rows] == list(range(len(expected.lrs)))
    for epoch, row in enumerate(rows):
        assert row["metrics"] == wire([float(m) for m in plan.metrics[epoch]]), epoch
        assert row["metric"] == wire(plan.reduced_metric(epoch)), epoch
        assert row["lr"] == expected.lrs[epoch], epoch
        assert row["reduced"] == expected.reduced[epoch], epoch
        assert row["warmup"] is False, epoch
        assert row["stop"] == expected.stopping[epoch]["stop"], epoch
    if expected.torch_lrs is not None:
        assert [row["lr"] for row in rows] == expected.torch_lrs


def check_decision(answer: dict[str, Any], epoch: int, expected: Expected) -> None:
    """A decided answer for ``epoch`` equals the reference decision."""
    assert answer["epoch"] == epoch and answer["decided"] is True, answer
    assert answer["lr"] == expected.lrs[epoch], (epoch, answer)
    assert answer["reduced"] == expected.reduced[epoch], (epoch, answer)
    assert answer["state"] == expected.states[epoch], (epoch, answer)
    assert answer["waiting_for"] == [], (epoch, answer)
    stopping = {key: answer[key] for key in ("stop", "best_epoch", "best_metric")}
    assert stopping == expected.stopping[epoch], (epoch, answer)


def check_final(client: httpx.Client, url: str, session: Created, expected: Expected) -> None:
    """The session's current state and its ``state_dict`` equal the reference after all epochs."""
    plan = session.plan
    view = get_json(client, url, f"/v1/sessions/{session.id}", session.headers)
    final = expected.state_dict
    assert view["epoch"] == len(expected.lrs)
    assert view["pending_ranks"] == []
    assert view["lr"] == final["_last_lr"]
    assert (view["best"], view["num_bad_epochs"], view["cooldown_counter"]) == (
        final["best"],
        final["num_bad_epochs"],
        final["cooldown_counter"],
    )
    assert view["last_epoch"] == final["last_epoch"]
    assert view["world_size"] == plan.world_size and view["reduce"] == plan.reduce
    exported = get_json(client, url, f"/v1/sessions/{session.id}/state_dict", session.headers)
    assert exported == final
    if expected.torch_state_dict is not None:
        assert set(exported) == set(expected.torch_state_dict)
        assert exported == expected.torch_state_dict


def check_answers(observed: Observed, session: Created, expected: Expected) -> None:
    """Every answer a rank got is consistent; every decided one is the one recorded decision.

    Answers for one epoch that say ``decided`` are identical across ranks and retries and equal
    the reference; an undecided answer is for that epoch and no longer waits for its own rank.
    """
    decided: dict[int, set[str]] = defaultdict(set)
    for item in observed.answers:
        if item["session"] != session.id:
            continue
        answer, epoch, rank = item["answer"], item["epoch"], item["rank"]
        if answer["decided"]:
            decided[epoch].add(json.dumps(answer, sort_keys=True))
            check_decision(answer, epoch, expected)
        else:
            assert answer["epoch"] == epoch, item
            assert rank not in answer["waiting_for"], item
            assert answer["waiting_for"], item
    distinct = {epoch: answers for epoch, answers in decided.items() if len(answers) > 1}
    assert not distinct, f"epochs answered differently: {distinct}"
    assert sorted(decided) == list(range(len(expected.lrs))), "some epoch never reached a rank"
