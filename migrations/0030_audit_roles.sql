-- Tamper evidence and audit (issue 8), 1/4: the application role and the append-only guard.
--
-- Two roles: the OWNER runs `ledger migrate` and owns every table (on the embedded server that
-- is the superuser `postgres`); LEDGER_APP_ROLE (by convention `ledger_app`, created here) is
-- what the service connects as. The app role may read everything and write the service's own
-- tables, but the append-only tables (events, snapshots, audit leaves, checkpoints, access
-- log) get INSERT and SELECT only, and a trigger refuses UPDATE, DELETE and TRUNCATE on them
-- from any role that is not a member of the table's owner (a second line of defence should
-- someone grant more than intended). The owner can still rewrite rows: that is what
-- `ledger verify` detects.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ledger_app') THEN
        BEGIN
            -- LOGIN without a password: usable over trust/peer auth (the embedded server);
            -- on a server with password auth set one: ALTER ROLE ledger_app PASSWORD '...'.
            CREATE ROLE ledger_app LOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;  -- another database, same time
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role ledger_app does not exist and role % may not create it',
                    current_user
                    USING HINT = 'as a DBA: CREATE ROLE ledger_app LOGIN PASSWORD ''...''; '
                                 'then run ledger migrate again';
        END;
    END IF;
END $$;

DO $$
DECLARE
    s text := current_schema();
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO ledger_app', s);
    -- Everything that exists now (other ranges' tables) and everything the owner creates
    -- later; the append-only tables revoke UPDATE/DELETE again in their own migrations.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I '
                   'TO ledger_app', s);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO ledger_app', s);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                   'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ledger_app', s);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                   'GRANT USAGE, SELECT ON SEQUENCES TO ledger_app', s);
END $$;

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ledger_migrations FROM ledger_app;

-- Statement-level guard for append-only tables (BEFORE UPDATE OR DELETE OR TRUNCATE).
CREATE OR REPLACE FUNCTION ledger_refuse_rewrite() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_catalog.pg_has_role(current_user,
            (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID),
            'MEMBER') THEN
        RETURN NULL;  -- the owner (migrations, maintenance, test fixtures)
    END IF;
    RAISE EXCEPTION '% on % refused: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'only the owner role may rewrite it, and ledger verify will notice';
END $$;
