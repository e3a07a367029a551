"""Scenario 6 of shared/docs/domain.md through the application on real PostgreSQL, with the
real ICD-10-CM set and NCCI PTP / MUE tables read from CMS-layout test files.

99213 $130 + 96372 $40 + J1100 x 10 @ $5 = $220, dx J45.901: the scrubber flags the missing
modifier 25 (NCCI pair 96372/99213, modifier indicator 1), the missing NDC on J1100 and its
units above the MUE; after correction the claim passes; both ClaimScrubbed runs stay in
history, each with its rule-set version and findings.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.codes.edits import CMSEditTables
from ledger.domain.errors import RuleViolation
from ledger.domain.scrubber import RULESET_VERSION
from tests import builders as s

pytestmark = pytest.mark.postgres

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "codes"


@pytest.fixture
def app(app_env: dict[str, str]) -> Iterator[object]:
    from ledger.application.service import LedgerApplication

    tables = CMSEditTables(str(FIXTURES / "ncci_ptp_test.txt"), str(FIXTURES / "mue_test.csv"))
    application = LedgerApplication(env=app_env, edit_tables=tables)
    yield application
    application.close()


def test_scenario_6_scrubber_flags_then_passes_the_corrected_claim(app):
    eid = s.open_encounter(app, patient_ref="PT-1006")
    s.code(app, eid, "J45.901")
    em = s.line(app, eid, "99213", "130.00", [1])
    inj = s.line(app, eid, "96372", "40.00", [1])
    drug = s.line(app, eid, "J1100", "50.00", [1], units=10)
    enc = app.get_encounter(eid)
    assert str(enc.total_charge) == "220.00"
    assert enc.diagnoses[0].code_set_version.startswith("ICD-10-CM FY2026")
    app.execute(eid, "create_claim", actor=s.BILLER, claim_number="S6-0001")

    first = app.scrub_claim(eid, "S6-0001", actor=s.BILLER).value
    by_rule = {f.rule_id: f for f in first}
    assert sorted(by_rule) == ["LN008", "MUE001", "NCCI002"]
    assert all(f.severity == "error" for f in first)
    assert by_rule["NCCI002"].line_no == em
    assert "append modifier 25 to 99213" in by_rule["NCCI002"].message
    assert by_rule["LN008"].line_no == drug and "J1100 needs the NDC" in by_rule["LN008"].message
    assert by_rule["MUE001"].line_no == drug
    assert "10 units of J1100" in by_rule["MUE001"].message
    assert "medically unlikely edit of 8" in by_rule["MUE001"].message
    assert inj not in {f.line_no for f in first}

    with pytest.raises(RuleViolation) as err:
        app.execute(eid, "submit_claim", actor=s.BILLER, claim_number="S6-0001")
    assert err.value.rule == "submit.requires_passing_scrub"

    app.execute(eid, "revise_service_line", actor=s.CODER_A, line_no=em, modifiers=["25"],
                reason="significant, separately identifiable E/M")
    app.execute(eid, "revise_service_line", actor=s.CODER_A, line_no=drug, units=8,
                charge="40.00", ndc="00409-4888-02", ndc_quantity=1,
                reason="NDC from the vial; units within the MUE")
    second = app.scrub_claim(eid, "S6-0001", actor=s.BILLER).value
    assert second == []
    app.execute(eid, "submit_claim", actor=s.BILLER, claim_number="S6-0001",
                interchange_control="000000006", group_control="6", transaction_control="0006")

    history = app.history(eid)
    scrubs = [e for e in history if type(e).__name__ == "ClaimScrubbed"]
    assert [e.passed for e in scrubs] == [False, True]
    assert sorted(f.rule_id for f in scrubs[0].findings) == ["LN008", "MUE001", "NCCI002"]
    assert scrubs[1].findings == []
    for event in scrubs:
        assert event.ruleset_version.startswith(RULESET_VERSION + "+ncci-ptp:ncci_ptp_test.txt#")
        assert ";mue:mue_test.csv#" in event.ruleset_version
    enc = app.get_encounter(eid)
    assert enc.claims["S6-0001"].status == "submitted"
    assert str(enc.claims["S6-0001"].submitted_charge) == "210.00"


def test_an_invalid_diagnosis_is_refused_through_the_application(app):
    eid = s.open_encounter(app, patient_ref="PT-1016")
    for bad, rule in (("R10.3", "icd10cm.not_billable"), ("S52.521", "icd10cm.not_billable"),
                      ("E11", "icd10cm.not_billable"), ("ZZZ.9", "icd10cm.format")):
        with pytest.raises(Exception) as err:
            app.execute(eid, "code_diagnosis", actor=s.CODER_A, code=bad)
        assert getattr(err.value, "rule", None) == rule
        assert getattr(err.value, "field", None) == "code"
    assert [type(e).__name__ for e in app.history(eid)] == ["Opened"]
