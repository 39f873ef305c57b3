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

from service.sessions.access import authorize, create, hash_token
from service.sessions.documents import (
    decode_decision,
    decode_session,
    encode_decision,
    encode_session,
    state_dict,
)
from service.sessions.records import (
    Created,
    Decision,
    EpochConflictError,
    RankError,
    Reduce,
    ReportKind,
    ReportOutcome,
    Session,
    SessionForbiddenError,
    SessionNotFoundError,
    Tenant,
    Warmup,
    new_lr_finder,
    new_session,
)
from service.sessions.reports import combine, report

__all__ = [
    "Created",
    "Decision",
    "EpochConflictError",
    "RankError",
    "Reduce",
    "ReportKind",
    "ReportOutcome",
    "Session",
    "SessionForbiddenError",
    "SessionNotFoundError",
    "Tenant",
    "Warmup",
    "authorize",
    "combine",
    "create",
    "decode_decision",
    "decode_session",
    "encode_decision",
    "encode_session",
    "hash_token",
    "new_lr_finder",
    "new_session",
    "report",
    "state_dict",
]
