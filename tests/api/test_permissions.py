"""Who may do what: every route x every role (and anonymous) against the one permission table;
advocates see only their disputes' encounters; 401 vs 403; failed authentications rate-limited."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from api.main import create_app
from api.permissions import PERMISSIONS, PUBLIC
from ledger.config import Settings
from tests.api.conftest import TEST_ACTORS, headers
from tests.api.test_api_scenarios import BILLER, CODER, ok, open_encounter

pytestmark = pytest.mark.postgres

ROLE_ACTOR = {"coder": "coder-a", "biller": "biller-1", "auditor": "auditor-1",
              "advocate": "advocate-1", "admin": "admin-1"}


def api_routes(app) -> list[tuple[str, str]]:
    """Every (method, path template) the API serves, as its OpenAPI document lists them
    (FastAPI wraps included routers, so app.routes is not flat)."""
    routes = {(m.upper(), path) for path, item in app.openapi()["paths"].items()
              for m in item if m in ("get", "post", "put", "patch", "delete")}
    routes |= {(m, r.path) for r in app.routes if isinstance(r, APIRoute) for m in r.methods}
    return sorted(routes)


def test_every_route_declares_a_permission():
    app = create_app(Settings(database_url="postgresql://unused/x"))
    missing = [rm for rm in api_routes(app) if rm not in PERMISSIONS]
    assert not missing, f"routes without a declared permission (default deny): {missing}"


def _concrete(path: str) -> str:
    values = {"encounter_id": "00000000-0000-0000-0000-000000000001", "claim_number": "C-1",
              "position": "1", "line_no": "1", "dispute_id": "D-1", "system": "icd10cm",
              "code": "E11.9", "user_id": "nobody", "token_id": "none", "patient_ref": "P-1"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


def test_permission_matrix_every_route_every_role(client):
    app = client.app
    checked = 0
    for method, path in api_routes(app):
        allowed_roles = PERMISSIONS[(method, path)]
        url = _concrete(path)
        # anonymous
        r = client.request(method, url, json={})
        if allowed_roles is PUBLIC:
            assert r.status_code not in (401, 403), (method, path, r.status_code)
            continue
        assert r.status_code == 401, (method, path, "anonymous", r.status_code)
        assert r.headers.get("www-authenticate", "").startswith("Bearer")
        for role, actor in ROLE_ACTOR.items():
            r = client.request(method, url, json={}, headers=headers(actor, role))
            if role in allowed_roles:
                assert r.status_code not in (401, 403), (method, path, role, r.status_code,
                                                         r.text[:200])
            else:
                assert r.status_code == 403, (method, path, role, r.status_code)
                # /fhir answers refusals as a FHIR OperationOutcome (issue 18)
                assert r.headers["content-type"] == ("application/fhir+json" if
                                                     path.startswith("/fhir/") else
                                                     "application/problem+json")
            checked += 1
    assert checked > 100


def test_invalid_and_revoked_tokens_are_401(client):
    r = client.get("/encounters/00000000-0000-0000-0000-000000000001",
                   headers={"Authorization": "Bearer lgr_t-coder-a.wrong-secret-xxxxxxxxxx"})
    assert r.status_code == 401
    admin = headers("admin-1", "admin")
    ok(client.post("/admin/users", json={"user_id": "temp-1", "role": "coder"}, headers=admin),
       201)
    token = ok(client.post("/admin/users/temp-1/tokens", json={}, headers=admin), 201)["token"]
    eid = open_encounter(client)
    assert client.get(f"/encounters/{eid}", headers={"Authorization": f"Bearer {token}"}
                      ).status_code == 200
    token_id = token.split("_", 1)[1].split(".", 1)[0]
    ok(client.post(f"/admin/tokens/{token_id}/revoke", headers=admin))
    assert client.get(f"/encounters/{eid}", headers={"Authorization": f"Bearer {token}"}
                      ).status_code == 401


def test_actor_on_events_comes_from_the_token(client):
    eid = open_encounter(client)
    ok(client.post(f"/encounters/{eid}/diagnoses", json={"code": "E11.9"}, headers=CODER))
    history = ok(client.get(f"/encounters/{eid}/history", headers=BILLER))["events"]
    assert [(e["actor_id"], e["actor_role"]) for e in history] == [
        ("biller-1", "biller"), ("coder-a", "coder")]
    r = client.post(f"/encounters/{eid}/diagnoses", json={"code": "I10", "actor_id": "x"},
                    headers=CODER)
    assert r.status_code == 422  # no actor in the body, ever


def test_advocate_reads_only_encounters_granted_to_them(client):
    from datetime import UTC, datetime, timedelta

    advocate = headers("advocate-1", "advocate")
    other = headers("advocate-2", "advocate")
    mine, theirs = open_encounter(client, "PT-7001"), open_encounter(client, "PT-7002")
    for eid in (mine, theirs):
        ok(client.post(f"/encounters/{eid}/diagnoses", json={"code": "E11.9"}, headers=CODER))
        ok(client.post(f"/encounters/{eid}/lines", headers=CODER, json={
            "procedure_code": "99213", "charge": "130.00", "pointers": [1]}))
    # opening a dispute does not give access: only a grant does
    r = client.post(f"/encounters/{mine}/disputes", headers=advocate, json={
        "line_nos": [1], "category": "charge", "description": "higher than estimate"})
    assert r.status_code == 404 and r.json()["rule"] == "encounter.exists"
    ok(client.post(f"/encounters/{mine}/grants", headers=BILLER, json={
        "grantee_id": "advocate-1", "authorization_ref": "AUTH-7001",
        "valid_until": (datetime.now(UTC) + timedelta(days=7)).isoformat()}), 201)
    ok(client.post(f"/encounters/{mine}/disputes", headers=advocate, json={
        "line_nos": [1], "category": "charge", "description": "higher than estimate"}), 201)
    assert client.get(f"/encounters/{mine}", headers=advocate).status_code == 200
    for path in ("", "/history", "/diff?from_version=1"):
        r = client.get(f"/encounters/{theirs}{path}", headers=advocate)
        assert r.status_code == 404, (path, r.status_code)
        assert client.get(f"/encounters/{mine}{path}", headers=other).status_code == 404
    # an advocate cannot name who the dispute is for: the body has no advocate_id
    r = client.post(f"/encounters/{mine}/disputes", headers=advocate, json={
        "line_nos": [1], "category": "charge", "advocate_id": "advocate-2"})
    assert r.status_code == 422 and r.json()["field"] == "advocate_id"


def test_failed_authentications_are_rate_limited(clean_db):
    from fastapi.testclient import TestClient

    from tests.api.conftest import provision

    provision(clean_db)
    app = create_app(Settings(database_url=clean_db, auth_failure_limit=3))
    with TestClient(app) as c:
        codes = [c.get("/encounters/00000000-0000-0000-0000-000000000001",
                       headers={"Authorization": "Bearer nope"}).status_code
                 for _ in range(5)]
    assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429]


def test_all_test_actors_exist_for_every_role():
    assert set(TEST_ACTORS.values()) == {"coder", "biller", "auditor", "advocate", "admin"}
