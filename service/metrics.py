"""Prometheus metrics: HTTP traffic by route template and status, and domain counters.

With several worker processes set ``PROMETHEUS_MULTIPROC_DIR`` (``python -m service``
does, for ``--workers N``) and every process writes its samples there; ``/metrics``
aggregates them, so any worker answers for all.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "lrsched_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "lrsched_http_request_duration_seconds",
    "Time from request start to the end of the response, by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CURVES = Counter(
    "lrsched_curves_computed_total",
    "Curves computed by the engine (ETag hits are not computed), by schedule type.",
    ["type"],
)
CURVE_CACHE = Counter(
    "lrsched_curve_cache_total",
    "Curve requests answered from the curve cache (hit, including waiting for an identical "
    "request in flight) or computed (miss).",
    ["result"],
)
VALUES = Counter("lrsched_values_computed_total", "Values (groups x steps) computed by the engine.")
SESSIONS_CREATED = Counter("lrsched_sessions_created_total", "Plateau sessions created.")
SESSIONS_LIVE = Gauge(
    "lrsched_sessions_live",
    "Plateau sessions in the store that have not expired (counted at scrape time).",
    multiprocess_mode="mostrecent",
)
REPORTS = Counter(
    "lrsched_reports_total",
    "Session reports by outcome: decided (the epoch's last rank), pending (waiting for ranks), "
    "replayed (a retry answered from history), duplicate (a pending rank reporting again), "
    "conflict (skipped ahead, 409).",
    ["result"],
)
STORE_CONFLICTS = Counter(
    "lrsched_store_conflicts_total",
    "Compare-and-set races lost (and retried) by session store updates.",
)


_CHILDREN: dict[tuple[int, tuple[str, ...]], Any] = {}


def child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, remembered: prometheus-client checks the label values on
    every ``labels()`` call, which costs a hot route more than counting does. Label values
    come from bounded sets (route templates, methods, status codes, schedule types)."""
    key = (id(metric), values)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*values)
    return found


def render() -> tuple[bytes, str]:
    """The exposition text of every metric of every worker, and its content type."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


CURVE_JOBS = Gauge(
    "lrsched_curve_jobs",
    "Curve, plot and replay computations admitted and not yet finished.",
    multiprocess_mode="livesum",
)
CURVE_BYTES = Gauge(
    "lrsched_curve_admitted_bytes",
    "Estimated working memory of the admitted curve computations.",
    multiprocess_mode="livesum",
)
CURVE_REFUSED = Counter(
    "lrsched_curve_refused_total",
    "Curve computations refused with 503 at admission, by the limit they met (jobs, memory).",
    ["limit"],
)
CURVES_CANCELLED = Counter(
    "lrsched_curves_cancelled_total",
    "Curve computations stopped at a block boundary: their client got a 504 or went away.",
)
MEMORY_TRIMS = Counter(
    "lrsched_memory_trims_total",
    "Times freed memory was handed back to the kernel after curve work went idle.",
)
