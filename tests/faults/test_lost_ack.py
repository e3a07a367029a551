"""Exactly once across a lost commit acknowledgement (issue 13, item 1), with the fault
injected deterministically: a proxy between the ledger and PostgreSQL closes the connection
right after the server committed, instead of passing on the COMMIT acknowledgement (or, for
the other half, when the client sends COMMIT, so the server never commits).

Before the fix, the library's recorder retried the insert by itself, met the rows it had
just committed, and the group-commit writer re-ran the command: two lines, or two
encounters, for one request."""

from __future__ import annotations

import psycopg
import pytest

from ledger.application.service import LedgerApplication
from ledger.config import Settings
from ledger.persistence.database import eventsourcing_env
from tests import builders as s
from tests.faults.conftest import proxied_url

pytestmark = pytest.mark.postgres


def _app(url: str, group_commit: bool) -> LedgerApplication:
    env = eventsourcing_env(url, Settings(database_url=url, cache_size=0))
    return LedgerApplication(env=env, group_commit=group_commit)


def _history(url: str) -> list[tuple[str, int]]:
    with psycopg.connect(url) as conn:
        return [(str(r[0]), r[1]) for r in conn.execute(
            "SELECT originator_id, originator_version FROM ledger_events"
            " ORDER BY notification_id")]


def _contiguous(history: list[tuple[str, int]]) -> bool:
    by_id: dict[str, list[int]] = {}
    for oid, v in history:
        by_id.setdefault(oid, []).append(v)
    return all(vs == list(range(1, len(vs) + 1)) for vs in by_id.values())


@pytest.mark.parametrize("group_commit", [True, False], ids=["writer", "single-save"])
def test_a_lost_commit_ack_applies_the_command_once(pgproxy, clean_db, group_commit):
    app = _app(proxied_url(pgproxy, clean_db), group_commit)
    try:
        eid = s.open_encounter(app)
        s.code(app, eid, "E11.9")
        before = len(_history(clean_db))
        pgproxy.drop_at_commit_ack()
        result = app.execute(eid, "add_service_line", actor=s.CODER_A,
                             procedure_code="99213", charge="130.00", pointers=[1],
                             rendering_npi=s.NPI)
        assert pgproxy.fired == ["ack"]
        after = _history(clean_db)
        assert len(after) == before + 1, "the command was applied twice"
        assert _contiguous(after)
        assert result.version == 3 and result.position == len(after)
        assert len(app.get_encounter(eid).lines) == 1
    finally:
        app.close()


@pytest.mark.parametrize("group_commit", [True, False], ids=["writer", "single-save"])
def test_a_lost_commit_ack_opens_one_encounter(pgproxy, clean_db, group_commit):
    app = _app(proxied_url(pgproxy, clean_db), group_commit)
    try:
        pgproxy.drop_at_commit_ack()
        result = app.open_encounter(
            actor=s.BILLER, facility_id="FAC-01", patient_ref="PT-1001",
            service_from=s.DOS, service_to=None, place_of_service="11",
            responsible_parties=s.parties(), claim_type="professional")
        assert pgproxy.fired == ["ack"]
        history = _history(clean_db)
        assert [oid for oid, _ in history] == [str(result.encounter_id)]
    finally:
        app.close()


def test_a_connection_lost_before_commit_reruns_the_command_once(pgproxy, clean_db):
    app = _app(proxied_url(pgproxy, clean_db), True)
    try:
        eid = s.open_encounter(app)
        s.code(app, eid, "E11.9")
        before = len(_history(clean_db))
        pgproxy.drop_before_commit()
        result = app.execute(eid, "add_service_line", actor=s.CODER_A,
                             procedure_code="99213", charge="130.00", pointers=[1],
                             rendering_npi=s.NPI)
        assert pgproxy.fired == ["commit"]
        after = _history(clean_db)
        assert len(after) == before + 1 and _contiguous(after)
        assert result.version == 3
        with psycopg.connect(clean_db) as conn:  # the dead save's token is fenced
            fenced = conn.execute("SELECT count(*) FROM ledger_commits WHERE NOT committed"
                                  ).fetchone()[0]
        assert fenced == 1
    finally:
        app.close()


