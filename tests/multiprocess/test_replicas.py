"""Two service replicas on one real Redis: exactly-once across replicas, and a replica may die.

Two ``python -m service`` processes on different ports share one ``redis-server``. Client
processes play the ranks of two sessions, sending every request (reports, retries, polls) to
a replica chosen at random, and retrying on a random replica when a connection fails. Mid-run
one replica is SIGKILL-ed (the other carries on alone), then restarted; later the other one
is killed and restarted too. Every epoch must still be decided exactly once with the
reference decision, and every answer any rank got must be that recorded decision.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx

from tests.multiprocess._support import (
    Created,
    check_answers,
    check_final,
    check_history,
    client_processes,
    create_session,
    expected_run,
    history,
    random_plan,
)
from tests.multiprocess.conftest import Service, Services

SEED = 4242
EPOCHS = 40
CLIENT_PROCESSES = 3
PROGRESS_TIMEOUT = 30.0


def slowest_epoch(client: httpx.Client, replica: Service, sessions: list[Created]) -> int:
    """The smallest next epoch among ``sessions``, read through ``replica``."""
    epochs: list[int] = []
    for session in sessions:
        response = client.get(f"{replica.url}/v1/sessions/{session.id}", headers=session.headers)
        assert response.status_code == 200, response.text
        epochs.append(int(response.json()["epoch"]))
    return min(epochs)


def wait_for_epoch(
    client: httpx.Client, replica: Service, sessions: list[Created], epoch: int
) -> int:
    """Wait (bounded) until every session has decided ``epoch - 1``; the slowest next epoch."""
    deadline = time.monotonic() + PROGRESS_TIMEOUT
    while True:
        reached = slowest_epoch(client, replica, sessions)
        if reached >= epoch or time.monotonic() > deadline:
            return reached
        time.sleep(0.02)


def test_reports_through_two_replicas_apply_once_while_replicas_are_killed_and_restarted(
    services: Services, redis_url: str, tmp_path: Path
) -> None:
    """Two sessions (4 and 3 ranks, the second with early stopping), three client processes,
    each replica killed once."""
    rng = random.Random(SEED)
    first = services.start(redis_url)
    second = services.start(redis_url)
    plans = [
        random_plan(rng, world_size=4, epochs=EPOCHS, reduce="min", mode="min"),
        random_plan(
            rng,
            world_size=3,
            epochs=EPOCHS,
            reduce="mean",
            mode="max",
            with_early_stopping=True,
        ),
    ]
    with httpx.Client(timeout=15.0) as client:
        sessions = [create_session(client, first.url, plan) for plan in plans]
        with client_processes(
            tmp_path,
            [first.url, second.url],
            sessions,
            processes=CLIENT_PROCESSES,
            seed=rng.randrange(2**32),
            tolerate_transport_errors=True,
        ) as clients:
            kills: list[int] = []
            for killed, survivor in [(first, second), (second, first)]:
                # The survivor (the restarted replica, the second time round) decides a couple
                # of epochs, the other replica is killed, the survivor alone decides a few
                # more, and the killed replica is restarted on its port.
                now = slowest_epoch(client, survivor, sessions)
                reached = wait_for_epoch(client, survivor, sessions, max(6, now + 2))
                killed.kill()
                kills.append(reached)
                wait_for_epoch(client, survivor, sessions, reached + 3)
                killed.restart()
            observed = clients.collect()
        assert observed.failures == [], "\n".join(observed.failures)
        assert observed.unexpected == [], observed.unexpected[:5]
        assert all(at < EPOCHS - 4 for at in kills), f"kills came too late to matter: {kills}"
        assert observed.transport_errors > 0, "no client ever met a killed replica"
        for session in sessions:
            expected = expected_run(session.plan)
            for replica in (first, second):
                check_history(history(client, replica.url, session), session.plan, expected)
                check_final(client, replica.url, session, expected)
            check_answers(observed, session, expected)
    assert first.running and second.running
