-- Idempotency keys for POST commands (Stripe-style): the first response is stored in the
-- same transaction as the events it produced; a retry with the same key and body gets it back.
CREATE TABLE IF NOT EXISTS ledger_idempotency (
    scope        text        NOT NULL,  -- caller identity + method + path template
    key          text        NOT NULL,
    fingerprint  text        NOT NULL,  -- sha256 of method, path and body
    state        text        NOT NULL CHECK (state IN ('in_flight', 'done')),
    status_code  integer,
    body         bytea,
    headers      jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS ledger_idempotency_expires_idx ON ledger_idempotency (expires_at);
