"""Ceilings of the distinct small-curve rate: what a sweep could reach if the engine's work,
or the engine's and the JSON encoding's, cost nothing (issue #16 asks 0.6x of ``/healthz``).

The same sweep as :mod:`bench.small` against three servers: as served; with building,
pricing and computing the curve free (:mod:`bench.free_work_service`: every request after
the first gets the first one's curve, still encoded, hashed, cached and sent); and with the
encoding free too. The gap between the rows is what those parts cost per request; the
last row is what validation, the ETag, the cache and HTTP leave for everything else.
"""

from __future__ import annotations

from bench.report import Row
from bench.server import Service
from bench.small import alternating_rates, healthz, sweep

PART = "small-curve ceilings (1 worker, 16 connections)"
VARIANTS = (
    ("as served", "service", ""),
    ("engine free (curve built and computed once)", "bench.free_work_service", "engine"),
    ("engine and JSON encoding free", "bench.free_work_service", "engine+json"),
)


def run(rows: list[Row], quick: bool) -> None:
    """The sweep's rate against ``/healthz`` on each variant's server."""
    for name, module, free in VARIANTS:
        settings = {"bench_free": free} if free else {}
        with Service(workers=1, module=module, **settings) as service:
            rates = alternating_rates(service.port, {"healthz": healthz(), "sweep": sweep()}, quick)
        rows.append(
            Row(
                PART,
                f"OneCycleLR 1,000 steps JSON, distinct: {name}",
                rates["sweep"],
                "req/s",
                "/healthz",
                rates["healthz"],
                "of",
                ">= 0.6x",
                rates["sweep"] >= 0.6 * rates["healthz"],
            )
        )
