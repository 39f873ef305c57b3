"""Training control shared by every rank: early stopping and the LR range test.

``RemoteEarlyStopping`` and ``RemoteLRFinder`` report this rank's value and wait until every
rank has reported it, so all ranks get the same decision at the same step (no rank stops
while another trains on, which hangs a DDP job). Neither needs torch; with torch installed
the rank defaults to ``torch.distributed.get_rank()``.
"""

from __future__ import annotations

from typing import Any, Unpack

from lrsched_client._waiting import Polling, PollingOptions
from lrsched_client.finder import LrFinder
from lrsched_client.models import FinderResult, FinderStep, Report
from lrsched_client.session import Session

__all__ = ["RemoteEarlyStopping", "RemoteLRFinder"]


class RemoteEarlyStopping(Polling):
    """Early stopping decided by a session (``Client.create_session(early_stopping=...)``).

    Call :meth:`step` once per epoch on every rank with its validation metric; it returns
    whether to stop, the same on every rank, decided on the ranks' reduced metric.

    Args:
        session: the session; its next epoch is read at construction.
        rank: this process's rank (default: torch.distributed's, else 0).
        wait_timeout: seconds to wait for the other ranks (then NotDecidedError).
        poll_interval, max_poll: the backoff between polls (seconds).
    """

    def __init__(
        self,
        session: Session,
        rank: int | None = None,
        **polling: Unpack[PollingOptions],
    ) -> None:
        super().__init__(rank, **polling)
        self.session = session
        self.epoch = session.state().epoch
        """The next epoch to report."""
        self.should_stop = False
        """Whether the last decision said stop."""
        self.last: Report | None = None
        """The last decided answer (``best_epoch``, ``best_metric``)."""

    def step(self, metric: float | Any) -> bool:
        """Report ``metric`` for the next epoch, wait for its decision; whether to stop."""
        value, rank, epoch = float(metric), self._rank(), self.epoch
        self.last = self._decided(lambda: self.session.report(epoch, value, rank), epoch)
        self.epoch += 1
        self.should_stop = self.last.stop
        return self.should_stop


class RemoteLRFinder(Polling):
    """An LR range test run by every rank of a job (``Client.create_lr_finder(...)``).

    Construction reads the next step and its lr. Train each step with :attr:`lr` (or pass
    ``optimizer``, now or by setting :attr:`optimizer` and calling :meth:`apply_lr`: its
    param groups are set for you), then call :meth:`step` with the loss: it returns whether
    the test is over (diverged, or ``num_steps`` reached), the same on every rank. Then
    :meth:`result` holds the curve and each library's suggestion.

    Args:
        finder: the range test; its next step and lr are read at construction.
        optimizer: the optimizer whose param groups get each step's lr (optional).
        rank: this process's rank (default: torch.distributed's, else 0).
        wait_timeout, poll_interval, max_poll: the waiting and backoff of
            :class:`RemoteEarlyStopping`.
    """

    def __init__(
        self,
        finder: LrFinder,
        optimizer: Any | None = None,
        rank: int | None = None,
        **polling: Unpack[PollingOptions],
    ) -> None:
        super().__init__(rank, **polling)
        self.finder = finder
        self.optimizer = optimizer
        state = finder.state()
        self.step_index = state.step
        """The next step to report."""
        self.stopped = state.stop
        self.last: FinderStep | None = None
        self.lr = state.lr
        """The lr to train the next step with (set on ``optimizer``'s groups, if given)."""
        self._set_lr(state.lr)

    def step(self, loss: float | Any) -> bool:
        """Report this rank's loss of the step just trained; set the next lr; whether over."""
        value, rank, index = float(loss), self._rank(), self.step_index
        self.last = self._decided(lambda: self.finder.report(index, value, rank), index)
        self.step_index += 1
        self.stopped = self.last.stop
        self._set_lr(self.last.lr)
        return self.stopped

    def result(self) -> FinderResult:
        """The curve and the suggestions (fastai, Lightning, torch-lr-finder)."""
        return self.finder.result()

    def _set_lr(self, lr: float) -> None:
        self.lr = lr
        self.apply_lr()

    def apply_lr(self) -> None:
        """Set :attr:`lr` on every param group of :attr:`optimizer` (if any)."""
        lr = self.lr
        if self.optimizer is None:
            return
        for group in self.optimizer.param_groups:
            current = group["lr"]
            if hasattr(current, "fill_"):  # a tensor lr is filled in place
                current.fill_(lr)
            else:
                group["lr"] = lr
