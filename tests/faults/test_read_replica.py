"""Read replicas (issue 20): a primary and a streaming standby on loopback, made with the
embedded package's initdb / pg_basebackup / pg_ctl. The API writes to the primary and reads
its read models from the standby: a read with ``min_position`` is answered by the standby once
it has replayed that position, and by the primary when the standby lags beyond
LEDGER_READ_REPLICA_WAIT (replay paused with pg_wal_replay_pause())."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import headers, provision
from tests.conftest import ROOT
from tests.faults.replication import Cluster

pytestmark = pytest.mark.postgres

BILLER = headers("biller-1", "biller")
AUDITOR = headers("auditor-1", "auditor")


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Cluster, Cluster, str]]:
    from ledger.persistence.migrate import migrate

    directory = ROOT / ".ledger" / "faults-tests" / f"repl-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    primary = Cluster.primary(directory / "primary")
    standby = None
    try:
        url = primary.create_database("ledger")
        migrate(url)
        provision(url)
        standby = primary.standby(directory / "standby")
        yield primary, standby, "ledger"
    finally:
        if standby is not None:
            standby.stop()
        primary.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def client(pair: tuple[Cluster, Cluster, str]) -> Iterator[TestClient]:
    from api.main import create_app
    from ledger.config import Settings

    primary, standby, db = pair
    settings = Settings(database_url=primary.url(db), read_database_url=standby.url(db),
                        read_replica_wait=1.0, wait_timeout=5.0, cache_size=0)
    with TestClient(create_app(settings)) as c:
        yield c


def open_encounter(client: TestClient, patient: str) -> tuple[str, int]:
    body = {"facility_id": "FAC-01", "patient_ref": patient, "service_from": "2026-03-10",
            "place_of_service": "11", "responsible_parties": [
                {"bucket": "primary", "kind": "insurer", "payer_id": "PAYER-A",
                 "member_id": "MEM-1"}, {"bucket": "patient", "kind": "patient"}]}
    r = client.post("/encounters", json=body, headers=BILLER)
    assert r.status_code == 201, r.text
    return r.json()["encounter_id"], int(r.headers["X-Log-Position"])


def trail(client: TestClient, eid: str, pos: int | None) -> tuple[list[str], str]:
    client.cookies.clear()  # min_position alone (the position cookie: see the tests below)
    params: dict[str, object] = {"encounter_id": eid}
    if pos is not None:
        params["min_position"] = pos
    r = client.get("/audit/trail", params=params, headers=AUDITOR)
    assert r.status_code == 200, r.text
    return [i["encounter_id"] for i in r.json()["items"]], r.headers.get("X-Read-From", "")


def test_write_on_primary_read_with_min_position_from_the_replica(client, pair) -> None:
    primary, standby, db = pair
    with psycopg.connect(standby.url(db)) as conn:  # it is a standby, read only
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    for n in range(5):
        eid, pos = open_encounter(client, f"PT-R{n}")
        ids, where = trail(client, eid, pos)
        assert where == "replica"
        assert eid in ids, f"the replica answered without the write at position {pos}"
    # without min_position the replica answers as it is
    _, where = trail(client, eid, None)
    assert where == "replica"


def test_a_replica_lagging_beyond_the_wait_falls_back_to_the_primary(client, pair) -> None:
    primary, standby, db = pair
    eid0, pos0 = open_encounter(client, "PT-L0")
    assert trail(client, eid0, pos0) == ([eid0], "replica")
    with psycopg.connect(standby.url(db), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        try:
            eid, pos = open_encounter(client, "PT-L1")
            started = time.monotonic()
            ids, where = trail(client, eid, pos)
            waited = time.monotonic() - started
            assert where == "primary"
            assert eid in ids
            assert waited >= 1.0, "answered by the primary before the replica wait was over"
            # the paused replica really does not have it (this is what the fallback avoided)
            with psycopg.connect(standby.url(db), autocommit=True) as peek:
                assert peek.execute("SELECT count(*) FROM ledger_events WHERE "
                                    "notification_id >= %s", (pos,)).fetchone()[0] == 0
            # a read that the paused replica can serve still goes to it
            assert trail(client, eid0, pos0) == ([eid0], "replica")
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")
    # once replay resumes, the replica serves the new write
    assert trail(client, eid, pos) == ([eid], "replica")


def test_an_unreachable_replica_falls_back_to_the_primary(pair) -> None:
    from api.main import create_app
    from ledger.config import Settings

    primary, standby, db = pair
    dead = "postgresql://postgres@127.0.0.1:9/ledger"  # nothing listens on port 9
    settings = Settings(database_url=primary.url(db), read_database_url=dead,
                        read_replica_wait=1.0, pool_timeout=1.0, connect_timeout=2.0,
                        cache_size=0)
    with TestClient(create_app(settings)) as c:
        eid, pos = open_encounter(c, "PT-U0")
        assert trail(c, eid, pos) == ([eid], "primary")


# ------------------------------------------------------------------ replay reads (issue 20)
CODER = headers("coder-a", "coder")


def code(client: TestClient, eid: str, diagnosis: str) -> int:
    r = client.post(f"/encounters/{eid}/diagnoses", json={"code": diagnosis}, headers=CODER)
    assert r.status_code == 200, r.text
    return int(r.headers["X-Log-Position"])


def replay(client: TestClient, path: str, pos: int | None, **params: object
           ) -> tuple[dict, str]:
    client.cookies.clear()  # min_position alone (the position cookie: see the tests below)
    if pos is not None:
        params["min_position"] = pos
    r = client.get(path, params=params, headers=AUDITOR)
    assert r.status_code == 200, r.text
    return r.json(), r.headers.get("X-Read-From", "")


def test_replay_reads_with_min_position_are_answered_by_the_replica(client, pair) -> None:
    eid, _ = open_encounter(client, "PT-P0")
    pos = code(client, eid, "E11.9")
    enc, where = replay(client, f"/encounters/{eid}", pos)
    assert (enc["version"], where) == (2, "replica")
    assert [d["code"] for d in enc["diagnoses"]] == ["E11.9"]
    enc, where = replay(client, f"/encounters/{eid}", pos, as_of_version=1)
    assert (enc["version"], enc["diagnoses"], where) == (1, [], "replica")
    hist, where = replay(client, f"/encounters/{eid}/history", pos)
    assert (len(hist["events"]), where) == (2, "replica")
    diff, where = replay(client, f"/encounters/{eid}/diff", pos, from_version=1)
    assert (diff["to_version"], len(diff["events"]), where) == (2, 1, "replica")
    report, where = replay(client, "/remittances/reconciliation", pos)
    assert where == "replica"


def test_a_lagging_replica_leaves_replay_reads_to_the_primary(client, pair) -> None:
    primary, standby, db = pair
    eid, pos1 = open_encounter(client, "PT-P1")
    assert replay(client, f"/encounters/{eid}", pos1)[0]["version"] == 1
    with psycopg.connect(standby.url(db), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        try:
            pos2 = code(client, eid, "E11.9")
            started = time.monotonic()
            enc, where = replay(client, f"/encounters/{eid}", pos2)
            waited = time.monotonic() - started
            assert (enc["version"], where) == (2, "primary")
            assert waited >= 1.0, "answered by the primary before the replica wait was over"
            hist, where = replay(client, f"/encounters/{eid}/history", pos2)
            assert (len(hist["events"]), where) == (2, "primary")
            # the replica really answers these reads: without min_position it is behind
            enc, where = replay(client, f"/encounters/{eid}", None)
            assert (enc["version"], where) == (1, "replica")
            # and it still serves a read it has caught up with
            enc, where = replay(client, f"/encounters/{eid}", pos1, as_of_version=1)
            assert (enc["version"], where) == (1, "replica")
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")
    enc, where = replay(client, f"/encounters/{eid}", pos2)
    assert (enc["version"], where) == (2, "replica")


def test_replay_min_position_beyond_the_log_is_refused(client) -> None:
    eid, pos = open_encounter(client, "PT-P2")
    client.cookies.clear()
    r = client.get(f"/encounters/{eid}", params={"min_position": pos + 10_000},
                   headers=AUDITOR)
    assert r.status_code == 422, r.text  # as the read-model routes answer it
    assert r.json()["rule"] == "min_position.beyond_log"


# ------------------------------------------ read-your-writes by the position cookie (issue 20)
COOKIE = "ledger_min_position"


def cookie_read(client: TestClient, path: str, **params: object) -> tuple[dict, str]:
    """A read with no min_position: only the cookie the client's writes set."""
    assert "min_position" not in params
    r = client.get(path, params=params, headers=AUDITOR)
    assert r.status_code == 200, r.text
    return r.json(), r.headers.get("X-Read-From", "")


