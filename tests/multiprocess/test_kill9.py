"""An acknowledged report survives ``kill -9`` of the service (SQLite), and the session goes on.

A client reports a two-rank session one report at a time (epoch 0 rank 0, epoch 0 rank 1,
epoch 1 rank 0, ...). The service is SIGKILL-ed first between two reports, then twice while
a report is in flight (at a random moment of back-to-back reporting; after the service
answered a deciding report but before the client read the answer), and restarted on the same
file each time. After each restart every report that got a 200 must be there (the decided
epochs in the history with the decisions that were acknowledged, a pending rank still
pending), and the report that was in flight either landed or not, consistently: the session
is exactly at the position before it or after it, and its retry answers accordingly (a report
that was answered must have landed). At the end the whole run equals ``replay`` (and PyTorch).
"""

from __future__ import annotations

import json
import random
import select
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.multiprocess._support import (
    Created,
    Expected,
    check_decision,
    check_final,
    check_history,
    create_session,
    expected_run,
    get_json,
    history,
    random_plan,
)
from tests.multiprocess.conftest import Service, Services

SEED = 9090
EPOCHS = 24
WORLD_SIZE = 2
IN_FLIGHT_KILLS = ("back to back", "answered, unread")
"""When the in-flight kills happen: while a client reports back to back (at a random moment:
the report in flight may or may not have landed), and after the service answered a deciding
report whose answer the client has not read (it landed: the service said so)."""


class Reporter:
    """Sends the session's reports in order, one at a time, and remembers what was acknowledged.

    Report number ``i`` is epoch ``i // WORLD_SIZE`` from rank ``i % WORLD_SIZE``; ``position``
    is the number of reports acknowledged so far (the next one to send).
    """

    def __init__(self, session: Created) -> None:
        self.session = session
        self.position = 0
        self.acknowledged: dict[int, dict[str, Any]] = {}

    @staticmethod
    def epoch_rank(position: int) -> tuple[int, int]:
        """The epoch and rank of report number ``position``."""
        return divmod(position, WORLD_SIZE)

    def send(self, client: httpx.Client, url: str, position: int) -> httpx.Response:
        """POST report number ``position`` (raises httpx.TransportError if the server dies)."""
        epoch, rank = self.epoch_rank(position)
        body = {"epoch": epoch, "metric": self.session.plan.metrics[epoch][rank], "rank": rank}
        return client.post(
            f"{url}/v1/sessions/{self.session.id}/reports", json=body, headers=self.session.headers
        )

    def report_next(self, client: httpx.Client, url: str) -> None:
        """Send the next report; on 200 record it as acknowledged and advance."""
        response = self.send(client, url, self.position)
        assert response.status_code == 200, response.text
        self.acknowledged[self.position] = response.json()
        self.position += 1

    def report_until_killed(self, url: str, stop: threading.Event) -> None:
        """Report back to back until the server dies (or ``stop`` is set, or all are sent)."""
        with httpx.Client(timeout=10.0) as client:
            while not stop.is_set() and self.position < EPOCHS * WORLD_SIZE:
                try:
                    self.report_next(client, url)
                except httpx.TransportError:
                    return


def send_unread(service: Service, reporter: Reporter, position: int) -> socket.socket:
    """Send report number ``position`` on a raw connection whose answer is never read."""
    epoch, rank = Reporter.epoch_rank(position)
    session = reporter.session
    body = json.dumps(
        {"epoch": epoch, "metric": session.plan.metrics[epoch][rank], "rank": rank}
    ).encode()
    head = (
        f"POST /v1/sessions/{session.id}/reports HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{service.port}\r\n"
        f"Authorization: Bearer {session.token}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    connection = socket.create_connection(("127.0.0.1", service.port), timeout=10.0)
    try:
        connection.sendall(head + body)
    except BaseException:
        connection.close()
        raise
    return connection


def kill_with_a_report_in_flight(
    service: Service, reporter: Reporter, how: str, rng: random.Random
) -> int:
    """SIGKILL the service while a report is in flight; the number of that report.

    Every report before it was acknowledged; it was not (the client saw no answer).
    """
    if how == "back to back":
        before = reporter.position
        stop = threading.Event()
        thread = threading.Thread(target=reporter.report_until_killed, args=(service.url, stop))
        thread.start()
        deadline = time.monotonic() + 20.0
        target = before + 3 + rng.randrange(4)
        while reporter.position < target and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.01))
        service.kill()
        stop.set()
        thread.join(timeout=20.0)
        assert not thread.is_alive()
        assert reporter.position >= target, "the reporter made no progress"
        return reporter.position
    assert how == "answered, unread", how
    if reporter.position % WORLD_SIZE != WORLD_SIZE - 1:
        with httpx.Client(timeout=10.0) as client:  # make the unread answer a decision
            reporter.report_next(client, service.url)
    connection = send_unread(service, reporter, reporter.position)
    try:  # the answer waiting in the socket means the service applied the report
        readable, _, _ = select.select([connection], [], [], 10.0)
        assert readable, "no answer within 10 s"
        service.kill()
    finally:
        connection.close()
    return reporter.position


