"""Waiting for the other ranks: report again with backoff until the answer is decided."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Protocol, TypedDict, TypeVar

from lrsched_client.errors import NotDecidedError


class _Answer(Protocol):
    @property
    def decided(self) -> bool: ...

    @property
    def waiting_for(self) -> tuple[int, ...]: ...


A = TypeVar("A", bound=_Answer)


def until_decided(
    send: Callable[[], A],
    index: int,
    *,
    wait_timeout: float,
    poll_interval: float,
    max_poll: float,
) -> A:
    """``send()`` (an idempotent report) until its answer is decided.

    Polls with jittered exponential backoff from ``poll_interval`` up to ``max_poll``
    seconds; :class:`NotDecidedError` after ``wait_timeout`` seconds.
    """
    answer = send()
    deadline = time.monotonic() + wait_timeout
    delay = poll_interval
    while not answer.decided:
        if time.monotonic() >= deadline:
            raise NotDecidedError(
                f"epoch {index} still waits for ranks {list(answer.waiting_for)} "
                f"after {wait_timeout} s",
                epoch=index,
                waiting_for=list(answer.waiting_for),
            )
        time.sleep(random.uniform(delay / 2, delay))
        delay = min(max_poll, delay * 2)
        answer = send()
    return answer


WAIT_TIMEOUT = 600.0
"""Seconds a remote adapter waits for the other ranks by default (then NotDecidedError)."""
POLL_INTERVAL = 0.02
"""The first delay between polls by default (seconds)."""
MAX_POLL = 1.0
"""The longest delay between polls by default (seconds)."""


class PollingOptions(TypedDict, total=False):
    """The backoff keywords every remote adapter takes (see :class:`Polling`), so that a
    subclass declares ``**polling: Unpack[PollingOptions]`` instead of repeating them."""

    wait_timeout: float
    poll_interval: float
    max_poll: float


class Polling:
    """Waiting for a decision the way every remote adapter does: this rank and the backoff.

    Args:
        rank: this process's rank (None: torch.distributed's when initialised, else 0).
        wait_timeout: seconds to wait for the other ranks (then NotDecidedError).
        poll_interval: the first delay between polls (seconds); doubles up to ``max_poll``.
        max_poll: the longest delay between polls (seconds).
    """

    def __init__(
        self,
        rank: int | None = None,
        *,
        wait_timeout: float = WAIT_TIMEOUT,
        poll_interval: float = POLL_INTERVAL,
        max_poll: float = MAX_POLL,
    ) -> None:
        self.rank = rank
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self.max_poll = max_poll

    def _rank(self) -> int:
        return current_rank(self.rank)

    def _decided(self, send: Callable[[], A], index: int) -> A:
        return until_decided(
            send,
            index,
            wait_timeout=self.wait_timeout,
            poll_interval=self.poll_interval,
            max_poll=self.max_poll,
        )


def current_rank(rank: int | None) -> int:
    """``rank``, or ``torch.distributed``'s rank when initialised (torch optional), or 0."""
    if rank is not None:
        return rank
    try:
        import torch.distributed as distributed
    except ImportError:
        return 0
    if distributed.is_available() and distributed.is_initialized():
        return int(distributed.get_rank())
    return 0