ENCOUNTER = {"facility_id": "FAC-01", "patient_ref": "PT-3001", "service_from": "2026-03-10",
             "place_of_service": "11", "responsible_parties": [
                 {"bucket": "primary", "kind": "insurer", "payer_id": "PAYER-A"}]}


def test_post_encounters_with_a_key_never_creates_two_encounters(pgproxy, clean_db):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from tests.api.conftest import headers
    from tests.faults.conftest import provision

    provision(clean_db)
    settings = Settings(database_url=proxied_url(pgproxy, clean_db), cache_size=0,
                        projections_in_process=False)
    h = headers("biller-1", "biller", **{"Idempotency-Key": "lost-ack-1"})
    with TestClient(create_app(settings)) as client:
        pgproxy.drop_at_commit_ack()
        first = client.post("/encounters", json=ENCOUNTER, headers=h)
        assert pgproxy.fired == ["ack"]
        again = client.post("/encounters", json=ENCOUNTER, headers=h)
    assert first.status_code == 201, first.text
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    history = _history(clean_db)
    assert {oid for oid, _ in history} == {first.json()["encounter_id"]}


def test_a_released_claim_can_never_store_its_response(clean_db):
    """The fence behind taking over a key: once released (or taken over), the earlier
    execution's completion write raises, so its transaction cannot commit."""
    from ledger.application.idempotency import Claimed, ClaimLost, IdempotencyStore, new_pool

    pool = new_pool(clean_db, max_size=2)
    try:
        store = IdempotencyStore(pool)
        first = store.begin("s", "k", "fp")
        assert isinstance(first, Claimed) and first.claim is not None
        store.release("s", "k", first.claim)
        second = store.begin("s", "k", "fp")
        assert isinstance(second, Claimed) and second.claim != first.claim
        with psycopg.connect(clean_db) as conn, conn.cursor() as curs:
            with pytest.raises(ClaimLost):
                store.completion_write("s", "k", 200, b"{}", {}, curs, first.claim)
            conn.rollback()
            store.completion_write("s", "k", 200, b"{}", {}, curs, second.claim)
            conn.commit()
        assert store.begin("s", "k", "fp").__class__.__name__ == "Replay"
    finally:
        pool.close()


@pytest.mark.parametrize("fault", ["ack", "commit"])
def test_an_import_interrupted_at_commit_and_rerun_posts_nothing_twice(pgproxy, clean_db,
                                                                       fault):
    """`ledger import` across a dropped connection at COMMIT: the import either reports its
    posting (the commit is found) or fails cleanly; running it again posts nothing twice."""
    from ledger.x12.importer import X12Importer
    from tests.conftest import FIXTURES

    scen = FIXTURES / "scenarios"
    url = proxied_url(pgproxy, clean_db)
    app = _app(url, group_commit=False)
    try:
        importer = X12Importer(app, url)
        assert importer.import_path(scen / "s01_original_freq1.837p").outcome == "imported"
        before = len(_history(clean_db))
        (pgproxy.drop_at_commit_ack if fault == "ack" else pgproxy.drop_before_commit)()
        try:
            first = importer.import_path(scen / "s01_copay_co45.835").outcome
        except Exception as exc:  # an interrupted import: the operator runs it again
            first = type(exc).__name__
        assert pgproxy.fired == [fault]
        again = importer.import_path(scen / "s01_copay_co45.835")
        posted_events = len(_history(clean_db)) - before
        assert posted_events > 0 and _contiguous(_history(clean_db))
        # posted exactly once: a third run is a duplicate and adds nothing
        third = importer.import_path(scen / "s01_copay_co45.835")
        assert third.outcome == "duplicate" and third.posted == 0
        assert len(_history(clean_db)) - before == posted_events
        # either the first run's posting was found committed (the re-run is a duplicate), or
        # the interrupted run posted nothing (the re-run posts it)
        assert again.outcome == ("duplicate" if first == "posted" else "posted"), \
            (first, again.outcome)
    finally:
        app.close()


def test_every_save_leaves_a_commit_token_that_housekeeping_purges(app, clean_db):
    s.open_encounter(app)
    with psycopg.connect(clean_db, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_commits WHERE committed"
                            ).fetchone()[0] == 1
        conn.execute("UPDATE ledger_commits SET recorded_at = now() - interval '3 days'")
    assert app.recorder.purge_commit_tokens(older_than_hours=48) == 1
