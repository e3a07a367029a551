-- Money from real-world remittances (issue 12): 837 file identity, the exceptions queue,
-- per-remittance reconciliation and the payers' provider accounts (PLB not tied to a claim).

-- 837 files already imported: a file is a duplicate only when its content is (same hash) or
-- it carries the same ISA/GS/ST control numbers from the same sender (ISA06).
CREATE TABLE IF NOT EXISTS x12_claim_files (
    file_hash           text PRIMARY KEY,
    sender_id           text NOT NULL,
    interchange_control text NOT NULL,
    group_control       text NOT NULL,
    transaction_controls text[] NOT NULL,
    file_name           text NOT NULL DEFAULT '',
    claims              integer NOT NULL,
    imported_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS x12_claim_files_ctl_idx
    ON x12_claim_files (sender_id, interchange_control, group_control);

-- The exceptions queue as an append-only log: an exception is raised once (its id is derived
-- from what it is about) and worked by appending a resolution (rematched, posted, dismissed);
-- rows are never updated. x12_exceptions shows each exception with its latest resolution.
CREATE TABLE IF NOT EXISTS x12_exception_events (
    seq             bigserial PRIMARY KEY,
    exception_id    uuid NOT NULL,
    event           text NOT NULL CHECK (event IN ('raised', 'rematched', 'posted', 'dismissed')),
    kind            text NOT NULL DEFAULT '',
    claim_number    text NOT NULL DEFAULT '',
    payer_id        text NOT NULL DEFAULT '',
    trace_number    text NOT NULL DEFAULT '',
    amount          NUMERIC(14,2),
    rule            text NOT NULL DEFAULT '',
    file_hash       text NOT NULL DEFAULT '',
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    reason          text NOT NULL DEFAULT '',
    actor_id        text NOT NULL DEFAULT '',
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS x12_exception_raised_once
    ON x12_exception_events (exception_id) WHERE event = 'raised';
CREATE INDEX IF NOT EXISTS x12_exception_events_id_idx ON x12_exception_events (exception_id, seq);

CREATE OR REPLACE VIEW x12_exceptions AS
SELECT r.exception_id, r.kind, r.claim_number, r.payer_id, r.trace_number, r.amount, r.rule,
       r.file_hash, r.detail, r.recorded_at AS raised_at,
       CASE WHEN last.event IS NULL THEN 'open' ELSE 'resolved' END AS status,
       COALESCE(last.event, '') AS resolution, COALESCE(last.reason, '') AS resolution_reason,
       COALESCE(last.actor_id, '') AS resolved_by, last.recorded_at AS resolved_at
FROM x12_exception_events r
LEFT JOIN LATERAL (
    SELECT e.event, e.reason, e.actor_id, e.recorded_at FROM x12_exception_events e
    WHERE e.exception_id = r.exception_id AND e.event <> 'raised'
    ORDER BY e.seq DESC LIMIT 1) last ON true
WHERE r.event = 'raised';

-- One row per 835 transaction that was looked at: BPR02 against the sum of CLP04 less the
-- sum of PLB amounts, and what of it was posted or held in the exceptions queue.
CREATE TABLE IF NOT EXISTS x12_reconciliation (
    payer_id        text NOT NULL,
    trace_number    text NOT NULL,
    content_hash    text NOT NULL,
    file_hash       text NOT NULL,
    bpr_amount      NUMERIC(14,2) NOT NULL,
    claims_paid     NUMERIC(14,2) NOT NULL,   -- Σ CLP04
    plb_total       NUMERIC(14,2) NOT NULL,   -- Σ PLB amounts (positive reduces BPR02)
    plb_claims      NUMERIC(14,2) NOT NULL,   -- of which posted to claims
    plb_provider    NUMERIC(14,2) NOT NULL,   -- of which posted to the provider account
    posted_paid     NUMERIC(14,2) NOT NULL,   -- Σ CLP04 posted to claims
    held_paid       NUMERIC(14,2) NOT NULL,   -- Σ CLP04 held as exceptions / unmatched
    difference      NUMERIC(14,2) NOT NULL,   -- BPR02 - (Σ CLP04 - Σ PLB): 0 when it reconciles
    reconciled      boolean NOT NULL,
    outcome         text NOT NULL,            -- posted | quarantined
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payer_id, trace_number, content_hash)
);

-- The payer's provider account: PLB adjustments that name no claim (L6 interest, CS, …),
-- written in the same transaction as the remittance that carried them.
CREATE TABLE IF NOT EXISTS x12_provider_account (
    id              bigserial PRIMARY KEY,
    payer_id        text NOT NULL,
    trace_number    text NOT NULL,
    content_hash    text NOT NULL,
    provider_id     text NOT NULL,
    fiscal_date     date,
    reason          text NOT NULL,
    reference       text NOT NULL DEFAULT '',
    amount          NUMERIC(14,2) NOT NULL,   -- positive: taken from the provider; negative: paid
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (payer_id, trace_number, content_hash, reason, reference, amount)
);

-- payer claim number (ICN, CLP07) -> encounter, caught up from ClaimAdjudicated events: finds
-- the claim a PLB (PLB03-2) or a correction (REF*F8) names by the payer's number.
CREATE TABLE IF NOT EXISTS x12_icn_index (
    payer_icn       text NOT NULL,
    encounter_id    uuid NOT NULL,
    position        bigint NOT NULL,
    PRIMARY KEY (payer_icn, encounter_id)
);
CREATE TABLE IF NOT EXISTS x12_icn_index_position (
    id              smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    position        bigint NOT NULL
);

-- the exceptions log is append-only for the application role
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
        REVOKE UPDATE, DELETE, TRUNCATE ON x12_exception_events FROM ledger_app;
    END IF;
END $$;
