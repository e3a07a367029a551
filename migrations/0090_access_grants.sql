-- Access grants (issue 14): which advocate may read or work which encounter, on whose
-- behalf and until when. The source of truth is the AccessGranted / AccessRevoked events on
-- the encounter; this table is written in the SAME transaction as those events (so a
-- revocation takes effect at once) and lets list reads (claims, balances, queues) filter by
-- grant without replaying encounters. No PHI: the authorization reference is a surrogate.
CREATE TABLE IF NOT EXISTS ledger_access_grants (
    grant_id          text        PRIMARY KEY,
    encounter_id      uuid        NOT NULL,
    grantee_id        text        NOT NULL,
    authorization_ref text        NOT NULL,
    basis             text        NOT NULL CHECK (basis IN ('staff', 'patient_authorization')),
    valid_until       timestamptz NOT NULL,
    granted_by        text        NOT NULL,
    granted_at        timestamptz NOT NULL DEFAULT now(),
    revoked_at        timestamptz,
    revoked_by        text
);
CREATE INDEX IF NOT EXISTS ledger_access_grants_grantee_idx
    ON ledger_access_grants (grantee_id, encounter_id);
CREATE INDEX IF NOT EXISTS ledger_access_grants_encounter_idx
    ON ledger_access_grants (encounter_id);
