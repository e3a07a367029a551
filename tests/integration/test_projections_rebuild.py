"""Rebuilding every projection from scratch gives, row for row, the tables the runner
maintained incrementally while a randomized workload (every event type, corrections,
reversals) was being written; and both agree with the Encounter aggregates themselves."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from bench.workload import run_workload
from ledger.domain.encounter import Encounter
from ledger.projections.check import snapshot, verify
from ledger.projections.runner import VIEWS, ProjectionRunner

# ruff: noqa: F811 - the private_* fixtures below are imported, then requested by name
from tests.integration.test_projections_fixtures import (  # noqa: F401
    private_app,
    private_db,
    private_env,
)

pytestmark = pytest.mark.postgres

EVENT_TYPES = {"EncounterOpened" if cls.__name__ == "Opened" else cls.__name__
               for cls in vars(Encounter).values()
               if isinstance(cls, type) and issubclass(cls, Encounter.Event)
               and cls is not Encounter.Event and cls.__name__ != "Created"}


def assert_same_tables(expected: dict, actual: dict) -> None:
    for table, rows in expected.items():
        other = actual[table]
        for i, (a, b) in enumerate(zip(rows, other, strict=False)):
            assert a == b, f"{table}: row {i} differs:\n incremental {a}\n rebuilt     {b}"
        assert len(rows) == len(other), f"{table}: {len(rows)} rows vs {len(other)} rebuilt"


def snapshots(conn) -> dict:
    return {name: snapshot(conn, cls) for name, cls in VIEWS.items()}


def compare_with_aggregates(conn, app) -> int:
    """The claims view agrees with each Encounter replayed from its events (balances per
    bucket, claim statuses and money, lines)."""
    ids = [r[0] for r in conn.execute("SELECT encounter_id FROM claims_encounters")]
    for eid in ids:
        enc = app.get_encounter(eid)
        row = conn.execute("SELECT * FROM claims_encounters WHERE encounter_id = %s",
                           (eid,)).fetchone()
        cols = [d.name for d in conn.execute("SELECT * FROM claims_encounters LIMIT 0")
                .description]
        r = dict(zip(cols, row, strict=True))
        for b in ("primary", "secondary", "tertiary", "patient"):
            assert r[f"balance_{b}"] == enc.balance(b).amount, (eid, b)
        assert r["total_charge"] == enc.total_charge.amount
        assert r["patient_paid"] == enc.patient_paid.amount
        assert r["refunded"] == enc.refunded.amount
        assert r["diagnoses"] == [d.code for d in enc.diagnoses]
        assert r["version"] == enc.version
        claims = {c[0]: c[1:] for c in conn.execute(
            "SELECT claim_number, status, paid, patient_responsibility, payer_icn, "
            "replaced_by, appeal_open, submitted_charge FROM current_claims "
            "WHERE encounter_id = %s", (eid,))}
        assert set(claims) == set(enc.claims)
        for number, c in enc.claims.items():
            assert claims[number] == (
                c.status, c.paid.amount, c.patient_responsibility.amount, c.payer_icn,
                c.replaced_by, c.appeal_open,
                c.submitted_charge.amount if c.submitted_charge else None), (eid, number)
        lines = {ln[0]: ln[1:] for ln in conn.execute(
            "SELECT line_no, procedure_code, charge, paid, allowed, removed, pointers "
            "FROM claims_encounter_lines WHERE encounter_id = %s", (eid,))}
        assert set(lines) == {int(n) for n in enc.lines}
        for n, ln in enc.lines.items():
            assert lines[int(n)] == (ln.procedure_code, ln.current_charge.amount,
                                     ln.paid.amount, ln.allowed.amount, ln.removed,
                                     list(ln.pointers)), (eid, n)
    return len(ids)


def test_rebuild_equals_incremental_after_random_workload(private_app, private_env,
                                                          private_db):
    live = ProjectionRunner(private_env, page_size=40, max_page_size=40,
                            poll_interval=0.02).start()
    try:
        stats = run_workload(private_app.save, encounters=140, seed=20260311, concurrency=30)
        assert stats.events >= 2500
        assert live.wait(private_app.max_position(), timeout=120), live.positions()
    finally:
        live.close()
    with psycopg.connect(private_db, autocommit=True) as conn:
        seen = {r[0] for r in conn.execute("SELECT DISTINCT event_type FROM audit_trail")}
        assert EVENT_TYPES <= seen, f"workload missed {EVENT_TYPES - seen}"
        frequencies = {r[0] for r in conn.execute("SELECT DISTINCT frequency FROM "
                                                  "current_claims")}
        assert frequencies == {"1", "7", "8"}
        assert conn.execute("SELECT count(*) FROM audit_trail WHERE event_type = "
                            "'ClaimAdjudicated' AND summary LIKE '%CLP02=22%'"
                            ).fetchone()[0] > 0, "no payer reversal in the workload"
        result = verify(conn)
        assert result.ok, result.problems
        assert compare_with_aggregates(conn, private_app) == 140
        incremental = snapshots(conn)

        rebuild = ProjectionRunner(private_env, page_size=1000)
        try:
            for view in rebuild.views.values():
                view.reset()
            assert conn.execute("SELECT count(*) FROM current_claims").fetchone()[0] == 0
            rebuild.catch_up()
        finally:
            rebuild.close()
        rebuilt = snapshots(conn)
        for name in VIEWS:
            assert_same_tables(incremental[name], rebuilt[name])
        assert sum(len(rows) for rows in rebuilt["audit"].values()) > stats.events
        totals = conn.execute("SELECT sum(billed), sum(paid), sum(outstanding) FROM "
                              "payer_balances").fetchone()
        assert all(isinstance(t, Decimal) for t in totals)


def test_page_runner_builds_what_the_library_runner_builds(private_app, private_env,
                                                           private_db):
    """The library's own ProjectionRunner (its subscription, one transaction per event,
    ``_insert_tracking`` per event) driving the same views ends with the same rows as our
    page-by-page runner: paging changes how many events share a transaction, nothing else."""
    from eventsourcing.projection import ProjectionRunner as LibraryRunner

    from ledger.application.service import LedgerApplication
    from ledger.projections.base import LibraryProjection

    run_workload(private_app.save, encounters=30, seed=77, concurrency=15)
    head = private_app.max_position()
    env = {**private_env, "POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "2"}
    with psycopg.connect(private_db, autocommit=True) as conn:
        for name, view_class in VIEWS.items():
            projection = type(f"Library{name.title()}", (LibraryProjection,), {"name": name})
            with LibraryRunner(application_class=LedgerApplication, projection_class=projection,
                               view_class=view_class, env=env) as runner:
                runner.wait(head, timeout=120)
        assert verify(conn).ok
        by_library = snapshots(conn)
        ours = ProjectionRunner(private_env)
        try:
            for view in ours.views.values():
                view.reset()
            ours.catch_up()
        finally:
            ours.close()
        rebuilt = snapshots(conn)
        for name in VIEWS:
            assert_same_tables(by_library[name], rebuilt[name])
