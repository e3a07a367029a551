"""Scenarios 1-5 and 8 of shared/docs/domain.md, read from the projections' tables (claims,
balances, queue, audit trail, trends) after the events are written, on real PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from ledger.domain.errors import InvalidCode
from ledger.projections import queries as q
from ledger.projections.runner import ProjectionRunner
from ledger.projections.waiting import ProjectionWaiter, wait_for_position
from tests import builders as s

pytestmark = pytest.mark.postgres

D = Decimal


@pytest.fixture
def runner(app_env):
    r = ProjectionRunner(app_env)
    yield r
    r.close()


@pytest.fixture
def conn(clean_db):
    with psycopg.connect(clean_db, autocommit=True) as c:
        yield c


def adjustments(row):
    return {(a["group"], a["reason"]): D(a["amount"]) for a in row["adjustments"]}


def payer(conn, payer_id="PAYER-A", **kw):
    rows = q.payer_balances(conn, payer_id, **kw)
    assert len(rows) == 1
    return rows[0]


def test_scenario_1_clean_claim_copay_co45(app, runner, conn):
    s.scenario_1(app)
    runner.catch_up()
    claim = q.get_claim(conn, "S1-0001")
    assert claim["status"] == "paid"
    assert (claim["total_charge"], claim["paid"], claim["allowed"]) == \
        (D("240.00"), D("114.82"), D("144.82"))
    assert (claim["contractual"], claim["patient_responsibility"]) == (D("95.18"), D("30.00"))
    assert (claim["balance_primary"], claim["balance_patient"]) == (D("0.00"), D("30.00"))
    assert claim["outstanding"] == D("0.00")
    assert claim["diagnoses"] == ["E119", "I10"]
    lines = {ln["procedure_code"]: ln for ln in claim["lines"]}
    assert (lines["99214"]["allowed"], lines["99214"]["paid"]) == (D("128.50"), D("98.50"))
    assert adjustments(lines["99214"]) == {("CO", "45"): D("51.50"), ("PR", "3"): D("30.00")}
    assert lines["99214"]["pointers"] == [1, 2]
    assert (lines["83036"]["paid"], lines["36415"]["paid"]) == (D("13.32"), D("3.00"))
    assert adjustments(claim) == {("CO", "45"): D("95.18"), ("PR", "3"): D("30.00")}
    p = payer(conn)
    assert (p["outstanding"], p["contractual"], p["paid"], p["billed"]) == \
        (D("0.00"), D("95.18"), D("114.82"), D("240.00"))
    assert (p["open_claims"], p["claims"]) == (0, 1)
    patient = q.patient_balance(conn, "PT-1001")
    assert (patient["owed"], patient["credit"], patient["copay"]) == \
        (D("30.00"), D("0.00"), D("30.00"))
    trail = q.audit_trail(conn, claim_number="S1-0001").items
    assert [r["event_type"] for r in trail][:3] == ["ClaimCreated", "ClaimScrubbed",
                                                    "ClaimSubmitted"]
    assert all(r["actor_id"] == "biller-1" and r["actor_role"] == "biller" for r in trail)


def test_scenario_2_deductible_and_coinsurance(app, runner, conn):
    s.scenario_2(app)
    runner.catch_up()
    claim = q.get_claim(conn, "S2-0001")
    assert (claim["paid"], claim["patient_responsibility"], claim["contractual"]) == \
        (D("80.00"), D("120.00"), D("170.00"))
    assert adjustments(claim) == {("CO", "45"): D("170.00"), ("PR", "1"): D("100.00"),
                                  ("PR", "2"): D("20.00")}
    patient = q.patient_balance(conn, "PT-1002")
    assert (patient["owed"], patient["deductible"], patient["coinsurance"]) == \
        (D("120.00"), D("100.00"), D("20.00"))
    assert payer(conn)["outstanding"] == D("0.00")


def test_scenario_3_denial_appeal_paid(app, runner, conn):
    eid, l1 = s.scenario_3_denial(app)
    runner.catch_up()
    claim = q.get_claim(conn, "S3-0001")
    assert claim["status"] == "denied"
    assert claim["denial_deadline"] == date(2026, 8, 18)
    assert (claim["balance_patient"], claim["balance_primary"]) == (D("0.00"), D("0.00"))
    queue = q.work_queue(conn).items
    assert [(i["item_kind"], i["item_ref"], i["status"], i["deadline"]) for i in queue] == \
        [("denial", "S3-0001", "open", date(2026, 8, 18))]
    assert (queue[0]["reason_codes"], queue[0]["remark_codes"], queue[0]["amount"]) == \
        (["50"], ["N115"], D("180.00"))
    assert q.patient_balance(conn, "PT-1003")["owed"] == D("0.00"), "nothing billed to patient"

    app.execute(eid, "file_appeal", actor=s.BILLER, claim_number="S3-0001",
                filed_on=date(2026, 5, 1), reason="medical necessity documented")
    runner.catch_up()
    claim = q.get_claim(conn, "S3-0001")
    assert (claim["status"], claim["appeal_open"], claim["outstanding"]) == \
        ("in_appeal", True, D("180.00"))
    assert q.work_queue(conn).items[0]["status"] == "in_appeal"
    submitted = claim["submitted_on"]
    p = payer(conn, as_of=submitted)
    assert (p["outstanding"], p["open_claims"], p["aging_0_30"]) == \
        (D("180.00"), 1, D("180.00"))
    p = payer(conn, as_of=submitted + timedelta(days=45))
    assert (p["aging_0_30"], p["aging_31_60"]) == (D("0"), D("180.00"))
    p = payer(conn, as_of=submitted + timedelta(days=200))
    assert p["aging_over_120"] == D("180.00")

    app.execute(eid, "decide_appeal", actor=s.BILLER, claim_number="S3-0001",
                outcome="overturned", decided_on=date(2026, 6, 1), reason="payer letter")
    s.post(app, eid, "S3-0001", status="1", charge="180.00", paid="112.64", pr="28.16",
           icn="ICN-S3B", trace="TRN-S3B", paid_on=date(2026, 6, 15), lines=[
               s.lr(l1, "97110", "180.00", "112.64", "140.80", s.adj("CO", "45", "39.20"),
                    s.adj("PR", "2", "28.16"), units=4)])
    runner.catch_up()
    claim = q.get_claim(conn, "S3-0001")
    assert (claim["status"], claim["payer_icn"], claim["paid"], claim["allowed"]) == \
        ("paid", "ICN-S3B", D("112.64"), D("140.80"))
    # the overturned CO-50 is no longer an adjustment: contractual is the CO-45 only
    assert (claim["contractual"], claim["outstanding"]) == (D("39.20"), D("0.00"))
    assert claim["lines"][0]["units"] == 4 and claim["lines"][0]["modifiers"] == ["GP"]
    assert q.work_queue(conn).items == []
    resolved = q.work_queue(conn, open_only=False).items
    assert (resolved[0]["status"], resolved[0]["outcome"]) == ("resolved", "paid")
    assert q.patient_balance(conn, "PT-1003")["owed"] == D("28.16")
    p = payer(conn)
    assert (p["outstanding"], p["open_claims"], p["aging_0_30"]) == (D("0.00"), 0, D("0"))


def test_scenario_4_patient_overpays_then_refund(app, runner, conn):
    eid = s.scenario_2(app)
    app.execute(eid, "issue_statement", actor=s.BILLER, statement_date=date(2026, 5, 1))
    runner.catch_up()
    patient = q.patient_balance(conn, "PT-1002")
    assert (patient["last_statement_amount"], patient["last_statement_date"]) == \
        (D("120.00"), date(2026, 5, 1)), "the statement shows PR only, never CO"
    app.execute(eid, "record_patient_payment", actor=s.BILLER, amount="150.00",
                method="card", received_on=date(2026, 5, 10))
    runner.catch_up()
    patient = q.patient_balance(conn, "PT-1002")
    assert (patient["owed"], patient["credit"], patient["paid"]) == \
        (D("0.00"), D("30.00"), D("150.00"))
    app.execute(eid, "issue_refund", actor=s.BILLER, amount="30.00", method="check",
                issued_on=date(2026, 5, 12), reason="overpayment")
    runner.catch_up()
    patient = q.patient_balance(conn, "PT-1002")
    assert (patient["owed"], patient["credit"], patient["refunded"]) == \
        (D("0.00"), D("0.00"), D("30.00"))
    assert q.get_claim(conn, "S2-0001")["balance_patient"] == D("0.00")
    refund = q.audit_trail(conn, encounter_id=eid, event_type="RefundIssued").items[0]
    assert (refund["amount"], refund["reason"], refund["effective_date"]) == \
        (D("30.00"), "overpayment", date(2026, 5, 12))


def test_scenario_5_coding_audit(app, runner, conn):
    eid = s.open_encounter(app, patient_ref="PT-1005")
    t0 = datetime.now(UTC)
    app.execute(eid, "code_diagnosis", actor=s.CODER_A, code="R10.9")
    s.line(app, eid, "99213", "130.00", [1])
    time.sleep(0.01)
    t1 = datetime.now(UTC)
    for bad in ("R10.3", "S52.521"):
        with pytest.raises(InvalidCode):
            app.execute(eid, "revise_diagnosis", actor=s.CODER_B, position=1, new_code=bad,
                        reason="specificity")
    app.execute(eid, "revise_diagnosis", actor=s.CODER_B, position=1, new_code="R10.31",
                reason="specificity")
    s.create_scrub_submit(app, eid, "S5-0001")
    runner.catch_up()

    by_code = q.audit_trail(conn, code="R10.9").items
    assert [(r["event_type"], r["actor_id"]) for r in by_code] == [
        ("DiagnosisCoded", "coder-a"), ("DiagnosisRevised", "coder-b")]
    revised = by_code[1]
    assert revised["summary"] == "diagnosis 1 revised R10.9 → R10.31"
    assert (revised["reason"], revised["actor_role"]) == ("specificity", "coder")
    assert revised["changes"] == {"code": ["R109", "R1031"]}
    assert revised["effective_date"] == s.DOS
    # refused revisions wrote nothing: coded, line, revised, claim x3
    assert len(q.audit_trail(conn, encounter_id=eid).items) == 7
    assert [r["event_type"] for r in q.audit_trail(conn, actor_id="coder-b").items] == \
        ["DiagnosisRevised"]
    window = q.audit_trail(conn, encounter_id=eid, since=t0, until=t1).items
    assert [r["event_type"] for r in window] == ["DiagnosisCoded", "ServiceLineAdded"]
    submitted = q.audit_trail(conn, code="R10.31", event_type="ClaimSubmitted").items
    assert len(submitted) == 1 and "dx R10.31" in submitted[0]["summary"]
    claim = q.get_claim(conn, "S5-0001")
    assert claim["diagnoses"] == ["R1031"], "the submitted claim carries only R10.31"
    coders = {r["actor_id"]: r for r in q.code_revisions_by_coder(conn)}
    assert (coders["coder-b"]["diagnoses_revised"], coders["coder-a"]["diagnoses_coded"]) == \
        (1, 1)
    codes = {(r["code_system"], r["code"]): r for r in q.code_revisions_by_code(conn)}
    assert codes[("ICD-10-CM", "R109")]["revised_from"] == 1
    assert codes[("ICD-10-CM", "R1031")]["revised_to"] == 1
    assert q.code_revisions_by_code(conn)[0]["code"] == "R109", "most changed code first"
    assert [c["claim_number"] for c in q.list_claims(conn, code="R10.31").items] == ["S5-0001"]
    assert q.list_claims(conn, code="R10.9").items == []
    assert [c["claim_number"] for c in q.list_claims(conn, actor_id="coder-b").items] == \
        ["S5-0001"]


def test_scenario_8_inpatient_knee_replacement_trends(app, runner, conn):
    s.scenario_8_inpatient(app)
    pro = s.open_encounter(app, dos=date(2026, 3, 2), pos="21", patient_ref="PT-1008")
    s.code(app, pro, "M17.11")
    s.line(app, pro, "27447", "2800.00", [1], modifiers=["RT"])
    s.create_scrub_submit(app, pro, "S8-PRO-1")
    runner.catch_up()
    claim = q.get_claim(conn, "S8-0001")
    assert (claim["total_charge"], claim["paid"], claim["allowed"], claim["contractual"]) == \
        (D("24070.00"), D("12650.00"), D("14250.00"), D("9820.00"))
    assert (claim["balance_primary"], claim["balance_patient"]) == (D("0.00"), D("1600.00"))
    assert q.patient_balance(conn, "PT-1008")["deductible"] == D("1600.00")

    trend = q.diagnosis_trend(conn, "M17.11")
    assert (trend["encounters"], trend["charged"], trend["allowed"], trend["paid"]) == \
        (2, D("26870.00"), D("14250.00"), D("12650.00"))
    assert trend["average_charged"] == D("13435.00")
    used = {(r["procedure_code"], r["revenue_code"]): (r["encounters"], r["charged"])
            for r in trend["services"]}
    assert used == {
        ("", "0120"): (1, D("3600.00")), ("", "0360"): (1, D("9800.00")),
        ("", "0278"): (1, D("6500.00")), ("", "0272"): (1, D("1150.00")),
        ("", "0250"): (1, D("640.00")), ("", "0370"): (1, D("1900.00")),
        ("97110", "0420"): (1, D("480.00")), ("27447", ""): (1, D("2800.00")),
    }
    assert sum((r["charged"] for r in trend["services"]), D(0)) == D("26870.00")
    # implants (0278) and supplies (0272) are labelled supplies; the rest are services
    kinds = {(r["procedure_code"], r["revenue_code"]): r["kind"] for r in trend["services"]}
    assert {k for k, v in kinds.items() if v == "supply"} == {("", "0278"), ("", "0272")}
    assert kinds[("27447", "")] == kinds[("97110", "0420")] == "service"
    assert q.top_diagnoses(conn)[0]["diagnosis"] == "M1711"


def test_list_claims_filters_and_cursor(app, runner, conn):
    s.scenario_1(app)
    s.scenario_2(app)
    s.scenario_3_denial(app)
    s.scenario_8_inpatient(app)
    runner.catch_up()
    all_claims = q.list_claims(conn, limit=500).items
    assert [c["claim_number"] for c in all_claims] == ["S8-0001", "S3-0001", "S2-0001",
                                                        "S1-0001"]
    page1 = q.list_claims(conn, limit=3)
    page2 = q.list_claims(conn, limit=3, cursor=page1.next_cursor)
    assert [c["claim_number"] for c in page1.items + page2.items] == \
        [c["claim_number"] for c in all_claims]
    assert page2.next_cursor is None
    assert [c["claim_number"] for c in q.list_claims(conn, status="denied").items] == \
        ["S3-0001"]
    assert [c["claim_number"] for c in q.list_claims(conn, patient_ref="PT-1002").items] == \
        ["S2-0001"]
    assert [c["claim_number"] for c in q.list_claims(
        conn, dos_from=date(2026, 3, 1), dos_to=date(2026, 3, 5)).items] == ["S8-0001"]
    assert [c["claim_number"] for c in q.list_claims(conn, code="0278").items] == ["S8-0001"]
    assert [c["claim_number"] for c in q.list_claims(conn, code="E11.9").items] == ["S1-0001"]
    assert len(q.list_claims(conn, payer_id="PAYER-A").items) == 4
    assert q.list_claims(conn, payer_id="NOBODY").items == []


def test_read_your_writes_is_fast(app, app_env, clean_db, conn):
    runner = ProjectionRunner(app_env, poll_interval=5.0).start()  # NOTIFY wakes it, not polls
    waiter = ProjectionWaiter(clean_db)
    try:
        eid = s.open_encounter(app)
        assert runner.wait(app.max_position(), timeout=5)
        waits = []
        for i in range(5):
            started = time.monotonic()
            result = app.execute(eid, "code_diagnosis", actor=s.CODER_A,
                                 code=["E11.9", "I10", "M54.50", "R10.9", "J45.901"][i])
            assert runner.wait(result.position, timeout=2.0)
            waits.append(time.monotonic() - started)
        assert q.encounter_summary(conn, eid)["diagnoses"] == ["E119", "I10", "M5450", "R109",
                                                                "J45901"]
        assert max(waits) < 0.5, waits
        result = app.execute(eid, "add_service_line", actor=s.CODER_A, procedure_code="99213",
                             charge="130.00", pointers=[1])
        assert waiter.wait(result.position, timeout=2.0)
        assert wait_for_position(conn, result.position, timeout=2.0)
        assert q.encounter_summary(conn, eid)["total_charge"] == D("130.00")
        assert not wait_for_position(conn, result.position + 1000, timeout=0.05)
        assert not waiter.wait(result.position + 1000, timeout=0.05)
    finally:
        waiter.close()
        runner.close()
