"""The playground page at ``/``: static HTML, CSS and one script, served by the app itself.

No build step, no CDN, no external fonts: ``service/static/`` is served as is under
``/static/``. The page reads the examples from ``/openapi.json`` and draws with
``POST /v1/schedules/plot``; it is a client of the public API like any other.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
"""The page's files: ``index.html``, ``playground.js``, ``playground.css``."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
"""Everything from this origin only; inline styles are allowed for matplotlib's SVG."""

router = APIRouter(include_in_schema=False)


@router.get("/")
def playground() -> FileResponse:
    """The playground page."""
    return FileResponse(
        STATIC / "index.html",
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY},
    )


def mount_playground(app: FastAPI) -> None:
    """Serve the playground at ``/`` and its assets under ``/static/``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
