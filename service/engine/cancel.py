"""Cooperative cancellation of a computation, checked between blocks of work.

The engine evaluates big curves in blocks (expression chunks, stepped blocks, closed-form
pieces). A caller that may lose interest (the client got a 504, or went away) runs the
computation inside :func:`cancellable` with a check; :func:`checkpoint`, called at every block
boundary, raises :class:`Cancelled` once the check says so. Without a check, checkpoints cost a
context-variable lookup and do nothing. Pure: no I/O, no threads; the check is any callable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Check = Callable[[], bool]
"""Returns True once the computation should stop."""

_CHECK: ContextVar[Check | None] = ContextVar("lrsched_cancel_check", default=None)


class Cancelled(Exception):
    """The computation was stopped at a block boundary: nobody waits for its result."""


@contextmanager
def cancellable(check: Check) -> Iterator[None]:
    """Run the block with ``check`` consulted at every :func:`checkpoint` inside it."""
    token = _CHECK.set(check)
    try:
        yield
    finally:
        _CHECK.reset(token)


def checkpoint() -> None:
    """Raise :class:`Cancelled` if the current computation's check says to stop."""
    check = _CHECK.get()
    if check is not None and check():
        raise Cancelled
