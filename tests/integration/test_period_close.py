"""Period close and reconciliation (issue 19): a closed period's report never changes; a late
reversal shows as a post-close adjustment of the next period; balance at T1 + changes by
event kind = balance at T2, exactly."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg
import pytest

from bench.workload import EncounterLife, run_workload
from ledger.audit.checkpoints import generate_key
from ledger.audit.writer import CheckpointWriter
from ledger.domain.errors import IllegalTransition, InvalidValue
from ledger.projections import queries as q
from ledger.projections.check import verify
from ledger.projections.runner import ProjectionRunner
from ledger.reporting import close_period, period_report, reconcile

# ruff: noqa: F811 - the private_* fixtures below are imported, then requested by name
from tests.integration.test_projections_fixtures import (  # noqa: F401
    private_app,
    private_db,
    private_env,
)

pytestmark = pytest.mark.postgres
AFTER_DECEMBER = datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC)


def _paid_life(app) -> tuple[EncounterLife, str]:
    """An encounter driven until one of its claims is paid (saved step by step)."""
    for seed in range(200):
        life = EncounterLife(random.Random(seed), 900_000 + seed)
        for _ in life.steps():
            if life.enc is not None and life.enc.pending_events:
                app.save(life.enc)
            if life.enc is None:
                continue
            for number, claim in life.enc.claims.items():
                if claim.status == "paid" and claim.paid.amount > 0 and \
                        number in life.submitted:
                    return life, number
    raise AssertionError("no paid claim")


def _catch_up(env) -> None:
    runner = ProjectionRunner(env)
    try:
        runner.catch_up()
    finally:
        runner.close()


def test_closed_period_unchanged_by_a_late_reversal(private_app, private_env, private_db,
                                                    tmp_path):
    run_workload(private_app.save, encounters=6, seed=21, concurrency=6)
    life, number = _paid_life(private_app)
    _catch_up(private_env)
    with psycopg.connect(private_db, autocommit=True) as conn:
        # per-batch sealing (the default) covers every batch; else the job must have run
        CheckpointWriter(private_db, generate_key(tmp_path / "k.pem")).run_once()
        with pytest.raises(IllegalTransition) as role:
            close_period(private_app, conn, "2026-12", actor_id="b-1", actor_role="biller",
                         now=AFTER_DECEMBER)
        assert role.value.rule == "period.close_role"
        with pytest.raises(InvalidValue) as not_ended:
            close_period(private_app, conn, "2026-12", actor_id="lead-1",
                         actor_role="billing_lead", now=datetime(2026, 12, 31, tzinfo=UTC))
        assert not_ended.value.rule == "period.not_ended"
        head = private_app.max_position()
        closed = close_period(private_app, conn, "2026-12", actor_id="lead-1",
                              actor_role="billing_lead", reason="month-end close",
                              now=AFTER_DECEMBER)
        assert closed.position == head
        assert closed.tree_size >= head and len(closed.root_hash) == 64
        with pytest.raises(IllegalTransition):
            close_period(private_app, conn, "2026-12", actor_id="lead-1",
                         actor_role="admin", now=AFTER_DECEMBER)
        _catch_up(private_env)  # the PeriodClosed event passes through every projection
        # the close is in the audit trail: who, when, why, the position and checkpoint
        audit = q.audit_trail(conn, period="2026-12").items
        assert len(audit) == 1, audit
        row = audit[0]
        assert (row["event_type"], row["actor_id"], row["actor_role"], row["reason"]) == (
            "PeriodClosed", "lead-1", "billing_lead", "month-end close")
        assert row["encounter_id"] is None and row["effective_date"] == date(2026, 12, 31)
        assert row["recorded_at"].tzinfo is not None
        assert row["changes"]["position"] == closed.position
        assert row["changes"]["checkpoint"]["root_hash"] == closed.root_hash
        assert row["position"] > closed.position  # recorded after the position it fixes
        assert [r["position"] for r in q.audit_trail(conn, event_type="PeriodClosed").items
                ] == [row["position"]]
        assert not verify(conn).problems
        before = period_report(private_app, conn, "2026-12")
        assert before["checkpoint"]["root_hash"] == closed.root_hash
        assert before["post_close_adjustments"]["changes"] == []

        # a late reversal (CLP02=22) of the paid claim, recorded after the close
        payer = life.enc.claims[number].payer_id
        paid_before = life.enc.claims[number].paid.amount
        life.reverse(number, date(2027, 1, 5))
        private_app.save(life.enc)
        _catch_up(private_env)

        after = period_report(private_app, conn, "2026-12")
        assert after["payers"] == before["payers"]  # the closed report is unchanged
        assert after["position"] == before["position"]
        adjustments = after["post_close_adjustments"]
        assert adjustments["period"] == "2027-01"
        kinds = {c["event_type"]: c for c in adjustments["changes"]}
        assert "ClaimAdjudicated" in kinds, kinds
        assert adjustments["total_change"]["paid"] == -paid_before
        assert sum(c["paid"] for c in kinds.values()) == -paid_before
        assert adjustments["balanced"]

        # reconciliation: the closed position to now, for the payer and for the whole A/R
        for payer_id in (payer, None):
            r = reconcile(conn, closed.position, private_app.max_position(), payer_id)
            assert r["balanced"]
            for m in ("paid", "outstanding", "billed"):
                assert r["opening"][m] + r["total_change"][m] == r["closing"][m]
                assert isinstance(r["closing"][m], Decimal)


@pytest.fixture
def unsealed(monkeypatch):
    monkeypatch.setenv("LEDGER_SEAL_PER_BATCH", "false")


def test_close_refused_while_no_checkpoint_covers_the_period(unsealed, private_app,
                                                             private_env, private_db):
    run_workload(private_app.save, encounters=2, seed=2, concurrency=2)
    _catch_up(private_env)
    with psycopg.connect(private_db, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_checkpoints").fetchone()[0] == 0
        with pytest.raises(IllegalTransition) as refused:
            close_period(private_app, conn, "2026-12", actor_id="lead-1",
                         actor_role="billing_lead", now=AFTER_DECEMBER)
        assert refused.value.rule == "period.unsealed"
        assert "seal first" in refused.value.message


def test_reconciliation_sums_between_any_two_positions(private_app, private_env, private_db):
    stats = run_workload(private_app.save, encounters=12, seed=8, concurrency=6)
    _catch_up(private_env)
    positions = [0, *stats.positions[::7], private_app.max_position()]
    with psycopg.connect(private_db, autocommit=True) as conn:
        payers = [r[0] for r in conn.execute("SELECT DISTINCT payer_id FROM payer_balances")]
        assert payers
        for a, b in zip(positions, positions[1:], strict=False):
            for payer_id in (None, *payers):
                r = reconcile(conn, a, b, payer_id)
                assert r["balanced"], (a, b, payer_id)
        whole = reconcile(conn, 0, private_app.max_position())
        assert whole["opening"]["outstanding"] == 0
        now = conn.execute("SELECT COALESCE(sum(outstanding), 0), COALESCE(sum(paid), 0) "
                           "FROM payer_balances").fetchone()
        assert (whole["closing"]["outstanding"], whole["closing"]["paid"]) == now
        assert {c["event_type"] for c in whole["changes"]} >= {"ClaimCreated",
                                                               "ClaimAdjudicated"}
