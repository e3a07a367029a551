-- This log's identity (issue 17): exported checkpoints live under <export dir>/<log id>, so
-- several databases can share one data directory, and a backup restored into another
-- database (or another server) is still the same log and finds its exported checkpoints.
-- One row, made once; never changed.
CREATE TABLE IF NOT EXISTS ledger_log_identity (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    log_id uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO ledger_log_identity DEFAULT VALUES ON CONFLICT DO NOTHING;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
        REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ledger_log_identity FROM ledger_app;
    END IF;
END $$;
