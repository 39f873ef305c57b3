"""Who may have a session: creation under the tenant's quotas (the one gate every new
session passes), tokens, and the owner check that answers "not found" to any other key."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from rules.errors import ScheduleError
from service.config import env_name
from service.sessions.documents import (
    encode_session,
)
from service.sessions.records import (
    Created,
    Session,
    SessionForbiddenError,
    SessionNotFoundError,
    Tenant,
)
from service.stores.base import SessionRecord, SessionStore


def create(store: SessionStore, session: Session, ttl_seconds: int, tenant: Tenant) -> Created:
    """Store ``session`` for ``tenant`` under a fresh unguessable id with a fresh secret token.

    ScheduleError (a 422 naming the field) past the tenant's ``world_size`` or
    ``ttl_seconds`` maximum; QuotaExceededError (from the store, which counts atomically)
    when the owner already holds ``max_live`` live sessions.
    """
    _check_limit("world_size", session.world_size, tenant.max_world_size, "max_world_size")
    _check_limit("ttl_seconds", ttl_seconds, tenant.max_ttl_seconds, "max_ttl_seconds")
    token = unguessable(32)
    record = SessionRecord(
        id=unguessable(16),  # 128 random bits
        token_hash=hash_token(token),
        ttl_seconds=ttl_seconds,
        expires_at=0.0,
        version=0,
        document=encode_session(session),
        owner=tenant.owner,
    )
    return Created(store.create(record, max_live=tenant.max_live), token, session)


def unguessable(random_bytes: int) -> str:
    """``secrets.token_urlsafe(random_bytes)`` that does not start with ``-``: ids and tokens
    are passed on command lines (``lrsched session report ID --token TOKEN``), where a
    leading dash reads as an option. Drawn again in that case (1 in 64), which costs less
    than 0.03 bits of the 128 or 256."""
    while True:
        text = secrets.token_urlsafe(random_bytes)
        if not text.startswith("-"):
            return text


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
