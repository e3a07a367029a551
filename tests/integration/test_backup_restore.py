"""`ledger db backup` / `ledger db restore` (issue 17, item 5): a backup taken from a ledger
with events, signed checkpoints, a sealed access log and projections, restored into an empty
database and again over a database that changed since (--replace), verifies clean with the
same log positions, checkpoints and projection positions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from typer.testing import CliRunner

from tests import builders as s
from tests.conftest import _server_url, _with_db

pytestmark = pytest.mark.postgres


@pytest.fixture
def scratch_url() -> Iterator[str]:
    server = _server_url()
    name = f"ledger_restore_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_db(server, name)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cli(monkeypatch: pytest.MonkeyPatch, url: str, *args: str) -> tuple[int, str, str]:
    from ledger.cli.main import app as cli
    from ledger.config import get_settings

    monkeypatch.setenv("LEDGER_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    return out.exit_code, out.stdout, out.stderr


def _state(monkeypatch: pytest.MonkeyPatch, url: str) -> dict[str, object]:
    """What must survive: the verify report's counts and positions, every checkpoint and
    seal, the projections' positions, and the event and sequence positions."""
    code, out, err = _cli(monkeypatch, url, "verify", "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ok"] is True
    code, out, err = _cli(monkeypatch, url, "projections", "verify")
    assert code == 0 and "every event reflected exactly once" in out, out + err
    code, out, _ = _cli(monkeypatch, url, "projections", "status", "--json")
    assert code == 0
    projections = {r["projection"]: (r["position"], r["behind"])
                   for r in map(json.loads, out.splitlines())}
    with psycopg.connect(url) as conn:
        checkpoints = conn.execute(
            "SELECT tree_size, root_hash, last_position, signature FROM ledger_checkpoints "
            "ORDER BY tree_size").fetchall()
        seals = conn.execute("SELECT * FROM ledger_access_seals ORDER BY 1").fetchall()
        events = conn.execute("SELECT notification_id, originator_id, originator_version, "
                              "chain_hash FROM ledger_events ORDER BY notification_id").fetchall()
        migrations = conn.execute("SELECT version, checksum FROM ledger_migrations "
                                  "ORDER BY version").fetchall()
    return {"events": report["events"], "checkpoints": report["checkpoints"],
            "exported": report["exported_checkpoints"],
            "covered_position": report["covered_position"], "covered": report["covered_events"],
            "access_seals": report["access_seals"],
            "access_records": report["access_records_verified"], "db_checkpoints": checkpoints,
            "seals": seals, "log": events, "projections": projections,
            "migrations": migrations}


def test_backup_wipe_restore_verifies_clean_with_the_same_positions(
        app, clean_db, scratch_url, tmp_path, monkeypatch):
    from ledger.audit.access import record_access
    from ledger.projections.runner import ProjectionRunner, runner_env

    s.scenario_1(app)
    eid, line = s.scenario_3_denial(app)
    s.scenario_3_appeal_paid(app, eid, line)
    record_access(clean_db, actor="auditor-1", actor_role="auditor",
                  resource_type="encounter", resource_id=str(eid))
    assert _cli(monkeypatch, clean_db, "checkpoints", "run", "--once")[0] == 0
    with ProjectionRunner(runner_env(clean_db)) as runner:
        runner.catch_up()
    before = _state(monkeypatch, clean_db)
    assert before["checkpoints"] >= 1 and before["covered"] == before["events"] > 10
    # per-batch sealing signs every batch; the export keeps the newest (latest wins)
    assert 1 <= before["exported"] <= before["checkpoints"] and before["access_seals"] >= 1
    assert all(behind == 0 for _, behind in before["projections"].values())

    backup = tmp_path / "ledger.dump"
    code, out, err = _cli(monkeypatch, clean_db, "db", "backup", str(backup))
    assert code == 0, out + err
    assert backup.stat().st_size > 0 and "backed up" in out
    assert "Keys are not in the backup" in err  # the reminder, on stderr

    # Into an empty database (a new server, say).
    code, out, err = _cli(monkeypatch, scratch_url, "db", "restore", str(backup))
    assert code == 0, out + err
    assert _state(monkeypatch, scratch_url) == before
    # A restored ledger keeps working: migrate has nothing to do, new events chain on.
    code, out, _ = _cli(monkeypatch, scratch_url, "migrate")
    assert code == 0 and "up to date" in out

    # Over a database that moved on: refused without --replace, wiped and restored with it.
    with psycopg.connect(scratch_url) as conn:
        conn.execute("DELETE FROM projection_status")
    code, _, err = _cli(monkeypatch, scratch_url, "db", "restore", str(backup))
    assert code == 1 and "not empty" in err
    code, out, err = _cli(monkeypatch, scratch_url, "db", "restore", str(backup), "--replace")
    assert code == 0, out + err
    assert _state(monkeypatch, scratch_url) == before


def test_restore_of_a_missing_or_broken_file_says_so(scratch_url, tmp_path, monkeypatch):
    code, _, err = _cli(monkeypatch, scratch_url, "db", "restore", str(tmp_path / "none"))
    assert code == 1 and "no such backup file" in err
    broken = tmp_path / "broken.dump"
    broken.write_bytes(b"not a dump")
    code, _, err = _cli(monkeypatch, scratch_url, "db", "restore", str(broken))
    assert code == 1 and "pg_restore failed" in err
