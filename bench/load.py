"""A bounded mixed-traffic load test: curves and session reports against two workers.

Traffic (closed loop, every connection sends its next request as soon as it has an answer):
most connections ask for curves (small 1,000-step OneCycleLR JSON from a handful of
variants, so mostly cache hits; every tenth a 100k-step float32 curve with a fresh lr, so
computed), the rest drive plateau sessions through their epochs. Reports throughput, p50
and p99 latency per kind and overall, and the error count. Loopback only; it stops after
``seconds`` or ``max_requests``.
"""

from __future__ import annotations

import asyncio
import itertools

import orjson

from bench.client import Connection, LoadResult, closed_loop, request_bytes
from bench.report import Row
from bench.server import Service, redis_url

CURVE_CONNECTIONS = 24
SESSION_CONNECTIONS = 8


async def _mixed(port: int, seconds: float, max_requests: int) -> LoadResult:
    small = [
        request_bytes(
            "POST",
            "/v1/schedules",
            orjson.dumps(
                {
                    "schedule": {
                        "type": "OneCycleLR",
                        "max_lr": 0.1 * (v + 1),
                        "total_steps": 1000,
                    },
                    "steps": 1000,
                }
            ),
        )
        for v in range(8)
    ]
    fresh = itertools.count()
    creator = await Connection(port).open()
    sessions = []
    for _ in range(SESSION_CONNECTIONS):
        body = orjson.dumps(
            {"schedule": {"type": "ReduceLROnPlateau", "patience": 3}, "lr": 0.1, "world_size": 1}
        )
        answer = orjson.loads((await creator.request("POST", "/v1/sessions", body)).body)
        sessions.append([answer["id"], answer["token"], 0])
    await creator.close()
    counter = itertools.count()

    async def step(connection: Connection, index: int) -> tuple[str, bool]:
        if index >= CURVE_CONNECTIONS:
            session = sessions[index - CURVE_CONNECTIONS]
            session_id, token, epoch = session
            body = orjson.dumps({"epoch": epoch, "metric": 1.0 / (1 + epoch % 5)})
            reply = await connection.request(
                "POST",
                f"/v1/sessions/{session_id}/reports",
                body,
                [("Authorization", f"Bearer {token}")],
            )
            session[2] = epoch + 1
            return "report", reply.status == 200
        n = next(counter)
        if n % 10 == 9:
            body = orjson.dumps(
                {
                    "schedule": {"type": "CosineAnnealingLR", "T_max": 100_000},
                    "lr": 0.1 + next(fresh) * 1e-9,
                    "steps": 100_000,
                }
            )
            headers = [("Accept", "application/octet-stream")]
            reply = await connection.request("POST", "/v1/schedules", body, headers)
            return "curve 100k float32", reply.status == 200
        reply = await connection.send(small[n % len(small)])
        return "curve 1k JSON", reply.status == 200

    return await closed_loop(
        port,
        CURVE_CONNECTIONS + SESSION_CONNECTIONS,
        step,
        seconds=seconds,
        max_requests=max_requests,
    )


def run(rows: list[Row], quick: bool) -> None:
    """Two workers on a real Redis; 5 s (quick) or 20 s, at most 200k requests."""
    part = "mixed load (2 workers, Redis, 32 connections)"
    seconds = 5.0 if quick else 20.0
    with redis_url() as url, Service(workers=2, store=url) as service:
        result = asyncio.run(_mixed(service.port, seconds, 200_000))
    rows.append(
        Row(
            part,
            "throughput",
            result.rate(),
            "req/s",
            note=(
                f"{result.count:,} requests in {result.seconds:.1f} s, {result.error_count} errors"
            ),
            target="0 errors",
            met=result.error_count == 0,
        )
    )
    for kind in [None, *sorted(result.latencies)]:
        label = kind or "all"
        count = result.count if kind is None else len(result.latencies[kind])
        rows.append(
            Row(
                part,
                f"p50 latency, {label}",
                result.percentile(0.5, kind) * 1e3,
                "ms",
                note=f"{count:,} requests",
            )
        )
        rows.append(Row(part, f"p99 latency, {label}", result.percentile(0.99, kind) * 1e3, "ms"))
