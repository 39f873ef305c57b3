"""Sessions as values: what a session holds, what a report decides, and how new sessions
start (plateau, early stopping, LR range test). No store, no rules of access."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from service.engine import lr_finder
from service.engine.early_stopping import EarlyStoppingConfig, EarlyStoppingState
from service.engine.lr_finder import LrFinderConfig, LrFinderState
from service.engine.plateau import PlateauConfig, PlateauState, initial_state
from service.stores.base import SessionRecord

Reduce = Literal["mean", "min", "max"]


class SessionNotFoundError(Exception):
    """No session with that id (never created, deleted or expired)."""


class SessionForbiddenError(Exception):
    """The bearer token is not the session's."""


class EpochConflictError(Exception):
    """A report skipped ahead of the next undecided epoch."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"expected a report for epoch {expected}, got epoch {got}")
        self.expected = expected
        self.got = got


class RankError(ValueError):
    """A rank outside ``0..world_size-1``."""


@dataclass(frozen=True, slots=True)
class Warmup:
    """Linear warmup before the plateau rule takes over (not part of PyTorch's scheduler).

    For the i-th decided epoch of the session (i < ``steps``) the answer is
    ``base_lr * (start_factor + (1 - start_factor) * (i + 1) / steps)``, reaching the base
    lr at the last warmup epoch; the session starts at ``base_lr * start_factor``. Metrics
    reported during warmup are recorded in the history but not shown to the plateau rule.
    """

    steps: int
    start_factor: float
    base_lrs: tuple[float, ...]

    def lrs(self, decided: int) -> tuple[float, ...]:
        """The lr of every group after ``decided`` warmup epochs (0 = at creation)."""
        if decided >= self.steps:
            return self.base_lrs
        factor = self.start_factor + (1.0 - self.start_factor) * decided / self.steps
        return tuple(base * factor for base in self.base_lrs)


@dataclass(frozen=True, slots=True)
class Session:
    """Everything a session remembers, as stored in its document.

    ``config`` is None for an early-stopping-only session; ``stopping`` is the early-stopping
    state when ``early_stopping`` is set.
    """

    config: PlateauConfig | None
    default_min_lr: float | None
    world_size: int
    reduce: Reduce
    state: PlateauState
    first_epoch: int
    epoch: int
    pending: Mapping[int, float] = field(default_factory=dict)
    warmup: Warmup | None = None
    early_stopping: EarlyStoppingConfig | None = None
    stopping: EarlyStoppingState | None = None
    lr_finder: LrFinderConfig | None = None
    finder: LrFinderState | None = None

    @property
    def warming_up(self) -> bool:
        """Whether the next epoch is still in the warmup."""
        return self.warmup is not None and self.epoch - self.first_epoch < self.warmup.steps


@dataclass(frozen=True, slots=True)
class Decision:
    """The recorded outcome of one decided epoch (a history row)."""

    epoch: int
    metric: float
    metrics: tuple[float, ...]
    lrs: tuple[float, ...]
    reduced: bool
    warmup: bool
    state: PlateauState
    stopping: EarlyStoppingState | None = None
    finder: LrFinderState | None = None


ReportKind = Literal["decided", "pending", "replayed", "duplicate"]


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    """The answer to a report: the epoch's decision, or that it still waits for ranks.

    ``kind`` says what the report did: ``decided`` its epoch (the last rank), left it
    ``pending``, or was answered from the record (``replayed``: the epoch was decided
    already; ``duplicate``: this rank had reported the pending epoch already).
    """

    kind: ReportKind
    epoch: int
    decided: bool
    lrs: tuple[float, ...]
    reduced: bool
    state: PlateauState
    waiting_for: tuple[int, ...]
    stopping: EarlyStoppingState | None = None
    finder: LrFinderState | None = None


@dataclass(frozen=True, slots=True)
class Tenant:
    """Who creates a session, and what one owner may hold (``Settings``' quotas).

    Attributes:
        owner: the fingerprint of the creating API key (``""`` with API keys off).
        max_live: live sessions one owner may hold (``max_sessions_per_key``).
        max_world_size: the largest ``world_size`` (``max_world_size``).
        max_ttl_seconds: the largest ``ttl_seconds`` (``max_ttl_seconds``).
    """

    owner: str
    max_live: int
    max_world_size: int
    max_ttl_seconds: int


@dataclass(frozen=True, slots=True)
class Created:
    """A new session: its record (id, expiry) and the bearer token, shown only once."""

    record: SessionRecord
    token: str
    session: Session


# -- creation --------------------------------------------------------------------------


def new_session(
    config: PlateauConfig | None,
    default_min_lr: float | None,
    lrs: tuple[float, ...],
    *,
    world_size: int,
    reduce: Reduce,
    warmup_steps: int = 0,
    warmup_start_factor: float = 0.1,
    resumed: PlateauState | None = None,
    early_stopping: EarlyStoppingConfig | None = None,
) -> Session:
    """A session that starts fresh at epoch 0, or resumes ``resumed`` at its ``last_epoch``.

    Without ``config`` (early stopping only) the lrs never change.
    """
    if resumed is not None:
        state = resumed
    elif config is not None:
        state = initial_state(config, lrs)
    else:
        state = _fixed_lrs(lrs)
    warmup = None
    if warmup_steps > 0:
        warmup = Warmup(warmup_steps, warmup_start_factor, tuple(state.lrs))
        state = replace(state, lrs=warmup.lrs(0))
    return Session(
        config=config,
        default_min_lr=default_min_lr,
        world_size=world_size,
        reduce=reduce,
        state=state,
        first_epoch=state.last_epoch,
        epoch=state.last_epoch,
        warmup=warmup,
        early_stopping=early_stopping,
        stopping=None if early_stopping is None else EarlyStoppingState(),
    )


def _fixed_lrs(lrs: tuple[float, ...]) -> PlateauState:
    """The lr state of a session without a plateau rule: its epochs only count."""
    return PlateauState(lrs=lrs, best=math.inf, num_bad_epochs=0, cooldown_counter=0, last_epoch=0)


def new_lr_finder(config: LrFinderConfig, *, world_size: int, reduce: Reduce) -> Session:
    """An LR range test session at step 0 (its lr is ``start_lr``)."""
    return Session(
        config=None,
        default_min_lr=None,
        world_size=world_size,
        reduce=reduce,
        state=_fixed_lrs((lr_finder.lr_at(config, 0),)),
        first_epoch=0,
        epoch=0,
        lr_finder=config,
        finder=LrFinderState(),
    )
