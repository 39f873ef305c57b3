"""Drawing curves: min/max downsampling, then a matplotlib figure rendered to SVG or PNG.

Pure: numpy arrays in, bytes out; nothing here knows about HTTP. matplotlib is an optional
dependency (the ``plot`` extra). It is imported on first use, never at import time, so the
rest of the service runs without it; :func:`require` raises :class:`PlottingUnavailable`
when it is missing.

Figures are built with the object-oriented API (``matplotlib.figure.Figure``), never
``pyplot``: no global figure registry and no GUI backend, so drawing from a server's worker
threads is safe. Renders still take one process-wide lock, because matplotlib's font and
text caches are shared between threads.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from service.engine import Curve
from service.engine.types import FloatArray, IntArray

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.typing import RcKeyType

Scale = Literal["linear", "log"]
Format = Literal["svg", "png"]
Axis = Literal["lr", "momentum"]

VERSION = "1"
"""Bumped whenever a change here may change a picture (part of the plot's ETag)."""
DPI = 100
"""Pixels per inch of the figure: ``width`` and ``height`` are pixels at this resolution."""
DRAWABLE = 1e150
"""Largest magnitude drawn: beyond it matplotlib's axis limits and ticks overflow. On a log
scale values below ``1 / DRAWABLE`` are left out like zeros. Learning rates never come near
either bound; decays that underflow towards 0 (StepLR over 100,000 steps) do."""

_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # text as <text>, not glyph outlines: small, selectable SVG
    "svg.hashsalt": "lrsched",  # stable element ids: the same request draws the same bytes
    "axes.spines.top": False,
}
_RENDER_LOCK = threading.Lock()


class PlottingUnavailable(ImportError):
    """matplotlib, an optional dependency (the ``plot`` extra), is not installed."""


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a figure: values ``y`` at steps ``x``, on the ``lr`` or ``momentum`` axis.

    ``color`` indexes matplotlib's default colour cycle (``C0``, ``C1``, ...); a momentum
    line shares the colour of the lr line of the same curve and param group.
    """

    label: str
    x: IntArray
    y: FloatArray
    axis: Axis
    color: int


@dataclass(frozen=True, slots=True)
class Plot:
    """Everything one picture shows: a title, its lines, the lr axis scale and the size."""

    title: str
    series: Sequence[Series]
    scale: Scale = "linear"
    width: int = 800
    """Pixels."""
    height: int = 450
    """Pixels."""


def require() -> None:
    """Raise :class:`PlottingUnavailable` unless matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401  (only checks that the package is there)
    except ImportError as error:
        raise PlottingUnavailable(
            "plotting needs matplotlib, an optional dependency of lrsched: "
            "pip install 'lrsched[plot]'"
        ) from error


def version() -> str:
    """What the pictures depend on besides the request: this module and matplotlib."""
    require()
    import matplotlib

    return f"plot-{VERSION}/matplotlib-{matplotlib.__version__}"


def undrawable(values: FloatArray) -> str | None:
    """Why ``values`` cannot be drawn (too large for matplotlib); ``None`` when they can."""
    if values.size == 0:
        return None
    largest = float(np.max(np.abs(values)))
    if largest > DRAWABLE:
        return f"values up to {largest:.3g} cannot be drawn (at most {DRAWABLE:g} in magnitude)"
    return None


