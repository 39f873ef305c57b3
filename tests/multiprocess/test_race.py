"""No lost and no double-counted report when many processes race on one session.

The service runs with two uvicorn workers on one store (an SQLite file, or a real Redis);
several client processes play the ranks of a few sessions, each rank retrying its reports
(one after another and all at once) and polling until its epoch is decided. Afterwards every
epoch must have been decided exactly once, on exactly the metrics the ranks sent, with the
decision ``replay`` (and PyTorch) makes; every answer any rank got for an epoch must be that
same recorded decision.
"""

from __future__ import annotations

import random
from pathlib import Path

import httpx

from tests.multiprocess._support import (
    check_answers,
    check_final,
    check_history,
    client_processes,
    create_session,
    expected_run,
    history,
    random_plan,
)
from tests.multiprocess.conftest import Services

SEED = 20240603
EPOCHS = 30
CLIENT_PROCESSES = 4


def test_racing_ranks_in_many_processes_decide_every_epoch_exactly_once(
    services: Services, store_url: str, tmp_path: Path
) -> None:
    """Two workers, four client processes, two sessions of 4-8 ranks, 30 epochs each."""
    rng = random.Random(SEED)
    service = services.start(store_url, workers=2)
    plans = [
        random_plan(
            rng,
            world_size=rng.randint(4, 8),
            epochs=EPOCHS,
            reduce=reduce,
            mode=mode,
            with_early_stopping=stopping,
        )
        for reduce, mode, stopping in [("mean", "min", False), ("max", "max", True)]
    ]
    with httpx.Client(timeout=15.0) as client:
        sessions = [create_session(client, service.url, plan) for plan in plans]
        with client_processes(
            tmp_path, [service.url], sessions, processes=CLIENT_PROCESSES, seed=rng.randrange(2**32)
        ) as clients:
            observed = clients.collect()
        assert observed.failures == [], "\n".join(observed.failures)
        assert observed.unexpected == [], observed.unexpected[:5]
        assert observed.transport_errors == 0
        for session in sessions:
            expected = expected_run(session.plan)
            check_history(history(client, service.url, session), session.plan, expected)
            check_answers(observed, session, expected)
            check_final(client, service.url, session, expected)
    assert service.running, service.output()
