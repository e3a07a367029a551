-- Exactly once across a lost commit acknowledgement (issue 13).
-- Every save writes its commit token here in its own transaction (committed = true). When the
-- connection drops during a save, the ledger writes the same token with committed = false (a
-- fence): the insert finds the save's row if it committed, and otherwise makes the save's own
-- insert conflict, so it can never commit later. Only then is a command re-run.
CREATE TABLE IF NOT EXISTS ledger_commits (
    token       uuid        PRIMARY KEY,
    committed   boolean     NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ledger_commits_recorded_idx ON ledger_commits (recorded_at);

-- Idempotency keys: the claim that owns an in-flight key. The response is stored only by the
-- claim that still owns the key, so a request taken over after its lease (or released after
-- an unknown outcome) can never store its response, hence never commit, afterwards.
ALTER TABLE ledger_idempotency ADD COLUMN IF NOT EXISTS claim uuid;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
        GRANT SELECT, INSERT, DELETE ON ledger_commits TO ledger_app;
    END IF;
END$$;
