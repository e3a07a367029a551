"""Read-your-writes without min_position (issue 20): every successful write sets the
``ledger_min_position`` cookie to the highest log position the client has written, and a read
waits for max(min_position, cookie) — here, without read replicas, for the projections."""

from __future__ import annotations

import threading
import time

import pytest

from tests.api import test_api_scenarios as http
from tests.api.conftest import headers

pytestmark = pytest.mark.postgres

AUDITOR = headers("auditor-1", "auditor")
COOKIE = "ledger_min_position"


def cookie(client) -> int | None:
    value = client.cookies.get(COOKIE)
    return None if value is None else int(value)


def test_a_write_sets_the_cookie_and_it_only_rises(client):
    body = {"facility_id": "FAC-01", "patient_ref": "PT-C1", "service_from": "2026-03-10",
            "place_of_service": "11", "responsible_parties": [
                {"bucket": "patient", "kind": "patient"}]}
    first = client.post("/encounters", json=body,
                        headers={**http.BILLER, "Idempotency-Key": "cookie-k1"})
    assert first.status_code == 201, first.text
    pos1 = int(first.headers["X-Log-Position"])
    set_cookie = first.headers["set-cookie"]
    assert set_cookie.startswith(f"{COOKIE}={pos1};")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert attribute in set_cookie
    eid = first.json()["encounter_id"]
    r = http.ok(client.post(f"/encounters/{eid}/diagnoses", json={"code": "E11.9"},
                            headers=http.CODER))
    pos2 = r["position"]
    assert pos2 > pos1 and cookie(client) == pos2
    # the first request replayed by its key answers its old position, the cookie stays up
    again = client.post("/encounters", json=body,
                        headers={**http.BILLER, "Idempotency-Key": "cookie-k1"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert int(again.headers["X-Log-Position"]) == pos1
    assert "set-cookie" not in again.headers and cookie(client) == pos2
    # a refused write sets nothing
    bad = client.post(f"/encounters/{eid}/diagnoses", json={"code": "NOPE"}, headers=http.CODER)
    assert bad.status_code == 422 and "set-cookie" not in bad.headers


def test_the_cookie_makes_a_read_model_read_wait_for_the_projections(client, settings):
    eid = http.open_encounter(client, "PT-C2")
    runner = client.app.state.projection_runner
    runner.stop()  # the read models stop moving
    pos = http.ok(client.post(f"/encounters/{eid}/diagnoses", json={"code": "E11.9"},
                              headers=http.CODER))["position"]
    assert cookie(client) == pos
    settings.wait_timeout = 0.3
    # with the cookie only (no min_position) the read waits, as min_position does: 503
    r = client.get("/audit/trail", params={"encounter_id": eid}, headers=AUDITOR)
    assert r.status_code == 503, r.text
    # without the cookie it answers at once, without the write: what the cookie prevents
    saved = client.cookies.get(COOKIE)
    client.cookies.delete(COOKIE)
    r = client.get("/audit/trail", params={"encounter_id": eid}, headers=AUDITOR)
    assert r.status_code == 200
    assert "DiagnosisCoded" not in [i["event_type"] for i in r.json()["items"]]
    client.cookies.set(COOKIE, saved)
    # the projections resume while the read waits: it answers with the write
    settings.wait_timeout = 10.0
    threading.Timer(0.5, runner.start).start()
    started = time.monotonic()
    r = client.get("/audit/trail", params={"encounter_id": eid}, headers=AUDITOR)
    assert r.status_code == 200, r.text
    assert time.monotonic() - started >= 0.4, "answered before the projections resumed"
    assert "DiagnosisCoded" in [i["event_type"] for i in r.json()["items"]]


@pytest.mark.parametrize("value", ["abc", "-5", "1.5", "", "9" * 40, "0x10", "%31"])
def test_a_malformed_cookie_is_ignored(client, value):
    eid = http.open_encounter(client, "PT-C3")
    client.cookies.clear()
    sent = {**http.BILLER, "Cookie": f"{COOKIE}={value}"}
    for path in ("/claims", f"/encounters/{eid}", "/remittances/reconciliation"):
        r = client.get(path, headers=sent)
        assert r.status_code == 200, (path, r.text)
        assert "X-Min-Position-Clamped" not in r.headers


def test_a_cookie_beyond_the_log_is_clamped_not_refused(client):
    eid = http.open_encounter(client, "PT-C4")
    head = http.ok(client.get("/projections/status", headers=AUDITOR))["head"]
    client.cookies.clear()
    client.cookies.set(COOKIE, str(head + 10_000))
    for path in ("/claims", f"/encounters/{eid}", f"/encounters/{eid}/history",
                 "/remittances/reconciliation"):
        r = client.get(path, headers=AUDITOR)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["X-Min-Position-Clamped"] == str(head), path
    # an explicit min_position beyond the log is still the client's error
    r = client.get("/claims", params={"min_position": head + 10_000}, headers=AUDITOR)
    assert r.status_code == 422 and r.json()["rule"] == "min_position.beyond_log"
