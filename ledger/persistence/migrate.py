"""A small migration runner: ordered SQL files in ``migrations/``, a ``ledger_migrations``
table, and a PostgreSQL advisory lock so that two processes migrating at once queue up
instead of racing. Each file runs in its own transaction with its bookkeeping row.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

LOCK_KEY = 7_243_019_001  # arbitrary, fixed: "ledger migrations"


def migrations_dir() -> Path:
    """LEDGER_MIGRATIONS_DIR, else the copy shipped in the wheel (``ledger/migrations``,
    mapped from the top-level folder by setup.py), else the source checkout's ``migrations/``."""
    from ledger.config import get_settings

    configured = get_settings().migrations_dir
    if configured:
        return Path(configured)
    here = Path(__file__).resolve().parent.parent  # ledger/
    packaged = here / "migrations"
    if packaged.is_dir():
        return packaged
    return here.parent / "migrations"


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


class MigrationError(RuntimeError):
    pass


def discover(directory: Path | None = None) -> list[Migration]:
    """The migration files, in order; an empty or missing folder is an error (a package built
    without its migrations would otherwise report "up to date" on an empty database)."""
    directory = directory or migrations_dir()
    files = sorted(p for p in directory.glob("*.sql") if p.name[:4].isdigit())
    if not files:
        raise MigrationError(f"no migrations found in {directory} (a broken installation? "
                             "set LEDGER_MIGRATIONS_DIR to the folder of NNNN_*.sql files)")
    return [Migration(p.stem, p) for p in files]


NO_TIMEOUTS = "-c statement_timeout=0 -c lock_timeout=0"


def migrate(url: str, directory: Path | None = None) -> list[str]:
    """Apply every pending migration; return the versions applied (empty when up to date)."""
    migrations = discover(directory)
    applied_now: list[str] = []
    # a migration may wait for locks and run long: no statement/lock timeout an operator's
    # PGOPTIONS or the role's settings carry applies to it
    with psycopg.connect(url, autocommit=True, options=NO_TIMEOUTS) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS ledger_migrations ("
                " version text PRIMARY KEY, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = dict(conn.execute("SELECT version, checksum FROM ledger_migrations").fetchall())
            for m in migrations:
                if m.version in done:
                    if done[m.version] != m.checksum:
                        raise MigrationError(
                            f"migration {m.version} changed after it was applied; add a new "
                            "migration instead of editing an applied one")
                    continue
                with conn.transaction():
                    conn.execute(m.sql)
                    conn.execute(
                        "INSERT INTO ledger_migrations (version, checksum) VALUES (%s, %s)",
                        (m.version, m.checksum),
                    )
                log.info("applied migration %s", m.version)
                applied_now.append(m.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied_now


def status(url: str, directory: Path | None = None) -> list[tuple[str, bool]]:
    migrations = discover(directory)
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('ledger_migrations') IS NOT NULL").fetchone()
        done = set()
        if exists and exists[0]:
            done = {r[0] for r in conn.execute("SELECT version FROM ledger_migrations")}
    return [(m.version, m.version in done) for m in migrations]
