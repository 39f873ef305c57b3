"""Reports: ranks, epoch order, retries, and the decision of a completed epoch, applied in
one atomic ``store.update``."""

from __future__ import annotations

import math
from dataclasses import replace

from service.engine import early_stopping, lr_finder
from service.engine.plateau import step
from service.sessions.access import _check_access, hash_token
from service.sessions.documents import (
    decode_decision,
    decode_session,
    encode_decision,
    encode_session,
)
from service.sessions.records import (
    Decision,
    EpochConflictError,
    RankError,
    Reduce,
    ReportKind,
    ReportOutcome,
    Session,
    SessionNotFoundError,
)
from service.stores.base import AsyncUpdates, Change, SessionRecord


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
    outcome = _decided("decided", epoch, decision)
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
    return _decided("replayed", epoch, decision)


async def _next_epoch(store: AsyncUpdates, session_id: str) -> int:
    """The session's next undecided epoch (read through a no-op update)."""
    epoch = await store.update_async(
        session_id, lambda record: Change(None, None, decode_session(record.document).epoch)
    )
    if epoch is None:
        raise SessionNotFoundError(session_id)
    return epoch


# -- PyTorch's state_dict ----------------------------------------------------------------


def _decided(kind: ReportKind, epoch: int, decision: Decision) -> ReportOutcome:
    """The answer for an epoch that ``decision`` decided, now or earlier."""
    return ReportOutcome(
        kind=kind,
        epoch=epoch,
        decided=True,
        lrs=decision.lrs,
        reduced=decision.reduced,
        state=decision.state,
        waiting_for=(),
        stopping=decision.stopping,
        finder=decision.finder,
    )
