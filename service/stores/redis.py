"""Sessions in Redis, shared by every process and replica that reaches the server.

Keys: a session ``<id>`` is the hash ``lrsched:{<id>}:session`` (token_hash, ttl_seconds,
expires_at, version, document, and two store-private fields: ``incarnation``, random per
``create``, and ``writer``, random per write attempt) and the sorted set
``lrsched:{<id>}:history`` (score = epoch, member = ``b"<epoch>:" + row``, so ``history`` is
one ``ZRANGE ... BYSCORE ... LIMIT``). The ``{<id>}`` hash tag puts both keys in one Redis
Cluster slot, so the scripts (in :mod:`service.stores.redis_scripts`), which touch both, are
legal on a cluster.

Atomicity: :meth:`RedisStore.update` is an optimistic compare-and-set. It reads the hash,
runs ``fn`` in this process, then sends the change to a Lua script that writes it only if the
session's ``(incarnation, version)`` is still what was read; the script runs atomically on the
server ("all server activities are blocked during its entire runtime"). A lost race reloads
and retries with jittered exponential backoff, ``max_attempts`` times in all, then raises
StoreBusyError; every lost race is counted in :attr:`RedisStore.conflicts`. The incarnation
makes a session deleted and re-created under the same id (version 1 again) a conflict, not a
match. The writer token makes a write whose reply was lost and that redis-py re-sent count
once: the script recognises its own write and reports success instead of a conflict.

One round trip: :meth:`RedisStore.update_async` (the metric-report path) remembers the last
record each session had in this process and tries its compare-and-set on that guess without
reading first; a conflicting script answers with the current hash, so a stale guess costs
the same two round trips as a read would have, and a fresh one (the usual case when the same
process handles a session's consecutive reports) costs one. Only a confirmed write makes a
guess count: a decision not to write, or an exception, from ``fn`` on a guessed record is
made again on a fresh read before it is returned or raised, and a stale guess is not a lost
race (no backoff, not counted).

Quotas: each owner (API key fingerprint) has a set ``lrsched:owner:{<owner>}:live`` of the
ids of its sessions. ``create`` with ``max_live`` first creates the session, then adds its id
to the set in one script that refuses when the set already holds ``max_live`` ids; only then
are the set's ids checked for sessions that are gone (expired; deleted ones are removed by
``delete``), dropped, and the script tried once more; a refused session is deleted again.
The set is its own cluster slot, so no script touches keys of two slots. A process killed
between the two steps leaves one session uncounted (or, refused, unreachable) until it
expires.

TTL: the script sets the document, bumps the version, stores the history row and
``PEXPIRE``-s both keys in one step, so the expiry is refreshed on every write (never on a
read) and both keys vanish together; ``expires_at`` is computed from the server's clock.

Durability: as durable as the server's persistence, no more. With ``appendonly yes`` and
``appendfsync everysec`` (the usual setting) a server crash or power loss can lose about the
last second of acknowledged writes; ``appendfsync always`` closes that gap at a throughput
cost. With RDB snapshots only, everything since the last snapshot can be lost; with no
persistence, a restart loses every session. Replication is asynchronous, so a failover can
also drop writes the old primary acknowledged. Killing a client process never loses a write
the server acknowledged.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import redis
import redis.asyncio

from service.stores import redis_scripts as scripts
from service.stores.base import (
    Change,
    QuotaExceededError,
    SessionExistsError,
    SessionRecord,
    StoreBusyError,
    unavailable_on,
)

T = TypeVar("T")

GUESSES = 4096
"""Sessions whose last record :meth:`RedisStore.update_async` remembers, per store."""


_TIMEOUTS = {"socket_connect_timeout": 5.0, "socket_timeout": 10.0, "health_check_interval": 30}


class RedisStore:
    """Sessions on the Redis server at ``url`` (``redis://``, ``rediss://`` or ``unix://``).

    Args:
        url: passed to ``redis.Redis.from_url``; the database number and options come from it.
        prefix: the first part of every key (``<prefix>:{<id>}:session``).
        max_attempts: how many times ``update`` tries its compare-and-set before StoreBusyError.
        backoff: the first retry waits up to this many seconds (uniformly at random); the bound
            doubles with every lost race, up to ``max_backoff``.
        max_backoff: the largest bound of one wait, in seconds.

    Attributes:
        conflicts: compare-and-set races lost by ``update`` since the store was opened
            (``on_conflict`` is also called for each, e.g. to count them in metrics).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "lrsched",
        max_attempts: int = 64,
        backoff: float = 0.001,
        max_backoff: float = 0.05,
        on_conflict: Callable[[], None] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"{max_attempts=}: expected at least 1")
        self.prefix = prefix
        self.max_attempts = max_attempts
        self.conflicts = 0
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._conflicts_lock = threading.Lock()
        self._on_conflict = on_conflict
        # Bounded waits: a Redis that stops answering fails requests (and readiness) in
        # seconds instead of hanging them; the URL's own query options take precedence.
        self._url = url
        self._options: dict[str, Any] = {
            "decode_responses": False,
            **{option: value for option, value in _TIMEOUTS.items() if f"{option}=" not in url},
        }
        self._redis: redis.Redis = redis.Redis.from_url(url, **self._options)
        self._guesses: OrderedDict[str, scripts.Fields] = OrderedDict()
        self._guesses_lock = threading.Lock()
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[redis.asyncio.Redis, Any]
        ] = weakref.WeakKeyDictionary()
        self._create = self._redis.register_script(scripts.CREATE)
        self._update = self._redis.register_script(scripts.UPDATE)
        self._reserve = self._redis.register_script(scripts.RESERVE)

    def keys(self, session_id: str) -> tuple[str, str]:
        """The session's hash and history keys; they share the ``{<id>}`` cluster hash tag."""
        tagged = f"{self.prefix}:{{{session_id}}}"
        return f"{tagged}:session", f"{tagged}:history"

    def owner_key(self, owner: str) -> str:
        """The set of the ids of ``owner``'s sessions (its own cluster slot)."""
        return f"{self.prefix}:owner:{{{owner}}}:live"

    @unavailable_on(redis.RedisError)
    def create(self, record: SessionRecord, max_live: int | None = None) -> SessionRecord:
        args: list[bytes | str | int] = [
            record.token_hash,
            record.ttl_seconds,
            record.document,
            secrets.token_hex(16),
            record.owner,
        ]
        expires_at = self._create(keys=self.keys(record.id), args=args)
        if expires_at is None:
            raise SessionExistsError(record.id)
        if max_live is not None and not self._counted(record, max_live):
            self.delete(record.id)
            raise QuotaExceededError(record.owner, max_live)
        return replace(record, expires_at=float(expires_at), version=1)

    def _counted(self, record: SessionRecord, max_live: int) -> bool:
        """Add the new session to its owner's set, unless the owner has ``max_live`` others."""
        key = self.owner_key(record.owner)
        if self._reserve(keys=[key], args=[max_live, record.id]):
            return True
        members = [scripts.as_text(member) for member in self._redis.smembers(key)]
        with self._redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.exists(self.keys(member)[0])
            alive = pipe.execute()
        dead = [m for m, exists in zip(members, alive, strict=True) if not exists]
        return bool(dead) and bool(self._reserve(keys=[key], args=[max_live, record.id, *dead]))

    @unavailable_on(redis.RedisError)
    def get(self, session_id: str) -> SessionRecord | None:
        fields = self._redis.hgetall(self.keys(session_id)[0])
        return scripts.record_of(session_id, fields) if fields else None

    @unavailable_on(redis.RedisError)
    def update(self, session_id: str, fn: Callable[[SessionRecord], Change[T]]) -> T | None:
        keys = self.keys(session_id)
        for attempt in range(self.max_attempts):
            fields = self._redis.hgetall(keys[0])
            if not fields:
                return None
            record = scripts.record_of(session_id, fields)
            change = fn(record)
            if change.document is None:
                return change.result
            reply = self._update(keys=keys, args=scripts.update_args(fields, record, change))
            if reply[0] == scripts.WRITTEN:
                return change.result
            if reply[0] == scripts.GONE:  # deleted or expired since it was read
                return None
            if (wait := self._lost_race(attempt)) is not None:
                time.sleep(wait)
        raise self._busy(session_id)

    @unavailable_on(redis.RedisError)
    async def update_async(
        self, session_id: str, fn: Callable[[SessionRecord], Change[T]]
    ) -> T | None:
        """:meth:`update` on this event loop's asynchronous client, in one round trip when
        this process's last record of the session is still current (see the module doc)."""
        client, script = self._async_client()
        keys = self.keys(session_id)
        fields = self._guess(session_id)
        guessed = fields is not None
        if fields is None:
            fields = await client.hgetall(keys[0])
        lost = 0
        while True:
            if not fields:
                self._remember(session_id, None)
                return None
            record = scripts.record_of(session_id, fields)
            change = _change_to_try(fn, record, guessed)
            if change is None:
                fields, guessed = await client.hgetall(keys[0]), False
                continue
            if change.document is None:
                self._remember(session_id, fields)
                return change.result
            args = scripts.update_args(fields, record, change)
            reply = await script(keys=keys, args=args)
            if reply[0] == scripts.WRITTEN:
                self._remember(session_id, scripts.written(fields, args, reply[1]))
                return change.result
            if reply[0] == scripts.GONE:
                self._remember(session_id, None)
                return None
            fields = scripts.hash_fields(reply[1])
            if guessed:  # the guess was stale: not a race lost to another writer
                guessed = False
                continue
            await self._wait_after_lost_race(session_id, lost)
            lost += 1

    def _guess(self, session_id: str) -> scripts.Fields | None:
        with self._guesses_lock:
            return self._guesses.get(session_id)

    def _remember(self, session_id: str, fields: scripts.Fields | None) -> None:
        """Keep ``fields`` as the session's last known record (``None``: forget it)."""
        with self._guesses_lock:
            if fields is None:
                self._guesses.pop(session_id, None)
                return
            self._guesses[session_id] = fields
            self._guesses.move_to_end(session_id)
            if len(self._guesses) > GUESSES:
                self._guesses.popitem(last=False)

    def _lost_race(self, attempt: int) -> float | None:
        """Count a lost compare-and-set; how long to wait before the next attempt, if any."""
        with self._conflicts_lock:
            self.conflicts += 1
        if self._on_conflict is not None:
            self._on_conflict()
        if attempt + 1 >= self.max_attempts:
            return None
        return random.uniform(0, min(self._max_backoff, self._backoff * 2**attempt))

    async def _wait_after_lost_race(self, session_id: str, lost: int) -> None:
        """Count the race lost after ``lost`` others and wait before the next attempt;
        StoreBusyError when no attempt is left."""
        wait = self._lost_race(lost)
        if wait is None:
            raise self._busy(session_id)
        await asyncio.sleep(wait)

    def _busy(self, session_id: str) -> StoreBusyError:
        return StoreBusyError(
            f"session {session_id}: lost the compare-and-set race {self.max_attempts} times"
        )

    def _async_client(self) -> tuple[redis.asyncio.Redis, Any]:
        """This event loop's client and update script (a client is bound to one loop)."""
        loop = asyncio.get_running_loop()
        opened = self._async_clients.get(loop)
        if opened is None:
            client = redis.asyncio.Redis.from_url(self._url, **self._options)
            opened = (client, client.register_script(scripts.UPDATE))
            self._async_clients[loop] = opened
        return opened

    async def aclose(self) -> None:
        """Close this event loop's asynchronous client, if one was opened."""
        opened = self._async_clients.pop(asyncio.get_running_loop(), None)
        if opened is not None:
            await opened[0].aclose()

    @unavailable_on(redis.RedisError)
    def history(self, session_id: str, start: int, limit: int) -> list[tuple[int, bytes]]:
        if limit <= 0:
            return []
        session, history = self.keys(session_id)
        with self._redis.pipeline(transaction=True) as pipe:  # MULTI ... EXEC: one snapshot
            pipe.exists(session)
            pipe.zrange(history, start, "+inf", byscore=True, offset=0, num=limit)
            exists, members = pipe.execute()
        return scripts.history_rows(exists, members)

    @unavailable_on(redis.RedisError)
    async def history_async(
        self, session_id: str, start: int, limit: int
    ) -> list[tuple[int, bytes]]:
        """:meth:`history` on this event loop's asynchronous client."""
        if limit <= 0:
            return []
        session, history = self.keys(session_id)
        async with self._async_client()[0].pipeline(transaction=True) as pipe:
            pipe.exists(session)
            pipe.zrange(history, start, "+inf", byscore=True, offset=0, num=limit)
            exists, members = await pipe.execute()
        return scripts.history_rows(exists, members)

    @unavailable_on(redis.RedisError)
    def delete(self, session_id: str) -> bool:
        session, history = self.keys(session_id)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(session, "owner")
            pipe.delete(session)
            pipe.delete(history)
            owner, removed, _ = pipe.execute()
        if owner is not None:
            self._redis.srem(self.owner_key(scripts.as_text(owner)), session_id)
        return bool(removed)

    @unavailable_on(redis.RedisError)
    def count_live(self) -> int:
        pattern = f"{self.prefix}:{{*}}:session"
        return sum(1 for _ in self._redis.scan_iter(match=pattern, count=1000))

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        """Close the client and disconnect its connection pool."""
        self._redis.close()
        self._redis.connection_pool.disconnect()


def _change_to_try(
    fn: Callable[[SessionRecord], Change[T]], record: SessionRecord, guessed: bool
) -> Change[T] | None:
    """``fn(record)``, or None where ``record`` is a guess and ``fn`` raised or decided not to
    write: only a confirmed write makes a guess count, so those are made again on a fresh read
    (see the module doc)."""
    try:
        change = fn(record)
    except Exception:
        if not guessed:
            raise
        return None
    if change.document is None and guessed:
        return None
    return change
