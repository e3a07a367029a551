-- Which event a failing projection stopped at (issue 13): `ledger projections status` and
-- /ready name the projection, the event's log position and type, and the error.
ALTER TABLE projection_status ADD COLUMN IF NOT EXISTS last_error_position bigint;
ALTER TABLE projection_status ADD COLUMN IF NOT EXISTS last_error_event text;
