-- Audit controls (issue 8): signed seals over the read-access log, so that altering the audit
-- log is detectable (ONC 170.315(d)(10)). The checkpoint job appends the access records that
-- are final (tx below every running transaction) in (tx, id) order to an RFC 6962 tree and
-- signs its root, like the event checkpoints (ledger/audit/seals.py).
CREATE INDEX IF NOT EXISTS ledger_access_log_tx_idx ON ledger_access_log (tx, id);

CREATE TABLE IF NOT EXISTS ledger_access_seals (
    tree_size         bigint      PRIMARY KEY CHECK (tree_size > 0),
    cursor_tx         xid8        NOT NULL,  -- (tx, id) of the last sealed record
    cursor_id         bigint      NOT NULL,
    root_hash         bytea       NOT NULL CHECK (octet_length(root_hash) = 32),
    created_at        timestamptz NOT NULL,
    origin            text        NOT NULL,
    body              text        NOT NULL,
    signature         bytea       NOT NULL,
    key_id            text        NOT NULL,
    public_key        bytea       NOT NULL,
    previous_size     bigint,
    consistency_proof bytea       NOT NULL DEFAULT ''::bytea,
    frontier          bytea       NOT NULL
);

REVOKE UPDATE, DELETE, TRUNCATE ON ledger_access_seals FROM ledger_app, PUBLIC;
GRANT SELECT, INSERT ON ledger_access_seals TO ledger_app;

CREATE OR REPLACE TRIGGER ledger_access_seals_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_access_seals
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_rewrite();
