"""Figures over HTTP on loopback: big curves, the cache, streaming (small curves: bench.small).

Every part starts its own ``python -m service`` (:class:`bench.server.Service`) and talks
to it with :mod:`bench.client`. Times are request-to-last-byte as the client sees them.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from typing import Any

import numpy as np
import orjson

from bench.client import Connection, request_bytes
from bench.engine import LR, N, naive_numpy, timed
from bench.report import Row
from bench.server import Service

COSINE = {"type": "CosineAnnealingLR", "T_max": N}
ONE_CYCLE_1K = {"type": "OneCycleLR", "max_lr": LR, "total_steps": 1000}
FLOAT32 = [("Accept", "application/octet-stream")]
NPY = [("Accept", "application/x-npy")]


def curve_body(schedule: dict[str, Any], steps: int, lr: float = 0.001) -> bytes:
    """A ``POST /v1/schedules`` body."""
    return orjson.dumps({"schedule": schedule, "lr": lr, "steps": steps})


async def best_request(port: int, raw: bytes, repeat: int) -> tuple[float, bytes]:
    """Best request-to-last-byte time of ``repeat`` sends on one connection, and a body."""
    connection = await Connection(port).open()
    try:
        reply = await connection.send(raw)  # warm up (imports, first allocation)
        assert reply.status == 200, reply.body[:300]
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            reply = await connection.send(raw)
            best = min(best, time.perf_counter() - started)
            assert reply.status == 200
        return best, reply.body
    finally:
        await connection.close()


def big_curves(rows: list[Row], quick: bool, reference: dict[str, float]) -> None:
    """1M-step CosineAnnealingLR as float32, ``.npy`` and JSON; the cache off (computed)."""
    part = "HTTP (1M steps, 1 worker, cache off)"
    repeat = 5 if quick else 15
    naive64 = timed(lambda: naive_numpy(np.float64), repeat).best
    array = np.ascontiguousarray(naive_numpy(np.float64)[None, :])
    orjson_time = timed(
        lambda: orjson.dumps({"lr": array}, option=orjson.OPT_SERIALIZE_NUMPY), repeat
    ).best
    with Service(workers=1, cache_bytes="0") as service:
        body = curve_body(COSINE, N)
        raw32 = request_bytes("POST", "/v1/schedules", body, FLOAT32)
        f32, payload = asyncio.run(best_request(service.port, raw32, repeat))
        assert len(payload) == 4 * N
        npy, payload = asyncio.run(
            best_request(service.port, request_bytes("POST", "/v1/schedules", body, NPY), repeat)
        )
        assert np.load(io.BytesIO(payload)).shape == (1, N)
        as_json, payload = asyncio.run(
            best_request(service.port, request_bytes("POST", "/v1/schedules", body), repeat)
        )
    rows.append(
        Row(
            part,
            "float32 (octet-stream)",
            f32 * 1e3,
            "ms",
            "naive numpy float64 closed form, in-process",
            naive64 * 1e3,
            "of",
            "<= 2.5x",
            f32 <= 2.5 * naive64,
        )
    )
    torch_1m = reference.get("torch_1m", float("nan"))
    if torch_1m == torch_1m:  # not NaN: PyTorch was importable
        rows.append(
            Row(
                part,
                "float32 (octet-stream) vs PyTorch loop",
                f32 * 1e3,
                "ms",
                "torch scheduler.step() loop",
                torch_1m * 1e3,
                "faster",
                ">= 150x",
                torch_1m / f32 >= 150,
            )
        )
    rows.append(
        Row(
            part,
            ".npy float64",
            npy * 1e3,
            "ms",
            "naive numpy float64 closed form",
            naive64 * 1e3,
            "of",
        )
    )
    rows.append(
        Row(
            part,
            f"JSON ({len(payload) / 1e6:.0f} MB)",
            as_json * 1e3,
            "ms",
            "orjson.dumps of the same array",
            orjson_time * 1e3,
            "of",
            "<= 1.5x",
            as_json <= 1.5 * orjson_time,
        )
    )


def _metric(text: str, name: str) -> float:
    """Sum of every sample of ``name`` (all label sets) in Prometheus exposition text."""
    total = 0.0
    for line in text.splitlines():
        if re.match(rf"{re.escape(name)}(\{{.*\}})? ", line):
            total += float(line.split()[-1])
    return total


def cache(rows: list[Row], quick: bool) -> None:
    """Many ranks asking at once for the same 1M-step curve: how many computations."""
    part = "cache (2 workers)"
    ranks = 64 if quick else 256
    raw = request_bytes("POST", "/v1/schedules", curve_body(COSINE, N), FLOAT32)

    async def everyone(port: int) -> tuple[float, int]:
        connections = [await Connection(port).open() for _ in range(ranks)]
        started = time.perf_counter()
        replies = await asyncio.gather(*(c.send(raw) for c in connections))
        elapsed = time.perf_counter() - started
        for connection in connections:
            await connection.close()
        return elapsed, sum(reply.status != 200 for reply in replies)

    async def metrics(port: int) -> str:
        connection = await Connection(port).open()
        try:
            return (await connection.request("GET", "/metrics")).body.decode()
        finally:
            await connection.close()

    with Service(workers=2) as service:
        elapsed, failed = asyncio.run(everyone(service.port))
        text = asyncio.run(metrics(service.port))
    computed = _metric(text, "lrsched_curves_computed_total")
    misses = _metric(text, 'lrsched_curve_cache_total{result="miss"}')
    hits = _metric(text, 'lrsched_curve_cache_total{result="hit"}')
    rows.append(
        Row(
            part,
            f"{ranks} concurrent identical 1M-step requests: computations",
            computed,
            "",
            target="<= workers (2)",
            met=computed <= 2 and failed == 0,
            note=f"{int(hits)} hits, {int(misses)} misses, {failed} failed, "
            f"all answered in {elapsed * 1e3:.0f} ms",
        )
    )


def streaming(rows: list[Row], quick: bool) -> None:
    """10M values streamed: time and the server's peak RSS (VmHWM) for the float32 body."""
    part = "big curves (10M values, streamed, 1 worker)"
    steps = 10_000_000
    body = curve_body({"type": "CosineAnnealingLR", "T_max": steps}, steps)
    payload = 4 * steps
    with Service(workers=1) as service:
        small = request_bytes("POST", "/v1/schedules", curve_body(ONE_CYCLE_1K, 1000))
        asyncio.run(best_request(service.port, small, 3))  # warm up the route
        idle = service.peak_rss_bytes()
        raw32 = request_bytes("POST", "/v1/schedules", body, FLOAT32)
        seconds, reply = asyncio.run(best_request(service.port, raw32, 1 if quick else 3))
        assert len(reply) == payload
        peak = service.peak_rss_bytes()
        timings = [("float32", seconds)]
        peak_all = peak
        if not quick:
            for name, headers in (("npy", NPY), ("JSON", [])):
                raw = request_bytes("POST", "/v1/schedules", body, headers)
                timings.append((name, asyncio.run(best_request(service.port, raw, 1))[0]))
        peak_all = service.peak_rss_bytes()
    rows.append(
        Row(
            part,
            "peak RSS of the server (VmHWM)",
            peak / 2**20,
            "MiB",
            "3x the 38 MiB payload",
            3 * payload / 2**20,
            "of",
            "< 1x",
            peak < 3 * payload,
            note=f"idle peak {idle / 2**20:.0f} MiB, growth {(peak - idle) / 2**20:.0f} MiB",
        )
    )
    for name, elapsed in timings:
        rows.append(Row(part, f"{name} body", elapsed * 1e3, "ms"))
    if len(timings) > 1:
        rows.append(
            Row(
                part,
                "peak RSS after the npy and JSON bodies too",
                peak_all / 2**20,
                "MiB",
                note="80 MB and 220 MB payloads",
            )
        )
