"""Write ``docs/schedules.svg``: the README's picture of three schedules, drawn by the service.

Usage::

    python -m tools.render_readme_plot                 # writes docs/schedules.svg
    python -m tools.render_readme_plot --png out.png   # the same picture as PNG

The picture is exactly what ``POST /v1/schedules/plot`` answers for :data:`BODY` (the
application is called in-process), so the README shows what a user gets. Needs the ``plot``
extra (matplotlib). The SVG is deterministic for a given matplotlib version.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.api.plot import PNG, SVG
from service.config import Settings
from service.main import create_app

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "schedules.svg"

BODY: dict[str, Any] = {
    "schedules": [
        {
            "type": "SequentialLR",
            "schedulers": [
                {"type": "LinearLR", "start_factor": 0.01, "total_iters": 100},
                {"type": "CosineAnnealingLR", "T_max": 900},
            ],
            "milestones": [100],
        },
        {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 1000, "cycle_momentum": False},
        {"type": "CosineAnnealingWarmRestarts", "T_0": 100, "T_mult": 2, "eta_min": 0.001},
    ],
    "labels": ["warmup + cosine", "one cycle", "warm restarts"],
    "lr": 0.1,
    "steps": 1000,
}
"""The ``POST /v1/schedules/plot`` body the picture shows (quoted in the README)."""


def render(accept: str) -> bytes:
    """The picture of :data:`BODY` in the media type ``accept``."""
    with TestClient(create_app(Settings(store="memory"))) as client:
        response = client.post(
            "/v1/schedules/plot",
            json=BODY,
            params={"scale": "linear", "width": 900, "height": 420},
            headers={"accept": accept},
        )
    assert response.status_code == 200, response.text
    return response.content


def main(argv: list[str] | None = None) -> None:
    """Write the SVG (and, if asked, a PNG) of :data:`BODY`."""
    parser = argparse.ArgumentParser(prog="python -m tools.render_readme_plot", description=__doc__)
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where the SVG goes")
    parser.add_argument("--png", type=Path, help="also write the picture as PNG here")
    args = parser.parse_args(argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(render(SVG))
    print(f"wrote {args.output}")
    if args.png:
        args.png.write_bytes(render(PNG))
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
