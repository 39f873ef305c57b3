"""Small curves over HTTP: requests/s of 1,000-step curves against ``/healthz``, same worker.

Issue #16's figure: a sweep (every request a different ``max_lr``, so each one is computed)
should reach 0.6x of ``/healthz``; a repeated request (a cache hit) 0.8x. Rates are taken
in short windows of each kind in turn (:func:`alternating_rates`), so machine drift hits
every kind alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bench.client import Connection, Step, closed_loop, request_bytes
from bench.engine import LR
from bench.http import NPY, ONE_CYCLE_1K, curve_body
from bench.report import Row
from bench.server import Service

PART = "small curves (1 worker, 16 connections)"
CONNECTIONS = 16


def healthz() -> Step:
    """``GET /healthz``."""
    raw = request_bytes("GET", "/healthz")

    async def step(connection: Connection, index: int) -> tuple[str, bool]:
        return "healthz", (await connection.send(raw)).status == 200

    return step


def repeated() -> Step:
    """The same 1,000-step OneCycleLR JSON request every time (a cache hit)."""
    raw = request_bytes("POST", "/v1/schedules", curve_body(ONE_CYCLE_1K, 1000))

    async def step(connection: Connection, index: int) -> tuple[str, bool]:
        return "repeated", (await connection.send(raw)).status == 200

    return step


def sweep(headers: Sequence[tuple[str, str]] = ()) -> Step:
    """A 1,000-step OneCycleLR request with a different ``max_lr`` every time: a sweep,
    each request a cache miss the server computes."""
    counter = [0]

    async def step(connection: Connection, index: int) -> tuple[str, bool]:
        counter[0] += 1
        schedule = ONE_CYCLE_1K | {"max_lr": LR * (1 + counter[0] * 1e-9)}
        raw = request_bytes("POST", "/v1/schedules", curve_body(schedule, 1000), headers)
        return "sweep", (await connection.send(raw)).status == 200

    return step


def alternating_rates(port: int, steps: dict[str, Step], quick: bool) -> dict[str, float]:
    """Requests/s of each step on ``CONNECTIONS`` connections, summed over rounds of short
    windows taken in turn (the machine is shared: load drifts over seconds)."""

    def count(step: Step, window: float) -> tuple[int, float]:
        run = closed_loop(port, CONNECTIONS, step, seconds=window, max_requests=200_000)
        result = asyncio.run(run)
        assert result.error_count == 0, result.errors
        return result.count, result.seconds

    for step in steps.values():
        count(step, 0.5)  # warm up
    rounds = 3 if quick else 8
    totals = {name: [0, 0.0] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            done, elapsed = count(step, 1.0)
            totals[name][0] += done
            totals[name][1] += elapsed
    return {name: done / elapsed for name, (done, elapsed) in totals.items()}


def run(rows: list[Row], quick: bool) -> None:
    """``/healthz``, a sweep as JSON and as ``.npy``, and a repeated request."""
    steps = {
        "healthz": healthz(),
        "sweep": sweep(),
        "sweep npy": sweep(NPY),
        "repeated": repeated(),
    }
    with Service(workers=1) as service:
        rates = alternating_rates(service.port, steps, quick)
    health = rates["healthz"]
    rows.append(Row(PART, "/healthz", health, "req/s"))
    figures = (
        ("sweep", "OneCycleLR 1,000 steps JSON, distinct (a different max_lr each: computed)", 0.6),
        ("sweep npy", "same, as .npy (Accept: application/x-npy: no float formatting)", None),
        ("repeated", "OneCycleLR 1,000 steps JSON, identical (cache hit)", 0.8),
    )
    for kind, figure, share in figures:
        rate = rates[kind]
        target, met = ("", None) if share is None else (f">= {share}x", rate >= share * health)
        rows.append(Row(PART, figure, rate, "req/s", "/healthz", health, "of", target, met))
