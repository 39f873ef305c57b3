"""Session reports while heavy curves are in flight, and the memory such a burst leaves.

48 clients each post a 3,000,000-step ``LambdaLR`` curve (raw float32) over and over, as fast
as admission lets them (a 503 is retried after its ``Retry-After``); meanwhile one trainer
reports to a plateau session, one report at a time, and each report's latency is recorded.
Figures: the reports' p50 and p99 (and the p99 of reports alone, beforehand, for the machine's
own floor), the curves answered and refused, and the serving process's
resident set before, at its peak during, and settled after the burst (once curve work has been
idle for ``LRSCHED_TRIM_AFTER_IDLE_SECONDS``). Every curve is distinct, and the curve cache is
off, so that each one is computed.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import orjson

from bench.client import Connection
from bench.report import Row
from bench.server import Service

CLIENTS = 48


def heavy(client: int, request: int) -> bytes:
    """A distinct curve per request, so that none is answered from the curve cache."""
    period = 100_000 + client * 1_000 + request
    return orjson.dumps(
        {
            "schedule": {"type": "LambdaLR", "lr_lambda": f"0.5 * (1 + cos(epoch / {period}))"},
            "lr": 0.1,
            "steps": 3_000_000,
        }
    )


FLOAT32 = [("Accept", "application/octet-stream")]
MIB = 1 << 20


@dataclass(slots=True)
class Burst:
    """What the heavy clients got and how long the reports took meanwhile."""

    answered: int = 0
    refused: int = 0
    other: int = 0
    latencies: list[float] = field(default_factory=list)


async def _heavy(port: int, client: int, deadline: float, burst: Burst) -> None:
    connection = await Connection(port).open()
    sent = 0
    try:
        while time.perf_counter() < deadline:
            sent += 1
            body = heavy(client, sent)
            reply = await connection.request("POST", "/v1/schedules", body, FLOAT32)
            if reply.status == 200:
                burst.answered += 1
            elif reply.status == 503:
                burst.refused += 1
                await asyncio.sleep(float(reply.headers.get("retry-after", "1")))
            else:
                burst.other += 1
    finally:
        await connection.close()


async def _trainer(port: int, deadline: float, burst: Burst) -> None:
    connection = await Connection(port).open()
    body = orjson.dumps({"schedule": {"type": "ReduceLROnPlateau"}, "lr": 0.1})
    created = orjson.loads((await connection.request("POST", "/v1/sessions", body)).body)
    auth = [("Authorization", f"Bearer {created['token']}")]
    path = f"/v1/sessions/{created['id']}/reports"
    await asyncio.sleep(1.0)  # the curves are in flight by now
    epoch = 0
    while time.perf_counter() < deadline:
        report = orjson.dumps({"epoch": epoch, "metric": 1.0 / (1 + epoch % 5)})
        started = time.perf_counter()
        reply = await connection.request("POST", path, report, auth)
        burst.latencies.append(time.perf_counter() - started)
        assert reply.status == 200, reply.body[:300]
        epoch += 1
        await asyncio.sleep(0.02)
    await connection.close()


async def _burst(port: int, seconds: float, clients: int = CLIENTS) -> Burst:
    burst = Burst()
    deadline = time.perf_counter() + seconds
    await asyncio.gather(
        _trainer(port, deadline, burst),
        *(_heavy(port, client, deadline, burst) for client in range(clients)),
    )
    return burst


def _p99(burst: Burst) -> float:
    return float(np.percentile(np.array(burst.latencies) * 1000, 99))


def run(rows: list[Row], quick: bool) -> None:
    """One worker on SQLite, the default curve pool settings, the curve cache off (what stays
    after the burst is then the allocator's, not cached curves); bounded in time."""
    part = f"bulkhead ({CLIENTS} x 3M-step lambda curves in flight)"
    seconds = 6.0 if quick else 15.0
    with tempfile.TemporaryDirectory(prefix="lrsched-bench-") as directory:
        with Service(
            workers=1, store=f"sqlite:///{directory}/bench.db", cache_bytes="0"
        ) as service:
            alone = asyncio.run(_burst(service.port, seconds / 2, clients=0))
            before = service.rss_bytes()
            burst = asyncio.run(_burst(service.port, seconds))
            peak = service.peak_rss_bytes()
            time.sleep(2.5)  # idle past LRSCHED_TRIM_AFTER_IDLE_SECONDS (1 s by default)
            settled = service.rss_bytes()
    latencies = np.array(burst.latencies) * 1000
    p50, p99 = float(np.percentile(latencies, 50)), _p99(burst)
    curves = (
        f"curves: {burst.answered} answered, {burst.refused} refused 503 + Retry-After, "
        f"{burst.other} other"
    )
    rows.append(
        Row(
            part,
            "session report p99",
            p99,
            "ms",
            reference="p99 without curves",
            reference_value=_p99(alone),
            target="< 100 ms",
            met=p99 < 100,
            note=(f"{len(latencies)} reports, p50 {p50:.1f} ms; {curves}"),
        )
    )
    rows.append(Row(part, "RSS before the burst", before / MIB, "MiB"))
    rows.append(Row(part, "peak RSS during the burst", peak / MIB, "MiB"))
    rows.append(
        Row(part, "settled RSS 2.5 s after the burst", settled / MIB, "MiB", note="trimmed")
    )
