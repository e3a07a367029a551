"""Access follows the patient's consent: an advocate reaches an encounter only through a grant
recorded on it (AccessGranted), and every encounter route answers an advocate without one exactly
as it answers for an encounter that does not exist — reads and writes alike."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from api.permissions import PERMISSIONS
from tests.api.conftest import headers
from tests.api.test_api_scenarios import BILLER, CODER, ok, open_encounter
from tests.api.test_permissions import api_routes

pytestmark = pytest.mark.postgres

ADVOCATE = headers("advocate-1", "advocate")
OTHER_ADVOCATE = headers("advocate-2", "advocate")
AUDITOR = headers("auditor-1", "auditor")
ADMIN = headers("admin-1", "admin")

# a body each advocate-callable write route accepts (so only access decides the answer)
BODIES = {
    "/encounters/{encounter_id}/disputes": {"line_nos": [1], "category": "charge",
                                            "description": "higher than the estimate"},
    "/encounters/{encounter_id}/disputes/{dispute_id}/notes": {"note": "called the payer"},
    "/encounters/{encounter_id}/disputes/{dispute_id}/resolve": {"outcome": "withdrawn",
                                                                 "reason": "settled"},
}


def coded_encounter(client, patient="PT-8001") -> str:
    eid = open_encounter(client, patient)
    ok(client.post(f"/encounters/{eid}/diagnoses", json={"code": "E11.9"}, headers=CODER))
    ok(client.post(f"/encounters/{eid}/lines", headers=CODER, json={
        "procedure_code": "99213", "charge": "130.00", "pointers": [1]}))
    ok(client.post(f"/encounters/{eid}/claims", json={"claim_number": "G-C1"},
                   headers=BILLER))
    return eid


def grant(client, eid, grantee="advocate-1", who=BILLER, days=30, **extra):
    until = (datetime.now(UTC) + timedelta(days=days)).isoformat()
    return ok(client.post(f"/encounters/{eid}/grants", headers=who, json={
        "grantee_id": grantee, "authorization_ref": "AUTH-2026-0042", "valid_until": until,
        "reason": "patient asked for help with the bill", **extra}), 201)


def encounter_routes(app) -> list[tuple[str, str]]:
    return [(m, p) for m, p in api_routes(app) if p.startswith("/encounters/{encounter_id}")]


def concrete(path: str, eid: str, dispute_id: str = "D-none") -> str:
    return (path.replace("{encounter_id}", eid).replace("{claim_number}", "G-C1")
            .replace("{dispute_id}", dispute_id).replace("{position}", "1")
            .replace("{line_no}", "1").replace("{grant_id}", "G-none"))


def call(client, method, path, eid, who, dispute_id="D-none", **extra_headers):
    url = concrete(path, eid, dispute_id)
    if path.endswith("/diff"):
        url += "?from_version=1"
    body = BODIES.get(path, {})
    return client.request(method, url, json=body if method == "POST" else None,
                          headers={**who, **extra_headers})


def same_answer(a, b) -> None:
    """Two refusals a client cannot tell apart (the instance is the URL it asked for)."""
    assert a.status_code == b.status_code, (a.status_code, b.status_code, a.text, b.text)
    ja, jb = a.json(), b.json()
    ja.pop("instance", None)
    jb.pop("instance", None)
    assert ja == jb


def test_no_grant_means_404_on_every_encounter_route_same_as_missing(client):
    eid = coded_encounter(client)
    # a dispute of the biller's own, so the dispute routes have a real dispute id to aim at
    did = ok(client.post(f"/encounters/{eid}/disputes", headers=BILLER,
                         json=BODIES["/encounters/{encounter_id}/disputes"]), 201
             )["result"]["dispute_id"]
    missing = str(uuid.uuid4())
    checked = 0
    for method, path in encounter_routes(client.app):
        mine = call(client, method, path, eid, ADVOCATE, did)
        absent = call(client, method, path, missing, ADVOCATE, did)
        same_answer(mine, absent)
        if "advocate" in PERMISSIONS[(method, path)]:
            assert mine.status_code == 404, (method, path, mine.text)
            assert mine.json()["rule"] == "encounter.exists"
            # a stale If-Match must not tell "exists" (412) from "missing" (404) either
            stale = call(client, method, path, eid, ADVOCATE, did, **{"If-Match": '"99"'})
            assert stale.status_code == 404, (method, path, stale.text)
            checked += 1
        else:  # refused by role before anything is looked up: 403 for both
            assert mine.status_code == 403, (method, path, mine.status_code)
    assert checked >= 7  # 4 reads + open, note, resolve
    history = ok(client.get(f"/encounters/{eid}/history", headers=BILLER))["events"]
    assert all(e["actor_role"] != "advocate" for e in history)  # nothing was written


def test_grant_gives_access_and_revocation_takes_it_away(client):
    eid = coded_encounter(client)
    other = coded_encounter(client, "PT-8002")
    g = grant(client, eid)
    grant_id = g["result"]["grant_id"]
    assert g["result"]["grantee_id"] == "advocate-1" and g["result"]["active"]
    assert ok(client.get(f"/encounters/{eid}", headers=ADVOCATE))["encounter_id"] == eid
    for path in ("/history", "/diff?from_version=1", "/claims/G-C1"):
        ok(client.get(f"/encounters/{eid}{path}", headers=ADVOCATE))
    # only the grantee, only that encounter
    assert client.get(f"/encounters/{eid}", headers=OTHER_ADVOCATE).status_code == 404
    assert client.get(f"/encounters/{other}", headers=ADVOCATE).status_code == 404
    # the dispute's advocate is the caller; a body may not name one
    r = client.post(f"/encounters/{eid}/disputes", headers=ADVOCATE, json={
        **BODIES["/encounters/{encounter_id}/disputes"], "advocate_id": "advocate-2"})
    assert r.status_code == 422 and r.json()["field"] == "advocate_id"
    opened = ok(client.post(f"/encounters/{eid}/disputes", headers=ADVOCATE,
                            json=BODIES["/encounters/{encounter_id}/disputes"]), 201)
    did = opened["result"]["dispute_id"]
    enc = ok(client.get(f"/encounters/{eid}", headers=ADVOCATE))
    assert [d["advocate_id"] for d in enc["disputes"]] == ["advocate-1"]
    ok(client.post(f"/encounters/{eid}/disputes/{did}/notes", headers=ADVOCATE,
                   json={"note": "payer called back"}))
    # list reads follow the grant too
    pos = opened["position"]
    claims = ok(client.get("/claims", params={"min_position": pos}, headers=ADVOCATE))["items"]
    assert {c["encounter_id"] for c in claims} == {eid}
    assert ok(client.get("/patients/PT-8001/balance", params={"min_position": pos},
                         headers=ADVOCATE))["patient_ref"] == "PT-8001"
    assert client.get("/patients/PT-8002/balance", headers=ADVOCATE).status_code == 404

    revoked = ok(client.post(f"/encounters/{eid}/grants/{grant_id}/revoke", headers=BILLER,
                             json={"reason": "patient withdrew the authorization"}))
    assert revoked["result"]["revoked"] and not revoked["result"]["active"]
    for path in ("", "/history", "/diff?from_version=1", "/claims/G-C1"):
        r = client.get(f"/encounters/{eid}{path}", headers=ADVOCATE)
        assert r.status_code == 404 and r.json()["rule"] == "encounter.exists", path
    r = client.post(f"/encounters/{eid}/disputes/{did}/notes", headers=ADVOCATE,
                    json={"note": "still there?"})
    assert r.status_code == 404 and r.json()["rule"] == "encounter.exists"
    assert ok(client.get("/claims", headers=ADVOCATE))["items"] == []
    assert client.get("/patients/PT-8001/balance", headers=ADVOCATE).status_code == 404
    assert ok(client.get("/queues/disputes-denials", headers=ADVOCATE))["items"] == []
    # billing staff see the grant's whole story
    grants = ok(client.get(f"/encounters/{eid}/grants", headers=BILLER))["grants"]
    assert [(x["grant_id"], x["revoked"], x["revoked_by"]) for x in grants] == [
        (grant_id, True, "biller-1")]


def test_grant_is_in_the_audit_trail_and_the_access_log(client):
    eid = coded_encounter(client)
    g = grant(client, eid, who=ADMIN)
    grant_id = g["result"]["grant_id"]
    r = ok(client.post(f"/encounters/{eid}/grants/{grant_id}/revoke", headers=BILLER,
                       json={"reason": "work done"}))
    trail = ok(client.get("/audit/trail", params={"encounter_id": eid,
                                                  "min_position": r["position"]},
                          headers=AUDITOR))["items"]
    rows = {t["event_type"]: t for t in trail}
    assert rows["AccessGranted"]["actor_id"] == "admin-1"
    assert grant_id in rows["AccessGranted"]["summary"]
    assert "advocate-1" in rows["AccessGranted"]["summary"]
    assert rows["AccessRevoked"]["actor_id"] == "biller-1"
    assert rows["AccessRevoked"]["reason"] == "work done"
    log = ok(client.get("/audit/access", params={"resource_type": "grant",
                                                 "encounter_id": eid},
                        headers=AUDITOR))["items"]
    assert [(x["action"], x["actor"], x["resource_id"]) for x in log] == [
        ("revoke", "biller-1", grant_id), ("grant", "admin-1", grant_id)]


def test_who_may_grant_and_to_whom(client):
    eid = coded_encounter(client)
    until = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    body = {"grantee_id": "advocate-1", "authorization_ref": "AUTH-1", "valid_until": until}
    # advocates cannot grant themselves anything (nor can coders): refused by role
    assert client.post(f"/encounters/{eid}/grants", headers=ADVOCATE, json=body
                       ).status_code == 403
    assert client.post(f"/encounters/{eid}/grants", headers=CODER, json=body).status_code == 403
    # the grantee must be an advocate
    r = client.post(f"/encounters/{eid}/grants", headers=BILLER,
                    json={**body, "grantee_id": "coder-a"})
    assert r.status_code == 422 and r.json()["rule"] == "grant.grantee_advocate"
    # an imported patient authorization must be this encounter's patient's
    r = client.post(f"/encounters/{eid}/grants", headers=BILLER,
                    json={**body, "basis": "patient_authorization", "patient_ref": "PT-9999"})
    assert r.status_code == 422 and r.json()["rule"] == "grant.patient_matches"
    r = client.post(f"/encounters/{eid}/grants", headers=BILLER,
                    json={**body, "valid_until": "2020-01-01T00:00:00Z"})
    assert r.status_code == 422 and r.json()["rule"] == "grant.future"
    r = client.post(f"/encounters/{eid}/grants", headers=BILLER,
                    json={**body, "valid_until": "2030-01-01T00:00:00"})
    assert r.status_code == 422 and r.json()["field"] == "valid_until"  # no timezone
    ok(client.post(f"/encounters/{eid}/grants", headers=BILLER,
                   json={**body, "basis": "patient_authorization", "patient_ref": "PT-8001"}),
       201)
    assert client.get(f"/encounters/{eid}", headers=ADVOCATE).status_code == 200
    versions = ok(client.get(f"/encounters/{eid}/history", headers=BILLER))["events"]
    assert sum(e["type"] == "AccessGranted" for e in versions) == 1
