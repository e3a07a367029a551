-- Issue 19: the billers' lead, who closes accounting periods (and may do what a biller does).
ALTER TABLE ledger_users DROP CONSTRAINT IF EXISTS ledger_users_role_check;
ALTER TABLE ledger_users ADD CONSTRAINT ledger_users_role_check
    CHECK (role IN ('coder', 'biller', 'auditor', 'advocate', 'admin', 'billing_lead'));
