"""Read models over HTTP, with read-your-writes (min_position): claims list and filters,
payer and patient balances, the disputes/denials queue, trends, audit trail."""

from __future__ import annotations

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