def test_a_write_then_a_read_with_only_the_cookie_is_answered_by_the_replica(client) -> None:
    client.cookies.clear()
    for n in range(3):
        eid, pos = open_encounter(client, f"PT-K{n}")
        assert int(client.cookies[COOKIE]) == pos
        pos = code(client, eid, "E11.9")
        assert int(client.cookies[COOKIE]) == pos
        body, where = cookie_read(client, "/audit/trail", encounter_id=eid)
        assert where == "replica"
        assert "DiagnosisCoded" in [i["event_type"] for i in body["items"]], \
            f"the replica answered without the write at position {pos}"
        enc, where = cookie_read(client, f"/encounters/{eid}")
        assert (enc["version"], where) == (2, "replica")
        hist, where = cookie_read(client, f"/encounters/{eid}/history")
        assert (len(hist["events"]), where) == (2, "replica")
        claims, where = cookie_read(client, "/fhir/Claim")  # FHIR search: same rule
        assert where == "replica"


def test_a_lagging_replica_leaves_a_cookie_read_to_the_primary(client, pair) -> None:
    primary, standby, db = pair
    client.cookies.clear()
    eid, _ = open_encounter(client, "PT-K9")
    assert cookie_read(client, f"/encounters/{eid}")[1] == "replica"
    with psycopg.connect(standby.url(db), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        try:
            pos = code(client, eid, "E11.9")
            assert int(client.cookies[COOKIE]) == pos
            started = time.monotonic()
            enc, where = cookie_read(client, f"/encounters/{eid}")
            waited = time.monotonic() - started
            assert (enc["version"], where) == (2, "primary")  # the write, from the primary
            assert waited >= 1.0, "answered by the primary before the replica wait was over"
            body, where = cookie_read(client, "/audit/trail", encounter_id=eid)
            assert where == "primary"
            assert "DiagnosisCoded" in [i["event_type"] for i in body["items"]]
            # the paused replica really is behind: without the cookie it answers version 1
            saved = client.cookies[COOKIE]
            client.cookies.clear()
            enc, where = cookie_read(client, f"/encounters/{eid}")
            assert (enc["version"], where) == (1, "replica")
            client.cookies.set(COOKIE, saved)
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")
    enc, where = cookie_read(client, f"/encounters/{eid}")
    assert (enc["version"], where) == (2, "replica")


@pytest.mark.parametrize("value", ["abc", "-1", "12x", "9" * 30])
def test_a_malformed_cookie_is_ignored_by_replica_reads(client, value) -> None:
    eid, _ = open_encounter(client, "PT-KM")
    client.cookies.clear()
    sent = {**AUDITOR, "Cookie": f"{COOKIE}={value}"}
    for path, params in (("/audit/trail", {"encounter_id": eid}), (f"/encounters/{eid}", {}),
                         ("/remittances/reconciliation", {})):
        r = client.get(path, params=params, headers=sent)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["X-Read-From"] == "replica"
