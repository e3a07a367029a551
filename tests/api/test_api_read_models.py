"""Read models over HTTP, with read-your-writes (min_position): claims list and filters,
payer and patient balances, the disputes/denials queue, trends, audit trail."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.api import test_api_scenarios as http
from tests.api.conftest import headers

pytestmark = pytest.mark.postgres

AUDITOR = headers("auditor-1", "auditor")


def last_position(client, eid) -> int:
    events = http.ok(client.get(f"/encounters/{eid}/history", headers=http.BILLER))["events"]
    assert events
    r = client.get("/projections/status", headers=AUDITOR)
    return http.ok(r)["head"]


def test_scenarios_in_the_read_models(client):
    e1 = http.scenario_1(client)
    e2 = http.scenario_2(client)
    pos = last_position(client, e2)
    page = http.ok(client.get("/claims", params={"min_position": pos}, headers=http.BILLER))
    by_number = {c["claim_number"]: c for c in page["items"]}
    assert by_number["S1-0001"]["status"] == "paid"
    assert by_number["S1-0001"]["paid"] == "114.82"
    assert by_number["S1-0001"]["contractual"] == "95.18"
    assert by_number["S2-0001"]["patient_responsibility"] == "120.00"
    only = http.ok(client.get("/claims", params={"code": "M54.50", "min_position": pos},
                              headers=http.BILLER))["items"]
    assert [c["claim_number"] for c in only] == ["S2-0001"]
    payers = http.ok(client.get("/payers/balances", params={"min_position": pos},
                                headers=http.BILLER))["payers"]
    payer_a = [p for p in payers if p["payer_id"] == "PAYER-A" and p["party_kind"] == "insurer"]
    assert payer_a and payer_a[0]["outstanding"] == "0.00"
    assert payer_a[0]["paid"] == "194.82"  # 114.82 + 80.00
    patient = http.ok(client.get("/patients/PT-2001/balance", params={"min_position": pos},
                                 headers=http.BILLER))
    assert patient["owed"] == "30.00"
    trail = http.ok(client.get("/audit/trail", params={"encounter_id": e1,
                                                        "min_position": pos},
                               headers=AUDITOR))["items"]
    assert trail[0]["event_type"] == "EncounterOpened" and trail[0]["actor_id"] == "biller-1"
    revisions = http.ok(client.get("/trends/code-revisions", headers=http.BILLER))
    assert revisions["by"] == "coder"
    trend = http.ok(client.get("/trends/diagnoses/E11.9", params={"min_position": pos},
                               headers=http.BILLER))
    assert trend["encounters"] == 1
    assert {s["procedure_code"] for s in trend["services"]} == {"99214", "83036", "36415"}


def test_denial_shows_in_the_queue_and_advocates_see_only_their_disputes(client):
    eid = http.open_encounter(client, "PT-2301")
    http.ok(client.post(f"/encounters/{eid}/diagnoses", json={"code": "M54.50"},
                        headers=http.CODER))
    http.add_line(client, eid, "97110", "180.00", [1], units="4", modifiers=["GP"])
    http.submit(client, eid, "Q-0001")
    http.adjudicate(client, eid, "Q-0001", status="4", charge="180.00", paid="0.00", pr="0.00",
                    icn="ICN-Q", trace="TRN-Q", lines=[
                        {"line_no": 1, "procedure_code": "97110", "submitted": "180.00",
                         "paid": "0.00", "units": "4",
                         "adjustments": [http.cas("CO", "50", "180.00")], "remarks": ["N115"]}])
    advocate = headers("advocate-1", "advocate")
    http.ok(client.post(f"/encounters/{eid}/grants", headers=http.BILLER, json={
        "grantee_id": "advocate-1", "authorization_ref": "AUTH-2301",
        "valid_until": "2099-01-01T00:00:00Z"}), 201)
    r = client.post(f"/encounters/{eid}/disputes", headers=advocate, json={
        "line_nos": [1], "category": "coverage"})
    pos = http.ok(r, 201)["position"]
    queue = http.ok(client.get("/queues/disputes-denials", params={"min_position": pos},
                               headers=http.BILLER))["items"]
    kinds = {(i["item_kind"], i["claim_number"]) for i in queue}
    assert ("denial", "Q-0001") in kinds
    denial = [i for i in queue if i["item_kind"] == "denial"][0]
    assert denial["deadline"] == "2026-08-18"
    mine = http.ok(client.get("/queues/disputes-denials", params={"min_position": pos},
                              headers=advocate))["items"]
    assert {i["item_kind"] for i in mine} == {"dispute"}
    other = http.ok(client.get("/queues/disputes-denials",
                               headers=headers("advocate-2", "advocate")))["items"]
    assert other == []
    claims = http.ok(client.get("/claims", params={"min_position": pos},
                                headers=headers("advocate-2", "advocate")))["items"]
    assert claims == []


def test_min_position_beyond_the_log_is_refused(client):
    r = client.get("/claims", params={"min_position": 10_000_000}, headers=http.BILLER)
    assert r.status_code == 422 and r.json()["rule"] == "min_position.beyond_log"


def test_a_lagging_read_model_answers_503_after_the_wait(client, settings):
    eid = http.open_encounter(client)
    runner = client.app.state.projection_runner
    runner.stop()  # the read models stop moving
    http.ok(client.post(f"/encounters/{eid}/diagnoses", json={"code": "E11.9"},
                        headers=http.CODER))
    head = http.ok(client.get("/projections/status", headers=AUDITOR))["head"]
    settings.wait_timeout = 0.2
    r = client.get("/claims", params={"min_position": head}, headers=http.BILLER)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"


def test_balances_by_effective_time_over_http(client):
    e1 = http.scenario_1(client)
    pos = last_position(client, e1)
    mine = [c for c in http.ok(client.get("/claims", params={
        "min_position": pos, "payer_id": "PAYER-A", "limit": 200}, headers=http.BILLER))[
        "items"] if c["encounter_id"] == e1]
    dos = mine[0]["service_from"]
    window = {"dos_from": dos, "dos_to": dos}
    body = http.ok(client.get("/payers/balances", params={"min_position": pos, **window},
                              headers=http.BILLER))
    assert body["effective"]["dos_from"] == dos and body["effective"]["paid_from"] is None
    claims = http.ok(client.get("/claims", params={
        "min_position": pos, "payer_id": "PAYER-A", "limit": 200, **window},
        headers=http.BILLER))["items"]
    payer_a = [p for p in body["payers"] if p["payer_id"] == "PAYER-A"]
    assert sum(p["claims"] for p in payer_a) == len(claims) >= 1
    assert sum(Decimal(p["paid"]) for p in payer_a) == sum(Decimal(c["paid"]) for c in claims)
    assert all(p["service_from"] <= dos <= p["service_to"] for p in payer_a)
    assert all(p["recorded_position"] <= pos and p["recorded_at"] for p in payer_a)
    as_of = http.ok(client.get("/payers/balances", params={"as_of_position": pos, **window},
                               headers=http.BILLER))
    assert as_of["as_of"]["position"] == pos
    assert [p for p in as_of["payers"] if p["payer_id"] == "PAYER-A"] == payer_a
    patients = http.ok(client.get("/patients/balances", params={
        "min_position": pos, "owing_only": "false", **window}, headers=http.BILLER))
    assert patients["effective"]["dos_to"] == dos and patients["patients"]
    bad = client.get("/payers/balances", params={"dos_from": "2026-10-02",
                                                 "dos_to": "2026-10-01"}, headers=http.BILLER)
    assert bad.status_code == 422 and bad.json()["rule"] == "effective.range"
    assert client.get("/audit/trail", params={"period": "2026-1"},
                      headers=AUDITOR).status_code == 422
