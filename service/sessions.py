"""Plateau session rules: create, report (ranks, order, retries), read, export.

A session is a ReduceLROnPlateau run fed by a remote, possibly distributed, training job.
Epochs are decided in order, exactly once: the report of the next undecided epoch is
recorded; when all ``world_size`` ranks have reported it, their metrics are combined with
``reduce`` and ``engine.plateau.step`` (the rule ``/v1/plateau/replay`` folds) decides the
epoch. Every change goes through one atomic ``store.update``, so concurrent reports from
any number of processes and replicas apply exactly once each. A retried report of a decided
epoch gets that epoch's recorded decision back; a repeated report from a rank of the pending
epoch changes nothing; a report that skips ahead is refused with the epoch expected.

A session may also carry an early-stopping rule (``engine.early_stopping.step``, the rule
``/v1/early-stopping/replay`` folds), decided on the same reduced metric in the same update,
or only that rule (no ReduceLROnPlateau: the lr never changes). An LR range test session
(``lr_finder``) is the same machinery with steps for epochs and losses for metrics:
``engine.lr_finder.step`` decides each step on the reduced loss and the answer is the next
step's lr.

Every session belongs to the API key that created it (its *owner*, a key fingerprint):
:func:`create` is the one gate every new session passes (quotas of its :class:`Tenant`), and
:func:`authorize` and :func:`report` answer "not found" to any other key, so another key
learns nothing about a session, not even with its token.

The session document (opaque to stores) is JSON with non-finite floats spelled as strings.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson

from rules.errors import ScheduleError
from service import training_control_codec as codec
from service.config import env_name
from service.engine import early_stopping, lr_finder
from service.engine.early_stopping import EarlyStoppingConfig, EarlyStoppingState
from service.engine.lr_finder import LrFinderConfig, LrFinderState
from service.engine.plateau import PlateauConfig, PlateauState, initial_state, mode_worse, step
from service.stores.base import AsyncUpdates, Change, SessionRecord, SessionStore

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


def create(store: SessionStore, session: Session, ttl_seconds: int, tenant: Tenant) -> Created:
    """Store ``session`` for ``tenant`` under a fresh unguessable id with a fresh secret token.

    ScheduleError (a 422 naming the field) past the tenant's ``world_size`` or
    ``ttl_seconds`` maximum; QuotaExceededError (from the store, which counts atomically)
    when the owner already holds ``max_live`` live sessions.
    """
    _check_limit("world_size", session.world_size, tenant.max_world_size, "max_world_size")
    _check_limit("ttl_seconds", ttl_seconds, tenant.max_ttl_seconds, "max_ttl_seconds")
    token = secrets.token_urlsafe(32)
    record = SessionRecord(
        id=secrets.token_urlsafe(16),  # 128 random bits
        token_hash=hash_token(token),
        ttl_seconds=ttl_seconds,
        expires_at=0.0,
        version=0,
        document=encode_session(session),
        owner=tenant.owner,
    )
    return Created(store.create(record, max_live=tenant.max_live), token, session)


def _check_limit(field: str, value: int, limit: int, setting: str) -> None:
    if value > limit:
        raise ScheduleError(
            f"{field}={value}: this service allows at most {limit} ({env_name(setting)})",
            (field,),
        )


def hash_token(token: str) -> str:
    """The stored form of a bearer token: hex SHA-256 (tokens have 256 random bits)."""
    return hashlib.sha256(token.encode()).hexdigest()


def authorize(store: SessionStore, session_id: str, token: str, owner: str) -> SessionRecord:
    """The session if ``owner`` owns it and ``token`` is its bearer token (constant time)."""
    record = store.get(session_id)
    if record is None:
        raise SessionNotFoundError(session_id)
    _check_access(record, hash_token(token), owner)
    return record


def _check_access(record: SessionRecord, token_hash: str, owner: str) -> None:
    """SessionNotFoundError for another owner (whatever the token), else
    SessionForbiddenError for a wrong token."""
    if not hmac.compare_digest(owner, record.owner):
        raise SessionNotFoundError(record.id)
    if not hmac.compare_digest(token_hash, record.token_hash):
        raise SessionForbiddenError(record.id)


# -- reports ---------------------------------------------------------------------------


async def report(
    store: AsyncUpdates,
    session_id: str,
    token: str,
    epoch: int,
    metric: float,
    rank: int,
    *,
    owner: str,
) -> ReportOutcome:
    """Apply one rank's report of ``metric`` for ``epoch`` (see the module docstring).

    The owner and the bearer token are checked inside the store's atomic update, on the
    record it reads anyway: one read-modify-write per report, no separate authorization
    read. (A report is what thousands of ranks send every epoch, so it is awaited, not run
    in a thread.)
    """
    token_hash = hash_token(token)
    result = await store.update_async(
        session_id, lambda current: _apply_report(current, token_hash, owner, epoch, metric, rank)
    )
    if result is None:
        raise SessionNotFoundError(session_id)
    if isinstance(result, int):  # an epoch decided already: a retry
        return await _recorded(store, session_id, result)
    return result


def _apply_report(
    record: SessionRecord, token_hash: str, owner: str, epoch: int, metric: float, rank: int
) -> Change[ReportOutcome | int]:
    """The pure update: authorize, record the report, decide the epoch when the last rank
    arrives."""
    _check_access(record, token_hash, owner)
    session = decode_session(record.document)
    if not 0 <= rank < session.world_size:
        raise RankError(f"rank={rank}: expected 0 <= rank < world_size={session.world_size}")
    if epoch < session.epoch:
        return Change(None, None, epoch)
    if epoch > session.epoch:
        raise EpochConflictError(session.epoch, epoch)
    if rank in session.pending:  # a repeated report of the pending epoch: nothing changes
        return Change(None, None, _waiting(session, "duplicate"))
    pending = {**session.pending, rank: metric}
    if len(pending) < session.world_size:
        waiting = replace(session, pending=pending)
        return Change(encode_session(waiting), None, _waiting(waiting, "pending"))
    metrics = tuple(pending[r] for r in range(session.world_size))
    decided, decision = _decide(session, metrics)
    outcome = ReportOutcome(
        kind="decided",
        epoch=epoch,
        decided=True,
        lrs=decision.lrs,
        reduced=decision.reduced,
        state=decision.state,
        waiting_for=(),
        stopping=decision.stopping,
        finder=decision.finder,
    )
    return Change(encode_session(decided), (epoch, encode_decision(decision)), outcome)


def _decide(session: Session, metrics: tuple[float, ...]) -> tuple[Session, Decision]:
    """The session after deciding its pending epoch on ``metrics`` (one per rank)."""
    metric = combine(metrics, session.reduce)
    if session.warming_up:
        assert session.warmup is not None
        decided_in_warmup = session.epoch - session.first_epoch + 1
        state = replace(session.state, lrs=session.warmup.lrs(decided_in_warmup))
        reduced, warmup = False, True
    elif session.config is None:  # early stopping only, or the LR range test
        state = replace(session.state, last_epoch=session.state.last_epoch + 1)
        reduced, warmup = False, False
    else:
        state, reduced = step(session.config, session.state, metric)
        warmup = False
    stopping = session.stopping
    if session.early_stopping is not None and stopping is not None:
        stopping = early_stopping.step(session.early_stopping, stopping, session.epoch, metric)
    finder = session.finder
    if session.lr_finder is not None and finder is not None:
        finder = lr_finder.step(session.lr_finder, finder, metric)
        if not finder.stop:
            state = replace(state, lrs=(lr_finder.lr_at(session.lr_finder, finder.steps),))
    decision = Decision(
        session.epoch, metric, metrics, state.lrs, reduced, warmup, state, stopping, finder
    )
    decided = replace(
        session, state=state, epoch=session.epoch + 1, pending={}, stopping=stopping, finder=finder
    )
    return decided, decision


def combine(metrics: tuple[float, ...], reduce: Reduce) -> float:
    """The ranks' metrics combined: mean (in rank order), min or max; NaN if any is NaN."""
    if any(math.isnan(m) for m in metrics):
        return math.nan
    if reduce == "min":
        return min(metrics)
    if reduce == "max":
        return max(metrics)
    return sum(metrics) / len(metrics)


