-- The workbench's claim search (issue 16): "outstanding > 0" and "payer + status" filters, newest
-- first. Few claims are outstanding at any time, so a partial index finds them without reading
-- the table (measured: 15 ms -> <1 ms at 11k claims; a full scan grows with the store).
CREATE INDEX IF NOT EXISTS current_claims_outstanding_open_idx
    ON current_claims (created_position) WHERE outstanding > 0;
CREATE INDEX IF NOT EXISTS current_claims_payer_status_idx
    ON current_claims (payer_id, status, created_position);
