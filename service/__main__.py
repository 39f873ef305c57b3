"""``python -m service``: serve ``service.main:app`` with uvicorn using :class:`Settings`.

With several workers, Prometheus samples of every worker go to one directory (a fresh
temporary one unless ``PROMETHEUS_MULTIPROC_DIR`` is set), so ``/metrics`` on any worker
reports the whole server.

glibc's allocator is tuned for curve buffers (see :mod:`service.allocator`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile

import uvicorn

from service.allocator import tune_allocator
from service.config import get_settings
from service.metrics import MULTIPROCESS_ENV
from service.server import PROTOCOL


def main(argv: list[str] | None = None) -> None:
    """Parse the few command-line overrides and run uvicorn."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--workers", type=int, default=settings.workers)
    args = parser.parse_args(argv)
    tune_allocator()
    if args.workers > 1:
        _prepare_multiprocess_metrics()
    uvicorn.run(
        "service.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        limit_concurrency=settings.limit_concurrency,
        http=PROTOCOL,  # head timeout, head size limit, room for /healthz (service.server)
        timeout_keep_alive=settings.keep_alive_seconds,
        timeout_graceful_shutdown=int(settings.timeout_graceful_shutdown),
        access_log=False,  # the app logs every request itself, as JSON with its request id
        server_header=False,
        log_level=settings.log_level.lower(),
    )


def _prepare_multiprocess_metrics() -> None:
    """Point every worker at one empty directory for its metric samples."""
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    else:
        os.environ[MULTIPROCESS_ENV] = tempfile.mkdtemp(prefix="lrsched-metrics-")


if __name__ == "__main__":
    main()
