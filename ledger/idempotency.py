"""Idempotency keys, stored durably in PostgreSQL.

``begin`` claims a key (or reports what happened to it before); the final response is written
by ``completion_write`` inside the same transaction as the command's events (through the
recorder's side writes), so a retry after a crash or restart sees either "done, with this
response" or a key that can be taken over — never a half-applied command.

Each claim has its own id (``Claimed.claim``). The response is stored only if the row still
belongs to that claim (``completion_write`` updates the row and locks it, or raises
``ClaimLost`` so the transaction rolls back). So once a key is released or taken over after
its lease, the earlier execution can never commit: at most one execution per key commits.
A release that cannot reach the database is kept and retried (``retry_releases``) so that a
client's retry after an outage is not kept waiting for the lease.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson
import psycopg
from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

IN_FLIGHT_LEASE = timedelta(seconds=60)


class ClaimLost(Exception):
    """The key was released or taken over by a retry while this execution ran: its events
    must not commit (raised inside the save's transaction, which then rolls back)."""

    field = "Idempotency-Key"
    rule = "idempotency_key.superseded"


@dataclass(frozen=True)
class Claimed:
    """The caller owns the key (as ``claim``) and must complete or release it."""

    claim: UUID | None = None


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Mismatch:
    """Same key, different request."""


@dataclass(frozen=True)
class InFlight:
    """The first request with this key is still running."""


Outcome = Claimed | Replay | Mismatch | InFlight


def fingerprint(method: str, path: str, body: bytes) -> str:
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


class IdempotencyStore:
    def __init__(self, pool: ConnectionPool, retention: timedelta = timedelta(hours=24),
                 lease: timedelta = IN_FLIGHT_LEASE) -> None:
        self.pool = pool
        self.retention = retention
        self.lease = lease
        self._unreleased: list[tuple[str, str, UUID | None]] = []
        self._lock = threading.Lock()

    def begin(self, scope: str, key: str, fp: str) -> Outcome:
        claim = uuid4()
        with self.pool.connection() as conn:
            conn.autocommit = True
            row = conn.execute(
                "INSERT INTO ledger_idempotency (scope, key, fingerprint, state, locked_until,"
                " expires_at, claim) VALUES (%s, %s, %s, 'in_flight', now() + %s, now() + %s,"
                " %s)"
                " ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"
                "   state = 'in_flight', status_code = NULL, body = NULL, headers = NULL,"
                "   created_at = now(), locked_until = EXCLUDED.locked_until,"
                "   expires_at = EXCLUDED.expires_at, claim = EXCLUDED.claim"
                " WHERE ledger_idempotency.expires_at < now()"
                "    OR (ledger_idempotency.state = 'in_flight'"
                "        AND ledger_idempotency.locked_until < now()"
                "        AND ledger_idempotency.fingerprint = EXCLUDED.fingerprint)"
                " RETURNING 1",
                (scope, key, fp, self.lease, self.retention, claim),
            ).fetchone()
            if row is not None:
                return Claimed(claim)
            existing = conn.execute(
                "SELECT fingerprint, state, status_code, body, headers FROM ledger_idempotency"
                " WHERE scope = %s AND key = %s", (scope, key)).fetchone()
        if existing is None:  # expired and purged between the two statements: try again
            return self.begin(scope, key, fp)
        stored_fp, state, status_code, body, headers = existing
        if stored_fp != fp:
            return Mismatch()
        if state == "in_flight":
            return InFlight()
        return Replay(status_code, bytes(body), dict(headers or {}))

    def completion_write(self, scope: str, key: str, status_code: int, body: bytes,
                         headers: dict[str, str], curs: Any, claim: UUID | None = None) -> None:
        """Mark the key done with its response, on the events' own cursor/transaction.
        Raises ClaimLost (so the transaction rolls back) if the claim no longer owns it."""
        curs.execute(
            "UPDATE ledger_idempotency SET state = 'done', status_code = %s, body = %s,"
            " headers = %s WHERE scope = %s AND key = %s AND state = 'in_flight'"
            " AND claim IS NOT DISTINCT FROM %s RETURNING 1",
            (status_code, body, orjson.dumps(headers).decode(), scope, key, claim))
        if curs.fetchone() is None:  # (fetching also syncs a pipelined transaction)
            raise ClaimLost("Idempotency-Key: the key was taken over by a retry of this "
                            "request; this execution was not applied")

    def complete(self, scope: str, key: str, status_code: int, body: bytes,
                 headers: dict[str, str], claim: UUID | None = None) -> None:
        """Mark done when the command wrote no events (a refusal, or a no-op)."""
        with self.pool.connection() as conn:
            conn.autocommit = True
            with conn.cursor() as curs:
                try:
                    self.completion_write(scope, key, status_code, body, headers, curs, claim)
                except ClaimLost:  # a retry owns the key now: it will store its own answer
                    pass

    def release(self, scope: str, key: str, claim: UUID | None = None) -> None:
        """Forget an in-flight key after a failure (the client may retry). Safe even when the
        outcome of the execution is unknown: it can no longer commit once released. When the
        database cannot be reached, the release is kept and retried by ``retry_releases``."""
        try:
            self._release(scope, key, claim)
        except psycopg.Error:
            with self._lock:
                self._unreleased.append((scope, key, claim))

    def _release(self, scope: str, key: str, claim: UUID | None) -> None:
        with self.pool.connection(timeout=2.0) as conn:
            conn.autocommit = True
            conn.execute("DELETE FROM ledger_idempotency WHERE scope = %s AND key = %s"
                         " AND state = 'in_flight' AND claim IS NOT DISTINCT FROM %s",
                         (scope, key, claim))

    def retry_releases(self) -> int:
        """Release the keys whose release failed during an outage; returns how many remain."""
        with self._lock:
            pending, self._unreleased = self._unreleased, []
        for i, (scope, key, claim) in enumerate(pending):
            try:
                self._release(scope, key, claim)
            except psycopg.Error:
                with self._lock:
                    self._unreleased.extend(pending[i:])
                break
        return len(self._unreleased)

    def purge_expired(self) -> int:
        with self.pool.connection() as conn:
            conn.autocommit = True
            cur = conn.execute("DELETE FROM ledger_idempotency WHERE expires_at < now()")
            return cur.rowcount


def new_pool(url: str, max_size: int = 10, timeout: float = 30.0,
             options: dict[str, str] | None = None) -> ConnectionPool:
    """A psycopg pool (autocommit) whose connections are checked before use when they may
    be dead (ledger.database.check_when_suspect): after the server restarts, a dead
    connection is replaced instead of failing a request.
    ``options``: more libpq keywords (timeouts, see ledger.database.connection_options)."""
    from ledger.database import check_when_suspect, mark_idle

    pool = ConnectionPool(url, min_size=1, max_size=max_size, open=True, timeout=timeout,
                          kwargs={"autocommit": True, **(options or {})},
                          check=check_when_suspect, reset=mark_idle)
    return pool


__all__ = ["IdempotencyStore", "Claimed", "ClaimLost", "Replay", "Mismatch", "InFlight",
           "fingerprint", "new_pool", "psycopg"]
