-- Projection "trends" (issue 3): services and supplies by diagnosis, and code revisions.
-- scope 'principal' counts an encounter under its principal diagnosis only; 'any' under
-- every diagnosis it carries. Line allowed/paid come from line-level remittance (SVC); claim-
-- level (e.g. DRG) payments show on the diagnosis row, not on its lines.
CREATE TABLE IF NOT EXISTS trend_diagnoses (
    diagnosis text NOT NULL,
    scope text NOT NULL,
    encounters integer NOT NULL,
    lines integer NOT NULL,
    charged numeric(14,2) NOT NULL,
    allowed numeric(14,2) NOT NULL,
    paid numeric(14,2) NOT NULL,
    PRIMARY KEY (diagnosis, scope)
);

CREATE TABLE IF NOT EXISTS trend_diagnosis_services (
    diagnosis text NOT NULL,
    scope text NOT NULL,
    kind text NOT NULL,                     -- service | supply
    procedure_code text NOT NULL,
    revenue_code text NOT NULL,
    encounters integer NOT NULL,
    lines integer NOT NULL,
    units numeric(14,3) NOT NULL,
    charged numeric(14,2) NOT NULL,
    allowed numeric(14,2) NOT NULL,
    paid numeric(14,2) NOT NULL,
    PRIMARY KEY (diagnosis, scope, kind, procedure_code, revenue_code)
);

CREATE TABLE IF NOT EXISTS code_revisions_by_coder (
    actor_id text NOT NULL,
    actor_role text NOT NULL,
    diagnoses_coded integer NOT NULL,
    diagnoses_revised integer NOT NULL,
    diagnoses_removed integer NOT NULL,
    lines_added integer NOT NULL,
    line_codes_revised integer NOT NULL,
    lines_revised integer NOT NULL,
    lines_removed integer NOT NULL,
    charges_adjusted integer NOT NULL,
    PRIMARY KEY (actor_id, actor_role)
);

CREATE TABLE IF NOT EXISTS code_revisions_by_code (
    code_system text NOT NULL,              -- ICD-10-CM | CPT/HCPCS | revenue
    code text NOT NULL,
    assigned integer NOT NULL,
    revised_from integer NOT NULL,
    revised_to integer NOT NULL,
    removed integer NOT NULL,
    PRIMARY KEY (code_system, code)
);

-- What the trends projection remembers per encounter to move its contribution when codes,
-- lines or payments change.
CREATE TABLE IF NOT EXISTS trend_encounters (
    encounter_id uuid PRIMARY KEY,
    diagnoses text[] NOT NULL,
    first_bucket text NOT NULL,
    claim_buckets jsonb NOT NULL,           -- {claim_number: bucket}
    allowed numeric(14,2) NOT NULL,
    paid numeric(14,2) NOT NULL,
    events bigint NOT NULL,
    version bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS trend_lines (
    encounter_id uuid NOT NULL,
    line_no integer NOT NULL,
    kind text NOT NULL,
    procedure_code text NOT NULL,
    revenue_code text NOT NULL,
    units numeric(14,3) NOT NULL,
    base_charge numeric(14,2) NOT NULL,
    charge numeric(14,2) NOT NULL,          -- base charge + charge adjustments
    allowed numeric(14,2) NOT NULL,
    paid numeric(14,2) NOT NULL,
    removed boolean NOT NULL,
    PRIMARY KEY (encounter_id, line_no)
);
