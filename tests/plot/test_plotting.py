"""service.plotting: min/max downsampling keeps extremes; figures render to SVG and PNG."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from service import plotting
from service.engine import Curve

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_downsampling_keeps_a_one_step_spike_in_a_million_points() -> None:
    x = np.arange(1_000_000, dtype=np.int64)
    y = np.full(x.size, 0.01)
    y[123_457] = 1.0
    xs, ys = plotting.minmax_downsample(x, y, 800)
    assert xs.size <= 2 * 800 + 2
    assert ys.max() == 1.0
    assert xs[np.argmax(ys)] == 123_457


def test_downsampling_keeps_a_one_step_dip_and_both_ends() -> None:
    x = np.arange(10, 1_000_010, dtype=np.int64)
    y = np.linspace(1.0, 2.0, x.size)
    y[777_777] = -5.0
    xs, ys = plotting.minmax_downsample(x, y, 1000)
    assert ys.min() == -5.0 and xs[np.argmin(ys)] == 10 + 777_777
    assert (xs[0], ys[0]) == (10, 1.0)
    assert (xs[-1], ys[-1]) == (1_000_009, 2.0)


def test_downsampled_points_are_in_step_order_and_on_the_curve() -> None:
    rng = np.random.default_rng(8)
    x = np.arange(0, 3 * 100_003, 3, dtype=np.int64)  # a strided range, not a multiple of 700
    y = rng.standard_normal(x.size)
    xs, ys = plotting.minmax_downsample(x, y, 700)
    assert xs.size <= 2 * 700 + 2
    assert np.all(np.diff(xs) > 0)
    np.testing.assert_array_equal(ys, y[xs // 3])
    # Every bucket of consecutive points still spans its full range of values.
    assert ys.max() == y.max() and ys.min() == y.min()


def test_short_curves_are_not_downsampled() -> None:
    x = np.arange(50, dtype=np.int64)
    y = np.sin(x.astype(np.float64))
    xs, ys = plotting.minmax_downsample(x, y, 25)
    assert xs is x and ys is y


def test_downsampling_needs_a_bucket() -> None:
    with pytest.raises(ValueError, match="buckets=0"):
        plotting.minmax_downsample(np.arange(5, dtype=np.int64), np.zeros(5), 0)


def test_curve_series_are_lr_per_group_then_momentum_sharing_colours() -> None:
    n = 10_000
    curve = Curve(lr=np.ones((2, n)), momentum=np.full((2, n), 0.9))
    series = plotting.curve_series(curve, np.arange(n, dtype=np.int64), None, 0, 100)
    assert [(s.label, s.axis, s.color) for s in series] == [
        ("lr[0]", "lr", 0),
        ("lr[1]", "lr", 1),
        ("momentum[0]", "momentum", 0),
        ("momentum[1]", "momentum", 1),
    ]
    assert all(s.x.size <= 202 and s.x.size == s.y.size for s in series)
    labelled = plotting.curve_series(
        Curve(np.ones((1, 5)), None), np.arange(5, dtype=np.int64), "warmup", 3, 100
    )
    assert [(s.label, s.color) for s in labelled] == [("warmup", 3)]


def _plot(y: list[float], scale: plotting.Scale = "linear") -> plotting.Plot:
    x = np.arange(len(y), dtype=np.int64)
    return plotting.Plot("StepLR", [plotting.Series("lr", x, np.array(y), "lr", 0)], scale)


def test_svg_and_png_have_their_magic_bytes() -> None:
    svg = plotting.render(_plot([0.1, 0.1, 0.01]), "svg")
    assert svg.startswith(b"<?xml") and b"<svg" in svg[:500]
    assert b"StepLR" in svg and b'id="lr-0"' in svg
    assert plotting.render(_plot([0.1, 0.1, 0.01]), "png").startswith(PNG_MAGIC)


def test_rendering_is_deterministic() -> None:
    assert plotting.render(_plot([1.0, 0.5, 0.25]), "svg") == plotting.render(
        _plot([1.0, 0.5, 0.25]), "svg"
    )


def test_log_scale_leaves_out_zeros_without_warnings() -> None:
    svg = plotting.render(_plot([0.1, 0.0, 0.01, 0.0, 0.001], "log"), "svg")
    assert b"StepLR" in svg and b"(no positive lr" not in svg


def test_log_scale_without_any_positive_lr_falls_back_to_linear_and_says_so() -> None:
    svg = plotting.render(_plot([0.0, 0.0, 0.0], "log"), "svg")
    assert b"StepLR (no positive lr: linear scale)" in svg


def test_empty_curve_draws_empty_axes() -> None:
    assert plotting.render(_plot([], "log"), "svg").startswith(b"<?xml")


def test_missing_matplotlib_raises_plotting_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(plotting.PlottingUnavailable, match=r"pip install 'lrsched\[plot\]'"):
        plotting.render(_plot([0.1]), "svg")


def test_values_matplotlib_cannot_draw_are_refused_with_a_reason() -> None:
    assert plotting.undrawable(np.array([0.0, 1e150, 5e-324])) is None
    assert "at most 1e+150" in str(plotting.undrawable(np.array([0.1, -1e151])))
    assert plotting.undrawable(np.array([])) is None
    with pytest.raises(ValueError, match="cannot be drawn"):
        plotting.render(_plot([0.1, 1e300]), "svg")


def test_log_scale_leaves_out_values_that_underflow() -> None:
    decay = [0.1**k for k in range(0, 330, 10)]  # down to 1e-320 (subnormal), then 0
    svg = plotting.render(_plot([*decay, 0.0], "log"), "svg")
    assert b"(no positive lr" not in svg
    only_tiny = plotting.render(_plot([1e-200, 5e-324], "log"), "svg")
    assert b"(no positive lr: linear scale)" in only_tiny


def test_dollars_in_titles_and_labels_are_not_mathtext() -> None:
    x = np.arange(3, dtype=np.int64)
    line = plotting.Series(r"$\undefined$", x, np.ones(3), "lr", 0)
    svg = plotting.render(plotting.Plot(r"a $\frac$ b", [line, line]), "svg")
    assert rb"a $\frac$ b" in svg and rb"$\undefined$" in svg
