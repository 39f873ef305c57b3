"""Reporting a rank's metric to a plateau session and waiting for the epoch's decision:
shared by the framework callbacks (PyTorch ``RemotePlateau``, Keras ``RemotePlateau``)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from lrsched_client.errors import NotDecidedError
from lrsched_client.models import Report
from lrsched_client.session import Session


@dataclass(frozen=True, slots=True)
class Wait:
    """How long to wait for the other ranks, and how often to ask.

    Attributes:
        timeout: seconds to wait before :class:`NotDecidedError`.
        poll_interval: the first delay between polls (seconds); doubles up to ``max_poll``.
        max_poll: the longest delay between polls (seconds).
    """

    timeout: float = 600.0
    poll_interval: float = 0.02
    max_poll: float = 1.0


def decide(session: Session, epoch: int, metric: float, rank: int, wait: Wait) -> Report:
    """Report ``metric`` of ``rank`` for ``epoch`` and poll (with jittered backoff) until
    every rank has reported it; the decided report. Reports are idempotent by
    ``(epoch, rank)``, so polling by reporting again is safe."""
    report = session.report(epoch, metric, rank)
    deadline = time.monotonic() + wait.timeout
    delay = wait.poll_interval
    while not report.decided:
        if time.monotonic() >= deadline:
            raise NotDecidedError(
                f"epoch {epoch} still waits for ranks {list(report.waiting_for)} "
                f"after {wait.timeout} s",
                epoch=epoch,
                waiting_for=list(report.waiting_for),
            )
        time.sleep(random.uniform(delay / 2, delay))
        delay = min(wait.max_poll, delay * 2)
        report = session.report(epoch, metric, rank)
    return report
