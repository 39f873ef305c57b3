"""glibc's allocator: tuned for curve buffers at start, trimmed after bursts.

Both are no-ops where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import os

_ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": (-3, 32 << 20), "MALLOC_TOP_PAD_": (-2, 64 << 20)}
"""glibc ``mallopt`` parameters (number, value) by the environment variable that sets them."""


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def tune_allocator() -> None:
    """Keep freed curve buffers mapped instead of returning them to the kernel at once.

    By default glibc hands big freed blocks back to the kernel, so the next request's
    arrays are fresh pages, and touching them costs a page fault per 4 KiB (about 2 ms for
    an 8 MB curve here: more than computing it). Blocks under 32 MiB come from the heap,
    and 64 MiB of freed heap stays mapped for reuse. Set in this process (``mallopt``) and,
    through the environment glibc reads at start, in spawned workers; variables already in
    the environment win. What a burst leaves mapped beyond that (every thread's arena keeps
    its freed blocks) is given back by :func:`trim` once curve work goes idle.
    """
    libc = _libc()
    if libc is None:
        return
    for variable, (parameter, value) in _ALLOCATOR.items():
        if variable not in os.environ:
            os.environ[variable] = str(value)
            libc.mallopt(parameter, value)


def trim() -> bool:
    """Give the free memory of every arena back to the kernel (``malloc_trim(0)``).

    Returns whether glibc released anything (False where it is not glibc).
    """
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))
