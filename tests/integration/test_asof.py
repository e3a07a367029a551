"""As-of reads (issue 19): for random positions P of a generated history, every read model read
as of P equals a from-scratch rebuild of its projection stopped at P (into a scratch schema);
and the refusals (beyond the log, in the future, before the history starts)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.workload import run_workload
from ledger.domain.errors import InvalidValue
from ledger.projections import asof
from ledger.projections import queries as q
from ledger.projections.runner import ProjectionRunner, drop_scratch, rebuild_until

# ruff: noqa: F811 - the private_* fixtures below are imported, then requested by name
from tests.integration.test_projections_fixtures import (  # noqa: F401
    private_app,
    private_db,
    private_env,
)

pytestmark = pytest.mark.postgres
AGING_DAY = date(2026, 12, 31)
_schemas = itertools.count()


def _all_claims(conn, position=None) -> list[dict]:
    out, cursor = [], None
    while True:
        page = q.list_claims(conn, limit=q.MAX_LIMIT, cursor=cursor, position=position)
        out += page.items
        cursor = page.next_cursor
        if cursor is None:
            return out


def _trends(conn, position=None) -> dict:
    top = {scope: q.top_diagnoses(conn, scope=scope, limit=q.MAX_LIMIT, position=position)
           for scope in ("principal", "any")}
    detail = {(scope, r["diagnosis"]): q.diagnosis_trend(conn, r["diagnosis"], scope=scope,
                                                         limit=q.MAX_LIMIT, position=position)
              for scope, rows in top.items() for r in rows}
    return {"top": top, "detail": detail,
            "coders": q.code_revisions_by_coder(conn, limit=q.MAX_LIMIT, position=position),
            "codes": q.code_revisions_by_code(conn, limit=q.MAX_LIMIT, position=position)}


def _claims_models(conn, position=None) -> dict:
    claims = _all_claims(conn, position)
    for c in claims:  # effective dates: only the as-of list carries them
        c.pop("last_adjudicated_on", None)
        c.pop("last_paid_on", None)
    return {"claims": claims,
            "payers": q.payer_balances(conn, as_of=AGING_DAY, position=position),
            "patients": q.patient_balances(conn, position=position)}


def test_as_of_equals_a_rebuild_stopped_there(private_app, private_env, private_db):
    live = ProjectionRunner(private_env, page_size=37, max_page_size=37, poll_interval=0.02)
    live.start()
    try:
        stats = run_workload(private_app.save, encounters=24, seed=1919, concurrency=8)
        assert live.wait(private_app.max_position(), timeout=120), live.positions()
    finally:
        live.close()
    head = private_app.max_position()
    assert stats.events > 300
    with psycopg.connect(private_db, autocommit=True) as conn:
        # the history has versions that began inside pages (one per changing event)
        assert conn.execute("SELECT count(DISTINCT valid_from) FROM payer_balances_history"
                            ).fetchone()[0] > head // 4
        # as of the head = now
        assert _claims_models(conn, head) == _claims_models(conn)
        assert _trends(conn, head) == _trends(conn)

        @settings(max_examples=6, deadline=None, derandomize=False,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])
        @given(st.integers(min_value=1, max_value=head))
        def check(position: int) -> None:
            n = next(_schemas)
            claims_schema = rebuild_until(private_env, "claims", position, f"scratch_c{n}")
            trends_schema = rebuild_until(private_env, "trends", position, f"scratch_t{n}")
            try:
                expected_claims = _read_in(private_db, claims_schema, _claims_models)
                expected_trends = _read_in(private_db, trends_schema, _trends)
                assert _claims_models(conn, position) == expected_claims, position
                assert _trends(conn, position) == expected_trends, position
            finally:
                drop_scratch(private_env, claims_schema)
                drop_scratch(private_env, trends_schema)

        check()


def _read_in(url: str, schema: str, read) -> dict:
    with psycopg.connect(url, autocommit=True,
                         options=f"-c search_path={schema},public") as scratch:
        return read(scratch)


def test_as_of_refusals(private_app, private_env, private_db):
    run_workload(private_app.save, encounters=3, seed=5, concurrency=1)
    runner = ProjectionRunner(private_env)
    try:
        runner.catch_up()
    finally:
        runner.close()
    head = private_app.max_position()
    with psycopg.connect(private_db, autocommit=True) as conn:
        with pytest.raises(InvalidValue) as beyond:
            asof.resolve(conn, as_of_position=head + 1, projections=("claims",))
        assert beyond.value.field == "as_of_position"
        assert beyond.value.rule == "as_of_position.beyond_log"
        with pytest.raises(InvalidValue) as future:
            asof.resolve(conn, as_of=datetime.now(UTC) + timedelta(hours=1))
        assert (future.value.field, future.value.rule) == ("as_of", "as_of.future")
        with pytest.raises(InvalidValue) as naive:
            asof.resolve(conn, as_of=datetime(2026, 1, 1))
        assert naive.value.rule == "as_of.timezone"
        with pytest.raises(InvalidValue) as both:
            asof.resolve(conn, as_of=datetime.now(UTC), as_of_position=1)
        assert both.value.rule == "as_of.one_of"
        # an existing database keeps history from its migration: earlier is refused
        conn.execute("UPDATE read_model_history_start SET position = %s WHERE name = 'claims'",
                     (head - 1,))
        with pytest.raises(InvalidValue) as early:
            asof.resolve(conn, as_of_position=head - 2, projections=("claims",))
        assert early.value.rule == "as_of.before_history"
        assert "rebuild" in early.value.message
        assert asof.resolve(conn, as_of_position=head - 1, projections=("claims",)).position \
            == head - 1
        # recorded time -> the last position recorded at or before it
        at = conn.execute("SELECT recorded_at FROM audit_trail WHERE position = %s",
                          (head - 1,)).fetchone()[0]
        assert asof.resolve(conn, as_of=at, projections=("claims",)).position == head - 1


def test_exceptions_queue_as_of(private_app, private_db):
    from ledger.x12.exceptions import RaisedException, list_exceptions, resolve, write_raised

    run_workload(private_app.save, encounters=1, seed=3, concurrency=1)
    with psycopg.connect(private_db, autocommit=True) as conn:
        first = private_app.max_position()
        with conn.transaction():
            write_raised(conn.cursor(), [RaisedException("unmatched_claim", "clp.match", "k1",
                                                         claim_number="C-1", payer_id="P1")])
        run_workload(private_app.save, encounters=1, seed=4, concurrency=1)
        second = private_app.max_position()
        eid = list_exceptions(conn)[0]["exception_id"]
        resolve(conn, eid, action="dismissed", reason="test", actor_id="b-1")
        assert list_exceptions(conn, position=first - 1) == []
        [then] = list_exceptions(conn, status="all", position=first)
        assert then["status"] == "open"
        # the resolution was written when the log ended at `second`
        assert list_exceptions(conn, status="open", position=second - 1) == [then]
        assert list_exceptions(conn, status="open", position=second) == []
        [now] = list_exceptions(conn, status="all")
        assert now["status"] == "resolved"
