"""837P export of scrubbed claims (frequency 1, 7 with REF*F8, 8), checked with pyx12's
validator for 005010X222A1, and read back by the 837 importer."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from ledger.domain.errors import RuleViolation
from ledger.x12.claims837 import read_837
from ledger.x12.export837 import Address, ExportContext, export_837p, x12valid
from ledger.x12.importer import X12Importer
from tests import builders as s
from tests.conftest import FIXTURES

pytestmark = pytest.mark.postgres

CTX = ExportContext(
    sender_id="PROVIDERSUBMIT", receiver_id="PAYERRCV", submitter_name="EXAMPLE FAMILY MEDICINE",
    submitter_contact="BILLING OFFICE", submitter_phone="2175551212",
    receiver_name="EXAMPLE HEALTH PLAN", billing_name="EXAMPLE FAMILY MEDICINE",
    billing_npi="1234567893", billing_tin="371234567",
    billing_address=Address("100 MAIN ST", "SPRINGFIELD", "IL", "627010000"),
    subscriber_last="DOE", subscriber_first="JANE",
    subscriber_address=Address("12 OAK ST", "SPRINGFIELD", "IL", "627020000"),
    subscriber_birth_date=date(1970, 1, 15), subscriber_gender="F")
NOW = datetime(2026, 4, 3, 9, 0)


def segments(text):
    return [seg.strip() for seg in text.split("~") if seg.strip()]


def test_export_of_imported_scenario_1_passes_x12valid(app, clean_db):
    imp = X12Importer(app, clean_db)
    r = imp.import_path(FIXTURES / "scenarios/s01_original_freq1.837p")
    enc = app.get_encounter(r.encounters[0])
    out = export_837p(enc, "ENC1001", CTX, control_number=101, now=NOW)
    ok, errors = x12valid(out.text)
    assert ok, errors
    segs = segments(out.text)
    assert "CLM*ENC1001*240***11:B:1*Y*A*Y*Y" in segs
    assert "HI*ABK:E119*ABF:I10" in segs
    assert [x for x in segs if x.startswith("SV1")] == [
        "SV1*HC:99214*180*UN*1***1:2", "SV1*HC:83036*45*UN*1***1", "SV1*HC:36415*15*UN*1***1"]
    assert (out.interchange_control, out.group_control) == ("000000101", "101")
    # the ledger reads its own export back
    back = read_837(out.text.encode())
    (claim,) = back.claims
    assert claim.valid and claim.claim_number == "ENC1001" and claim.diagnoses == ["E119", "I10"]


def test_export_replacement_and_void(app):
    eid = s.open_encounter(app, patient_ref="PT-2007")
    s.code(app, eid, "E11.9", "I10")
    line = s.line(app, eid, "99213", "130.00", [1, 2])
    s.line(app, eid, "97110", "90.00", [1], units=2, modifiers=["GP"])
    s.create_scrub_submit(app, eid, "S7-0001")
    s.post(app, eid, "S7-0001", status="1", charge="220.00", paid="67.00", pr="25.00",
           icn="A0004", trace="TRN-7", claim_adjs=[s.adj("CO", "45", "128.00"),
                                                   s.adj("PR", "3", "25.00")])
    app.execute(eid, "revise_service_line", actor=s.CODER_B, line_no=line, reason="MDM moderate",
                procedure_code="99214", charge="180.00")
    app.execute(eid, "create_claim", actor=s.BILLER, claim_number="S7-0001R", frequency="7",
                original_icn="A0004")
    app.scrub_claim(eid, "S7-0001R", actor=s.BILLER)
    out = export_837p(app.get_encounter(eid), "S7-0001R", CTX, control_number=7, now=NOW)
    assert x12valid(out.text) == (True, [])
    segs = segments(out.text)
    assert "CLM*S7-0001R*270***11:B:7*Y*A*Y*Y" in segs and "REF*F8*A0004" in segs
    assert "SV1*HC:97110:GP*90*UN*2***1" in segs

    eid8 = s.open_encounter(app, patient_ref="PT-2008")
    s.code(app, eid8, "E11.9")
    s.line(app, eid8, "99213", "130.00", [1])
    app.execute(eid8, "create_claim", actor=s.BILLER, claim_number="V-1", frequency="8",
                original_icn="B0001")
    app.scrub_claim(eid8, "V-1", actor=s.BILLER)
    out = export_837p(app.get_encounter(eid8), "V-1", CTX, control_number=8, now=NOW)
    assert x12valid(out.text) == (True, [])
    assert "REF*F8*B0001" in segments(out.text)


def test_export_requires_a_passing_scrub_of_current_content(app):
    eid = s.open_encounter(app, patient_ref="PT-2009")
    s.code(app, eid, "E11.9")
    line = s.line(app, eid, "99213", "130.00", [1])
    app.execute(eid, "create_claim", actor=s.BILLER, claim_number="X-1")
    with pytest.raises(RuleViolation) as err:
        export_837p(app.get_encounter(eid), "X-1", CTX)
    assert err.value.rule == "export.requires_passing_scrub"
    app.scrub_claim(eid, "X-1", actor=s.BILLER)
    export_837p(app.get_encounter(eid), "X-1", CTX)
    app.execute(eid, "revise_service_line", actor=s.CODER_B, line_no=line, reason="units",
                units=2)
    with pytest.raises(RuleViolation):
        export_837p(app.get_encounter(eid), "X-1", CTX)


def test_x12valid_catches_a_bad_837():
    text = (FIXTURES / "scenarios/s01_original_freq1.837p").read_text()
    assert x12valid(text) == (True, [])
    ok, errors = x12valid(text.replace("SV1*HC:36415*15*UN", "SV1*HC:36415*15*XX"))
    assert not ok and any("SV103" in e for e in errors)
