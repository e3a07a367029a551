"""The read-access log (issue 8, acceptance 3) and the auditors' routes, through the real API:
a read appears in the log with actor, resource, client and outcome; auditors query it and run
verification over HTTP; other roles are refused, and the refusal is recorded too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from api import read_access
from api.main import create_app
from ledger.audit.access import outcome_for, query_access, record_access
from ledger.config import Settings
from tests import builders as s

pytestmark = pytest.mark.postgres


def hdr(actor: str, role: str) -> dict[str, str]:
    # bearer tokens (issue 9): the test actors are provisioned by tests.api.conftest.provision
    from tests.api.conftest import headers

    return {**headers(actor, role), "X-Request-Id": f"req-{actor}"}


@pytest.fixture
def client(clean_db) -> Iterator[TestClient]:
    from tests.api.conftest import provision

    provision(clean_db)
    # mounts the audit routes and the read-access log; no projection runners: these tests
    # read encounters by replay
    app = create_app(Settings(database_url=clean_db, cache_size=0,
                              projections_in_process=False))
    with TestClient(app) as c:
        yield c


def test_record_and_query(clean_db):
    first = record_access(clean_db, actor="coder-a", actor_role="coder",
                          resource_type="encounter", resource_id="e-1", client="10.0.0.1")
    second = record_access(clean_db, actor="biller-1", resource_type="claim",
                           resource_id="C-1", outcome="not_found", status=404)
    assert second > first
    everything = query_access(clean_db)
    assert [r.id for r in everything] == [second, first]  # newest first
    assert [r.actor for r in query_access(clean_db, outcome="not_found")] == ["biller-1"]
    assert [r.id for r in query_access(clean_db, before_id=second)] == [first]
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert query_access(clean_db, since=later) == []
    assert everything[1].client == "10.0.0.1" and everything[1].at <= later
    with pytest.raises(ValueError):
        record_access(clean_db, actor="x", resource_type="claim", outcome="maybe")
    assert [outcome_for(c) for c in (200, 403, 404, 422, 500)] == [
        "allowed", "denied", "not_found", "invalid", "error"]


def test_an_api_read_is_recorded_with_actor_and_resource(client, app, clean_db):
    eid = s.open_encounter(app)
    r = client.get(f"/encounters/{eid}", headers=hdr("coder-a", "coder"))
    assert r.status_code == 200
    missing = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"/encounters/{missing}", headers=hdr("coder-a", "coder")).status_code \
        == 404
    assert client.get("/health").status_code in (200, 503)  # not recorded
    records = query_access(clean_db, actor="coder-a")
    assert [(r.resource_type, r.resource_id, r.outcome, r.status) for r in records] == [
        ("encounter", missing, "not_found", 404), ("encounter", str(eid), "allowed", 200)]
    seen = records[1]
    assert seen.encounter_id == eid and seen.actor_role == "coder"
    assert seen.route == "/encounters/{encounter_id}" and seen.client
    assert seen.request_id == "req-coder-a" and seen.action == "read"
    # Nothing else was logged (health and docs are not claim data).
    assert len(query_access(clean_db)) == 2


def test_auditors_query_the_log_and_others_are_refused(client, app, clean_db):
    eid = s.open_encounter(app)
    client.get(f"/encounters/{eid}", headers=hdr("coder-a", "coder"))
    refused = client.get("/audit/access", headers=hdr("biller-1", "biller"))
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    r = client.get("/audit/access", params={"encounter_id": str(eid)},
                   headers=hdr("auditor-1", "auditor"))
    assert r.status_code == 200
    items = r.json()["items"]
    assert [(i["actor"], i["resource_type"], i["outcome"]) for i in items] == [
        ("coder-a", "encounter", "allowed")]
    # The refusal and the auditor's own read are in the log too.
    assert [(x.actor, x.outcome) for x in query_access(clean_db, resource_type="access")] == [
        ("auditor-1", "allowed"), ("biller-1", "denied")]
    page = client.get("/audit/access", params={"limit": 1},
                      headers=hdr("auditor-1", "auditor")).json()
    assert len(page["items"]) == 1 and page["next_before_id"] == page["items"][0]["id"]


def test_verify_over_http(client, app, clean_db):
    eid = s.open_encounter(app)
    s.code(app, eid, "E119")
    r = client.get("/audit/verify", headers=hdr("auditor-1", "auditor"))
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["events"] == 2
    with psycopg.connect(clean_db) as conn:
        conn.execute("UPDATE ledger_events SET state = state || '\\x20'::bytea "
                     "WHERE originator_id = %s AND originator_version = 2", (eid,))
    body = client.get("/audit/verify", params={"encounter_id": str(eid)},
                      headers=hdr("auditor-1", "auditor")).json()
    assert body["ok"] is False
    assert body["first_problem"]["kind"] == "modified"
    assert body["first_problem"]["encounter_id"] == str(eid)
    assert body["first_problem"]["version"] == 2
    assert client.get("/audit/verify", headers=hdr("coder-a", "coder")).status_code == 403


def test_a_read_whose_access_cannot_be_recorded_is_refused(client, app, clean_db,
                                                           monkeypatch):
    eid = s.open_encounter(app)

    def broken(*args, **kwargs):
        raise psycopg.OperationalError("database gone")

    monkeypatch.setattr(read_access, "record_access", broken)
    r = client.get(f"/encounters/{eid}", headers=hdr("coder-a", "coder"))
    assert r.status_code == 503
    assert "patient" not in r.text.lower()


def test_a_patient_reference_in_the_path_is_recorded_as_a_pseudonym(client, clean_db):
    from types import SimpleNamespace

    from ledger.audit.access import pseudonym

    scope = {"route": SimpleNamespace(path="/patients/{patient_ref}/balance"),
             "path_params": {"patient_ref": "PT-1001"}}
    kind, resource_id, encounter_id, route = read_access._resource(scope)
    assert (kind, resource_id, encounter_id, route) == (
        "balance", pseudonym("PT-1001"), None, "/patients/{patient_ref}/balance")
    eid = "6f1c2b1e-0000-4000-8000-000000000001"
    scope = {"route": SimpleNamespace(path="/encounters/{encounter_id}/claims/{claim_number}"),
             "path_params": {"encounter_id": eid, "claim_number": "CLM-7"}}
    assert read_access._resource(scope)[:3] == ("claim", "CLM-7", eid)
    record_access(clean_db, actor="biller-1", resource_type="balance",
                  resource_id=pseudonym("PT-1001"))
    found = client.get("/audit/access", params={"resource_value": "PT-1001"},
                       headers=hdr("auditor-1", "auditor")).json()["items"]
    assert [i["actor"] for i in found] == ["biller-1"]
    assert "PT-1001" not in str(found)
