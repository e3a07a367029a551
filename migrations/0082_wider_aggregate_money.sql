-- Read models that sum amounts ACROSS encounters (per payer, per patient, per diagnosis) get
-- 16 digits before the point (issue 13): one amount is at most 99,999,999.99 (the domain's
-- limit, ledger/domain/values.py), so a per-encounter sum stays within numeric(14,2), and a
-- sum over many encounters within numeric(18,2) — a value the domain accepts never stops a
-- projection with a numeric overflow (SQLSTATE 22003). Widening keeps every stored value.
ALTER TABLE payer_balances
    ALTER COLUMN billed TYPE numeric(18,2), ALTER COLUMN allowed TYPE numeric(18,2),
    ALTER COLUMN paid TYPE numeric(18,2), ALTER COLUMN contractual TYPE numeric(18,2),
    ALTER COLUMN other_adjustments TYPE numeric(18,2),
    ALTER COLUMN patient_responsibility TYPE numeric(18,2),
    ALTER COLUMN written_off TYPE numeric(18,2),
    ALTER COLUMN provider_adjustments TYPE numeric(18,2),
    ALTER COLUMN outstanding TYPE numeric(18,2);
ALTER TABLE payer_aging ALTER COLUMN outstanding TYPE numeric(18,2);
ALTER TABLE patient_balances
    ALTER COLUMN charged TYPE numeric(18,2), ALTER COLUMN owed TYPE numeric(18,2),
    ALTER COLUMN credit TYPE numeric(18,2), ALTER COLUMN paid TYPE numeric(18,2),
    ALTER COLUMN refunded TYPE numeric(18,2), ALTER COLUMN written_off TYPE numeric(18,2),
    ALTER COLUMN deductible TYPE numeric(18,2), ALTER COLUMN coinsurance TYPE numeric(18,2),
    ALTER COLUMN copay TYPE numeric(18,2);
ALTER TABLE trend_diagnoses
    ALTER COLUMN charged TYPE numeric(18,2), ALTER COLUMN allowed TYPE numeric(18,2),
    ALTER COLUMN paid TYPE numeric(18,2);
ALTER TABLE trend_diagnosis_services
    ALTER COLUMN units TYPE numeric(18,3), ALTER COLUMN charged TYPE numeric(18,2),
    ALTER COLUMN allowed TYPE numeric(18,2), ALTER COLUMN paid TYPE numeric(18,2);