def _waiting(session: Session, kind: ReportKind) -> ReportOutcome:
    return ReportOutcome(
        kind=kind,
        epoch=session.epoch,
        decided=False,
        lrs=session.state.lrs,
        reduced=False,
        state=session.state,
        waiting_for=tuple(r for r in range(session.world_size) if r not in session.pending),
        stopping=session.stopping,
        finder=session.finder,
    )


async def _recorded(store: AsyncUpdates, session_id: str, epoch: int) -> ReportOutcome:
    rows = await store.history_async(session_id, epoch, 1)
    if not rows or rows[0][0] != epoch:
        # Epochs before a resumed session's first epoch were decided elsewhere.
        raise EpochConflictError(await _next_epoch(store, session_id), epoch)
    decision = decode_decision(rows[0][1])
    return ReportOutcome(
        kind="replayed",
        epoch=epoch,
        decided=True,
        lrs=decision.lrs,
        reduced=decision.reduced,
        state=decision.state,
        waiting_for=(),
        stopping=decision.stopping,
        finder=decision.finder,
    )


async def _next_epoch(store: AsyncUpdates, session_id: str) -> int:
    """The session's next undecided epoch (read through a no-op update)."""
    epoch = await store.update_async(
        session_id, lambda record: Change(None, None, decode_session(record.document).epoch)
    )
    if epoch is None:
        raise SessionNotFoundError(session_id)
    return epoch


