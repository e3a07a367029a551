-- Tamper evidence (issue 8): the recorder sends the chained insert as scalar arrays in binary
-- format (cheaper than composite rows), so the composite type from 0031 is not used.
DROP TYPE IF EXISTS stored_event_chained;
