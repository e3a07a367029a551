"""Append-only at the database (issue 8, acceptance 2): the application role writes events
through the ledger but cannot UPDATE, DELETE or TRUNCATE them (no grant, and a trigger that
refuses non-owners even if a grant slips in); the owner (migrations, fixtures) still can."""

from __future__ import annotations

import time
from urllib.parse import urlparse, urlunparse

import psycopg
import pytest
from psycopg import errors

from ledger.application.service import LedgerApplication
from ledger.audit.access import query_access, record_access
from ledger.audit.checkpoints import generate_key
from ledger.audit.verify import verify
from ledger.audit.writer import CheckpointWriter
from ledger.config import Settings
from ledger.persistence.database import eventsourcing_env
from tests import builders as s

pytestmark = pytest.mark.postgres
APPEND_ONLY = ("ledger_events", "ledger_snapshots", "ledger_audit_leaves", "ledger_checkpoints",
               "ledger_access_log")


def as_role(url: str, role: str) -> str:
    parts = urlparse(url)
    netloc = f"{role}@{parts.hostname}" if parts.hostname else f"{role}:@"
    return urlunparse(parts._replace(netloc=netloc))


@pytest.fixture
def app_as_role(clean_db):
    env = eventsourcing_env(clean_db, Settings(database_url=clean_db, cache_size=0,
                                               app_role="ledger_app"))
    assert env["POSTGRES_USER"] == "ledger_app"
    application = LedgerApplication(env=env, snapshot_interval=3)
    yield application
    application.close()


def test_the_app_role_runs_the_ledger(app_as_role, clean_db):
    """Commands, snapshots and reads work as ledger_app (the lock is taken via the
    SECURITY DEFINER function, which needs no UPDATE privilege)."""
    eid = s.open_encounter(app_as_role)
    s.code(app_as_role, eid, "E119", "I10")
    s.line(app_as_role, eid, "99213", "125.00", [1])
    assert app_as_role.get_encounter(eid).version == 4
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_snapshots").fetchone()[0] == 1
    assert verify(clean_db).ok


@pytest.mark.parametrize("statement", [
    "UPDATE {t} SET {c} = {c}",
    "DELETE FROM {t}",
    "TRUNCATE {t}",
])
def test_the_app_role_cannot_rewrite_append_only_tables(app_as_role, clean_db, statement):
    eid = s.open_encounter(app_as_role)
    s.code(app_as_role, eid, "E119")
    with psycopg.connect(as_role(clean_db, "ledger_app")) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "ledger_app"
        for table, column in (("ledger_events", "state"), ("ledger_snapshots", "state"),
                              ("ledger_audit_leaves", "chain_hash"),
                              ("ledger_checkpoints", "body"), ("ledger_access_log", "actor")):
            with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
                conn.execute(statement.format(t=table, c=column))
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_events").fetchone()[0] == 2


def test_the_trigger_refuses_even_when_a_grant_slips_in(app_as_role, clean_db):
    eid = s.open_encounter(app_as_role)
    with psycopg.connect(clean_db, autocommit=True) as owner:
        for table in APPEND_ONLY:
            owner.execute(f"GRANT UPDATE, DELETE, TRUNCATE ON {table} TO ledger_app")
        try:
            with psycopg.connect(as_role(clean_db, "ledger_app")) as conn:
                for sql in ("UPDATE ledger_events SET state = state",
                            "DELETE FROM ledger_events WHERE originator_id = %s",
                            "TRUNCATE ledger_events", "DELETE FROM ledger_access_log",
                            "UPDATE ledger_checkpoints SET body = body"):
                    with pytest.raises(errors.InsufficientPrivilege, match="append-only"), \
                            conn.transaction():
                        conn.execute(sql, (eid,) if "%s" in sql else None)
        finally:
            for table in APPEND_ONLY:
                owner.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM ledger_app")
    with psycopg.connect(clean_db) as conn:
        grants = conn.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = 'ledger_app' AND table_name = 'ledger_events'").fetchall()
        assert sorted(g[0] for g in grants) == ["INSERT", "SELECT"]
        assert conn.execute("SELECT count(*) FROM ledger_events").fetchone()[0] == 1


def test_the_owner_can_still_rewrite_and_verify_notices(app, clean_db):
    eid = s.open_encounter(app)
    with psycopg.connect(clean_db) as conn:
        conn.execute("UPDATE ledger_events SET state = state || '\\x20'::bytea "
                     "WHERE originator_id = %s", (eid,))
    report = verify(clean_db)
    assert report.first.kind == "modified" and report.first.encounter_id == eid


def test_the_app_role_writes_checkpoints_and_access_records(app_as_role, clean_db, tmp_path):
    s.open_encounter(app_as_role)  # the app role seals its own batch (a lone command's: by
    # its background sealer, within LEDGER_SEAL_MAX_DELAY)
    deadline = time.monotonic() + 3
    with psycopg.connect(clean_db, autocommit=True) as conn:
        while conn.execute("SELECT max(tree_size) FROM ledger_checkpoints").fetchone()[0] != 1:
            assert time.monotonic() < deadline, "not sealed within the bound"
            time.sleep(0.02)
    sealing_key = app_as_role.sealer.key.public_key()
    app_url = as_role(clean_db, "ledger_app")
    key = generate_key(tmp_path / "k.pem")
    writer = CheckpointWriter(app_url, key, export_dir=tmp_path / "cp")
    assert writer.run_once() is None  # nothing left unsealed
    writer.close()
    record_access(app_url, actor="auditor-1", resource_type="encounter", resource_id="x")
    assert [r.actor for r in query_access(app_url)] == ["auditor-1"]
    assert verify(clean_db, public_key=sealing_key, require_sealed=True).ok


def test_the_app_role_cannot_change_the_migrations_record(clean_db):
    with psycopg.connect(as_role(clean_db, "ledger_app")) as conn:
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
            conn.execute("DELETE FROM ledger_migrations")
        assert conn.execute("SELECT count(*) FROM ledger_migrations").fetchone()[0] > 0
