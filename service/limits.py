"""Fixed limits of the service, in one place: a reader asking "why was this refused?" looks here.

Limits an operator tunes are :class:`service.config.Settings` (``LRSCHED_*``); the limits below
are fixed because they protect the process itself. Keep each subsystem's limits in its own
block.
"""

from __future__ import annotations

# --- Connections and curve admission (service/server.py, service/curve_pool.py) -------------

MAX_HEAD_BYTES = 64 * 1024
"""Most bytes of request line and headers one request may send, counted as on the wire (each
header's name and value plus ``": "`` and CRLF, the request line's method, version and CRLF);
more: 431 and the connection is closed (uvicorn's httptools protocol has no limit of its
own)."""
MAX_HEADERS = 256
"""Most header fields one request may send; more: 431 and the connection is closed, as past
``MAX_HEAD_BYTES`` (each header costs uvicorn about a microsecond on the event loop, empty or
not)."""

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

# --- Request fields (schemas/fields.py and the models using its types) --------------------

MAX_GROUPS = 1024
"""Most param groups a request may describe (an lr list, a per-group option, a state_dict's
``min_lrs``)."""
MAX_INT = 10**15
"""Largest magnitude accepted for integer options and step counts (steps, periods,
milestones)."""

# --- Schedule trees (schemas/schedules.py, schemas/families/composition.py) ----------------

MAX_CHILDREN = 64
"""Most children one composite may hold (and milestones of a SequentialLR, boundaries of a
join)."""
MAX_SEGMENTS = 64
"""Most segments of one ``sequence``."""
MAX_SCHEDULERS = 256
"""Most schedulers one spec may hold in all (bounds the cost of stepping composites)."""
MAX_SCHEDULE_DEPTH = 8
"""Deepest nesting of composites."""

# --- Schedule options (schemas/) -----------------------------------------------------------

MAX_MILESTONES = 10_000
"""Most milestones, boundaries, decay steps or scales one schedule may list."""
MAX_WORD_CHARS = 64
"""Longest word option (CyclicLR ``mode``, ``scale_mode``: names of a few letters)."""
MAX_NAME_CHARS = 200
"""Longest ``name`` of a Keras schedule (accepted and ignored)."""
MAX_REAL = 1e300
"""Largest magnitude of a real option of the other libraries' schedules (``schemas/families``)."""
MAX_MULTIPLIER = 1_000_000
"""Largest growth factor of restart periods (PyTorch ``T_mult``, Keras ``t_mul``, timm
``cycle_mul``)."""
MAX_SGDR_CYCLES = 1000
"""Most cycles of one ``optax.sgdr``."""
MAX_NOISE_PCT = 1e6
"""Largest timm ``noise_pct``."""
MAX_NOISE_SEED = 2**62
"""Largest timm ``noise_seed`` (each step's seed, ``noise_seed + step``, stays an int64)."""

# --- Request bodies ------------------------------------------------------------------------
# The structural gate (service/api/bodies.py) checks these on the raw bytes of every JSON
# body before anything parses or validates it, so parsing and validation stay bounded: the
# costliest body the gate admits parses and validates in tens of milliseconds, which keeps
# the event loop (and /healthz) responsive. Bodies over LRSCHED_MAX_BODY_BYTES are 413 first.

BODY_MAX_DEPTH = 32
"""Deepest nesting of JSON objects and arrays (a composite of the deepest nesting allowed,
``MAX_SCHEDULE_DEPTH``, needs about 20 levels). Deeper: 422 at the container."""
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

# --- Training control (schemas/plateau.py, schemas/lr_finder.py) --------------------------

MAX_ACCUMULATION_SIZE = 1_000_000
"""Most metrics ReduceLROnPlateau may average before each decision (``accumulation_size``)."""
MAX_LR_FINDER_STEPS = 10_000
"""Most steps of one LR range test: its result (every step's lr, loss and smoothed loss) is
read back and suggested on in one request, and fastai's valley rule is quadratic in steps."""

# === Curve pipeline limits (moved here from the modules that apply them) ===============

# --- Curves computed on the event loop (service/api/schedules.py) --------------------

INLINE_VALUES = 1 << 15
"""See ``INLINE_TYPES``."""
INLINE_TYPES = frozenset({"OneCycleLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts"})
"""Curves of these schedulers with at most ``INLINE_VALUES`` values are built and computed
on the event loop (tens of microseconds: fast closed forms, no expressions); everything
else in the thread pool, since expressions and compositions can take seconds and the loop
(and with it every other request and the time limit) must stay responsive."""

# --- Plots (service/api/plot.py) -----------------------------------------------------

