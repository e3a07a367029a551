-- Deferred sealing of lone-command batches (issue 14): a batch of one encounter's events is
-- committed without its seal and signed by the writer's background sealer within
-- LEDGER_SEAL_MAX_DELAY (1 s); batches of several encounters stay sealed in their transaction.
--
-- recorded_at: when the event was inserted (the server's clock, per row). `ledger verify`
-- reports an unsealed event younger than the bound as `pending` and an older one as
-- `inserted`; rows written before this migration have NULL (old: inserted if unsealed).
-- Added without a default first, so existing rows are not rewritten (clock_timestamp() is
-- volatile: as an ADD COLUMN default it would rewrite the table).
ALTER TABLE ledger_events ADD COLUMN IF NOT EXISTS recorded_at timestamptz;
ALTER TABLE ledger_events ALTER COLUMN recorded_at SET DEFAULT clock_timestamp();

-- The check a sealer makes before it signs from memory (the newest checkpoint it committed,
-- and the events it committed since): the newest checkpoint is still p_size, and exactly
-- p_known events sit after its last position and before p_before (the sealer's own). Raises
-- (ledger_seal_stale) otherwise; the caller then seals reading the database. Takes the
-- checkpoint job's advisory lock (ledger.audit.checkpoints.LOCK_KEY), like 0092's procedure.
CREATE OR REPLACE PROCEDURE ledger_seal_check(p_size bigint, p_last bigint, p_before bigint,
                                              p_known bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(7243019030);
    IF COALESCE((SELECT tree_size FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1), 0)
            <> p_size
       OR (SELECT count(*) FROM ledger_events
            WHERE notification_id > p_last AND notification_id < p_before) <> p_known THEN
        RAISE EXCEPTION 'ledger_seal_stale: the newest checkpoint is not %', p_size;
    END IF;
END $$;
REVOKE ALL ON PROCEDURE ledger_seal_check(bigint, bigint, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE ledger_seal_check(bigint, bigint, bigint, bigint) TO ledger_app;
