from __future__ import annotations

import pytest

from tests.api.conftest import headers

pytestmark = pytest.mark.postgres

OPEN = {"facility_id": "FAC-01", "patient_ref": "PT-9001", "service_from": "2026-03-10",
        "place_of_service": "11",
        "responsible_parties": [{"bucket": "primary", "kind": "insurer", "payer_id": "PAYER-A"},
                                {"bucket": "patient", "kind": "patient"}]}


def test_health_reports_database(client):
    r = client.get("/health", headers=headers())
    assert r.status_code == 200
    assert r.json()["database"]["status"] == "ok"


def test_open_code_and_refusals(client):
    r = client.post("/encounters", json=OPEN, headers=headers())
    assert r.status_code == 201, r.text
    eid = r.json()["encounter_id"]
    assert r.headers["etag"] == '"1"'
    assert r.headers["location"] == f"/encounters/{eid}"
    r = client.post(f"/encounters/{eid}/diagnoses", json={"code": "R10.3"},
                    headers=headers("coder-a", "coder"))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["field"] == "code" and body["rule"] == "icd10cm.not_billable"
    r = client.post(f"/encounters/{eid}/lines", json={"procedure_code": "99213",
                                                      "charge": 130.0, "pointers": []},
                    headers=headers("coder-a", "coder"))
    assert r.status_code == 422
    assert r.json()["field"] == "charge"
    r = client.get(f"/encounters/{eid}", headers=headers())
    assert r.json()["version"] == 1, "refusals wrote nothing"


def test_malformed_json_is_a_422_problem(client):
    r = client.post("/encounters", content=b"{not json", headers=headers(
        **{"Content-Type": "application/json"}))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"


def test_unknown_encounter_is_404(client):
    r = client.get("/encounters/00000000-0000-0000-0000-000000000000", headers=headers())
    assert r.status_code == 404
    assert r.json()["rule"] == "encounter.exists"
