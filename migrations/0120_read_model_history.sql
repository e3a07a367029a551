-- Issue 19: the read models as they stood at any log position.
-- Each *_history table holds every version of a row of its current table, with the range of
-- log positions it was valid for: [valid_from, valid_to) (valid_to NULL: still current).
-- The projections write these in the same transaction as the current rows, one version per
-- event that changed the row (see ledger/projections/history.py), so the history is a pure
-- function of the log and "as of P" = the versions whose range contains P.
-- Summed tables keep a version whose measures are all zero (present = false) where the current
-- table deletes the row: the reconciliation report needs the change, the reads skip it.
-- event_type: the event whose position opened the version (grouping for reconciliation).

CREATE TABLE IF NOT EXISTS read_model_history_start (
    name text PRIMARY KEY,                  -- projection (claims, trends) or 'exceptions'
    position bigint NOT NULL                -- as-of reads before this position are refused
);

CREATE TABLE IF NOT EXISTS claims_history (
    encounter_id uuid NOT NULL,
    claim_number text NOT NULL,
    valid_from bigint NOT NULL,
    valid_to bigint,
    event_type text NOT NULL,
    created_position bigint NOT NULL,
    patient_ref text NOT NULL,
    payer_id text NOT NULL,
    party_kind text NOT NULL,
    bucket text NOT NULL,
    frequency text NOT NULL,
    status text NOT NULL,
    service_from date NOT NULL,
    service_to date NOT NULL,
    diagnoses text[] NOT NULL,
    total_charge numeric(14,2) NOT NULL,
    allowed numeric(14,2) NOT NULL,
    paid numeric(14,2) NOT NULL,
    patient_responsibility numeric(14,2) NOT NULL,
    contractual numeric(14,2) NOT NULL,
    other_adjustments numeric(14,2) NOT NULL,
    written_off numeric(14,2) NOT NULL,
    outstanding numeric(14,2) NOT NULL,
    payer_icn text NOT NULL,
    submitted_on date,
    denial_deadline date,
    last_adjudicated_on date,
    last_paid_on date,
    balance_primary numeric(14,2) NOT NULL,
    balance_secondary numeric(14,2) NOT NULL,
    balance_tertiary numeric(14,2) NOT NULL,
    balance_patient numeric(14,2) NOT NULL,
    version bigint NOT NULL,
    last_event text NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (encounter_id, claim_number, valid_from)
);
CREATE UNIQUE INDEX IF NOT EXISTS claims_history_open_idx
    ON claims_history (encounter_id, claim_number) WHERE valid_to IS NULL;
CREATE INDEX IF NOT EXISTS claims_history_valid_idx
    ON claims_history USING gist (int8range(valid_from, valid_to));
CREATE INDEX IF NOT EXISTS claims_history_created_idx ON claims_history (created_position, valid_from);

CREATE TABLE IF NOT EXISTS payer_balances_history (
    payer_id text NOT NULL,
    party_kind text NOT NULL,
    valid_from bigint NOT NULL,
    valid_to bigint,
    event_type text NOT NULL,
    present boolean NOT NULL,
    claims integer NOT NULL,
    open_claims integer NOT NULL,
    billed numeric(14,2) NOT NULL,
    allowed numeric(14,2) NOT NULL,
    paid numeric(14,2) NOT NULL,
    contractual numeric(14,2) NOT NULL,
    other_adjustments numeric(14,2) NOT NULL,
    patient_responsibility numeric(14,2) NOT NULL,
    written_off numeric(14,2) NOT NULL,
    provider_adjustments numeric(14,2) NOT NULL,
    outstanding numeric(14,2) NOT NULL,
    PRIMARY KEY (payer_id, party_kind, valid_from)
);
CREATE UNIQUE INDEX IF NOT EXISTS payer_balances_history_open_idx
    ON payer_balances_history (payer_id, party_kind) WHERE valid_to IS NULL;
CREATE INDEX IF NOT EXISTS payer_balances_history_valid_idx
    ON payer_balances_history USING gist (int8range(valid_from, valid_to));

CREATE TABLE IF NOT EXISTS payer_aging_history (
    payer_id text NOT NULL,
    party_kind text NOT NULL,
    submitted_on date NOT NULL,
    valid_from bigint NOT NULL,
    valid_to bigint,
    event_type text NOT NULL,
    present boolean NOT NULL,
    open_claims integer NOT NULL,
    outstanding numeric(14,2) NOT NULL,
    PRIMARY KEY (payer_id, party_kind, submitted_on, valid_from)
);
CREATE UNIQUE INDEX IF NOT EXISTS payer_aging_history_open_idx
    ON payer_aging_history (payer_id, party_kind, submitted_on) WHERE valid_to IS NULL;
CREATE INDEX IF NOT EXISTS payer_aging_history_valid_idx
    ON payer_aging_history USING gist (int8range(valid_from, valid_to));

