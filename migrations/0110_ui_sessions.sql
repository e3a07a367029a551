-- The workbench (issue 16): server-side sign-in sessions for the pages under /ui/.
--
-- A browser exchanges an API token for a session: the cookie carries a random session id and
-- only its SHA-256 is stored here (a copy of this table signs no one in). A session lasts until
-- expires_at or until signed out (ended_at); it also ends when its token is revoked or its user
-- disabled (checked on every request by joining ledger_tokens and ledger_users). csrf_token is
-- the per-session secret every form must carry.
CREATE TABLE IF NOT EXISTS ledger_ui_sessions (
    session_hash text PRIMARY KEY,
    user_id      text NOT NULL REFERENCES ledger_users (user_id),
    token_id     text NOT NULL REFERENCES ledger_tokens (token_id),
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz
);
CREATE INDEX IF NOT EXISTS ledger_ui_sessions_expires_idx ON ledger_ui_sessions (expires_at);
