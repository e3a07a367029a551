"""Who is calling: users with one role each, and bearer API tokens hashed at rest (argon2id).

A token reads ``lgr_<token id>.<secret>``. The token id is public (it names the token in
lists and revocations); the secret has 256 bits of entropy and only its argon2id hash is
stored. Verifying argon2 on every request would cost milliseconds, so a process remembers a
token it verified for ``cache_seconds`` (default 30 s): a revocation takes effect within that.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass

import argon2
import psycopg
from psycopg_pool import ConnectionPool

from ledger.domain.errors import InvalidValue, NotFound, RuleViolation
from ledger.domain.model import Actor

ROLES = ("coder", "biller", "auditor", "advocate", "admin", "billing_lead")
USER_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
TOKEN_RE = re.compile(r"^lgr_([A-Za-z0-9_-]{4,64})\.([A-Za-z0-9_-]{20,128})$")
# Tokens are long random secrets, not passwords: light argon2id parameters suffice (~10 ms).
HASHER = argon2.PasswordHasher(time_cost=2, memory_cost=16 * 1024, parallelism=1)
# What an unknown (or revoked, expired, disabled) token id is verified against, so that it
# costs the same argon2 work as a known id with a wrong secret: token ids are public, and
# must not be confirmable by timing. Same parameters as real hashes; its secret is discarded.
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(32))


def token_parts(token: str | None) -> tuple[str, bytes] | None:
    """(token id, SHA-256 of the secret) of a well-formed token; None otherwise."""
    match = TOKEN_RE.match(token or "")
    if not match:
        return None
    return match.group(1), hashlib.sha256(match.group(2).encode()).digest()


@dataclass(frozen=True)
class Identity:
    user_id: str
    role: str
    token_id: str

    @property
    def actor(self) -> Actor:
        return Actor(self.user_id, self.role)


class AuthStore:
    def __init__(self, pool: ConnectionPool, cache_seconds: float = 30.0) -> None:
        self.pool = pool
        self.cache_seconds = cache_seconds
        self._verified: dict[str, tuple[bytes, Identity, float]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ users
    def create_user(self, user_id: str, role: str, created_by: str) -> None:
        if not USER_ID_RE.match(user_id or ""):
            raise InvalidValue("user_id", "user_id.format",
                               "user_id: 1-80 letters, digits, '.', '_' or '-' (no PHI)")
        if role not in ROLES:
            raise InvalidValue("role", "role.enum", f"role: one of {', '.join(ROLES)}")
        if not self._admin_call("ledger_auth_create_user", user_id, role, created_by):
            raise RuleViolation("user_id", "user.unique", "user_id: already exists")

    def _admin_call(self, function: str, *args: object) -> bool:
        """Users and tokens change only through the SECURITY DEFINER functions of migration
        0091 (the app role may not write the tables); each records the acting user (its
        last argument) in ledger_auth_log, and refuses one that is not an enabled admin
        unless this session is the tables' owner (the shell)."""
        placeholders = ", ".join(["%s"] * len(args))
        with self.pool.connection() as conn:
            try:
                row = conn.execute(f"SELECT {function}({placeholders})", args).fetchone()
            except psycopg.errors.InsufficientPrivilege:
                raise RuleViolation("actor", "admin.required",
                                    "actor: user administration needs an enabled admin"
                                    ) from None
        return bool(row and row[0])

    def set_disabled(self, user_id: str, disabled: bool, actor: str = "cli") -> None:
        if not self._admin_call("ledger_auth_set_disabled", user_id, disabled, actor):
            raise NotFound("user_id", "user.exists", "user_id: no such user")
        self._forget_user(user_id)

    def list_users(self) -> list[dict[str, object]]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT u.user_id, u.role, u.disabled, u.created_at,"
                " count(t.token_id) FILTER (WHERE t.revoked_at IS NULL)"
                " FROM ledger_users u LEFT JOIN ledger_tokens t USING (user_id)"
                " GROUP BY u.user_id ORDER BY u.user_id").fetchall()
        return [{"user_id": r[0], "role": r[1], "disabled": r[2], "created_at": r[3],
                 "active_tokens": r[4]} for r in rows]

    # ------------------------------------------------------------------ tokens
    def create_token(self, user_id: str, label: str = "", *, token_id: str | None = None,
                     secret: str | None = None, actor: str = "cli") -> str:
        """Create a token for ``user_id``; returns it (the only time the secret is shown).
        ``token_id``/``secret`` may be given (tests, provisioning); otherwise random."""
        token_id = token_id or secrets.token_hex(6)
        secret = secret or secrets.token_urlsafe(32)
        token = f"lgr_{token_id}.{secret}"
        if not TOKEN_RE.match(token):
            raise InvalidValue("token", "token.format", "token: bad token id or secret")
        if not self._admin_call("ledger_auth_create_token", token_id, user_id,
                                HASHER.hash(secret), label[:80], actor):
            raise NotFound("user_id", "user.exists", "user_id: no such user")
        return token

    def revoke_token(self, token_id: str, actor: str = "cli") -> None:
        if not self._admin_call("ledger_auth_revoke_token", token_id, actor):
            raise NotFound("token_id", "token.exists", "token_id: no active token")
        with self._lock:
            self._verified.pop(token_id, None)

    def list_tokens(self, user_id: str | None = None) -> list[dict[str, object]]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT token_id, user_id, label, created_at, revoked_at FROM ledger_tokens"
                " WHERE %(u)s::text IS NULL OR user_id = %(u)s ORDER BY created_at",
                {"u": user_id}).fetchall()
        return [{"token_id": r[0], "user_id": r[1], "label": r[2], "created_at": r[3],
                 "revoked_at": r[4]} for r in rows]

    def cached(self, token: str) -> Identity | None:
        """The identity of a token this process verified recently; None if not (or stale).
        Never touches the database: safe to call from an event loop."""
        match = TOKEN_RE.match(token or "")
        if not match:
            return None
        token_id, secret = match.groups()
        with self._lock:
            cached = self._verified.get(token_id)
        if cached and cached[2] > time.monotonic() and hmac.compare_digest(
                cached[0], hashlib.sha256(secret.encode()).digest()):
            return cached[1]
        return None

    def authenticate(self, token: str) -> Identity | None:
        """The identity of a valid, unrevoked token of an enabled user; None otherwise."""
        match = TOKEN_RE.match(token or "")
        if not match:
            return None
        token_id, secret = match.groups()
        digest = hashlib.sha256(secret.encode()).digest()
        now = time.monotonic()
        with self._lock:
            cached = self._verified.get(token_id)
        if cached and cached[2] > now and hmac.compare_digest(cached[0], digest):
            return cached[1]
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT t.secret_hash, u.user_id, u.role FROM ledger_tokens t"
                " JOIN ledger_users u USING (user_id) WHERE t.token_id = %s"
                " AND t.revoked_at IS NULL AND NOT u.disabled"
                " AND (t.expires_at IS NULL OR t.expires_at > now())", (token_id,)).fetchone()
        # Always one argon2 verification: against the dummy hash when the id is unknown.
        try:
            verified = HASHER.verify(row[0] if row is not None else _DUMMY_HASH, secret)
        except argon2.exceptions.VerificationError:
            verified = False
        if row is None or not verified:
            return None
        identity = Identity(row[1], row[2], token_id)
        with self._lock:
            self._verified[token_id] = (digest, identity, now + self.cache_seconds)
        return identity

    def _forget_user(self, user_id: str) -> None:
        with self._lock:
            for key in [k for k, v in self._verified.items() if v[1].user_id == user_id]:
                del self._verified[key]
