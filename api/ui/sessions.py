"""Server-side sign-in sessions for the workbench (table ``ledger_ui_sessions``, migration 0110).

A token is exchanged once (``AuthStore.authenticate``: argon2, revocation, disabled users) for a
random session id; the browser keeps the id in an HttpOnly cookie, the server keeps only its
SHA-256 with the user, the token it came from, an expiry and the session's CSRF secret. Every
request re-reads the session joined with its token and user, so signing out, revoking the
token or disabling the user ends the session at once (no process-local cache).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from psycopg_pool import ConnectionPool

from ledger.auth.tokens import Identity

COOKIE = "ledger_session"
SIGNIN_COOKIE = "ledger_signin_csrf"  # double-submit token for the sign-in form itself


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    identity: Identity
    csrf_token: str

    def csrf_ok(self, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(self.csrf_token, submitted or "")


class SessionStore:
    def __init__(self, pool: ConnectionPool, lifetime: timedelta) -> None:
        self.pool = pool
        self.lifetime = lifetime

    def start(self, identity: Identity) -> tuple[str, Session]:
        """A new session for an authenticated identity: (cookie value, session)."""
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO ledger_ui_sessions (session_hash, user_id, token_id, csrf_token,"
                " expires_at) VALUES (%s, %s, %s, %s, now() + %s)",
                (_digest(session_id), identity.user_id, identity.token_id, csrf, self.lifetime))
        return session_id, Session(identity, csrf)

    def get(self, session_id: str | None) -> Session | None:
        """The live session for a cookie value; None when unknown, expired, signed out, or
        when its token was revoked or its user disabled."""
        if not session_id or len(session_id) > 100:
            return None
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT u.user_id, u.role, s.token_id, s.csrf_token FROM ledger_ui_sessions s"
                " JOIN ledger_users u USING (user_id)"
                " JOIN ledger_tokens t ON t.token_id = s.token_id"
                " WHERE s.session_hash = %s AND s.ended_at IS NULL AND s.expires_at > now()"
                " AND NOT u.disabled AND t.revoked_at IS NULL"
                " AND (t.expires_at IS NULL OR t.expires_at > now())",
                (_digest(session_id),)).fetchone()
        if row is None:
            return None
        return Session(Identity(row[0], row[1], row[2]), row[3])

    def end(self, session_id: str | None) -> None:
        if not session_id:
            return
        with self.pool.connection() as conn:
            conn.execute("UPDATE ledger_ui_sessions SET ended_at = now()"
                         " WHERE session_hash = %s AND ended_at IS NULL", (_digest(session_id),))
            # expired sessions are kept a day for the record, then dropped
            conn.execute("DELETE FROM ledger_ui_sessions WHERE expires_at < now() - interval"
                         " '1 day'")
