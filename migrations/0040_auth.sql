-- Users and API tokens. Users are staff or systems (no PHI); tokens are stored as an
-- argon2id hash of their secret, looked up by a public token id.
CREATE TABLE IF NOT EXISTS ledger_users (
    user_id     text PRIMARY KEY CHECK (user_id ~ '^[A-Za-z0-9._-]{1,80}$'),
    role        text NOT NULL CHECK (role IN ('coder', 'biller', 'auditor', 'advocate', 'admin')),
    disabled    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL
);

CREATE TABLE IF NOT EXISTS ledger_tokens (
    token_id     text PRIMARY KEY,
    user_id      text NOT NULL REFERENCES ledger_users (user_id),
    secret_hash  text NOT NULL,
    label        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX IF NOT EXISTS ledger_tokens_user_idx ON ledger_tokens (user_id);