CREATE TABLE IF NOT EXISTS patient_balances_history (
    patient_ref text NOT NULL,
    valid_from bigint NOT NULL,
    valid_to bigint,
    event_type text NOT NULL,
    present boolean NOT NULL,
    encounters integer NOT NULL,
    charged numeric(14,2) NOT NULL,
    owed numeric(14,2) NOT NULL,
    credit numeric(14,2) NOT NULL,
    paid numeric(14,2) NOT NULL,
    refunded numeric(14,2) NOT NULL,
    written_off numeric(14,2) NOT NULL,
    deductible numeric(14,2) NOT NULL,
    coinsurance numeric(14,2) NOT NULL,
    copay numeric(14,2) NOT NULL,
    statements integer NOT NULL,
    last_statement_date date,
    last_statement_amount numeric(14,2),
    last_statement_position bigint,
    PRIMARY KEY (patient_ref, valid_from)
);
CREATE UNIQUE INDEX IF NOT EXISTS patient_balances_history_open_idx
    ON patient_balances_history (patient_ref) WHERE valid_to IS NULL;
CREATE INDEX IF NOT EXISTS patient_balances_history_valid_idx
    ON patient_balances_history USING gist (int8range(valid_from, valid_to));

CREATE TABLE IF NOT EXISTS trend_diagnoses_history (
    diagnosis text NOT NULL,
    scope text NOT NULL,
    valid_from bigint NOT NULL,
    valid_to bigint,
    event_type text NOT NULL,
    present boolean NOT NULL,
    encounters integer NOT NULL,
    lines integer NOT NULL,
    charged numeric(14,2) NOT NULL,
    allowed numeric(14,2) NOT NULL,
    paid numeric(14,2) NOT NULL,
    PRIMARY KEY (diagnosis, scope, valid_from)
);
CREATE UNIQUE INDEX IF NOT EXISTS trend_diagnoses_history_open_idx
    ON trend_diagnoses_history (diagnosis, scope) WHERE valid_to IS NULL;
CREATE INDEX IF NOT EXISTS trend_diagnoses_history_valid_idx
    ON trend_diagnoses_history USING gist (int8range(valid_from, valid_to));

CREATE TABLE IF NOT EXISTS trend_diagnosis_services_history (
    diagnosis text NOT NULL,
    scope text NOT NULL,
    kind text NOT NULL,
    procedure_code text NOT NULL,
    revenue_code text NOT NULL,
    valid_from bigint NOT NULL,
    valid_to bigint,
    event_type text NOT NULL,
    present boolean NOT NULL,
    encounters integer NOT NULL,
    lines integer NOT NULL,
    units numeric(14,3) NOT NULL,
    charged numeric(14,2) NOT NULL,
    allowed numeric(14,2) NOT NULL,
    paid numeric(14,2) NOT NULL,
    PRIMARY KEY (diagnosis, scope, kind, procedure_code, revenue_code, valid_from)
);
CREATE UNIQUE INDEX IF NOT EXISTS trend_diagnosis_services_history_open_idx
    ON trend_diagnosis_services_history (diagnosis, scope, kind, procedure_code, revenue_code)
    WHERE valid_to IS NULL;
CREATE INDEX IF NOT EXISTS trend_diagnosis_services_history_valid_idx
    ON trend_diagnosis_services_history USING gist (int8range(valid_from, valid_to));

CREATE TABLE IF NOT EXISTS code_revisions_by_coder_history (
    actor_id text NOT NULL,
    actor_role text NOT NULL,
    valid_from bigint NOT NULL,
    valid_to bigint,
    event_type text NOT NULL,
    present boolean NOT NULL,
    diagnoses_coded integer NOT NULL,
    diagnoses_revised integer NOT NULL,
    diagnoses_removed integer NOT NULL,
    lines_added integer NOT NULL,
    line_codes_revised integer NOT NULL,
    lines_revised integer NOT NULL,
    lines_removed integer NOT NULL,
    charges_adjusted integer NOT NULL,
    PRIMARY KEY (actor_id, actor_role, valid_from)
);
CREATE UNIQUE INDEX IF NOT EXISTS code_revisions_by_coder_history_open_idx
    ON code_revisions_by_coder_history (actor_id, actor_role) WHERE valid_to IS NULL;
CREATE INDEX IF NOT EXISTS code_revisions_by_coder_history_valid_idx
    ON code_revisions_by_coder_history USING gist (int8range(valid_from, valid_to));

CREATE TABLE IF NOT EXISTS code_revisions_by_code_history (
    code_system text NOT NULL,
    code text NOT NULL,
    valid_from bigint NOT NULL,
    valid_to bigint,
    event_type text NOT NULL,
    present boolean NOT NULL,
    assigned integer NOT NULL,
    revised_from integer NOT NULL,
    revised_to integer NOT NULL,
    removed integer NOT NULL,
    PRIMARY KEY (code_system, code, valid_from)
);
CREATE UNIQUE INDEX IF NOT EXISTS code_revisions_by_code_history_open_idx
    ON code_revisions_by_code_history (code_system, code) WHERE valid_to IS NULL;
