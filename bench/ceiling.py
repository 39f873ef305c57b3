"""Ceilings of the distinct small-curve rate: what a sweep could reach if the engine's work,
or the engine's and the JSON encoding's, cost nothing (issue #16 asks 0.6x of ``/healthz``).

The same sweep as :mod:`bench.small` against three servers: as served and with building,
pricing and computing the curve free (:mod:`bench.free_work_service`: every request after
the first gets the first one's curve, still encoded, hashed, cached and sent), as JSON and
as ``.npy``; and with the JSON encoding free too. The gap between the rows is what those
parts cost per request; the last row is what validation, the ETag, the cache and HTTP
leave for everything else.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.client import Step
from bench.http import NPY
from bench.report import Row
from bench.server import Service
from bench.small import alternating_rates, healthz, sweep

PART = "small-curve ceilings (1 worker, 16 connections)"
SWEEPS: dict[str, Callable[[], Step]] = {"JSON": sweep, ".npy": lambda: sweep(NPY)}
BOTH = ("JSON", ".npy")
FREE_WORK = "bench.free_work_service"
VARIANTS = (
    ("as served", "service", "", BOTH),
    ("engine free (curve built and computed once)", FREE_WORK, "engine", BOTH),
    ("engine and JSON encoding free", FREE_WORK, "engine+json", ("JSON",)),
)
"""Name, entry point, what it makes free, and the forms measured (with the encoding free,
every request gets the first body whatever it asks for: JSON only)."""


def run(rows: list[Row], quick: bool) -> None:
    """The sweep's rate in each form against ``/healthz`` on each variant's server."""
    for name, module, free, forms in VARIANTS:
        settings = {"bench_free": free} if free else {}
        steps = {"healthz": healthz()} | {form: SWEEPS[form]() for form in forms}
        with Service(workers=1, module=module, **settings) as service:
            rates = alternating_rates(service.port, steps, quick)
        health = rates["healthz"]
        for form in forms:
            rows.append(
                Row(
                    PART,
                    f"OneCycleLR 1,000 steps {form}, distinct: {name}",
                    rates[form],
                    "req/s",
                    "/healthz",
                    health,
                    "of",
                    ">= 0.6x",
                    rates[form] >= 0.6 * health,
                )
            )
