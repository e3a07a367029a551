"""Data the workbench tests look at, written through the API with the test actors' tokens
(any client with .get/.post: a TestClient or an httpx.Client on a live server)."""

from __future__ import annotations

from tests.api.conftest import headers
from tests.api.test_api_scenarios import CODER, ok, open_encounter, scenario_1

CODER_B = headers("coder-b", "coder")
BILLER = headers("biller-1", "biller")
ADVOCATE = headers("advocate-1", "advocate")


def coding_audit(client) -> str:
    """Scenario 5: coder A codes R10.9, coder B revises it to R10.31 (specificity)."""
    eid = open_encounter(client, "PT-5005")
    ok(client.post(f"/encounters/{eid}/diagnoses", json={"code": "R10.9"}, headers=CODER))
    ok(client.post(f"/encounters/{eid}/lines", headers=CODER, json={
        "procedure_code": "99213", "charge": "130.00", "pointers": [1],
        "rendering_npi": "1234567893"}))
    ok(client.post(f"/encounters/{eid}/diagnoses/1/revise", headers=CODER_B,
                   json={"new_code": "R10.31", "reason": "specificity"}))
    return eid


def seed(client) -> dict[str, str]:
    """Scenario 1 (paid, patient owes the 30.00 copay) granted to advocate-1, who disputes it,
    the coding audit of scenario 5, and an encounter no advocate may see. Waits until the
    read models show it all."""
    s1 = scenario_1(client)
    # billing staff grant advocate-1 access on the patient's authorization (issue 14)
    ok(client.post(f"/encounters/{s1}/grants", headers=BILLER, json={
        "grantee_id": "advocate-1", "authorization_ref": "AUTH-UI-1",
        "valid_until": "2099-01-01T00:00:00Z"}), 201)
    dispute = ok(client.post(f"/encounters/{s1}/disputes", headers=ADVOCATE, json={
        "line_nos": [1], "category": "balance",
        "description": "patient says the copay was paid at the desk"}), 201)["result"]
    ok(client.post(f"/encounters/{s1}/disputes/{dispute['dispute_id']}/notes",
                   headers=ADVOCATE, json={"note": "receipt requested from the patient"}))
    audit = coding_audit(client)
    other = open_encounter(client, "PT-9999")
    head = client.get("/health").json()["database"]["log_position"]
    ok(client.get("/claims", params={"min_position": head}, headers=BILLER))
    return {"s1": s1, "claim": "S1-0001", "audit": audit, "other": other,
            "dispute": dispute["dispute_id"]}
