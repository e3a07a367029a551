"""Two organizations served by one service, a database each (LEDGER_TENANTS, api/tenants.py):
one app process, two databases on the embedded server; a write in each; every read
isolated (a token of one tenant gets 404 for the other's encounter, prefix or not); each
tenant its own projections, Idempotency-Keys, checkpoints and log identity; `ledger verify`
clean for each."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import NO_TIMEOUTS, ROOT, _server_url, _with_db

pytestmark = pytest.mark.postgres

TENANTS = ("clinic-a", "clinic-b")


@pytest.fixture(scope="module")
def databases() -> Iterator[dict[str, str]]:
    from ledger.persistence.migrate import migrate

    server = _server_url()
    urls = {}
    try:
        for tenant in TENANTS:
            name = f"ledger_tenant_{tenant[-1]}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            with psycopg.connect(server, autocommit=True, options=NO_TIMEOUTS) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            urls[tenant] = _with_db(server, name)
            migrate(urls[tenant])
        yield urls
    finally:
        with psycopg.connect(server, autocommit=True, options=NO_TIMEOUTS) as conn:
            for url in urls.values():
                name = url.rsplit("/", 1)[1]
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def tokens(databases: dict[str, str]) -> dict[str, dict[str, str]]:
    """Per tenant: a biller's and an auditor's token, issued by that tenant's database."""
    from ledger.application.idempotency import new_pool
    from ledger.auth.tokens import AuthStore

    out: dict[str, dict[str, str]] = {}
    for tenant, url in databases.items():
        pool = new_pool(url, max_size=2)
        try:
            store = AuthStore(pool)
            store.create_user("biller-1", "biller", created_by="tests")  # same user id in
            store.create_user("auditor-1", "auditor", created_by="tests")  # both: no matter
            out[tenant] = {"biller": store.create_token("biller-1", "tests"),
                           "auditor": store.create_token("auditor-1", "tests")}
        finally:
            pool.close()
    return out


@pytest.fixture
def client(databases: dict[str, str]) -> Iterator[TestClient]:
    from api.main import create_app
    from ledger.config import Settings

    with TestClient(create_app(Settings(tenants=databases, cache_size=0))) as c:
        yield c


def auth(tokens: dict[str, dict[str, str]], tenant: str, role: str = "biller",
         **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[tenant][role]}", **extra}