MAX_CURVES = 8
"""Most schedules one comparison may overlay."""
MAX_LINES = 32
"""Most lr lines in one picture (curves x param groups): beyond, a legend is unreadable."""
MAX_LABEL_CHARS = 80
"""Longest legend entry of a plotted curve."""
MIN_PLOT_WIDTH = 200
"""Narrowest picture, in pixels (a schedule's or an LR range test's)."""
MAX_PLOT_WIDTH = 2400
"""Widest picture, in pixels."""
MIN_PLOT_HEIGHT = 150
"""Lowest picture, in pixels."""
MAX_PLOT_HEIGHT = 1600
"""Highest picture, in pixels."""

# --- Sessions (schemas/sessions.py, service/api/sessions.py) -------------------------

SESSION_ID_MAX_LENGTH = 64
"""Longest session id in a path (ids are 22 characters; longer: 422 naming the path)."""
MAX_RANKS = 4096
"""Most ranks (``world_size``) one session may have, ranks ``0..MAX_RANKS - 1``; the limit
in force is ``LRSCHED_MAX_WORLD_SIZE``, at most this."""
MAX_SESSION_TTL_SECONDS = 366 * 86400
"""Longest lifetime of a session after its last write; the limit in force is
``LRSCHED_MAX_TTL_SECONDS``, at most this."""
MAX_WARMUP_STEPS = 10_000_000
"""Most epochs of linear warmup before a session's plateau rule applies."""
MAX_HISTORY_ROWS = 10_000
"""Most rows one page of a session's history returns."""

# --- Curve work budgets (service/engine: check_costs) --------------------------------

STEPPING_BUDGET = 8
"""Stepped schedules may evaluate at most this many times ``max_values`` per-step maps."""
NESTED_STEP_LIMIT = 80_000_000
"""Most per-step evaluations (leaves x steps) one PyTorch scheduler nested in a family or a
composition may be stepped (``service/engine/families/children.py``)."""
EXPRESSION_BUDGET = 1_500_000_000
"""Most expression work one request may ask for, in the units of :meth:`Expression.cost`
(:func:`expression_cost`), about 2 ns each here at worst: the costliest requests it allows
(remainders of huge numbers, subnormal powers and exponentials, sines of huge arguments, at the
most steps or groups allowed) take 2-2.6 s on this machine, well inside the request time limit
(30 s by default, 15 s in the tests of the costliest requests). Ordinary expressions cost less
than their units say (0.2-1.5 ns each) and fit at the most values a request may ask for:
10,000,000 steps of a 10-operation lambda cost 124,000,000 units (0.8 s with the rest of the
request), of ``0.95 ** epoch`` 826,000,000 (1.2 s), of ``0.1 ** (epoch // 30)`` 1,000,000,000
(1.1 s). Refused: 64 chained sin/cos lambdas of 185 nodes over 1,250,000 steps (50 s), 1,024
maximal lambdas even at one step (9 s of numpy's per-call overhead)."""

# --- Expressions (service/engine/expressions.py, _expression_compiler.py) ------------

MAX_LENGTH = 1000
"""Longest expression source, in characters."""
MAX_NODES = 200
"""Most syntax nodes in one expression."""
MAX_DEPTH = 32
"""Deepest nesting of one expression's syntax tree (not ``MAX_SCHEDULE_DEPTH``, the nesting
of composite schedules)."""
MAX_LITERAL = 1e300
"""Largest number literal in an expression."""
MAX_EXPONENT = 1024
"""Largest constant exponent of an integer power in an expression."""
MAX_ARGUMENTS = 200
"""Most arguments of one call in an expression."""
MAX_NDIGITS = 400
"""``round(x, n)`` is the same for every ``n`` beyond this magnitude (floats are below 1e309):
larger ones are clamped, so Python never builds ``10 ** n`` of a huge ``n``."""

# --- Lambdas (service/engine/lambdas.py) ---------------------------------------------

PREFIX_CHECK_LIMIT = 1 << 24
"""Up to this step, arguments PyTorch passes before the requested ones are checked too."""

# --- Families (service/engine/families/) ---------------------------------------------

MAX_NOISE_DRAWS = 4096
"""Most normal draws tried per step for timm's noise before giving up (timm would loop on)."""

# --- Curve cache (service/cache.py) --------------------------------------------------

CACHE_ALIASES = 4096
"""Most raw requests remembered by ``CurveCache.remember`` (least recently used go)."""
CACHE_ALIAS_BYTES = 4096
"""Largest raw request remembered (bigger ones are validated every time)."""

# --- Remembered cosines (service/engine/fastmath.py) -----------------------------------

COSINES_KEPT = 256
"""Short runs of cosines remembered by the engine for the next request with the same
progression (each under ``fastmath.TABLE_MIN`` values: at most 4 MiB in all)."""


# --- Session store threads (service/stores/base.py) ------------------------------------

STORE_THREADS = 16
"""Threads per worker for blocking session-store calls (SQLite, memory): a pool of their own,
apart from the one FastAPI runs synchronous routes on, so reports never wait behind those."""
