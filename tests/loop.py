"""Run a coroutine to completion whatever event loop the calling thread already has."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_in_fresh_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coroutine)`` on a thread of its own.

    Under xdist one worker interleaves test modules, and the browser tests keep Playwright's
    event loop running in the worker's main thread for the session; ``asyncio.run`` refuses
    to start a loop there.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