def minmax_downsample(x: IntArray, y: FloatArray, buckets: int) -> tuple[IntArray, FloatArray]:
    """At most ``2 * buckets + 2`` points of ``(x, y)`` that draw the same picture.

    The points are cut into ``buckets`` runs of consecutive points (the last may be shorter);
    of each run the smallest and the largest value are kept, in step order, plus the first
    and last point of the curve. Drawn ``buckets`` pixels wide, every pixel column still spans
    the full range of values that fall into it, so a spike one step wide stays visible (plain
    decimation, keeping every n-th point, would drop it). O(len(y)), no copy of ``y``.
    """
    n = int(y.size)
    if buckets < 1:
        raise ValueError(f"{buckets=}: expected a positive number of buckets")
    if n <= 2 * buckets + 2:
        return x, y
    size = -(-n // buckets)  # points per run, rounded up: at most `buckets` runs
    full = n // size
    runs = y[: full * size].reshape(full, size)
    offsets = np.arange(full, dtype=np.int64) * size
    lows = [offsets + np.argmin(runs, axis=1)]
    highs = [offsets + np.argmax(runs, axis=1)]
    if full * size < n:  # a shorter last run
        tail = y[full * size :]
        lows.append(np.array([full * size + int(np.argmin(tail))], dtype=np.int64))
        highs.append(np.array([full * size + int(np.argmax(tail))], dtype=np.int64))
    ends = np.array([0, n - 1], dtype=np.int64)
    keep = np.unique(np.concatenate([*lows, *highs, ends]))  # sorted: step order
    return x[keep], y[keep]


def curve_series(
    curve: Curve, x: IntArray, label: str | None, first_color: int, buckets: int
) -> list[Series]:
    """The lines of one computed curve: lr per param group, then momentum when cycled.

    ``label`` names the curve in a comparison (``None`` for a lone curve); lines are called
    ``lr``, ``lr[g]`` (several groups), ``momentum``..., prefixed by the label when given.
    Every line is downsampled to ``buckets`` buckets.
    """
    groups = int(curve.lr.shape[0])
    rows: list[tuple[Axis, FloatArray | None]] = [("lr", curve.lr), ("momentum", curve.momentum)]
    series: list[Series] = []
    for axis, values in rows:
        if values is None:
            continue
        for group in range(groups):
            name = axis if groups == 1 else f"{axis}[{group}]"
            if label is not None:
                name = label if axis == "lr" and groups == 1 else f"{label}: {name}"
            xs, ys = minmax_downsample(x, values[group], buckets)
            series.append(Series(name, xs, ys, axis, first_color + group))
    return series


def render(plot: Plot, fmt: Format) -> bytes:
    """The figure of ``plot`` as SVG or PNG bytes.

    Steps run along x, lr along the left y axis (``plot.scale``), momentum (dashed, in the
    colour of its lr line) along a right y axis that exists only when some line is momentum.
    On a log scale values below ``1 / DRAWABLE`` (zeros, underflowing decays) are left out,
    leaving gaps in the line; if no lr is left at all the axis stays linear and the title
    says so. Titles and labels are
    plain text (a ``$`` never starts mathtext). Raises ``ValueError`` for values
    :func:`undrawable` refuses.
    """
    require()
    import matplotlib

    for line in plot.series:
        problem = undrawable(line.y)
        if problem is not None:
            raise ValueError(f"{line.label}: {problem}")
    log, title = _lr_scale(plot)
    with _RENDER_LOCK, matplotlib.rc_context(_RC), warnings.catch_warnings():
        # A character the bundled font lacks is still written to the SVG as text (the
        # viewer's fonts draw it); in a PNG it becomes a box. Not worth a warning per request.
        warnings.filterwarnings("ignore", "Glyph .* missing from", UserWarning)
        figure = _figure(plot.width, plot.height)
        axes = figure.add_subplot()
        axes.set_title(_plain(title))
        axes.set_xlabel("step")
        axes.set_ylabel("learning rate")
        if log:
            axes.set_yscale("log")
        axes.grid(True, alpha=0.3)
        _draw_series(axes, plot.series, log=log)
        return _saved(figure, fmt)


def _lr_scale(plot: Plot) -> tuple[bool, str]:
    """Whether the lr axis is logarithmic, and the title. A log scale with no lr left to
    show (every value below ``1 / DRAWABLE``) falls back to linear, and the title says so."""
    lr_lines = [s for s in plot.series if s.axis == "lr"]
    if plot.scale == "log" and not any(bool(np.any(s.y >= 1 / DRAWABLE)) for s in lr_lines):
        return False, f"{plot.title} (no positive lr: linear scale)"
    return plot.scale == "log", plot.title


def _draw_series(axes: Axes, series: Sequence[Series], *, log: bool) -> None:
    """The lr lines (solid) on ``axes``, the momentum lines (dashed) on a right y axis made
    only when there are some, and a legend when there is more than one line."""
    lr_lines = [s for s in series if s.axis == "lr"]
    momentum_lines = [s for s in series if s.axis == "momentum"]
    handles = _draw(axes, lr_lines, log=log, style="-")
    top = axes
    if momentum_lines:
        top = axes.twinx()  # drawn over `axes`: the legend goes on it to stay on top
        top.set_ylabel("momentum")
        handles += _draw(top, momentum_lines, log=False, style="--")
    if len(handles) > 1:
        columns = 1 if len(handles) <= 8 else 2
        top.legend(handles=handles, fontsize="small", loc="best", ncols=columns)


@dataclass(frozen=True, slots=True)
class RangeTest:
    """An LR range test's curve: loss (raw and smoothed) against lr, and suggested lrs."""

    lr: FloatArray
    loss: FloatArray
    smoothed: FloatArray
    suggestions: Sequence[tuple[str, float]]
    """``(name, lr)`` pairs, marked on the smoothed curve."""
    width: int = 800
    height: int = 450


def render_range_test(test: RangeTest, fmt: Format) -> bytes:
    """Loss against lr on a log x axis: the raw loss faint, the smoothed loss solid, each
    suggestion a marker on the smoothed curve (SVG ids ``suggestion-<n>``). Losses that are
    not finite or past ``DRAWABLE`` in magnitude are left out (gaps), and so are steps and
    suggestions whose lr is outside ``[1 / DRAWABLE, DRAWABLE]``: the losses are whatever
    the trainers reported."""
    require()
    import matplotlib

    with _RENDER_LOCK, matplotlib.rc_context(_RC):
        figure = _figure(test.width, test.height)
        axes = figure.add_subplot()
        axes.set_title("LR range test")
        axes.set_xscale("log")
        axes.set_xlabel("learning rate")
        axes.set_ylabel("loss")
        axes.grid(True, alpha=0.3)
        lrs = np.asarray(test.lr, dtype=np.float64)
        shown = _on_log_axis(lrs)
        lrs = lrs[shown]
        raw = _drawable(np.asarray(test.loss, dtype=np.float64)[shown])
        smoothed = _drawable(np.asarray(test.smoothed, dtype=np.float64)[shown])
        axes.plot(lrs, raw, "-", color="C0", alpha=0.3, label="loss", gid="loss")
        axes.plot(lrs, smoothed, "-", color="C0", label="smoothed loss", gid="smoothed")
        for index, (name, lr) in enumerate(test.suggestions):
            if not _on_log_axis(np.float64(lr)):
                continue
            y = np.interp(np.log(lr), np.log(lrs), smoothed) if len(lrs) else np.nan
            axes.plot(
                [lr],
                [y],
                "o",
                color=f"C{index + 1}",
                label=_plain(f"{name}: {lr:.3g}"),
                gid=f"suggestion-{index}",
            )
        axes.legend(fontsize="small", loc="best")
        return _saved(figure, fmt)


def _drawable(values: FloatArray) -> FloatArray:
    """``values`` with those matplotlib cannot place (not finite, or past ``DRAWABLE`` in
    magnitude) replaced by NaN, which it leaves out."""
    return np.where(np.abs(values) <= DRAWABLE, values, np.nan)


def _on_log_axis(values: Any) -> Any:
    """Which ``values`` a log axis can place: within ``[1 / DRAWABLE, DRAWABLE]``."""
    return (values >= 1 / DRAWABLE) & (values <= DRAWABLE)


def _figure(width: int, height: int) -> Figure:
    """An empty figure ``width`` x ``height`` pixels, laid out to fit its labels."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")


def _saved(figure: Figure, fmt: Format) -> bytes:
    """``figure`` as SVG or PNG bytes; an SVG without its date, so the same figure always
    gives the same bytes (the ETag promises it)."""
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {}
    figure.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


def _draw(axes: Axes, lines: Sequence[Series], *, log: bool, style: str) -> list[Line2D]:
    """Plot ``lines`` on ``axes``; each SVG group gets the id ``<axis>-<n>`` (``lr-0``, ...)."""
    handles: list[Line2D] = []
    for index, line in enumerate(lines):
        y = np.where(line.y >= 1 / DRAWABLE, line.y, np.nan) if log else line.y
        (handle,) = axes.plot(
            line.x.astype(np.float64),
            y,
            style,
            color=f"C{line.color % 10}",
            label=_plain(line.label),
            linewidth=1.4,
            gid=f"{line.axis}-{index}",
        )
        handles.append(handle)
    return handles


def _plain(text: str) -> str:
    """``text`` shown as is: matplotlib would parse ``$...$`` as mathtext (and may fail)."""
    return text.replace("$", r"\$")
