"""A projection that fails on an event anyway (a bug) is never silent (issue 13, item 2): the
runner keeps the events before the bad one, reports the projection, the event's position and
type and the error in `ledger projections status` and /ready, retries with back-off, and
after the fix (here: the bug removed from the running process; in real life, a restart or
`ledger projections rebuild`) it comes back to `ok` with no database edit."""

from __future__ import annotations

import time

import pytest

from ledger.config import Settings
from ledger.projections.runner import ProjectionRunner
from ledger.projections.status import status_rows
from tests import builders as s

pytestmark = pytest.mark.postgres


class Monitor:  # the database is up; /ready's other checks are what this test looks at
    available = True
    reason = ""


def _wait(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_a_failing_projection_is_reported_retried_and_recovers(app, app_env, clean_db):
    from ledger.application.idempotency import new_pool
    from ledger.readiness import readiness

    eid = s.open_encounter(app)
    runner = ProjectionRunner(app_env, ["trends"], poll_interval=0.1)
    view = runner.views["trends"]
    real_apply = view.apply
    broken = {"on": True}

    def buggy_apply(curs, events):
        for e in events:
            if broken["on"] and type(e.event).__name__ == "ServiceLineAdded":
                raise ZeroDivisionError("a bug in the projection")
        return real_apply(curs, events)

    view.apply = buggy_apply
    runner.start()
    pool = new_pool(clean_db, max_size=2)
    try:
        s.code(app, eid, "E11.9")
        bad = app.execute(eid, "add_service_line", actor=s.CODER_A, procedure_code="99213",
                          charge="130.00", pointers=[1], rendering_npi=s.NPI).position
        s.line(app, eid, "99214", "180.00", [1])

        def failing():
            rows = {r["projection"]: r for r in status_rows(clean_db)}
            return rows["trends"] if rows["trends"]["state"] == "failing" else None

        row = _wait(failing)
        assert row["failed_at_position"] == bad
        assert row["failed_event"] == "ServiceLineAdded"
        assert row["last_error"] == "ZeroDivisionError"
        assert row["position"] == bad - 1  # the events before the bad one were kept
        body = readiness(Monitor(), pool, Settings(database_url=clean_db))
        assert not body["ready"]
        assert any("trends failing at event" in r and "ServiceLineAdded" in r
                   for r in body["reasons"]), body["reasons"]
        failures = runner.health["trends"].failures
        _wait(lambda: runner.health["trends"].failures > failures)  # retrying, with back-off
        assert runner.health["trends"].retry_at > time.monotonic() - 1
        broken["on"] = False  # the fix
        runner.health["trends"].retry_at = 0.0  # (instead of waiting out the back-off)
        runner.wake()
        _wait(lambda: runner.positions()["trends"] >= app.max_position())
        row = {r["projection"]: r for r in status_rows(clean_db)}["trends"]
        assert row["state"] == "ok" and row["failed_at_position"] is None
        assert readiness(Monitor(), pool, Settings(database_url=clean_db))["ready"]
    finally:
        runner.close()
        pool.close()
