-- Tamper evidence (issue 8), 3/4: Merkle leaves and signed checkpoints.
--
-- The checkpoint job (ledger/audit/checkpoints.py) appends one leaf per event in log order
-- and, in the same transaction, a checkpoint: tree size, RFC 6962 root, time, an Ed25519
-- signature over them, the consistency proof from the previous checkpoint, and the tree's
-- frontier (to resume). The leaves copy each event's position, encounter, version and chain
-- hash; they are authenticated by the signed roots and let `ledger verify` name the exact
-- event that went missing, was inserted or changed.
CREATE TABLE IF NOT EXISTS ledger_audit_leaves (
    notification_id    bigint PRIMARY KEY,
    originator_id      uuid   NOT NULL,
    originator_version bigint NOT NULL,
    chain_hash         bytea  NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_audit_leaves_encounter_idx
    ON ledger_audit_leaves (originator_id, originator_version);

CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    tree_size         bigint      PRIMARY KEY CHECK (tree_size > 0),
    last_position     bigint      NOT NULL,  -- notification id of the last leaf
    root_hash         bytea       NOT NULL CHECK (octet_length(root_hash) = 32),
    created_at        timestamptz NOT NULL,
    origin            text        NOT NULL,
    body              text        NOT NULL,  -- the signed text (see README)
    signature         bytea       NOT NULL,
    key_id            text        NOT NULL,
    public_key        bytea       NOT NULL,
    previous_size     bigint,                -- the checkpoint the proof starts from
    consistency_proof bytea       NOT NULL DEFAULT ''::bytea,  -- 32-byte hashes, concatenated
    frontier          bytea       NOT NULL
);

REVOKE UPDATE, DELETE, TRUNCATE ON ledger_audit_leaves, ledger_checkpoints FROM ledger_app, PUBLIC;
GRANT SELECT, INSERT ON ledger_audit_leaves, ledger_checkpoints TO ledger_app;

CREATE OR REPLACE TRIGGER ledger_audit_leaves_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_audit_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_rewrite();
CREATE OR REPLACE TRIGGER ledger_checkpoints_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_rewrite();
