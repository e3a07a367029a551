-- Tamper evidence (issue 8), 2/4: the per-encounter hash chain on the event table.
--
-- chain_hash is computed by the application (ledger/audit/chain.py) in the same transaction
-- as the insert; see README "Tamper evidence" for the canonical bytes. Rows stored before
-- this migration are chained here once, with the same bytes. NOT NULL: a writer that does not
-- chain (e.g. the library's plain recorder) is refused instead of leaving a hole.
ALTER TABLE ledger_events ADD COLUMN IF NOT EXISTS chain_hash bytea;

DO $$ BEGIN
    CREATE TYPE stored_event_chained AS (
        originator_id uuid, originator_version bigint, topic text, state bytea,
        chain_hash bytea);
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

DO $$
DECLARE
    r record;
    prev bytea;
    cur uuid;
    t bytea;
BEGIN
    FOR r IN SELECT originator_id, originator_version, topic, state FROM ledger_events
             WHERE chain_hash IS NULL ORDER BY originator_id, originator_version LOOP
        IF cur IS DISTINCT FROM r.originator_id THEN
            cur := r.originator_id;
            prev := CASE WHEN r.originator_version = 1 THEN decode(repeat('00', 32), 'hex')
                         ELSE (SELECT chain_hash FROM ledger_events
                               WHERE originator_id = r.originator_id
                                 AND originator_version = r.originator_version - 1) END;
        END IF;
        t := convert_to(coalesce(r.topic, ''), 'UTF8');
        prev := sha256(prev || int4send(16) || uuid_send(r.originator_id)
                       || int8send(r.originator_version)
                       || int4send(octet_length(t)) || t
                       || int4send(octet_length(coalesce(r.state, ''::bytea)))
                       || coalesce(r.state, ''::bytea));
        UPDATE ledger_events SET chain_hash = prev
        WHERE originator_id = r.originator_id AND originator_version = r.originator_version;
    END LOOP;
END $$;

ALTER TABLE ledger_events ALTER COLUMN chain_hash SET NOT NULL;
ALTER TABLE ledger_events ADD CONSTRAINT ledger_events_chain_hash_size
    CHECK (octet_length(chain_hash) = 32);

-- The library's LOCK TABLE ... IN EXCLUSIVE MODE needs UPDATE, DELETE or TRUNCATE privilege,
-- which the app role must not have. This function takes the same lock (held to commit) with
-- its owner's right; the recorder calls it instead (ledger/audit/chain.py).
DO $$
BEGIN
    EXECUTE format(
        'CREATE OR REPLACE FUNCTION %1$I.ledger_events_lock() RETURNS void '
        'LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS '
        '$f$BEGIN LOCK TABLE %1$I.ledger_events IN EXCLUSIVE MODE; END$f$',
        current_schema());
END $$;
REVOKE ALL ON FUNCTION ledger_events_lock() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_events_lock() TO ledger_app;

REVOKE UPDATE, DELETE, TRUNCATE ON ledger_events, ledger_snapshots FROM ledger_app, PUBLIC;
GRANT SELECT, INSERT ON ledger_events, ledger_snapshots TO ledger_app;

CREATE OR REPLACE TRIGGER ledger_events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_rewrite();
CREATE OR REPLACE TRIGGER ledger_snapshots_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_snapshots
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_rewrite();
