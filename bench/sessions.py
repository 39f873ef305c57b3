"""Plateau-session report throughput, with an exactly-once check of the history afterwards.

Sessions of ``world_size = 2``: for each epoch a driver sends both ranks' reports at once
(two connections), then the next epoch. Many sessions run concurrently. At the end every
session's history is read back: one row per epoch, in order, holding exactly the metrics
sent (none lost, none duplicated).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field

import orjson

from bench.client import Connection, Reply
from bench.report import Row
from bench.server import Service, redis_url

WORLD = 2


def metric(session: int, epoch: int, rank: int) -> float:
    """The metric rank ``rank`` reports for ``epoch`` of session ``session`` (plateaus often)."""
    return round(1.0 / (1 + epoch % 7) + rank * 0.001 + session * 1e-6, 9)


@dataclass(slots=True)
class Outcome:
    """What a run did: reports answered, failures, seconds, and the history check."""

    reports: int = 0
    failed: int = 0
    seconds: float = 0.0
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    retried: int = 0
    epochs: dict[int, int] = field(default_factory=dict)


async def _run(port: int, sessions: int, seconds: float, max_reports: int) -> Outcome:
    outcome = Outcome()
    creator = await Connection(port).open()
    created: list[tuple[str, str]] = []
    for _ in range(sessions):
        body = orjson.dumps(
            {
                "schedule": {"type": "ReduceLROnPlateau", "patience": 2, "factor": 0.5},
                "lr": 0.1,
                "world_size": WORLD,
                "reduce": "mean",
            }
        )
        reply = await creator.request("POST", "/v1/sessions", body)
        assert reply.status == 201, reply.body[:300]
        answer = orjson.loads(reply.body)
        created.append((answer["id"], answer["token"]))
    deadline = time.perf_counter() + seconds
    budget = [max_reports]

    async def report(
        connection: Connection, path: str, body: bytes, auth: list[tuple[str, str]]
    ) -> Reply:
        """Send one report; on a dropped connection or a 503 send it again, as the client
        library does: reports are idempotent, and the history check proves it."""
        for attempt in range(3):
            last = attempt == 2
            try:
                reply = await connection.request("POST", path, body, auth)
            except (ConnectionError, OSError):
                outcome.retried += 1
                await connection.close()
                if last:
                    raise
                await connection.open()
                continue
            if reply.status != 503 or last:
                return reply
            outcome.retried += 1
            await asyncio.sleep(0.05)
        raise AssertionError("unreachable")

    async def drive(index: int, session_id: str, token: str) -> None:
        ranks = [await Connection(port).open() for _ in range(WORLD)]
        auth = [("Authorization", f"Bearer {token}")]
        path = f"/v1/sessions/{session_id}/reports"
        epoch = 0
        try:
            while budget[0] >= WORLD and time.perf_counter() < deadline:
                budget[0] -= WORLD
                bodies = [
                    orjson.dumps({"epoch": epoch, "rank": r, "metric": metric(index, epoch, r)})
                    for r in range(WORLD)
                ]
                replies = await asyncio.gather(
                    *(report(ranks[r], path, bodies[r], auth) for r in range(WORLD))
                )
                outcome.reports += WORLD
                failures = sum(reply.status != 200 for reply in replies)
                outcome.failed += failures
                if failures:
                    break  # the epoch may be incomplete: stop this session here
                epoch += 1
        finally:
            outcome.epochs[index] = epoch
            for connection in ranks:
                await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(drive(i, sid, token) for i, (sid, token) in enumerate(created)))
    outcome.seconds = time.perf_counter() - started
    await creator.close()  # idle past the server's keep-alive timeout: a fresh connection
    reader = await Connection(port).open()
    for index, (session_id, token) in enumerate(created):
        reply = await reader.request(
            "GET",
            f"/v1/sessions/{session_id}/history?limit=10000",
            headers=[("Authorization", f"Bearer {token}")],
        )
        rows = orjson.loads(reply.body)["rows"]
        expected = outcome.epochs[index]
        seen = [row["epoch"] for row in rows]
        outcome.duplicated += len(seen) - len(set(seen))
        outcome.lost += len(set(range(expected)) - set(seen))
        for row in rows:
            sent = [metric(index, row["epoch"], r) for r in range(WORLD)]
            outcome.wrong += row["metrics"] != sent
    await reader.close()
    return outcome


def _row(part: str, figure: str, outcome: Outcome, target: str, goal: float | None) -> Row:
    rate = outcome.reports / outcome.seconds if outcome.seconds else 0.0
    clean = outcome.lost == outcome.duplicated == outcome.wrong == outcome.failed == 0
    return Row(
        part,
        figure,
        rate,
        "reports/s",
        target=target,
        met=None if goal is None else (rate >= goal and clean),
        note=(
            f"{outcome.reports:,} reports; lost {outcome.lost}, duplicated "
            f"{outcome.duplicated}, wrong {outcome.wrong}, failed {outcome.failed}, "
            f"resent (dropped connection or 503) {outcome.retried}"
        ),
    )


def run(rows: list[Row], quick: bool) -> None:
    """SQLite with one worker, Redis with two; bounded in time and count."""
    part = "sessions (world_size 2, 32 sessions)"
    seconds = 4.0 if quick else 10.0
    cap = 8_000 if quick else 40_000
    with tempfile.TemporaryDirectory(prefix="lrsched-bench-") as directory:
        with Service(workers=1, store=f"sqlite:///{directory}/bench.db") as service:
            outcome = asyncio.run(_run(service.port, 32, seconds, cap))
        rows.append(_row(part, "SQLite, 1 worker", outcome, "measured", None))
    with redis_url() as url, Service(workers=2, store=url) as service:
        outcome = asyncio.run(_run(service.port, 32, seconds, cap))
    rows.append(_row(part, "Redis, 2 workers", outcome, ">= 1,500, none lost", 1500.0))
