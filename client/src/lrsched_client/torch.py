"""PyTorch adapters: ``RemoteLR`` (any scheduler the service computes) and ``RemotePlateau``.

Import this module explicitly (``from lrsched_client.torch import RemoteLR``); it needs
torch, which ``import lrsched_client`` never imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Unpack

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrsched_client._waiting import Polling, PollingOptions
from lrsched_client.client import Client
from lrsched_client.models import Report
from lrsched_client.session import Session

__all__ = ["RemoteLR", "RemotePlateau"]

_NOT_STATE = frozenset({"optimizer", "_client", "_window"})
"""RemoteLR attributes that are not its state: the optimizer, the client, the fetched values."""


@dataclass(frozen=True, slots=True)
class _Window:
    """Fetched values for steps ``start .. start + len(lr[0]) - 1``, one row per group."""

    start: int
    lr: list[list[float]]
    momentum: list[list[float]] | None

    def __contains__(self, step: int) -> bool:
        return self.start <= step < self.start + len(self.lr[0])

    def lr_at(self, step: int) -> list[float]:
        """Every group's lr at ``step``."""
        return [row[step - self.start] for row in self.lr]

    def momentum_at(self, step: int) -> list[float] | None:
        """Every group's momentum at ``step``; None if the schedule does not cycle it."""
        if self.momentum is None:
            return None
        return [row[step - self.start] for row in self.momentum]


class RemoteLR(LRScheduler):
    """A PyTorch LR scheduler whose values come from the lrsched service.

    Behaves like the scheduler ``spec`` names (``torch.optim.lr_scheduler.<type>``): the
    constructor sets the step-0 lr, each :meth:`step` moves one step on, ``last_epoch`` is
    the current step, :meth:`get_last_lr` the current lrs. Where the schedule cycles
    momentum (CyclicLR, OneCycleLR), ``momentum`` (SGD) or ``betas[0]`` (Adam-style) is
    set too. Values are fetched ``chunk`` steps at a time as JSON, which carries the lr
    and the momentum in one answer and float64 exactly, so there is no request per step;
    resuming at step k (:meth:`load_state_dict`) fetches from k on, never the past.

    The lr sent to the service is every param group's ``initial_lr`` (set from ``lr`` at
    construction when absent, as PyTorch does). The constructor also asks for the value at
    ``total_steps``, so a spec that PyTorch would reject at any step up to there fails now
    (``ValidationError``), not hours into training.

    Args:
        optimizer: the wrapped optimizer.
        spec: the scheduler spec, e.g. ``{"type": "OneCycleLR", "max_lr": 0.1,
            "total_steps": 10_000}``.
        total_steps: how many times :meth:`step` will be called (steps, not epochs); the
            service computes the values of steps ``0..total_steps``.
        client: the client to fetch with; default a short-lived ``Client()`` per fetch,
            configured by ``LRSCHED_URL`` / ``LRSCHED_API_KEY``.
        chunk: steps fetched per request.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        spec: Mapping[str, Any],
        total_steps: int,
        client: Client | None = None,
        chunk: int = 4096,
    ) -> None:
        if total_steps < 0:
            raise ValueError(f"total_steps={total_steps}: expected an integer >= 0")
        if chunk < 1:
            raise ValueError(f"chunk={chunk}: expected a positive integer")
        self.spec = dict(spec)
        self.total_steps = total_steps
        self.chunk = chunk
        self._client = client
        self._window: _Window | None = None
        super().__init__(optimizer)
        if self.total_steps >= self.chunk:
            self._fetch(self.total_steps)  # the service checks steps 0..total_steps

    def get_lr(self) -> list[float | torch.Tensor]:
        """The lr of every param group at step ``last_epoch``."""
        return list(self._window_at(self.last_epoch).lr_at(self.last_epoch))

    def step(self, epoch: int | None = None) -> None:
        """Move to the next step: set every group's lr (and momentum, where cycled)."""
        super().step(epoch)
        self._set_momentum()

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state (step, base lrs, spec); no client, no fetched values."""
        return {key: value for key, value in self.__dict__.items() if key not in _NOT_STATE}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from ``state_dict`` at its step: fetch from there and set the values.

        Setting the lr (and momentum) of that step on the optimizer again is harmless
        after ``optimizer.load_state_dict`` and makes the resume right without it.
        """
        self.__dict__.update({k: v for k, v in state_dict.items() if k not in _NOT_STATE})
        self._window = None
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            _set_lr(group, float(lr))
        self._last_lr = [_copy(group["lr"]) for group in self.optimizer.param_groups]
        self._set_momentum()

    def _window_at(self, step: int) -> _Window:
        if not 0 <= step <= self.total_steps:
            raise ValueError(
                f"step {step} is outside this RemoteLR's schedule: it was built for "
                f"total_steps={self.total_steps} (steps 0..{self.total_steps})"
            )
        window = self._window
        if window is None or step not in window:
            window = self._window = self._fetch(step)
        return window

    def _fetch(self, start: int) -> _Window:
        stop = min(start + self.chunk, self.total_steps + 1)
        lrs = [float(lr) for lr in self.base_lrs]
        if self._client is not None:
            document = self._client.curve_json(self.spec, lrs, stop, start=start)
        else:
            with Client() as client:
                document = client.curve_json(self.spec, lrs, stop, start=start)
        return _Window(start, document["lr"], document.get("momentum"))

    def _set_momentum(self) -> None:
        momenta = self._window_at(self.last_epoch).momentum_at(self.last_epoch)
        if momenta is None:
            return
        defaults = self.optimizer.defaults
        if "momentum" not in defaults and "betas" not in defaults:
            raise ValueError(
                f"{self.spec.get('type')} cycles momentum: the optimizer must support "
                "momentum or beta1 (or set cycle_momentum=False)"
            )
        for group, momentum in zip(self.optimizer.param_groups, momenta, strict=True):
            if "betas" in group:
                group["betas"] = (momentum, *group["betas"][1:])
            else:
                group["momentum"] = momentum


