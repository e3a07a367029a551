-- Per-batch sealing (issue 14): a writer that remembers the newest checkpoint it sealed checks,
-- in the batch's transaction and without waiting for an answer (CALL returns no row, so the
-- statement stays in the pipeline), that nothing changed since: the newest checkpoint is still
-- that one, and no event sits between it and the batch. Otherwise the procedure raises and
-- the batch is saved again with the checkpoint read from the database. It also takes the
-- checkpoint job's advisory lock (ledger.audit.checkpoints.LOCK_KEY).
CREATE OR REPLACE PROCEDURE ledger_seal_expect(p_size bigint, p_last bigint, p_first bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(7243019030);
    IF COALESCE((SELECT tree_size FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1), 0)
            <> p_size
       OR EXISTS (SELECT 1 FROM ledger_events
                   WHERE notification_id > p_last AND notification_id < p_first) THEN
        -- P0001 (not a serialization failure: the library would retry it with the same
        -- stale memory after a pause; the ledger's recorder retries at once, reading instead)
        RAISE EXCEPTION 'ledger_seal_stale: the newest checkpoint is not %', p_size;
    END IF;
END $$;
REVOKE ALL ON PROCEDURE ledger_seal_expect(bigint, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE ledger_seal_expect(bigint, bigint, bigint) TO ledger_app;
