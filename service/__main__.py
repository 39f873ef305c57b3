"""``python -m service``: serve ``service.main:app`` with uvicorn using :class:`Settings`.

With several workers, Prometheus samples of every worker go to one directory (a fresh
temporary one unless ``PROMETHEUS_MULTIPROC_DIR`` is set), so ``/metrics`` on any worker
reports the whole server.

glibc's allocator is tuned for curve buffers (see :func:`tune_allocator`).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import tempfile

import uvicorn

from service.config import get_settings
from service.metrics import MULTIPROCESS_ENV


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
        timeout_graceful_shutdown=int(settings.timeout_graceful_shutdown),
        access_log=False,  # the app logs every request itself, as JSON with its request id
        server_header=False,
        log_level=settings.log_level.lower(),
    )


_ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": (-3, 32 << 20), "MALLOC_TOP_PAD_": (-2, 64 << 20)}
"""glibc ``mallopt`` parameters (number, value) by the environment variable that sets them."""


def tune_allocator() -> None:
    """Keep freed curve buffers mapped instead of returning them to the kernel at once.

    By default glibc hands big freed blocks back to the kernel, so the next request's
    arrays are fresh pages, and touching them costs a page fault per 4 KiB (about 2 ms for
    an 8 MB curve here: more than computing it). Blocks under 32 MiB come from the heap,
    and 64 MiB of freed heap stays mapped for reuse. Set in this process (``mallopt``) and,
    through the environment glibc reads at start, in spawned workers; variables already in
    the environment win. Not glibc: nothing happens.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    for variable, (parameter, value) in _ALLOCATOR.items():
        if variable not in os.environ:
            os.environ[variable] = str(value)
            libc.mallopt(parameter, value)


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
