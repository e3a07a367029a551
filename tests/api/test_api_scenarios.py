"""Scenarios 1-5 of the domain reference end to end over HTTP (ASGI transport, real PostgreSQL)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.api.conftest import headers

pytestmark = pytest.mark.postgres

CODER = headers("coder-a", "coder")
CODER_B = headers("coder-b", "coder")
BILLER = headers("biller-1", "biller")


def ok(r, status=200):
    assert r.status_code == status, r.text
    return r.json()


def open_encounter(client, patient="PT-2001"):
    body = {"facility_id": "FAC-01", "patient_ref": patient, "service_from": "2026-03-10",
            "place_of_service": "11", "responsible_parties": [
                {"bucket": "primary", "kind": "insurer", "payer_id": "PAYER-A",
                 "member_id": "MEM-1"}, {"bucket": "patient", "kind": "patient"}]}
    return ok(client.post("/encounters", json=body, headers=BILLER), 201)["encounter_id"]


def add_line(client, eid, proc, charge, pointers, **kw):
    body = {"procedure_code": proc, "charge": charge, "pointers": pointers,
            "rendering_npi": "1234567893", **kw}
    return ok(client.post(f"/encounters/{eid}/lines", json=body, headers=CODER))


def submit(client, eid, number):
    ok(client.post(f"/encounters/{eid}/claims", json={"claim_number": number}, headers=BILLER))
    scrub = ok(client.post(f"/encounters/{eid}/claims/{number}/scrub", headers=BILLER))
    assert scrub["result"]["passed"], scrub
    ok(client.post(f"/encounters/{eid}/claims/{number}/submit", json={}, headers=BILLER))


def cas(group, reason, amount):
    return {"group": group, "reason": reason, "amount": amount}


def adjudicate(client, eid, number, *, status, charge, paid, pr, icn, trace, lines,
               claim_adjustments=(), date="2026-04-20"):
    body = {"status_code": status, "charge": charge, "paid": paid,
            "patient_responsibility": pr, "payer_icn": icn, "adjudication_date": date,
            "remittance": {"payer_id": "PAYER-A", "trace_number": trace,
                           "file_hash": f"sha256:{trace}", "payment_date": date},
            "lines": lines, "claim_adjustments": list(claim_adjustments)}
    return ok(client.post(f"/encounters/{eid}/claims/{number}/adjudications", json=body,
                          headers=BILLER))


def scenario_1(client):
    eid = open_encounter(client)
    for code in ("E11.9", "I10"):
        ok(client.post(f"/encounters/{eid}/diagnoses", json={"code": code}, headers=CODER))
    add_line(client, eid, "99214", "180.00", [1, 2])
    add_line(client, eid, "83036", "45.00", [1])
    add_line(client, eid, "36415", "15.00", [1])
    submit(client, eid, "S1-0001")
    adjudicate(client, eid, "S1-0001", status="1", charge="240.00", paid="114.82", pr="30.00",
               icn="ICN-S1", trace="TRN-S1", lines=[
                   {"line_no": 1, "procedure_code": "99214", "submitted": "180.00",
                    "paid": "98.50", "allowed": "128.50",
                    "adjustments": [cas("CO", "45", "51.50"), cas("PR", "3", "30.00")]},
                   {"line_no": 2, "procedure_code": "83036", "submitted": "45.00",
                    "paid": "13.32", "allowed": "13.32",
                    "adjustments": [cas("CO", "45", "31.68")]},
                   {"line_no": 3, "procedure_code": "36415", "submitted": "15.00",
                    "paid": "3.00", "allowed": "3.00",
                    "adjustments": [cas("CO", "45", "12.00")]}])
    return eid


def test_scenario_1_over_http(client):
    eid = scenario_1(client)
    enc = ok(client.get(f"/encounters/{eid}", headers=BILLER))
    assert enc["balances"] == {"patient": "30.00", "primary": "0.00"}
    claim = ok(client.get(f"/encounters/{eid}/claims/S1-0001", headers=BILLER))
    assert claim["status"] == "paid" and claim["paid"] == "114.82"
    assert claim["adjustments"] == {"CO-45": "95.18", "PR-3": "30.00"}


def scenario_2(client):
    eid = open_encounter(client, "PT-2002")
    ok(client.post(f"/encounters/{eid}/diagnoses", json={"code": "M54.50"}, headers=CODER))
    add_line(client, eid, "99203", "250.00", [1])
    add_line(client, eid, "72100", "120.00", [1])
    submit(client, eid, "S2-0001")
    adjudicate(client, eid, "S2-0001", status="1", charge="370.00", paid="80.00", pr="120.00",
               icn="ICN-S2", trace="TRN-S2", lines=[
                   {"line_no": 1, "procedure_code": "99203", "submitted": "250.00",
                    "paid": "48.00", "allowed": "160.00",
                    "adjustments": [cas("CO", "45", "90.00"), cas("PR", "1", "100.00"),
                                    cas("PR", "2", "12.00")]},
                   {"line_no": 2, "procedure_code": "72100", "submitted": "120.00",
                    "paid": "32.00", "allowed": "40.00",
                    "adjustments": [cas("CO", "45", "80.00"), cas("PR", "2", "8.00")]}])
    return eid


def test_scenarios_2_and_4_over_http(client):
    eid = scenario_2(client)
    enc = ok(client.get(f"/encounters/{eid}", headers=BILLER))
    assert enc["patient_share"]["deductible"] == "100.00"
    assert enc["patient_share"]["coinsurance"] == "20.00"
    assert enc["balances"]["patient"] == "120.00"
    st = ok(client.post(f"/encounters/{eid}/statements", json={"statement_date": "2026-05-01"},
                        headers=BILLER))
    assert st["result"] == {"amount_due": "120.00"}
    paid = ok(client.post(f"/encounters/{eid}/patient-payments", headers=BILLER, json={
        "amount": "150.00", "method": "card", "received_on": "2026-05-10"}))
    assert paid["result"] == {"balance_after": "-30.00"}
    r = client.post(f"/encounters/{eid}/refunds", headers=BILLER, json={
        "amount": "30.01", "method": "check", "issued_on": "2026-05-12", "reason": "over"})
    assert r.status_code == 422 and r.json()["rule"] == "refund.not_above_credit"
    done = ok(client.post(f"/encounters/{eid}/refunds", headers=BILLER, json={
        "amount": "30.00", "method": "check", "issued_on": "2026-05-12", "reason": "over"}))
    assert done["result"] == {"balance_after": "0.00"}


def test_scenario_3_denial_appeal_paid_over_http(client):
    eid = open_encounter(client, "PT-2003")
    ok(client.post(f"/encounters/{eid}/diagnoses", json={"code": "M54.50"}, headers=CODER))
    add_line(client, eid, "97110", "180.00", [1], units="4", modifiers=["GP"])
    submit(client, eid, "S3-0001")
    adjudicate(client, eid, "S3-0001", status="4", charge="180.00", paid="0.00", pr="0.00",
               icn="ICN-S3A", trace="TRN-S3A", lines=[
                   {"line_no": 1, "procedure_code": "97110", "submitted": "180.00",
                    "paid": "0.00", "units": "4", "adjustments": [cas("CO", "50", "180.00")],
                    "remarks": ["N115"]}])
    claim = ok(client.get(f"/encounters/{eid}/claims/S3-0001", headers=BILLER))
    assert claim["status"] == "denied" and claim["denial_deadline"] == "2026-08-18"
    balances = ok(client.get(f"/encounters/{eid}", headers=BILLER))["balances"]
    assert balances.get("patient", "0.00") == "0.00"
    ok(client.post(f"/encounters/{eid}/claims/S3-0001/appeals", headers=BILLER, json={
        "filed_on": "2026-05-01", "reason": "medical necessity"}))
    claim = ok(client.get(f"/encounters/{eid}/claims/S3-0001", headers=BILLER))
    assert claim["status"] == "in_appeal"
    ok(client.post(f"/encounters/{eid}/claims/S3-0001/appeals/decision", headers=BILLER,
                   json={"outcome": "overturned", "decided_on": "2026-06-01"}))
    adjudicate(client, eid, "S3-0001", status="1", charge="180.00", paid="112.64", pr="28.16",
               icn="ICN-S3B", trace="TRN-S3B", date="2026-06-15", lines=[
                   {"line_no": 1, "procedure_code": "97110", "submitted": "180.00",
                    "paid": "112.64", "allowed": "140.80", "units": "4",
                    "adjustments": [cas("CO", "45", "39.20"), cas("PR", "2", "28.16")]}])
    claim = ok(client.get(f"/encounters/{eid}/claims/S3-0001", headers=BILLER))
    assert claim["status"] == "paid" and claim["payer_icn"] == "ICN-S3B"
    enc = ok(client.get(f"/encounters/{eid}", headers=BILLER))
    assert enc["balances"] == {"patient": "28.16", "primary": "0.00"}


def test_scenario_5_as_of_and_diff_over_http(client):
    eid = open_encounter(client, "PT-2005")
    ok(client.post(f"/encounters/{eid}/diagnoses", json={"code": "R10.9"}, headers=CODER))
    add_line(client, eid, "99213", "130.00", [1])
    t1 = datetime.now(UTC).isoformat()
    v1 = ok(client.get(f"/encounters/{eid}", headers=BILLER))["version"]
    time.sleep(0.01)
    for bad in ("R10.3", "S52.521"):
        r = client.post(f"/encounters/{eid}/diagnoses/1/revise", headers=CODER_B,
                        json={"new_code": bad, "reason": "specificity"})
        assert r.status_code == 422 and r.json()["field"] == "new_code"
    ok(client.post(f"/encounters/{eid}/diagnoses/1/revise", headers=CODER_B,
                   json={"new_code": "R10.31", "reason": "specificity"}))
    t2 = datetime.now(UTC).isoformat()
    ok(client.post(f"/encounters/{eid}/claims", json={"claim_number": "S5-0001"},
                   headers=BILLER))
    at_t1 = ok(client.get(f"/encounters/{eid}", params={"as_of": t1}, headers=BILLER))
    at_t2 = ok(client.get(f"/encounters/{eid}", params={"as_of": t2}, headers=BILLER))
    assert [d["code"] for d in at_t1["diagnoses"]] == ["R10.9"]
    assert [d["code"] for d in at_t2["diagnoses"]] == ["R10.31"]
    by_version = ok(client.get(f"/encounters/{eid}", params={"as_of_version": v1}, headers=BILLER))
    assert by_version["diagnoses"][0]["code"] == "R10.9"
    diff = ok(client.get(f"/encounters/{eid}/diff", params={"from_version": v1,
                                                             "to_version": v1 + 1}, headers=BILLER))
    assert diff["changes"]["diagnoses"] == {"removed": ["R10.9"], "added": ["R10.31"]}
    (event,) = diff["events"]
    assert event["type"] == "DiagnosisRevised" and event["actor_id"] == "coder-b"
    assert event["reason"] == "specificity"
    assert (event["data"]["old_code"], event["data"]["new_code"]) == ("R109", "R1031")
    history = ok(client.get(f"/encounters/{eid}/history", headers=BILLER))["events"]
    assert [e["type"] for e in history][:2] == ["Opened", "DiagnosisCoded"]
    r = client.get(f"/encounters/{eid}", params={"as_of": "2020-01-01T00:00:00Z"}, headers=BILLER)
    assert r.status_code == 404
