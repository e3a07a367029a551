-- Projection "audit" (issue 3): one row per event, in log order, with a readable summary.
-- Summaries carry codes, amounts and reasons, never names or member ids.
CREATE TABLE IF NOT EXISTS audit_trail (
    position bigint PRIMARY KEY,            -- log position (notification id)
    encounter_id uuid NOT NULL,
    version bigint NOT NULL,
    event_type text NOT NULL,
    actor_id text NOT NULL,
    actor_role text NOT NULL,
    reason text NOT NULL,
    recorded_at timestamptz NOT NULL,
    effective_date date,
    claim_number text,
    codes text[] NOT NULL,                  -- codes the event is about (ICD-10-CM undotted)
    amount numeric(14,2),
    summary text NOT NULL,
    changes jsonb,                          -- {field: [before, after]} for revisions
    UNIQUE (encounter_id, version)
);
CREATE INDEX IF NOT EXISTS audit_trail_claim_idx ON audit_trail (claim_number, position);
CREATE INDEX IF NOT EXISTS audit_trail_actor_idx ON audit_trail (actor_id, position);
CREATE INDEX IF NOT EXISTS audit_trail_recorded_idx ON audit_trail (recorded_at);
CREATE INDEX IF NOT EXISTS audit_trail_codes_idx ON audit_trail USING gin (codes);

-- What the audit projection remembers per encounter to describe later events.
CREATE TABLE IF NOT EXISTS audit_encounters (
    encounter_id uuid PRIMARY KEY,
    service_from date NOT NULL,
    line_codes jsonb NOT NULL,              -- {line_no: code}
    events bigint NOT NULL
);
