"""Safe to retry and safe under concurrency: If-Match races and Idempotency-Keys, through the
real server (uvicorn on loopback) and real PostgreSQL."""

from __future__ import annotations

import threading

import httpx
import psycopg
import pytest

from tests.api.conftest import headers
from tests.api.test_api_scenarios import BILLER, CODER, open_encounter

pytestmark = pytest.mark.postgres


def test_twenty_clients_race_with_if_match_exactly_one_success_per_version(live_server):
    base = live_server.url
    with httpx.Client(base_url=base) as c:
        eid = open_encounter(c)
        r = c.post(f"/encounters/{eid}/diagnoses", json={"code": "E11.9"}, headers=CODER)
        version = int(r.headers["etag"].strip('"'))
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def racer(i: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as c:
            barrier.wait()
            r = c.post(f"/encounters/{eid}/lines", headers={**CODER, "If-Match": f'"{version}"'},
                       json={"procedure_code": "99213", "charge": f"{100 + i}.00",
                             "pointers": [1]})
            with lock:
                statuses.append(r.status_code)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(200) == 1, statuses
    assert all(s in (409, 412) for s in statuses if s != 200), statuses
    with httpx.Client(base_url=base) as c:
        enc = c.get(f"/encounters/{eid}", headers=BILLER).json()
    assert enc["version"] == version + 1
    assert len(enc["lines"]) == 1, "nothing lost, nothing doubled"


def _count_events(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM ledger_events").fetchone()[0]


def test_idempotency_same_key_same_body_replays_without_writing(client, settings):
    eid = open_encounter(client)
    body = {"code": "E11.9"}
    h = {**CODER, "Idempotency-Key": "k-1"}
    first = client.post(f"/encounters/{eid}/diagnoses", json=body, headers=h)
    assert first.status_code == 200
    events = _count_events(settings.database_url)
    again = client.post(f"/encounters/{eid}/diagnoses", json=body, headers=h)
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["idempotent-replayed"] == "true"
    assert _count_events(settings.database_url) == events


def test_idempotency_same_key_different_body_is_422(client):
    eid = open_encounter(client)
    h = {**CODER, "Idempotency-Key": "k-2"}
    assert client.post(f"/encounters/{eid}/diagnoses", json={"code": "E11.9"},
                       headers=h).status_code == 200
    r = client.post(f"/encounters/{eid}/diagnoses", json={"code": "I10"}, headers=h)
    assert r.status_code == 422 and r.json()["rule"] == "idempotency_key.reused"


def test_idempotency_key_in_flight_is_409(client, settings):
    eid = open_encounter(client)
    # a first request that claimed the key and has not finished (e.g. still running)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        from ledger.application.idempotency import fingerprint
        path = f"/encounters/{eid}/diagnoses"
        body = b'{"code":"E11.9"}'
        conn.execute(
            "INSERT INTO ledger_idempotency (scope, key, fingerprint, state, locked_until,"
            " expires_at) VALUES (%s, 'k-3', %s, 'in_flight', now() + interval '1 minute',"
            " now() + interval '1 day')",
            (f"coder-a|POST|{path}", fingerprint("POST", path, body)))
    r = client.post(f"/encounters/{eid}/diagnoses", content=b'{"code":"E11.9"}',
                    headers={**CODER, "Idempotency-Key": "k-3",
                             "Content-Type": "application/json"})
    assert r.status_code == 409 and r.json()["rule"] == "idempotency_key.in_flight"


def test_idempotency_survives_a_server_restart(live_server, settings):
    with httpx.Client(base_url=live_server.url) as c:
        eid = open_encounter(c)
        h = {**BILLER, "Idempotency-Key": "restart-1"}
        body = {"facility_id": "FAC-01", "patient_ref": "PT-3001", "service_from": "2026-03-10",
                "place_of_service": "11", "responsible_parties": [
                    {"bucket": "primary", "kind": "insurer", "payer_id": "PAYER-A"}]}
        first = c.post("/encounters", json=body, headers=h)
        assert first.status_code == 201
    events = _count_events(settings.database_url)
    live_server.stop()
    live_server.start()
    with httpx.Client(base_url=live_server.url) as c:
        again = c.post("/encounters", json=body, headers=h)
    assert again.status_code == 201 and again.json() == first.json()
    assert _count_events(settings.database_url) == events
    assert eid  # the other encounter is untouched


def test_refusals_are_remembered_under_their_key(client):
    eid = open_encounter(client)
    h = {**CODER, "Idempotency-Key": "k-4"}
    r1 = client.post(f"/encounters/{eid}/diagnoses", json={"code": "R10.3"}, headers=h)
    r2 = client.post(f"/encounters/{eid}/diagnoses", json={"code": "R10.3"}, headers=h)
    assert r1.status_code == r2.status_code == 422
    assert r1.json() == r2.json()


def test_stale_if_match_is_412_and_writes_nothing(client):
    eid = open_encounter(client)
    r = client.post(f"/encounters/{eid}/diagnoses", json={"code": "E11.9"},
                    headers={**CODER, "If-Match": '"7"'})
    assert r.status_code == 412 and r.json()["rule"] == "version.matches"
    r = client.post(f"/encounters/{eid}/diagnoses", json={"code": "E11.9"},
                    headers={**headers("coder-a", "coder"), "If-Match": "garbage"})
    assert r.status_code == 422 and r.json()["field"] == "If-Match"
