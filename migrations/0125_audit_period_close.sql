-- Issue 19: period closes in the audit trail. A PeriodClosed event is its accounting period's,
-- not an encounter's: its audit row has no encounter_id and names the period instead.
-- Existing databases: closes recorded before this migration appear after
-- `ledger projections rebuild audit`.
ALTER TABLE audit_trail ALTER COLUMN encounter_id DROP NOT NULL;
ALTER TABLE audit_trail ADD COLUMN IF NOT EXISTS period text;
CREATE INDEX IF NOT EXISTS audit_trail_period_idx ON audit_trail (period, position)
    WHERE period IS NOT NULL;
