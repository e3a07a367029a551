-- Projection "claims" (issue 3): current claims and their lines, encounters with balances
-- per bucket, payer balances with aging, patient balances, and the disputes/denials queue.
-- All maintained in one transaction per page with claims_tracking. Amounts NUMERIC(14,2).
-- No names or member ids: patient_ref is the surrogate reference the encounter was opened with.

CREATE TABLE IF NOT EXISTS claims_encounters (
    encounter_id uuid PRIMARY KEY,
    patient_ref text NOT NULL,
    facility_id text NOT NULL,
    claim_type text NOT NULL,
    place_of_service text NOT NULL,
    service_from date NOT NULL,
    service_to date NOT NULL,
    parties jsonb NOT NULL,                 -- [{bucket, kind, payer_id}] in COB order
    diagnoses text[] NOT NULL,              -- ICD-10-CM without the dot, position order
    total_charge numeric(14,2) NOT NULL,
    balance_primary numeric(14,2) NOT NULL,
    balance_secondary numeric(14,2) NOT NULL,
    balance_tertiary numeric(14,2) NOT NULL,
    balance_patient numeric(14,2) NOT NULL,
    patient_paid numeric(14,2) NOT NULL,
    refunded numeric(14,2) NOT NULL,
    written_off numeric(14,2) NOT NULL,
    patient_written_off numeric(14,2) NOT NULL,
    deductible numeric(14,2) NOT NULL,
    coinsurance numeric(14,2) NOT NULL,
    copay numeric(14,2) NOT NULL,
    other_patient_responsibility numeric(14,2) NOT NULL,
    provider_adjustments numeric(14,2) NOT NULL,
    statements integer NOT NULL,
    last_statement_date date,
    last_statement_amount numeric(14,2),
    last_statement_position bigint,
    events bigint NOT NULL,                 -- events applied: equals the stream length
    version bigint NOT NULL,
    last_event text NOT NULL,
    last_position bigint NOT NULL,
    opened_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_encounters_patient_idx ON claims_encounters (patient_ref);

CREATE TABLE IF NOT EXISTS claims_encounter_lines (
    encounter_id uuid NOT NULL,
    line_no integer NOT NULL,
    kind text NOT NULL,
    procedure_code text NOT NULL,
    revenue_code text NOT NULL,
    modifiers text[] NOT NULL,
    units numeric(14,3) NOT NULL,
    unit_type text NOT NULL,
    base_charge numeric(14,2) NOT NULL,
    charge_adjustments numeric(14,2) NOT NULL,
    charge numeric(14,2) NOT NULL,
    pointers integer[] NOT NULL,
    line_date date NOT NULL,
    ndc text NOT NULL,
    removed boolean NOT NULL,
    allowed numeric(14,2) NOT NULL,
    paid numeric(14,2) NOT NULL,
    PRIMARY KEY (encounter_id, line_no)
);

CREATE TABLE IF NOT EXISTS current_claims (
    encounter_id uuid NOT NULL,
    claim_number text NOT NULL,
    created_position bigint NOT NULL,       -- log position of ClaimCreated: the list cursor
    patient_ref text NOT NULL,
    facility_id text NOT NULL,
    claim_type text NOT NULL,
    payer_id text NOT NULL,
    party_kind text NOT NULL,               -- insurer | business
    bucket text NOT NULL,                   -- primary | secondary | tertiary
    frequency text NOT NULL,                -- 1 original, 7 replacement, 8 void
    original_icn text NOT NULL,
    replaces text NOT NULL,
    replaced_by text NOT NULL,
    status text NOT NULL,
    scrub_passed boolean NOT NULL,
    submissions integer NOT NULL,
    service_from date NOT NULL,
    service_to date NOT NULL,
    diagnoses text[] NOT NULL,              -- as submitted, or the encounter's until then
    line_nos integer[] NOT NULL,
    total_charge numeric(14,2) NOT NULL,
    submitted_charge numeric(14,2),
    submitted_on date,                      -- latest submission (recorded date, UTC)
    first_submitted_on date,
    payer_icn text NOT NULL,
    allowed numeric(14,2) NOT NULL,         -- paid + patient responsibility, net of reversals
    paid numeric(14,2) NOT NULL,
    patient_responsibility numeric(14,2) NOT NULL,
    contractual numeric(14,2) NOT NULL,     -- CO
    other_adjustments numeric(14,2) NOT NULL, -- OA + PI
    adjustments jsonb NOT NULL,             -- [{group, reason, amount}] claim + line level
    written_off numeric(14,2) NOT NULL,
    provider_adjustments numeric(14,2) NOT NULL,
    reopened numeric(14,2) NOT NULL,
    outstanding numeric(14,2) NOT NULL,
    denial_deadline date,
    denied_amount numeric(14,2),
    appeal_open boolean NOT NULL,
    appeals integer NOT NULL,
    adjudications integer NOT NULL,
    last_adjudicated_on date,
    remarks text[] NOT NULL,
    balance_primary numeric(14,2) NOT NULL,
    balance_secondary numeric(14,2) NOT NULL,
    balance_tertiary numeric(14,2) NOT NULL,
    balance_patient numeric(14,2) NOT NULL,
    version bigint NOT NULL,                -- encounter version of the claim's last change
    last_event text NOT NULL,
    last_position bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (encounter_id, claim_number)
);
CREATE UNIQUE INDEX IF NOT EXISTS current_claims_created_position_idx
    ON current_claims (created_position);
CREATE INDEX IF NOT EXISTS current_claims_number_idx ON current_claims (claim_number);
CREATE INDEX IF NOT EXISTS current_claims_status_idx ON current_claims (status, created_position);
CREATE INDEX IF NOT EXISTS current_claims_payer_idx ON current_claims (payer_id, created_position);
CREATE INDEX IF NOT EXISTS current_claims_patient_idx ON current_claims (patient_ref);
CREATE INDEX IF NOT EXISTS current_claims_dos_idx ON current_claims (service_from);
CREATE INDEX IF NOT EXISTS current_claims_diagnoses_idx ON current_claims USING gin (diagnoses);

CREATE TABLE IF NOT EXISTS current_claim_lines (
    encounter_id uuid NOT NULL,
    claim_number text NOT NULL,
    line_no integer NOT NULL,
    kind text NOT NULL,
    procedure_code text NOT NULL,
    revenue_code text NOT NULL,
    modifiers text[] NOT NULL,
    units numeric(14,3) NOT NULL,
    unit_type text NOT NULL,
    charge numeric(14,2) NOT NULL,
    pointers integer[] NOT NULL,
    line_date date NOT NULL,
    allowed numeric(14,2) NOT NULL,
    paid numeric(14,2) NOT NULL,
    patient_responsibility numeric(14,2) NOT NULL,
    adjustments jsonb NOT NULL,             -- [{group, reason, amount}]
    remarks text[] NOT NULL,
    PRIMARY KEY (encounter_id, claim_number, line_no)
);
CREATE INDEX IF NOT EXISTS current_claim_lines_code_idx ON current_claim_lines (procedure_code);
CREATE INDEX IF NOT EXISTS current_claim_lines_revenue_idx ON current_claim_lines (revenue_code);

-- Per payer and kind of party. Totals are net of reversals; billed counts the current
-- (not replaced, not voided) submitted claims; outstanding is what submitted claims still
-- await from the payer. See ledger/projections/claims.py for the exact definitions.
CREATE TABLE IF NOT EXISTS payer_balances (
    payer_id text NOT NULL,
    party_kind text NOT NULL,
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
    PRIMARY KEY (payer_id, party_kind)
);

-- Outstanding by latest submission date: the aging buckets (0-30 ... >120 days) are summed
-- from here at query time, because age grows with the clock, not with events.
CREATE TABLE IF NOT EXISTS payer_aging (
    payer_id text NOT NULL,
    party_kind text NOT NULL,
    submitted_on date NOT NULL,
    open_claims integer NOT NULL,
    outstanding numeric(14,2) NOT NULL,
    PRIMARY KEY (payer_id, party_kind, submitted_on)
);

CREATE TABLE IF NOT EXISTS patient_balances (
    patient_ref text PRIMARY KEY,
    encounters integer NOT NULL,
    charged numeric(14,2) NOT NULL,
    owed numeric(14,2) NOT NULL,            -- sum of positive patient balances
    credit numeric(14,2) NOT NULL,          -- sum of credits (refund liability)
    paid numeric(14,2) NOT NULL,
    refunded numeric(14,2) NOT NULL,
    written_off numeric(14,2) NOT NULL,
    deductible numeric(14,2) NOT NULL,
    coinsurance numeric(14,2) NOT NULL,
    copay numeric(14,2) NOT NULL,
    statements integer NOT NULL,
    last_statement_date date,
    last_statement_amount numeric(14,2),
    last_statement_position bigint
);

-- Disputes, denials and rejections with their deadlines (appeal deadline; timely filing for
-- rejections; a response target for disputes). Resolved items stay, with closed_at.
CREATE TABLE IF NOT EXISTS work_queue (
    encounter_id uuid NOT NULL,
    item_kind text NOT NULL,                -- denial | rejection | dispute
    item_ref text NOT NULL,                 -- claim number or dispute id
    claim_number text NOT NULL,
    payer_id text NOT NULL,
    patient_ref text NOT NULL,
    status text NOT NULL,                   -- open | in_appeal | resolved
    deadline date,
    amount numeric(14,2),
    reason_codes text[] NOT NULL,           -- CARC
    remark_codes text[] NOT NULL,           -- RARC
    category text NOT NULL,
    assignee text NOT NULL,
    line_nos integer[] NOT NULL,
    notes integer NOT NULL,
    appeals integer NOT NULL,
    outcome text NOT NULL,
    opened_position bigint NOT NULL,
    opened_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    closed_at timestamptz,
    PRIMARY KEY (encounter_id, item_kind, item_ref)
);
CREATE INDEX IF NOT EXISTS work_queue_open_idx ON work_queue (status, deadline);
