"""A projection runner killed mid-way (SIGKILL, no cleanup) resumes from its tracked positions
when restarted and ends with exactly the tables a rebuild from scratch produces. Also the
watchdog: a runner whose wake-ups are lost still catches up, and a stall is reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from bench.workload import run_workload
from ledger.projections.check import snapshot, verify
from ledger.projections.queries import projection_positions
from ledger.projections.runner import VIEWS, ProjectionRunner

# ruff: noqa: F811 - the private_* fixtures below are imported, then requested by name
from tests.integration.test_projections_fixtures import (  # noqa: F401
    private_app,
    private_db,
    private_env,
)

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def start_worker(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [sys.executable, "-m", "ledger.cli.main", "projections", "run", "--page-size", "15",
         "--max-page-size", "15", "--poll-interval", "0.1"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_killed_runner_resumes_and_ends_identical(private_app, private_env, private_db):
    stats = run_workload(private_app.save, encounters=120, seed=42, concurrency=30)
    head = private_app.max_position()
    assert stats.events >= 2000
    with psycopg.connect(private_db, autocommit=True) as conn:
        worker = start_worker(private_db)
        try:
            wait_until(lambda: min(projection_positions(conn).values()) >= head // 3, 120,
                       "the worker to get a third of the way")
        finally:
            worker.kill()  # SIGKILL: no chance to finish a page or clean up
            worker.wait(10)
        positions = projection_positions(conn)
        assert min(positions.values()) < head, f"killed too late: {positions} of {head}"
        # Whatever the kill interrupted rolled back: each view is exact up to its position.
        assert verify(conn).ok

        worker = start_worker(private_db)
        try:
            wait_until(lambda: min(projection_positions(conn).values()) >= head, 120,
                       "the restarted worker to catch up")
        finally:
            worker.send_signal(signal.SIGTERM)
            output = worker.communicate(timeout=20)[0].decode()
        assert worker.returncode == 0, output
        assert "from positions" in output
        result = verify(conn)
        assert result.ok, result.problems
        resumed = {name: snapshot(conn, cls) for name, cls in VIEWS.items()}

        rebuild = ProjectionRunner(private_env, page_size=1000)
        try:
            for view in rebuild.views.values():
                view.reset()
            rebuild.catch_up()
        finally:
            rebuild.close()
        for name, cls in VIEWS.items():
            assert snapshot(conn, cls) == resumed[name], name


def test_lost_wakeups_are_covered_by_polling_and_the_watchdog(private_app, private_env):
    runner = ProjectionRunner(private_env, poll_interval=0.2, watchdog_interval=3600,
                              stall_after=0.0)
    runner._listen = lambda: None  # type: ignore[method-assign] - every NOTIFY is lost
    runner.start()
    try:
        run_workload(private_app.save, encounters=3, seed=1, concurrency=3)
        assert runner.wait(private_app.max_position(), timeout=10), \
            "polling caught up without NOTIFY"

        runner.stop()  # a runner that no longer runs: the watchdog must say so
        run_workload(private_app.save, encounters=1, seed=2, concurrency=1, serial_start=9)
        stalled = runner.check()
        assert sorted(stalled) == sorted(VIEWS)
        assert all(h.stalls == 1 for h in runner.health.values())
    finally:
        runner.close()


def run_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_LOG_LEVEL": "WARNING",
           "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "ledger.cli.main", "projections", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def test_cli_status_rebuild_verify(private_app, private_db):
    import json

    run_workload(private_app.save, encounters=8, seed=11, concurrency=8)
    head = private_app.max_position()
    behind = run_cli(private_db, "status", "--json", "--stall-after", "3600")
    rows = {r["projection"]: r for r in map(json.loads, behind.stdout.splitlines())}
    assert behind.returncode == 1, "behind and no runner has ever moved it: stalled"
    assert rows["claims"]["state"] == "stalled"
    assert rows["audit"]["behind"] == head and rows["audit"]["head"] == head

    rebuilt = run_cli(private_db, "rebuild", "--all")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert f"rebuilt claims, audit, trends to position {head}" in rebuilt.stdout
    one = run_cli(private_db, "rebuild", "trends")
    assert one.returncode == 0 and "rebuilt trends" in one.stdout, one.stdout + one.stderr
    neither = run_cli(private_db, "rebuild")
    assert neither.returncode != 0

    ok = run_cli(private_db, "status", "--json")
    assert ok.returncode == 0
    assert {json.loads(line)["state"] for line in ok.stdout.splitlines()} == {"ok"}
    table = run_cli(private_db, "status")
    assert "claims" in table.stdout and "ok" in table.stdout
    verified = run_cli(private_db, "verify")
    assert verified.returncode == 0 and "every event reflected exactly once" in verified.stdout

    with psycopg.connect(private_db, autocommit=True) as conn:  # break the view: verify says so
        conn.execute("DELETE FROM audit_trail WHERE position = (SELECT max(position) FROM "
                     "audit_trail)")
    broken = run_cli(private_db, "verify")
    assert broken.returncode == 1 and f"audit: event {head} missing" in broken.stdout
