"""PHI at rest and in logs: with a cipher key the stored state holds no plaintext patient
reference or code, and everything still works; debug logs of whole scenarios carry no patient
reference, member id or name."""

from __future__ import annotations

import logging

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from ledger.config import Settings
from ledger.crypto import new_key
from tests.api import test_api_scenarios as http
from tests.api.conftest import provision

pytestmark = pytest.mark.postgres

PHI = [b"PT-2001", b"PT-2002", b"MEM-1"]
CODES = [b"E119", b"I10", b"99214", b"M5450"]


def test_encrypted_state_has_no_plaintext_and_everything_works(clean_db):
    provision(clean_db)
    key = new_key()
    app = create_app(Settings(database_url=clean_db, cache_size=0, cipher_key=key))
    with TestClient(app) as client:
        eid = http.scenario_1(client)
        http.scenario_2(client)
        claim = http.ok(client.get(f"/encounters/{eid}/claims/S1-0001", headers=http.BILLER))
        assert claim["paid"] == "114.82" and claim["diagnoses"] == ["E11.9", "I10"]
    with psycopg.connect(clean_db) as conn:
        states = [bytes(r[0]) for r in conn.execute("SELECT state FROM ledger_events")]
        snapshots = [bytes(r[0]) for r in conn.execute("SELECT state FROM ledger_snapshots")]
    assert len(states) > 20
    for blob in states + snapshots:
        for needle in PHI + CODES:
            assert needle not in blob
    # the same database read without the key cannot be decoded (it really is encrypted)
    from ledger.application import LedgerApplication
    from ledger.database import eventsourcing_env

    plain = LedgerApplication(env=eventsourcing_env(clean_db, Settings(database_url=clean_db)))
    try:
        with pytest.raises(Exception):  # noqa: B017 - any decode failure proves it
            plain.get_encounter(__import__("uuid").UUID(eid))
    finally:
        plain.close()
    # key rotation: a new current key with the old one kept for reading
    rotated = create_app(Settings(database_url=clean_db, cache_size=0, cipher_key=new_key(),
                                  cipher_old_keys=key))
    with TestClient(rotated) as client:
        enc = http.ok(client.get(f"/encounters/{eid}", headers=http.BILLER))
        assert enc["balances"]["patient"] == "30.00"


def test_debug_logs_of_whole_scenarios_carry_no_phi(clean_db, caplog):
    provision(clean_db)
    caplog.set_level(logging.DEBUG)
    app = create_app(Settings(database_url=clean_db, cache_size=0, log_level="DEBUG"))
    with TestClient(app) as client:
        http.scenario_1(client)
        http.scenario_2(client)
        r = client.post("/encounters", headers=http.BILLER, json={
            "facility_id": "FAC-01", "patient_ref": "PT-2099", "service_from": "2026-03-10",
            "place_of_service": "00", "responsible_parties": [
                {"bucket": "primary", "kind": "insurer", "payer_id": "P", "member_id": "MEM-9",
                 "name": "Jane Q Patient"}]})
        assert r.status_code == 422
        assert b"PT-2099" not in r.content and b"MEM-9" not in r.content
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "ledger.access" in {rec.name for rec in caplog.records}, "request logs were captured"
    for needle in ("PT-2001", "PT-2002", "PT-2099", "MEM-1", "MEM-9", "Jane Q Patient"):
        assert needle not in text, f"{needle} appeared in the logs"


def test_the_500_path_logs_no_phi(clean_db, caplog, monkeypatch):
    """An unexpected error on a route whose path holds a patient reference, with an exception
    message that echoes it (as a driver error can): the log line has the route template and
    a request id, never the raw path or the message."""
    from ledger.projections import queries

    def broken(conn, patient_ref, **_):
        raise RuntimeError(f"could not read balance for {patient_ref} (MEM-1)")

    monkeypatch.setattr(queries, "patient_balance", broken)
    provision(clean_db)
    caplog.set_level(logging.DEBUG)
    app = create_app(Settings(database_url=clean_db, cache_size=0, log_level="DEBUG"))
    # raise_server_exceptions stays on: nothing may reach the server (uvicorn would log the
    # traceback with its message)
    with TestClient(app) as client:
        r = client.get("/patients/PT-2001/balance", headers={**http.BILLER,
                                                             "X-Request-ID": "req-500-check"})
    assert r.status_code == 500
    assert r.json()["request_id"] == "req-500-check"
    assert b"MEM-1" not in r.content and b"could not read" not in r.content
    records = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert records, "the 500 was logged"
    # the server's records (the test client's own httpx line shows the URL it asked for)
    text = "\n".join(rec.getMessage() + (rec.exc_text or "") for rec in caplog.records
                     if not rec.name.startswith("httpx"))
    assert "/patients/{patient_ref}/balance" in text and "req-500-check" in text
    assert "RuntimeError" in text
    for needle in ("PT-2001", "MEM-1"):
        assert needle not in text, f"{needle} appeared in the logs"
    assert all(rec.exc_info is None for rec in records)  # no message-bearing traceback
