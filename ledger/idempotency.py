"""Idempotency keys, stored durably in PostgreSQL.

``begin`` claims a key (or reports what happened to it before); the final response is written
by ``completion_write`` inside the same transaction as the command's events (through the
recorder's side writes), so a retry after a crash or restart sees either "done, with this
response" or a key that can be taken over — never a half-applied command.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import psycopg
from psycopg_pool import ConnectionPool

IN_FLIGHT_LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class Claimed:
    """The caller owns the key and must complete or release it."""


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
    def __init__(self, pool: ConnectionPool, retention: timedelta = timedelta(hours=24)) -> None:
        self.pool = pool
        self.retention = retention

    def begin(self, scope: str, key: str, fp: str) -> Outcome:
        with self.pool.connection() as conn:
            conn.autocommit = True
            row = conn.execute(
                "INSERT INTO ledger_idempotency (scope, key, fingerprint, state, locked_until,"
                " expires_at) VALUES (%s, %s, %s, 'in_flight', now() + %s, now() + %s)"
                " ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"
                "   state = 'in_flight', status_code = NULL, body = NULL, headers = NULL,"
                "   created_at = now(), locked_until = EXCLUDED.locked_until,"
                "   expires_at = EXCLUDED.expires_at"
                " WHERE ledger_idempotency.expires_at < now()"
                "    OR (ledger_idempotency.state = 'in_flight'"
                "        AND ledger_idempotency.locked_until < now()"
                "        AND ledger_idempotency.fingerprint = EXCLUDED.fingerprint)"
                " RETURNING 1",
                (scope, key, fp, IN_FLIGHT_LEASE, self.retention),
            ).fetchone()
            if row is not None:
                return Claimed()
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
                         headers: dict[str, str], curs: Any) -> None:
        """Mark the key done with its response, on the events' own cursor/transaction."""
        curs.execute(
            "UPDATE ledger_idempotency SET state = 'done', status_code = %s, body = %s,"
            " headers = %s WHERE scope = %s AND key = %s",
            (status_code, body, orjson.dumps(headers).decode(), scope, key))

    def complete(self, scope: str, key: str, status_code: int, body: bytes,
                 headers: dict[str, str]) -> None:
        """Mark done when the command wrote no events (a refusal, or a no-op)."""
        with self.pool.connection() as conn:
            conn.autocommit = True
            with conn.cursor() as curs:
                self.completion_write(scope, key, status_code, body, headers, curs)

    def release(self, scope: str, key: str) -> None:
        """Forget an in-flight key after an unexpected failure: the client may retry."""
        with self.pool.connection() as conn:
            conn.autocommit = True
            conn.execute("DELETE FROM ledger_idempotency WHERE scope = %s AND key = %s"
                         " AND state = 'in_flight'", (scope, key))

    def purge_expired(self) -> int:
        with self.pool.connection() as conn:
            conn.autocommit = True
            cur = conn.execute("DELETE FROM ledger_idempotency WHERE expires_at < now()")
            return cur.rowcount


def new_pool(url: str, max_size: int = 10) -> ConnectionPool:
    pool = ConnectionPool(url, min_size=1, max_size=max_size, open=True,
                          kwargs={"autocommit": True})
    return pool


__all__ = ["IdempotencyStore", "Claimed", "Replay", "Mismatch", "InFlight", "fingerprint",
           "new_pool", "psycopg"]
