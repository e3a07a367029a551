"""A database written before the structure redesign (issue 15) is read, verified and projected
by today's code: tests/fixtures/old_log/ledger.dump was made by the code of commit e31c6de
(see tests/fixtures/old_log/generate.py) with every event kind, X12 imports, grants, disputes,
per-batch seals and a checkpoint run. Restored into an empty database, migrated to today's
schema, `ledger verify` finds it clean against the key that signed it, every encounter
replays, the projections built from it agree with the aggregates and with the figures the
old code had, and the X12 claim index still finds claims stored under the old topics."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest

from tests.conftest import ROOT, _server_url, _with_db
from tests.integration.test_projections_rebuild import compare_with_aggregates

pytestmark = pytest.mark.postgres

OLD_LOG = ROOT / "tests" / "fixtures" / "old_log"
# What the old code wrote (printed by generate.py when the dump was made).
EVENTS = 712
ENCOUNTERS = 35
OLD_TOPIC_PREFIX = "ledger.domain.encounter:Encounter."
# encounters; balances primary, secondary, patient; charges; patient paid; refunded
FIGURES = (35, Decimal("12.50"), Decimal("863.80"), Decimal("2230.84"), Decimal("53148.01"),
           Decimal("1202.90"), Decimal("80.00"))
CLAIMS = [("denied", 1, Decimal("0.00")), ("draft", 1, Decimal("0.00")),
          ("paid", 35, Decimal("28649.91")), ("replaced", 1, Decimal("0.00")),
          ("submitted", 2, Decimal("0.00")), ("voided", 1, Decimal("0.00"))]


@pytest.fixture
def old_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = _server_url()
    name = f"ledger_old_log_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(server, name)
    monkeypatch.setenv("LEDGER_CHECKPOINT_PUBLIC_KEY_FILE",
                       str(OLD_LOG / "checkpoint-public.pem"))
    assert _cli(monkeypatch, url, "db", "restore", str(OLD_LOG / "ledger.dump"))[0] == 0
    code, out, err = _cli(monkeypatch, url, "migrate")
    assert code == 0, out + err
    yield url
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cli(monkeypatch: pytest.MonkeyPatch, url: str, *args: str) -> tuple[int, str, str]:
    from tests.integration.test_backup_restore import _cli as cli

    return cli(monkeypatch, url, *args)


def test_the_old_log_verifies_clean_against_the_key_that_signed_it(old_db, monkeypatch):
    with psycopg.connect(old_db) as conn:
        topics = {r[0] for r in conn.execute("SELECT DISTINCT topic FROM ledger_events")}
    assert all(t.startswith(OLD_TOPIC_PREFIX) for t in topics) and len(topics) == 33
    code, out, err = _cli(monkeypatch, old_db, "verify", "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ok"] is True and report["problem_count"] == 0
    assert report["trusted_key"] != "untrusted"
    assert report["events"] == report["covered_events"] == EVENTS
    assert report["checkpoints"] >= 1 and report["access_seals"] >= 1


def test_the_old_log_replays_and_projects_to_the_old_figures(old_db, monkeypatch):
    from ledger.application.service import LedgerApplication
    from ledger.config import Settings
    from ledger.persistence.database import eventsourcing_env
    from ledger.projections.runner import ProjectionRunner, runner_env

    with ProjectionRunner(runner_env(old_db)) as runner:
        runner.catch_up()
    code, out, err = _cli(monkeypatch, old_db, "projections", "verify")
    assert code == 0 and "every event reflected exactly once" in out, out + err
    app = LedgerApplication(env=eventsourcing_env(old_db, Settings(database_url=old_db,
                                                                   cache_size=0)))
    try:
        with psycopg.connect(old_db) as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT DISTINCT originator_id FROM ledger_events")]
            assert len(ids) == ENCOUNTERS
            replayed = sum(len(app.history(eid)) for eid in ids)
            assert replayed == EVENTS
            assert compare_with_aggregates(conn, app) == ENCOUNTERS
            figures = conn.execute(
                "SELECT count(*), sum(balance_primary), sum(balance_secondary), "
                "sum(balance_patient), sum(total_charge), sum(patient_paid), sum(refunded) "
                "FROM claims_encounters").fetchone()
            claims = conn.execute("SELECT status, count(*), sum(paid) FROM current_claims "
                                  "GROUP BY 1 ORDER BY 1").fetchall()
    finally:
        app.close()
    assert figures == FIGURES
    assert claims == CLAIMS


def test_the_x12_claim_index_finds_claims_stored_under_the_old_topics(old_db):
    from ledger.application.service import LedgerApplication
    from ledger.config import Settings
    from ledger.persistence.database import eventsourcing_env
    from ledger.x12 import index

    with psycopg.connect(old_db, autocommit=True) as conn:
        before = conn.execute("SELECT claim_number, encounter_id, payer_id FROM "
                              "x12_claim_index ORDER BY 1, 2, 3").fetchall()
        icns = conn.execute("SELECT payer_icn, encounter_id FROM x12_icn_index "
                            "ORDER BY 1, 2").fetchall()
        with_claims = {r[0] for r in conn.execute(
            "SELECT originator_id FROM ledger_events WHERE topic = %s",
            (OLD_TOPIC_PREFIX + "ClaimCreated",))}
        assert before and icns
        conn.execute("TRUNCATE x12_claim_index, x12_submission_index, x12_icn_index, "
                     "x12_claim_index_position, x12_icn_index_position")
        app = LedgerApplication(env=eventsourcing_env(old_db, Settings(database_url=old_db,
                                                                       cache_size=0)))
        try:
            index.catch_up(app, conn)
            index.catch_up_icn(app, conn)
        finally:
            app.close()
        after = conn.execute("SELECT claim_number, encounter_id, payer_id FROM "
                             "x12_claim_index").fetchall()
        assert set(after) >= set(before) and {r[1] for r in after} == with_claims
        assert set(conn.execute("SELECT payer_icn, encounter_id FROM x12_icn_index")) >= \
            set(icns)