def expected_view(position: int) -> tuple[int, list[int]]:
    """The next epoch and the pending ranks once reports ``0..position-1`` were applied."""
    epoch, rank = Reporter.epoch_rank(position)
    return epoch, list(range(rank))


def check_acknowledged(
    client: httpx.Client, service: Service, reporter: Reporter, expected: Expected
) -> tuple[int, list[int]]:
    """Every acknowledged report is in the restarted service; returns (epoch, pending ranks)."""
    session = reporter.session
    view = get_json(client, service.url, f"/v1/sessions/{session.id}", session.headers)
    rows = history(client, service.url, session)
    decided = view["epoch"]
    assert [row["epoch"] for row in rows] == list(range(decided))
    for position, answer in reporter.acknowledged.items():
        epoch, rank = Reporter.epoch_rank(position)
        assert epoch <= decided, f"acknowledged report {epoch, rank} lost: {view}"
        if answer["decided"]:
            assert epoch < decided
            assert rows[epoch]["lr"] == answer["lr"], (rows[epoch], answer)
            assert rows[epoch]["reduced"] == answer["reduced"], (rows[epoch], answer)
            check_decision(answer, epoch, expected)
        elif epoch == decided:
            assert rank in view["pending_ranks"], f"acknowledged pending {epoch, rank} lost"
    prefix = expected_run(session.plan, decided)
    check_history(rows, session.plan, prefix)
    return decided, view["pending_ranks"]


def test_acknowledged_reports_survive_sigkill_and_the_session_continues(
    services: Services, tmp_path: Path
) -> None:
    """One SIGKILL between reports, two with a report in flight; restarts on the same file."""
    rng = random.Random(SEED)
    service = services.start(f"sqlite:///{tmp_path / 'sessions.db'}")
    plan = random_plan(
        rng,
        world_size=WORLD_SIZE,
        epochs=EPOCHS,
        reduce="mean",
        mode="min",
        with_early_stopping=True,
    )
    expected = expected_run(plan)
    with httpx.Client(timeout=10.0) as client:
        reporter = Reporter(create_session(client, service.url, plan))
        for _ in range(2 * 8 + 1):  # eight decided epochs and one rank of the ninth
            reporter.report_next(client, service.url)
    service.kill()
    service.restart()
    with httpx.Client(timeout=10.0) as client:
        assert check_acknowledged(client, service, reporter, expected) == (8, [0])
        again = reporter.send(client, service.url, 2 * 3 + 1)  # a retry of a decided epoch
        assert again.status_code == 200 and again.json() == reporter.acknowledged[2 * 3 + 1]

    for how in IN_FLIGHT_KILLS:
        unsure = kill_with_a_report_in_flight(service, reporter, how, rng)
        service.restart()
        with httpx.Client(timeout=10.0) as client:
            view = check_acknowledged(client, service, reporter, expected)
            landed = view == expected_view(unsure + 1)
            assert landed or view == expected_view(unsure), (how, view, unsure)
            if how == "answered, unread":
                assert landed, "a report the service answered 200 was lost"
            epoch, rank = Reporter.epoch_rank(unsure)
            retry = reporter.send(client, service.url, unsure)
            assert retry.status_code == 200, retry.text
            answer = retry.json()
            if rank == WORLD_SIZE - 1:  # the last rank: the retry decides, or returns the decision
                check_decision(answer, epoch, expected)
            else:
                assert answer["decided"] is False and answer["epoch"] == epoch, answer
                assert answer["waiting_for"] == list(range(rank + 1, WORLD_SIZE)), answer
            reporter.acknowledged[unsure] = answer
            reporter.position = unsure + 1
            after = check_acknowledged(client, service, reporter, expected)
            assert after == expected_view(unsure + 1), (how, after, unsure)

    with httpx.Client(timeout=10.0) as client:
        while reporter.position < EPOCHS * WORLD_SIZE:
            reporter.report_next(client, service.url)
        session = reporter.session
        check_history(history(client, service.url, session), plan, expected)
        for position, answer in reporter.acknowledged.items():
            epoch, rank = Reporter.epoch_rank(position)
            if rank == WORLD_SIZE - 1:
                check_decision(answer, epoch, expected)
        check_final(client, service.url, session, expected)
