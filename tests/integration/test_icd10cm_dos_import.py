"""An 837P with 2025 dates of service is coded against ICD-10-CM FY2025 (issue 12 item 9):
before, every claim with a 2025 date of service was refused (`icd10cm.dos`). The scenario-1
837P (real X12 text, parsed for real) is re-dated and re-numbered; a code that exists only in
FY2025 is accepted for 2025 and refused for 2026, and a date before every shipped set is
refused naming the set to add."""

from __future__ import annotations

import pytest

from ledger.x12.importer import X12Importer
from tests.conftest import FIXTURES

pytestmark = pytest.mark.postgres

SCENARIO_1 = FIXTURES / "scenarios" / "s01_original_freq1.837p"


def redated(day: str, claim: str, dx: str, control: str) -> bytes:
    text = SCENARIO_1.read_text()
    text = text.replace("DTP*472*D8*20260402", f"DTP*472*D8*{day}")
    text = text.replace("CLM*ENC1001*", f"CLM*{claim}*").replace("*ENC1001*", f"*{claim}*")
    text = text.replace("HI*ABK:E119*ABF:I10", f"HI*ABK:{dx}*ABF:I10")
    return text.replace("000000101", control).encode()


@pytest.fixture
def imp(app, clean_db):
    return X12Importer(app, clean_db)


def test_a_2025_claim_is_coded_with_fy2025(app, imp):
    # S30.1XXA (contusion of abdominal wall) was deleted for FY2026
    r = imp.import_bytes(redated("20250512", "ENC2025A", "S301XXA", "000000201"), "a.837p")
    assert r.outcome == "imported", r.as_dict()
    enc = app.get_encounter(r.encounters[0])
    assert [d.code for d in enc.diagnoses] == ["S301XXA", "I10"]
    assert {d.code_set_version for d in enc.diagnoses} == {
        "ICD-10-CM FY2025 (April 1, 2025 release)"}
    assert enc.claims["ENC2025A"].status == "submitted"


def test_a_code_deleted_for_fy2026_is_refused_on_a_2026_claim(app, imp):
    r = imp.import_bytes(redated("20260402", "ENC2026B", "S301XXA", "000000202"), "b.837p")
    assert r.posted == 0, r.as_dict()
    text = str(r.as_dict())
    assert "icd10cm.dos" in text and "exists in ICD-10-CM FY2025" in text


def test_a_date_before_every_shipped_set_names_the_set_to_add(app, imp):
    r = imp.import_bytes(redated("20240512", "ENC2024C", "E119", "000000203"), "c.837p")
    assert r.posted == 0, r.as_dict()
    text = str(r.as_dict())
    assert "needs ICD-10-CM FY2024" in text
    assert "LEDGER_ICD10CM_ORDER_FILES=FY2024=" in text
