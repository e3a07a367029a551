"""A small in-memory diagnosis code set for fast domain tests (real data is in ledger.codes)."""

from __future__ import annotations

from datetime import date

from ledger.domain.codeset import CodeVerdict

BILLABLE = {"E119", "I10", "M5450", "R1031", "R109", "S52521A", "J45901", "M1711", "Z0000"}
NOT_BILLABLE = {"R103", "S52521", "E11", "M17"}


class FakeCodeSet:
    version = "FAKE-2026"

    def check(self, code: str, date_of_service: date) -> CodeVerdict:
        if not date(2025, 10, 1) <= date_of_service <= date(2026, 9, 30):
            return CodeVerdict(code, False, "", "icd10cm.dos", "no code set covers the DOS")
        if code in BILLABLE:
            return CodeVerdict(code, True, self.version)
        if code in NOT_BILLABLE:
            return CodeVerdict(code, False, self.version, "icd10cm.not_billable",
                               "a category, not billable")
        return CodeVerdict(code, False, self.version, "icd10cm.unknown", "unknown code")
