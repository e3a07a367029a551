-- Tamper evidence (issue 8): the recorder takes the event-table lock with CALL of a procedure
-- instead of SELECT of a function: a SELECT returns a row, which made the pipelined insert
-- wait for it (one more round trip per transaction). Same lock, same owner's right.
DO $$
BEGIN
    EXECUTE format(
        'CREATE OR REPLACE PROCEDURE %1$I.ledger_events_take_lock() '
        'LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS '
        '$p$BEGIN LOCK TABLE %1$I.ledger_events IN EXCLUSIVE MODE; END$p$',
        current_schema());
END $$;
REVOKE ALL ON PROCEDURE ledger_events_take_lock() FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE ledger_events_take_lock() TO ledger_app;
DROP FUNCTION IF EXISTS ledger_events_lock();