def open_encounter(client: TestClient, headers: dict[str, str], path: str = "/encounters"
                   ) -> tuple[str, int]:
    body = {"facility_id": "FAC-01", "patient_ref": "PT-T1", "service_from": "2026-03-10",
            "place_of_service": "11", "responsible_parties": [
                {"bucket": "primary", "kind": "insurer", "payer_id": "PAYER-A",
                 "member_id": "MEM-1"}, {"bucket": "patient", "kind": "patient"}]}
    r = client.post(path, json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["encounter_id"], int(r.headers["X-Log-Position"])


def stored_in(url: str, eid: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM ledger_events WHERE originator_id = %s",
                            (eid,)).fetchone()[0]


def test_each_tenants_writes_land_in_its_own_database_and_reads_are_isolated(
        client, databases, tokens) -> None:
    a, b = TENANTS
    eid_a, pos_a = open_encounter(client, auth(tokens, a))  # tenant chosen by the token
    eid_b, pos_b = open_encounter(client, auth(tokens, b),
                                  path=f"/tenants/{b}/encounters")  # ... or by the prefix
    assert (stored_in(databases[a], eid_a), stored_in(databases[b], eid_a)) == (1, 0)
    assert (stored_in(databases[a], eid_b), stored_in(databases[b], eid_b)) == (0, 1)

    # replay reads: each token sees its own tenant's encounter, and 404 for the other's
    assert client.get(f"/encounters/{eid_a}", headers=auth(tokens, a, "auditor")
                      ).status_code == 200
    assert client.get(f"/encounters/{eid_b}", headers=auth(tokens, b, "auditor")
                      ).status_code == 200
    for tenant, other in ((a, eid_b), (b, eid_a)):
        r = client.get(f"/encounters/{other}", headers=auth(tokens, tenant, "auditor"))
        assert r.status_code == 404, r.text
    # a token of A under B's prefix: 404, like a tenant that does not exist
    r = client.get(f"/tenants/{b}/encounters/{eid_b}", headers=auth(tokens, a, "auditor"))
    assert (r.status_code, r.json()["rule"]) == (404, "tenant.exists")
    r = client.get(f"/tenants/nope/encounters/{eid_b}", headers=auth(tokens, b, "auditor"))
    assert (r.status_code, r.json()["rule"]) == (404, "tenant.exists")
    assert client.get(f"/tenants/{b}/encounters/{eid_b}", headers=auth(tokens, b, "auditor")
                      ).status_code == 200

    # read models: each tenant's own projection runner, waited for with min_position
    for tenant, pos, mine, theirs in ((a, pos_a, eid_a, eid_b), (b, pos_b, eid_b, eid_a)):
        r = client.get("/audit/trail", params={"min_position": pos},
                       headers=auth(tokens, tenant, "auditor"))
        assert r.status_code == 200, r.text
        seen = {i["encounter_id"] for i in r.json()["items"]}
        assert mine in seen and theirs not in seen


def test_idempotency_keys_belong_to_one_tenant(client, databases, tokens) -> None:
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    eid_a, _ = open_encounter(client, auth(tokens, TENANTS[0], **key))
    eid_b, _ = open_encounter(client, auth(tokens, TENANTS[1], **key))
    assert eid_a != eid_b  # the same key in B is a new command there, not A's answer
    again, _ = open_encounter(client, auth(tokens, TENANTS[0], **key))
    assert again == eid_a  # in A it is the same command


def test_tokens_health_and_unnamed_requests(client, tokens) -> None:
    r = client.get("/encounters/00000000-0000-0000-0000-000000000001",
                   headers={"Authorization": "Bearer lgr_nobody.xxxxxxxxxxxxxxxxxxxxxxxx"})
    assert r.status_code == 401
    r = client.get("/claims")  # no token, no tenant
    assert (r.status_code, r.json()["rule"]) == (404, "tenant.required")
    r = client.get("/health")
    assert r.status_code == 200, r.text
    assert set(r.json()["tenants"]) == set(TENANTS)
    for tenant in TENANTS:
        assert client.get(f"/tenants/{tenant}/health").json()["status"] == "ok"
    assert client.get("/openapi.json").status_code == 200


def test_each_tenant_is_a_log_of_its_own_and_verifies_clean(client, databases,
                                                             tokens) -> None:
    from ledger.audit.sealing import log_id

    for tenant in TENANTS:  # something to seal in each
        open_encounter(client, auth(tokens, tenant))
    ids = {}
    for tenant, url in databases.items():
        deadline = time.monotonic() + 3.0  # a lone command: sealed within LEDGER_SEAL_MAX_DELAY
        with psycopg.connect(url, autocommit=True) as conn:
            ids[tenant] = log_id(conn)
            while True:
                sealed, head = conn.execute(
                    "SELECT (SELECT COALESCE(MAX(last_position), 0) FROM ledger_checkpoints), "
                    "(SELECT MAX(notification_id) FROM ledger_events)").fetchone()
                if sealed == head or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        assert sealed == head, f"{tenant}: its own writer sealed its own batches"
    assert ids[TENANTS[0]] != ids[TENANTS[1]]
    for tenant, url in databases.items():
        out = subprocess.run([str(Path(sys.executable).with_name("ledger")), "verify"],
                             cwd=ROOT, env={**os.environ, "LEDGER_DATABASE_URL": url},
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{tenant}: {out.stdout}\n{out.stderr}"
