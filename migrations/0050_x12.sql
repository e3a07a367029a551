-- X12 interop (issue 7): remittance idempotency, quarantine reports, unmatched claims and
-- the claim-number index used to find the encounter of a CLP01 / 277CA claim.

-- One row per posted 835 transaction (ST..SE). The key is the remittance's identity:
-- payer id (TRN03), trace number (TRN02) and the hash of its ST..SE content. Written in the
-- same transaction as the events it posted, so "posted" and "recorded" cannot diverge.
CREATE TABLE IF NOT EXISTS x12_remittances (
    payer_id        text NOT NULL,
    trace_number    text NOT NULL,
    content_hash    text NOT NULL,
    file_hash       text NOT NULL,
    file_name       text NOT NULL DEFAULT '',
    total_paid      NUMERIC(14,2) NOT NULL,
    payment_date    date,
    claims_posted   integer NOT NULL,
    claims_unmatched integer NOT NULL,
    claims_duplicate integer NOT NULL DEFAULT 0,
    report          jsonb NOT NULL DEFAULT '{}'::jsonb,
    posted_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payer_id, trace_number, content_hash)
);
CREATE INDEX IF NOT EXISTS x12_remittances_trace_idx ON x12_remittances (payer_id, trace_number);

-- Files (or transactions) refused whole: the report names each failing rule with its
-- transaction, claim (CLP01/CLM01) and line. Nothing of a quarantined 835 is posted.
CREATE TABLE IF NOT EXISTS x12_quarantine (
    id              bigserial PRIMARY KEY,
    file_hash       text NOT NULL,
    file_name       text NOT NULL DEFAULT '',
    kind            text NOT NULL,
    rules           text[] NOT NULL,
    report          jsonb NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS x12_quarantine_hash_idx ON x12_quarantine (file_hash);

-- Claims of a posted remittance that match no submitted claim: kept, never dropped.
CREATE TABLE IF NOT EXISTS x12_unmatched (
    id              bigserial PRIMARY KEY,
    payer_id        text NOT NULL,
    trace_number    text NOT NULL,
    content_hash    text NOT NULL,
    claim_number    text NOT NULL,
    status_code     text NOT NULL,
    charge          NUMERIC(14,2) NOT NULL,
    paid            NUMERIC(14,2) NOT NULL,
    payer_icn       text NOT NULL DEFAULT '',
    reason          text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (payer_id, trace_number, content_hash, claim_number, payer_icn, status_code)
);
CREATE INDEX IF NOT EXISTS x12_unmatched_claim_idx ON x12_unmatched (claim_number);

-- claim number (CLM01) -> encounter, caught up from ClaimCreated events (whoever wrote them).
CREATE TABLE IF NOT EXISTS x12_claim_index (
    claim_number    text NOT NULL,
    encounter_id    uuid NOT NULL,
    payer_id        text NOT NULL,
    position        bigint NOT NULL,
    PRIMARY KEY (claim_number, encounter_id)
);
CREATE TABLE IF NOT EXISTS x12_claim_index_position (
    id              smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    position        bigint NOT NULL
);

-- (group control GS06, transaction control ST02) of each submission -> claim, for 999s;
-- caught up from ClaimSubmitted events with the claim index.
CREATE TABLE IF NOT EXISTS x12_submission_index (
    group_control       text NOT NULL,
    transaction_control text NOT NULL,
    claim_number        text NOT NULL,
    encounter_id        uuid NOT NULL,
    position            bigint NOT NULL,
    PRIMARY KEY (group_control, transaction_control, claim_number, encounter_id)
);

-- Acknowledgement files (999 / 277CA) already applied, by file hash: applied once.
CREATE TABLE IF NOT EXISTS x12_acknowledgements (
    file_hash       text PRIMARY KEY,
    kind            text NOT NULL,
    file_name       text NOT NULL DEFAULT '',
    applied         integer NOT NULL,
    unmatched       integer NOT NULL,
    report          jsonb NOT NULL DEFAULT '{}'::jsonb,
    applied_at      timestamptz NOT NULL DEFAULT now()
);
