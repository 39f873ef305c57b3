"""The LR range test through real service processes: ``kill -9`` with acknowledged reports
and pending ranks (SQLite), and ranks racing through two replicas that are killed and
restarted (Redis). Every step is decided once, in order, the same for every rank, and the
result equals the engine's rule on the ranks' reduced losses."""

from __future__ import annotations

import math
import random
import threading
from pathlib import Path
from typing import Any

import httpx

from service.engine.lr_finder import LrFinderConfig, LrFinderState, lr_at, step, suggest
from service.sessions import combine
from tests.multiprocess.conftest import Services

OPTIONS: dict[str, Any] = {"start_lr": 1e-5, "end_lr": 1.0, "num_steps": 40, "smooth": 0.8}
CONFIG = LrFinderConfig(**OPTIONS)


def losses(rng: random.Random, world_size: int) -> list[list[float]]:
    """Every rank's loss at every step: falling with log(lr), exploding past lr 0.05."""
    table = []
    for k in range(CONFIG.num_steps):
        lr = lr_at(CONFIG, k)
        base = 3.0 - 0.3 * math.log10(lr / 1e-5) + (60.0 * lr if lr > 0.05 else 0.0)
        table.append([round(base + rng.uniform(-0.05, 0.05), 6) for _ in range(world_size)])
    return table


def expected(table: list[list[float]]) -> list[LrFinderState]:
    """The rule's state after each step, up to the one that stops the test."""
    states, state = [], LrFinderState()
    for row in table:
        state = step(CONFIG, state, combine(tuple(row), "mean"))
        states.append(state)
        if state.stop:
            return states
    raise AssertionError("the test never stopped")


def create(client: httpx.Client, url: str, world_size: int) -> tuple[str, dict[str, str]]:
    response = client.post(f"{url}/v1/lr-finder", json={**OPTIONS, "world_size": world_size})
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], {"Authorization": f"Bearer {body['token']}"}


def check_result(
    client: httpx.Client, url: str, finder: tuple[str, dict[str, str]], states: list[Any]
) -> None:
    result = client.get(f"{url}/v1/lr-finder/{finder[0]}/result", headers=finder[1]).json()
    assert result["smoothed_loss"] == [s.smoothed for s in states]
    assert result["lr"] == [lr_at(CONFIG, k) for k in range(len(states))]
    suggested = suggest(result["lr"], result["smoothed_loss"], CONFIG.num_steps)
    assert result["suggestions"]["torch_lr_finder"] == suggested.torch_lr_finder
    assert result["stop"] is True and result["stop_reason"] == "diverged"


def check_answer(answer: dict[str, Any], k: int, states: list[LrFinderState]) -> None:
    state = states[k]
    assert answer["decided"] and answer["step"] == k, answer
    assert answer["stop"] == state.stop and answer["smoothed_loss"] == state.smoothed
    assert answer["lr"] == (lr_at(CONFIG, k) if state.stop else lr_at(CONFIG, k + 1))


def test_acknowledged_steps_and_pending_ranks_survive_kill_9(
    services: Services, tmp_path: Path
) -> None:
    world_size, rng = 3, random.Random(1414)
    table = losses(rng, world_size)
    states = expected(table)
    service = services.start(f"sqlite:///{tmp_path / 'sessions.db'}")
    kills = {5: 1, 12: 2}  # step -> ranks reported before the kill (a pending step)
    with httpx.Client(timeout=10.0) as client:
        finder = create(client, service.url, world_size)
        for k in range(len(states)):
            order = rng.sample(range(world_size), world_size)
            answers = []
            for position, rank in enumerate(order):
                if kills.get(k) == position:
                    service.kill()
                    service.restart()
                    view = client.get(f"{service.url}/v1/lr-finder/{finder[0]}", headers=finder[1])
                    assert view.json()["pending_ranks"] == sorted(order[:position])
                body = {"step": k, "loss": table[k][rank], "rank": rank}
                url = f"{service.url}/v1/lr-finder/{finder[0]}/reports"
                answers.append(client.post(url, json=body, headers=finder[1]).json())
            check_answer(answers[-1], k, states)
            retry = {"step": k, "loss": table[k][order[0]], "rank": order[0]}
            url = f"{service.url}/v1/lr-finder/{finder[0]}/reports"
            assert client.post(url, json=retry, headers=finder[1]).json() == answers[-1]
        check_result(client, service.url, finder, states)


def test_racing_ranks_through_two_replicas_get_one_decision_per_step(
    services: Services, redis_url: str
) -> None:
    world_size, rng = 4, random.Random(2026)
    table = losses(rng, world_size)
    states = expected(table)
    replicas = [services.start(redis_url), services.start(redis_url)]
    with httpx.Client(timeout=10.0) as client:
        finder = create(client, replicas[0].url, world_size)
    seen: dict[int, list[dict[str, Any]]] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def rank_loop(rank: int) -> None:
        chooser = random.Random(rank)
        try:
            with httpx.Client(timeout=10.0) as client:
                for k in range(len(states)):
                    answer: dict[str, Any] = {"decided": False}
                    for _ in range(2000):
                        url = chooser.choice(replicas).url
                        body = {"step": k, "loss": table[k][rank], "rank": rank}
                        try:
                            response = client.post(
                                f"{url}/v1/lr-finder/{finder[0]}/reports",
                                json=body,
                                headers=finder[1],
                            )
                        except httpx.TransportError:
                            continue  # that replica is restarting: the other one answers
                        if response.status_code == 200:
                            answer = response.json()
                            if answer["decided"]:
                                break
                    with lock:
                        seen.setdefault(k, []).append(answer)
                    if answer["stop"]:
                        return
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=rank_loop, args=(r,)) for r in range(world_size)]
    for thread in threads:
        thread.start()
    replicas[1].kill()
    replicas[1].restart()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(seen) == list(range(len(states)))
    for k, answers in seen.items():
        assert len(answers) == world_size
        assert all(answer == answers[0] for answer in answers), (k, answers)
        check_answer(answers[0], k, states)
    with httpx.Client(timeout=10.0) as client:
        check_result(client, replicas[0].url, finder, states)
