-- Audit controls (issue 8), 4/4: the read-access log (HIPAA 45 CFR 164.312(b)).
--
-- One row per read of claim/encounter data through the API (and per auditor query): who,
-- what, when, from where, and the outcome. Append-only like the event log. ``tx`` is the
-- writing transaction's id, so that a reader can follow the log without skipping rows that
-- commit out of id order (rows with tx below the snapshot's xmin are final).
CREATE TABLE IF NOT EXISTS ledger_access_log (
    id            bigserial   PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor         text        NOT NULL,   -- staff or system id, never PHI
    actor_role    text,
    action        text        NOT NULL DEFAULT 'read',
    resource_type text        NOT NULL,   -- encounter, claim, history, access, ...
    resource_id   text,                   -- an opaque id (UUID, claim number), never PHI
    encounter_id  uuid,                   -- the encounter the data belongs to, if any
    route         text,                   -- the route template, e.g. /encounters/{encounter_id}
    client        text,                   -- remote address of the request
    outcome       text        NOT NULL,   -- allowed | denied | not_found | invalid | error
    status        integer,                -- HTTP status returned
    request_id    text,
    tx            xid8        NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX IF NOT EXISTS ledger_access_log_resource_idx
    ON ledger_access_log (resource_type, resource_id, id);
CREATE INDEX IF NOT EXISTS ledger_access_log_encounter_idx
    ON ledger_access_log (encounter_id, id) WHERE encounter_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ledger_access_log_actor_idx ON ledger_access_log (actor, id);
CREATE INDEX IF NOT EXISTS ledger_access_log_at_idx ON ledger_access_log (at);

REVOKE UPDATE, DELETE, TRUNCATE ON ledger_access_log FROM ledger_app, PUBLIC;
GRANT SELECT, INSERT ON ledger_access_log TO ledger_app;
GRANT USAGE ON SEQUENCE ledger_access_log_id_seq TO ledger_app;

CREATE OR REPLACE TRIGGER ledger_access_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_access_log
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_rewrite();
