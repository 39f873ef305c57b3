"""tools/render_readme_plot.py: the README's picture is the plot endpoint's answer."""

from __future__ import annotations

import re

from service.api import plot
from tools.render_readme_plot import OUTPUT, render


def test_readme_picture_overlays_three_schedules() -> None:
    svg = render(plot.SVG)
    assert re.findall(rb'<g id="(lr-\d+)"', svg) == [b"lr-0", b"lr-1", b"lr-2"]
    assert b">warmup + cosine vs one cycle vs warm restarts</text>" in svg


def test_readme_picture_is_committed() -> None:
    committed = OUTPUT.read_bytes()
    assert committed.startswith(b"<?xml") and committed.count(b'<g id="lr-') == 3