class RemotePlateau(Polling):
    """``ReduceLROnPlateau`` decided by a service session, shared by every rank of a job.

    :meth:`step` reports this rank's metric for the next epoch, waits until every rank has
    reported it (polling with backoff, at most ``wait_timeout`` seconds), then sets the
    answered lr on every param group. Reports are idempotent by ``(epoch, rank)``, so a
    retried or repeated step after a crash gets the recorded decision back.

    Args:
        optimizer: the wrapped optimizer (as many param groups as the session has lrs).
        session: the session (``Client.create_session`` or ``Client.session(id, token)``).
        rank: this process's rank; default ``torch.distributed.get_rank()`` when the
            process group is initialised, else 0.
        wait_timeout: seconds to wait for the other ranks before :class:`NotDecidedError`.
        poll_interval: the first delay between polls (seconds); doubles up to ``max_poll``.
        max_poll: the longest delay between polls (seconds).

    The epoch counter starts at the session's next epoch, and the session's current lr is
    set on the optimizer at construction.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        session: Session,
        rank: int | None = None,
        **polling: Unpack[PollingOptions],
    ) -> None:
        super().__init__(rank, **polling)
        self.optimizer = optimizer
        self.session = session
        state = session.state()
        if len(state.lr) != len(optimizer.param_groups):
            raise ValueError(
                f"the session has {len(state.lr)} lrs but the optimizer "
                f"{len(optimizer.param_groups)} param groups"
            )
        self.epoch = state.epoch
        """The next epoch to report."""
        self._set_lrs(state.lr)

    def step(self, metric: float | torch.Tensor) -> Report:
        """Report ``metric`` for the next epoch, wait for its decision, apply its lr."""
        value, rank, epoch = float(metric), self._rank(), self.epoch
        report = self._decided(lambda: self.session.report(epoch, value, rank), epoch)
        self._set_lrs(report.lr)
        self.epoch += 1
        return report

    def get_last_lr(self) -> list[float]:
        """The lr of every param group after the last decision."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """The next epoch, the last lrs and the session id (never the token)."""
        return {"epoch": self.epoch, "_last_lr": list(self._last_lr), "session_id": self.session.id}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue at ``state_dict["epoch"]`` with its lrs.

        Epochs the session already decided are answered from its history when reported
        again, so resuming from an older checkpoint replays the same decisions.
        """
        self.epoch = int(state_dict["epoch"])
        self._set_lrs(state_dict["_last_lr"])

    def _set_lrs(self, lrs: tuple[float, ...] | list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            _set_lr(group, float(lr))
        self._last_lr = [float(lr) for lr in lrs]


def _set_lr(group: dict[str, Any], lr: float) -> None:
    """Set a param group's lr; a tensor lr is filled in place (as PyTorch's schedulers do)."""
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(lr)
    else:
        group["lr"] = lr


def _copy(lr: float | torch.Tensor) -> float | torch.Tensor:
    return lr.clone() if isinstance(lr, torch.Tensor) else lr
