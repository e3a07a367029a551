"""Scenarios 1-5 and 8 of shared/docs/domain.md through the application, on real PostgreSQL.

Every number is computed from events alone: each test reloads the encounter from the store
(the application here runs without a cache) before checking.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import pytest

from ledger.domain.errors import InvalidCode, RuleViolation
from ledger.domain.values import Money
from tests import builders as s

pytestmark = pytest.mark.postgres


def total(app, eid, group):
    enc = app.get_encounter(eid)
    out = Money.zero()
    for claim in enc.claims.values():
        for a in claim.adjudications:
            for adj in a.adjustments:
                if adj.group == group:
                    out = out + adj.amount
    return out


def test_scenario_1_clean_claim_copay_co45(app):
    eid = s.scenario_1(app)
    enc = app.get_encounter(eid)
    claim = enc.claims["S1-0001"]
    assert claim.status == "paid"
    assert claim.paid == s.m("114.82")
    assert enc.balance("primary") == s.m("0.00")
    assert enc.patient_balance() == s.m("30.00")
    assert total(app, eid, "CO") == s.m("95.18")
    assert enc.patient_share["copay"] == s.m("30.00")
    assert claim.allowed == s.m("144.82")


def test_scenario_2_deductible_and_coinsurance(app):
    eid = s.scenario_2(app)
    enc = app.get_encounter(eid)
    assert enc.claims["S2-0001"].paid == s.m("80.00")
    assert enc.balance("primary") == s.m("0.00")
    assert enc.patient_balance() == s.m("120.00")
    assert enc.patient_share["deductible"] == s.m("100.00")
    assert enc.patient_share["coinsurance"] == s.m("20.00")
    assert total(app, eid, "CO") == s.m("170.00")


def test_scenario_3_denial_appeal_paid(app):
    eid, l1 = s.scenario_3_denial(app)
    enc = app.get_encounter(eid)
    claim = enc.claims["S3-0001"]
    assert claim.status == "denied"
    assert claim.denial_deadline == date(2026, 4, 20).replace(month=8, day=18)  # +120 days
    assert enc.patient_balance() == s.m("0.00"), "a denial bills nothing to the patient"
    assert enc.balance("primary") == s.m("0.00")
    s.scenario_3_appeal_paid(app, eid, l1)
    enc = app.get_encounter(eid)
    claim = enc.claims["S3-0001"]
    assert claim.status == "paid"
    assert claim.payer_icn == "ICN-S3B"
    assert claim.paid == s.m("112.64")
    assert enc.balance("primary") == s.m("0.00")
    assert enc.patient_balance() == s.m("28.16")
    events = [type(e).__name__ for e in app.history(eid)]
    assert events.count("ClaimAdjudicated") == 2
    assert "DenialRecorded" in events and "AppealFiled" in events


def test_scenario_3_appeal_open_reopens_the_denied_amount(app):
    eid, _ = s.scenario_3_denial(app)
    app.execute(eid, "file_appeal", actor=s.BILLER, claim_number="S3-0001",
                filed_on=date(2026, 5, 1), reason="medical necessity documented")
    enc = app.get_encounter(eid)
    assert enc.claims["S3-0001"].status == "in_appeal"
    assert enc.balance("primary") == s.m("180.00")


def test_scenario_4_patient_overpays_then_refund(app):
    eid = s.scenario_2(app)
    due = app.execute(eid, "issue_statement", actor=s.BILLER,
                      statement_date=date(2026, 5, 1)).value
    assert due == s.m("120.00")
    after = app.execute(eid, "record_patient_payment", actor=s.BILLER, amount="150.00",
                        method="card", received_on=date(2026, 5, 10)).value
    assert after == s.m("-30.00")  # a credit of 30.00
    before = app.get_encounter(eid).version
    with pytest.raises(RuleViolation) as err:
        app.execute(eid, "issue_refund", actor=s.BILLER, amount="30.01", method="check",
                    issued_on=date(2026, 5, 12), reason="overpayment")
    assert err.value.rule == "refund.not_above_credit"
    assert app.get_encounter(eid).version == before, "a refused command writes nothing"
    after = app.execute(eid, "issue_refund", actor=s.BILLER, amount="30.00", method="check",
                        issued_on=date(2026, 5, 12), reason="overpayment").value
    assert after == s.m("0.00")
    assert app.get_encounter(eid).patient_balance() == s.m("0.00")


def test_scenario_5_coding_audit_and_time_travel(app):
    eid = s.open_encounter(app, patient_ref="PT-1005")
    app.execute(eid, "code_diagnosis", actor=s.CODER_A, code="R10.9")
    s.line(app, eid, "99213", "130.00", [1])
    t1 = datetime.now(UTC)
    v1 = app.get_encounter(eid).version
    time.sleep(0.01)
    for bad, rule in (("R10.3", "icd10cm.not_billable"), ("S52.521", "icd10cm.not_billable")):
        with pytest.raises(InvalidCode) as err:
            app.execute(eid, "revise_diagnosis", actor=s.CODER_B, position=1, new_code=bad,
                        reason="specificity")
        assert err.value.rule == rule and err.value.field == "new_code"
    app.execute(eid, "revise_diagnosis", actor=s.CODER_B, position=1, new_code="R10.31",
                reason="specificity")
    t2 = datetime.now(UTC)
    assert app.get_encounter(eid).version == v1 + 1, "refused revisions wrote nothing"

    assert app.encounter_as_of(eid, t1).diagnoses[0].code == "R109"
    assert app.encounter_as_of(eid, t2).diagnoses[0].code == "R1031"
    assert app.get_encounter(eid, version=v1).diagnoses[0].code == "R109"
    revised = [e for e in app.history(eid) if type(e).__name__ == "DiagnosisRevised"][0]
    assert (revised.old_code, revised.new_code) == ("R109", "R1031")
    assert (revised.actor_id, revised.reason) == ("coder-b", "specificity")
    assert revised.code_set_version.startswith("ICD-10-CM FY2026")

    s.create_scrub_submit(app, eid, "S5-0001")
    submitted = [e for e in app.history(eid) if type(e).__name__ == "ClaimSubmitted"][0]
    assert submitted.diagnoses == ["R1031"]


def test_scenario_5_code_not_valid_on_date_of_service(app):
    eid = s.open_encounter(app, dos=date(2019, 6, 1), patient_ref="PT-1055")
    with pytest.raises(InvalidCode) as err:
        app.execute(eid, "code_diagnosis", actor=s.CODER_A, code="R10.31")
    assert err.value.rule == "icd10cm.dos"
    assert app.get_encounter(eid).diagnoses == []


def test_scenario_8_inpatient_knee_replacement(app):
    eid = s.scenario_8_inpatient(app)
    enc = app.get_encounter(eid)
    assert enc.total_charge == s.m("24070.00")
    claim = enc.claims["S8-0001"]
    assert claim.paid == s.m("12650.00")
    assert total(app, eid, "CO") == s.m("9820.00")
    assert enc.balance("primary") == s.m("0.00")
    assert enc.patient_balance() == s.m("1600.00")
    assert enc.patient_share["deductible"] == s.m("1600.00")
    assert sorted(ln.revenue_code for ln in enc.active_lines()) == [
        "0120", "0250", "0272", "0278", "0360", "0370", "0420"]
    # the surgeon's professional claim is its own encounter
    pro = s.open_encounter(app, dos=date(2026, 3, 2), pos="21", patient_ref="PT-1008")
    s.code(app, pro, "M17.11")
    s.line(app, pro, "27447", "2800.00", [1], modifiers=["RT"])
    s.create_scrub_submit(app, pro, "S8-PRO-1")
    assert app.get_encounter(pro).claims["S8-PRO-1"].status == "submitted"
