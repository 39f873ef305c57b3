"""Fixed limits of the service, in one place: a reader asking "why was this refused?" looks here.

Limits an operator tunes are :class:`service.config.Settings` (``LRSCHED_*``); the limits below
are fixed because they protect the process itself. Keep each subsystem's limits in its own
block.
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

# --- Request bodies ------------------------------------------------------------------------
# The structural gate (service/api/bodies.py) checks these on the raw bytes of every JSON
# body before anything parses or validates it, so parsing and validation stay bounded: the
# costliest body the gate admits parses and validates in tens of milliseconds, which keeps
# the event loop (and /healthz) responsive. Bodies over LRSCHED_MAX_BODY_BYTES are 413 first.

BODY_MAX_DEPTH = 32
"""Deepest nesting of JSON objects and arrays (a composite of the deepest nesting allowed,
``schemas.schedules.MAX_DEPTH``, needs about 20 levels). Deeper: 422 at the container."""
BODY_MAX_ITEMS = 100_000
"""Most array items in one body, all arrays together (a replayed metric history is the only
long array a request has; validating 100,000 metrics takes 10-25 ms, and pydantic holds the
GIL throughout, whatever thread it runs in). More: 413 naming the array."""
BODY_MAX_MEMBERS = 20_000
"""Most object members (keys) in one body, all objects together (``optax`` scales take up to
10,000). More: 413 naming the object. A member costs about ten times an array item to parse
and validate."""
BODY_MAX_STRING_BYTES = 64 * 1024
"""Longest string (key or value) in a body, in bytes as sent (expressions take at most 1,000
characters). Longer: 413 naming the string."""
BODY_INLINE_BYTES = 4096
"""Bodies up to this size are checked, parsed and validated on the event loop (microseconds);
larger ones are checked and parsed in a worker thread, and only then validated."""

# --- Validation errors (service/api/errors.py) ---------------------------------------------

ERRORS_SHOWN = 20
"""A 422 lists at most this many errors, then one more item counting the rest."""
ECHO_CHARS = 200
"""An error echoes at most about this many characters of the offending input."""

# -- training control: the LR range test ----------------------------------------------------

MAX_LR_FINDER_STEPS = 10_000
"""Most steps of one LR range test: its result (every step's lr, loss and smoothed loss) is
read back and suggested on in one request, and fastai's valley rule is quadratic in steps."""
