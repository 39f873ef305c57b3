"""``python -m service``: serve ``service.main:app`` with uvicorn using :class:`Settings`."""

from __future__ import annotations

import argparse

import uvicorn

from service.config import get_settings


def main(argv: list[str] | None = None) -> None:
    """Parse the few command-line overrides and run uvicorn."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--workers", type=int, default=settings.workers)
    args = parser.parse_args(argv)
    uvicorn.run(
        "service.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
        log_level="info",
    )


if __name__ == "__main__":
    main()
