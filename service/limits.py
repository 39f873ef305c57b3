"""Fixed limits of the service, in one place: why a request was refused is found here.

Limits an operator tunes are :class:`service.config.Settings` fields (``LRSCHED_*``); the ones
below are fixed properties of the code. Each block belongs to one part of the service.
"""

from __future__ import annotations

# --- Connections and curve admission (service/server.py, service/curve_pool.py) -------------

MAX_HEAD_BYTES = 64 * 1024
"""Most bytes of request line and headers one request may send; more: 431 and the
connection is closed (uvicorn's httptools protocol has no limit of its own)."""

HEALTH_PATHS = frozenset({"/healthz"})
"""Liveness routes answered even when the connection limit is reached."""

CURVE_BYTES_PER_VALUE = 48
"""Estimated peak working memory per requested value (groups x steps) of a curve, plot or
replay: the float64 result, the step indices, an expression's values and flags, the
per-group product and its stacking, and the encoded body or a slice of it."""

CURVE_BASE_BYTES = 32 * 1024 * 1024
"""Estimated working memory of any curve computation, whatever its size: an expression's
intermediate results on one chunk of arguments (see ``service.engine.expressions.CHUNK``)."""

RETRY_AFTER_SECONDS = 1
"""``Retry-After`` of a 503 for curve work past admission: computations take about a second."""
