"""Test fixtures. PostgreSQL tests run against the embedded server (a private PostgreSQL
from a pip package) unless LEDGER_TEST_DATABASE_URL names another server. Each test session
gets its own fresh database on that server, migrated with ``ledger migrate``'s runner.
Nothing is skipped: when no database can be had, the PostgreSQL tests error.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg
import pytest

from ledger.persistence.migrate import NO_TIMEOUTS

ROOT = Path(__file__).resolve().parent.parent
# The public X12 fixtures: ../shared/fixtures where the workplace provides it (CI does), else
# the verbatim copy kept in tests/fixtures/shared (licences beside the files, PROVENANCE.md).
_SHARED = ROOT.parent / "shared" / "fixtures"
FIXTURES = _SHARED if (_SHARED / "x12").is_dir() else ROOT / "tests" / "fixtures" / "shared"


# Isolation (issue 17): the suite never reads or writes the user's data directory
# (`.ledger/` or LEDGER_DATA_DIR): a `make run` beside it keeps its database, keys and exported
# checkpoints to itself. Every setting that defaults to the data directory is pointed at this
# session's own directory before any ledger module reads its settings; the embedded *test*
# server lives in `.ledger/test` (its own server, never the user's), and the ICD-10-CM table
# cache beside it. Subprocesses started by tests inherit this environment.
USER_DATA_DIR = Path(os.environ.get("LEDGER_DATA_DIR") or ROOT / ".ledger").resolve()
SESSION_DIR = Path(tempfile.mkdtemp(prefix="ledger-test-session-"))
for _name in ("LEDGER_DATABASE_URL", "LEDGER_CHECKPOINT_KEY_FILE",
              "LEDGER_CHECKPOINT_PUBLIC_KEY_FILE", "LEDGER_CHECKPOINT_DIR", "LEDGER_CIPHER_KEY",
              "LEDGER_CIPHER_OLD_KEYS", "LEDGER_APP_ROLE", "LEDGER_APP_PASSWORD",
              "LEDGER_MIGRATIONS_DIR"):
    os.environ.pop(_name, None)
os.environ["LEDGER_DATA_DIR"] = str(SESSION_DIR)
os.environ["LEDGER_CODES_CACHE_DIR"] = str(ROOT / ".ledger" / "test" / "codes-cache")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


def _server_url() -> str:
    url = os.environ.get("LEDGER_TEST_DATABASE_URL")
    if url:
        return url
    from ledger.persistence import embedded
    return embedded.start(ROOT / ".ledger" / "test")


def _with_db(url: str, dbname: str) -> str:
    parts = urlparse(url)
    return urlunparse(parts._replace(path="/" + dbname))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh, migrated database for this test session; dropped afterwards."""
    server = _server_url()
    name = f"ledger_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server, autocommit=True, options=NO_TIMEOUTS) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(server, name)
    from ledger.persistence.migrate import migrate

    migrate(url)
    yield url
    with psycopg.connect(server, autocommit=True, options=NO_TIMEOUTS) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


LEDGER_TABLES_SQL = """
SELECT tablename FROM pg_tables
WHERE schemaname = 'public' AND tablename NOT IN ('ledger_migrations', 'ledger_log_identity')
"""


@pytest.fixture
def clean_db(database_url: str) -> str:
    """Empty every table (but the migrations record) before the test."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(LEDGER_TABLES_SQL)]
        if tables:
            truncate = ("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) +
                        " RESTART IDENTITY CASCADE")
            conn.execute("SET lock_timeout = '3s'")
            try:
                conn.execute(truncate)
            except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
                # a background thread of an earlier test (a projection runner finishing its
                # page) still holds a lock: end those sessions, then empty the tables
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                             "datname = current_database() AND pid <> pg_backend_pid()")
                conn.execute(truncate)
    return database_url


@pytest.fixture
def app_env(clean_db: str) -> dict[str, str]:
    from ledger.config import Settings
    from ledger.persistence.database import eventsourcing_env

    return eventsourcing_env(clean_db, Settings(database_url=clean_db, cache_size=0))


@pytest.fixture
def app(app_env: dict[str, str]) -> Iterator[object]:
    from ledger.application.service import LedgerApplication

    application = LedgerApplication(env=app_env)
    yield application
    application.close()


@pytest.fixture(scope="session")
def _checkpoint_key_file() -> Path:
    return SESSION_DIR / "keys" / "checkpoint-ed25519.pem"


_EXPORT_DIRS = itertools.count(1)


@pytest.fixture(autouse=True)
def _audit_files_per_test(_checkpoint_key_file: Path,
                          monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Checkpoint exports (a directory of their own per test: a test database is reused after
    its tables are emptied) and the signing key live in this session's directory, never in
    the user's data directory."""
    from ledger.config import get_settings

    monkeypatch.setenv("LEDGER_CHECKPOINT_DIR",
                       str(SESSION_DIR / "checkpoints" / str(next(_EXPORT_DIRS))))
    monkeypatch.setenv("LEDGER_CHECKPOINT_KEY_FILE", str(_checkpoint_key_file))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