# -- PyTorch's state_dict ----------------------------------------------------------------


def state_dict(session: Session) -> dict[str, Any] | None:
    """``ReduceLROnPlateau.state_dict()`` after the same steps (PyTorch's keys and values);
    None for an early-stopping-only session."""
    config, state = session.config, session.state
    if config is None:
        return None
    return {
        "factor": config.factor,
        "default_min_lr": session.default_min_lr,
        "min_lrs": list(config.min_lrs),
        "patience": config.patience,
        "cooldown": config.cooldown,
        "eps": config.eps,
        "last_epoch": state.last_epoch,
        "_last_lr": list(state.lrs),
        "mode_worse": mode_worse(config),
        "mode": config.mode,
        "threshold": config.threshold,
        "threshold_mode": config.threshold_mode,
        "best": state.best,
        "cooldown_counter": state.cooldown_counter,
        "num_bad_epochs": state.num_bad_epochs,
    }


# -- the document codec ------------------------------------------------------------------


def _num(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _float(value: float | str) -> float:
    return float(value)


def _state_json(state: PlateauState) -> dict[str, Any]:
    document: dict[str, Any] = {
        "lrs": list(state.lrs),
        "best": _num(state.best),
        "num_bad_epochs": state.num_bad_epochs,
        "cooldown_counter": state.cooldown_counter,
        "last_epoch": state.last_epoch,
    }
    if state.accumulated_count:  # only sessions with accumulation_size > 1
        document["accumulated"] = _num(state.accumulated)
        document["accumulated_count"] = state.accumulated_count
    return document


def _state(data: Mapping[str, Any]) -> PlateauState:
    return PlateauState(
        lrs=tuple(data["lrs"]),
        best=_float(data["best"]),
        num_bad_epochs=data["num_bad_epochs"],
        cooldown_counter=data["cooldown_counter"],
        last_epoch=data["last_epoch"],
        accumulated=_float(data.get("accumulated", 0.0)),
        accumulated_count=data.get("accumulated_count", 0),
    )


_VARIANT_DEFAULTS: dict[str, Any] = {
    "patience_semantics": "torch",
    "min_delta": 0.0,
    "sign_safe": False,
    "accumulation_size": 1,
}
"""Plateau variant options; documents written before they existed decode to these."""


def _config_json(config: PlateauConfig | None) -> dict[str, Any] | None:
    if config is None:
        return None
    return {
        "mode": config.mode,
        "factor": config.factor,
        "patience": config.patience,
        "threshold": config.threshold,
        "threshold_mode": config.threshold_mode,
        "cooldown": config.cooldown,
        "min_lrs": list(config.min_lrs),
        "eps": config.eps,
        **{
            name: getattr(config, name)
            for name, default in _VARIANT_DEFAULTS.items()
            if getattr(config, name) != default
        },
    }


def _config(config: Mapping[str, Any] | None) -> PlateauConfig | None:
    if config is None:
        return None
    return PlateauConfig(
        mode=config["mode"],
        factor=config["factor"],
        patience=config["patience"],
        threshold=config["threshold"],
        threshold_mode=config["threshold_mode"],
        cooldown=config["cooldown"],
        min_lrs=tuple(config["min_lrs"]),
        eps=config["eps"],
        **{name: config.get(name, default) for name, default in _VARIANT_DEFAULTS.items()},
    )


def encode_session(session: Session) -> bytes:
    """The stored document of ``session``."""
    warmup = session.warmup
    return orjson.dumps(
        {
            "config": _config_json(session.config),
            "default_min_lr": session.default_min_lr,
            "world_size": session.world_size,
            "reduce": session.reduce,
            "state": _state_json(session.state),
            "first_epoch": session.first_epoch,
            "epoch": session.epoch,
            "pending": {str(rank): _num(m) for rank, m in sorted(session.pending.items())},
            "warmup": None
            if warmup is None
            else {
                "steps": warmup.steps,
                "start_factor": warmup.start_factor,
                "base_lrs": list(warmup.base_lrs),
            },
            **codec.encode(session.early_stopping, session.stopping),
            **codec.encode_finder(session.lr_finder, session.finder),
        }
    )


def decode_session(document: bytes) -> Session:
    """The session stored as ``document``."""
    data = orjson.loads(document)
    warmup = data["warmup"]
    early_stopping_config, stopping = codec.decode(data)
    finder_config, finder = codec.decode_finder(data)
    return Session(
        config=_config(data["config"]),
        default_min_lr=data["default_min_lr"],
        world_size=data["world_size"],
        reduce=data["reduce"],
        state=_state(data["state"]),
        first_epoch=data["first_epoch"],
        epoch=data["epoch"],
        pending={int(rank): _float(m) for rank, m in data["pending"].items()},
        warmup=None
        if warmup is None
        else Warmup(warmup["steps"], warmup["start_factor"], tuple(warmup["base_lrs"])),
        early_stopping=early_stopping_config,
        stopping=stopping,
        lr_finder=finder_config,
        finder=finder,
    )


def encode_decision(decision: Decision) -> bytes:
    """The stored history row of ``decision``."""
    return orjson.dumps(
        {
            "epoch": decision.epoch,
            "metric": _num(decision.metric),
            "metrics": [_num(m) for m in decision.metrics],
            "lrs": list(decision.lrs),
            "reduced": decision.reduced,
            "warmup": decision.warmup,
            "state": _state_json(decision.state),
            **codec.encode(None, decision.stopping),
            **codec.encode_finder(None, decision.finder),
        }
    )


def decode_decision(row: bytes) -> Decision:
    """The decision stored as history ``row``."""
    data = orjson.loads(row)
    return Decision(
        epoch=data["epoch"],
        metric=_float(data["metric"]),
        metrics=tuple(_float(m) for m in data["metrics"]),
        lrs=tuple(data["lrs"]),
        reduced=data["reduced"],
        warmup=data["warmup"],
        state=_state(data["state"]),
        stopping=codec.decode(data)[1],
        finder=codec.decode_finder(data)[1],
    )
