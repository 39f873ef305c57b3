"""The Redis store's server side: the Lua scripts that create and change a session, their
arguments and replies, and the session hash they keep, read into a :class:`SessionRecord`.

The keys and what each script guarantees are described in :mod:`service.stores.redis`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from service.stores.base import Change, SessionRecord

# KEYS: session, history. ARGV: token_hash, ttl_seconds, document, incarnation, owner.
# Returns the new expires_at (a string), or false if a live session already has the id.
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local now = redis.call('TIME')
local expires_at = string.format('%.6f', now[1] + now[2] / 1e6 + tonumber(ARGV[2]))
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'token_hash', ARGV[1], 'ttl_seconds', ARGV[2],
           'expires_at', expires_at, 'version', 1, 'document', ARGV[3], 'incarnation', ARGV[4],
           'owner', ARGV[5])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 1000)
return expires_at
"""

# KEYS: session, history. ARGV: incarnation, version read, writer token, document,
# then epoch and history member (only when there is a history row).
# Returns {1, expires_at} (written), {0, <the session's hash as HGETALL gives it>} (it changed
# since it was read) or {-1} (it is gone).
UPDATE = """
local current = redis.call('HMGET', KEYS[1], 'incarnation', 'version', 'ttl_seconds', 'writer',
                           'expires_at')
if not current[2] then return {-1} end
if current[1] ~= ARGV[1] or current[2] ~= ARGV[2] then
    if current[4] == ARGV[3] then return {1, current[5]} end
    return {0, redis.call('HGETALL', KEYS[1])}
end
local ttl = tonumber(current[3])
local now = redis.call('TIME')
local expires_at = string.format('%.6f', now[1] + now[2] / 1e6 + ttl)
redis.call('HSET', KEYS[1], 'document', ARGV[4], 'writer', ARGV[3], 'expires_at', expires_at)
redis.call('HINCRBY', KEYS[1], 'version', 1)
if ARGV[5] then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[5], ARGV[5])
    redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
end
redis.call('PEXPIRE', KEYS[1], ttl * 1000)
redis.call('PEXPIRE', KEYS[2], ttl * 1000)
return {1, expires_at}
"""

# KEYS: the owner's set of session ids. ARGV: max_live, the new id, then ids known dead.
# Drops the dead ids, then adds the new one if fewer than max_live remain; returns 1 if added.
RESERVE = """
for i = 3, #ARGV do redis.call('SREM', KEYS[1], ARGV[i]) end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[2])
return 1
"""

WRITTEN, CONFLICT, GONE = 1, 0, -1
"""The update script's first reply: the change was written, lost a race, or the session is gone."""

Fields = dict[bytes | str, bytes | str]
"""A session hash as redis-py returns it."""


def update_args(
    fields: Mapping[bytes | str, bytes | str], record: SessionRecord, change: Change[Any]
) -> list[bytes | str | int]:
    """The update script's ARGV for writing ``change`` over ``record`` (read as ``fields``)."""
    assert change.document is not None
    args: list[bytes | str | int] = [
        fields[b"incarnation"],
        record.version,
        secrets.token_hex(8),  # this write's token: a re-sent write is recognised as done
        change.document,
    ]
    if change.history is not None:
        epoch, row = change.history
        args += [epoch, b"%d:%s" % (epoch, row)]
    return args


def written(fields: Fields, args: Sequence[bytes | str | int], expires_at: bytes) -> Fields:
    """The session's hash after the update script wrote ``args`` over ``fields``."""
    after = dict(fields)
    after[b"version"] = b"%d" % (int(fields[b"version"]) + 1)
    after[b"writer"] = str(args[2]).encode()
    after[b"document"] = args[3] if isinstance(args[3], bytes) else str(args[3]).encode()
    after[b"expires_at"] = expires_at
    return after


def hash_fields(flat: Sequence[bytes]) -> Fields:
    """A hash from the flat ``[field, value, ...]`` list HGETALL gives inside a script."""
    return dict(zip(flat[0::2], flat[1::2], strict=True))


def history_rows(exists: int, members: list[bytes]) -> list[tuple[int, bytes]]:
    """``(epoch, row)`` pairs from the history members, if the session exists."""
    if not exists:
        return []
    rows = []
    for member in members:
        epoch, _, row = bytes(member).partition(b":")
        rows.append((int(epoch), row))
    return rows


def as_text(value: bytes | str) -> str:
    """A key or member redis-py gave as bytes, as text."""
    return value.decode() if isinstance(value, bytes) else value


def record_of(session_id: str, fields: Mapping[bytes | str, bytes | str]) -> SessionRecord:
    """The session ``session_id`` whose hash is ``fields`` (HGETALL's reply, not empty)."""

    def field(name: bytes) -> bytes:
        value = fields[name]
        return value if isinstance(value, bytes) else value.encode()

    return SessionRecord(
        id=session_id,
        token_hash=field(b"token_hash").decode(),
        ttl_seconds=int(field(b"ttl_seconds")),
        expires_at=float(field(b"expires_at")),
        version=int(field(b"version")),
        document=field(b"document"),
        owner=field(b"owner").decode() if b"owner" in fields else "",
    )