CREATE INDEX IF NOT EXISTS code_revisions_by_code_history_valid_idx
    ON code_revisions_by_code_history USING gist (int8range(valid_from, valid_to));

-- Existing databases: history starts where each projection stands now. The current rows are
-- seeded as versions valid from that position, so as-of reads from there on are complete;
-- earlier positions are refused until `ledger projections rebuild NAME` (which clears the
-- history and rebuilds it from position 0 with everything else).
DO $$
DECLARE
    claims_at bigint := COALESCE((SELECT notification_id FROM claims_tracking
                                  WHERE application_name = 'ledger' FOR UPDATE), 0);
    trends_at bigint := COALESCE((SELECT notification_id FROM trends_tracking
                                  WHERE application_name = 'ledger' FOR UPDATE), 0);
BEGIN
    INSERT INTO read_model_history_start VALUES ('claims', claims_at), ('trends', trends_at)
        ON CONFLICT (name) DO NOTHING;
    IF claims_at > 0 AND NOT EXISTS (SELECT 1 FROM claims_history) THEN
        INSERT INTO claims_history SELECT encounter_id, claim_number, claims_at, NULL, 'seed',
            created_position, patient_ref, payer_id, party_kind, bucket, frequency, status,
            service_from, service_to, diagnoses, total_charge, allowed, paid,
            patient_responsibility, contractual, other_adjustments, written_off, outstanding,
            payer_icn, submitted_on, denial_deadline, last_adjudicated_on, NULL,
            balance_primary, balance_secondary, balance_tertiary, balance_patient, version,
            last_event, updated_at FROM current_claims;
        INSERT INTO payer_balances_history SELECT payer_id, party_kind, claims_at, NULL, 'seed',
            true, claims, open_claims, billed, allowed, paid, contractual, other_adjustments,
            patient_responsibility, written_off, provider_adjustments, outstanding
            FROM payer_balances;
        INSERT INTO payer_aging_history SELECT payer_id, party_kind, submitted_on, claims_at,
            NULL, 'seed', true, open_claims, outstanding FROM payer_aging;
        INSERT INTO patient_balances_history SELECT patient_ref, claims_at, NULL, 'seed', true,
            encounters, charged, owed, credit, paid, refunded, written_off, deductible,
            coinsurance, copay, statements, last_statement_date, last_statement_amount,
            last_statement_position FROM patient_balances;
    END IF;
    IF trends_at > 0 AND NOT EXISTS (SELECT 1 FROM trend_diagnoses_history) THEN
        INSERT INTO trend_diagnoses_history SELECT diagnosis, scope, trends_at, NULL, 'seed',
            true, encounters, lines, charged, allowed, paid FROM trend_diagnoses;
        INSERT INTO trend_diagnosis_services_history SELECT diagnosis, scope, kind,
            procedure_code, revenue_code, trends_at, NULL, 'seed', true, encounters, lines,
            units, charged, allowed, paid FROM trend_diagnosis_services;
        INSERT INTO code_revisions_by_coder_history SELECT actor_id, actor_role, trends_at,
            NULL, 'seed', true, diagnoses_coded, diagnoses_revised, diagnoses_removed,
            lines_added, line_codes_revised, lines_revised, lines_removed, charges_adjusted
            FROM code_revisions_by_coder;
        INSERT INTO code_revisions_by_code_history SELECT code_system, code, trends_at, NULL,
            'seed', true, assigned, revised_from, revised_to, removed FROM code_revisions_by_code;
    END IF;
END $$;

-- The exceptions queue is not in the event log: each of its (append-only) events records the
-- log's head when it was written, so "as of position P" = its events with log_position <= P.
CREATE OR REPLACE FUNCTION ledger_log_head() RETURNS bigint LANGUAGE sql STABLE AS
    'SELECT COALESCE(max(notification_id), 0) FROM ledger_events';
ALTER TABLE x12_exception_events ADD COLUMN IF NOT EXISTS log_position bigint;
DO $$
DECLARE head bigint := ledger_log_head();
BEGIN
    UPDATE x12_exception_events SET log_position = head WHERE log_position IS NULL;
    INSERT INTO read_model_history_start VALUES
        ('exceptions', CASE WHEN EXISTS (SELECT 1 FROM x12_exception_events) THEN head ELSE 0 END)
        ON CONFLICT (name) DO NOTHING;
END $$;
ALTER TABLE x12_exception_events ALTER COLUMN log_position SET DEFAULT ledger_log_head();
ALTER TABLE x12_exception_events ALTER COLUMN log_position SET NOT NULL;
CREATE INDEX IF NOT EXISTS x12_exception_events_position_idx
    ON x12_exception_events (log_position);
