"""The migration runner: idempotent, and safe when several processes migrate at once."""

from __future__ import annotations

import multiprocessing
import os
import uuid
from urllib.parse import urlparse, urlunparse

import psycopg
import pytest

from ledger.persistence.migrate import discover, migrate, status

pytestmark = pytest.mark.postgres


@pytest.fixture
def empty_database(database_url):
    server = database_url
    name = f"ledger_mig_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunparse(urlparse(server)._replace(path="/" + name))
    yield url
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_rerunning_is_a_no_op(empty_database):
    first = migrate(empty_database)
    assert first == [m.version for m in discover()]
    assert migrate(empty_database) == []
    assert all(done for _, done in status(empty_database))


def _run(url: str, queue) -> None:  # pragma: no cover - runs in a child process
    try:
        queue.put(("ok", migrate(url)))
    except Exception as exc:  # noqa: BLE001
        queue.put(("error", repr(exc)))


def test_concurrent_migrations_apply_each_file_once(empty_database):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_run, args=(empty_database, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(kind == "ok" for kind, _ in results), results
    applied = [v for _, versions in results for v in versions]
    assert sorted(applied) == sorted(m.version for m in discover())  # each exactly once
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_migrations").fetchone()[0] == len(
            discover())


def test_app_runs_with_create_table_off_on_the_migrated_database(empty_database):
    from ledger.application.service import LedgerApplication
    from ledger.config import Settings
    from ledger.persistence.database import eventsourcing_env
    from tests import builders as s

    migrate(empty_database)
    env = eventsourcing_env(empty_database, Settings())
    assert env["CREATE_TABLE"] == "n"
    app = LedgerApplication(env=env)
    try:
        eid = s.scenario_1(app)
        assert app.get_encounter(eid).patient_balance() == s.m("30.00")
    finally:
        app.close()
