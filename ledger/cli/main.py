"""The ``ledger`` command line: migrate, serve, and the operator's tools."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.table import Table

from ledger.cli import audit, x12
from ledger.cli.auth import keys_app, tokens_app, users_app
from ledger.cli.codes import app as codes_app
from ledger.cli.common import console, err_console, ledger_url, setup_logging
from ledger.cli.fhir import app as fhir_app
from ledger.cli.projections import app as projections_app
from ledger.cli.report import period_app, report_app
from ledger.config import get_settings

app = typer.Typer(help="Event-sourced claims ledger for medical coding and billing.",
                  no_args_is_help=True)
db_app = typer.Typer(help="The database: migrations and the embedded server.")
app.add_typer(db_app, name="db")
app.add_typer(codes_app, name="codes")
app.add_typer(projections_app, name="projections")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(keys_app, name="keys")
app.add_typer(fhir_app, name="fhir")
app.add_typer(report_app, name="report")
app.add_typer(period_app, name="period")

@app.command()
def migrate() -> None:
    """Apply pending migrations (safe to re-run; concurrent runs queue on a lock)."""
    setup_logging()
    from ledger.persistence.migrate import migrate as run

    applied = run(ledger_url())
    console.print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}"
                                                              if applied else " (up to date)"))


@db_app.command("status")
def db_status() -> None:
    """List migrations and whether each is applied."""
    from ledger.persistence.migrate import status

    table = Table("migration", "applied")
    for version, done in status(ledger_url()):
        table.add_row(version, "yes" if done else "no")
    console.print(table)


def _hint_first_admin(url: str) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        users = conn.execute("SELECT count(*) FROM ledger_users").fetchone()[0]
    if not users:
        console.print("[yellow]No users yet. Every route but /health needs a token: create the "
                      "first admin with[/] .venv/bin/ledger users create admin-1 --role admin")


@db_app.command("create")
def db_create() -> None:
    """Create the database named in LEDGER_DATABASE_URL on its server (connecting to the
    server's `postgres` database), if it does not exist yet; then run `ledger migrate`."""
    import psycopg
    from psycopg import sql

    from ledger.persistence.backup import server_url

    url = ledger_url()
    name = psycopg.conninfo.conninfo_to_dict(url).get("dbname") or "postgres"
    with psycopg.connect(server_url(url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            console.print(f"database {name} exists already")
            return
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    console.print(f"created database {name}; next: ledger migrate")


KEYS_REMINDER = (
    "Keys are not in the backup: keep the checkpoint signing key ({key}, and its .pub), "
    "LEDGER_CIPHER_KEY / LEDGER_CIPHER_OLD_KEYS (encrypted events are unreadable without "
    "them) and the exported checkpoints ({checkpoints}) in a separate, safe place.")


def _keys_reminder() -> str:
    from ledger.config import get_settings

    s = get_settings()
    return KEYS_REMINDER.format(key=s.key_file, checkpoints=s.export_dir)


@db_app.command("backup")
def db_backup(file: Annotated[Path, typer.Argument(
        help="Where to write the backup (pg_dump custom format).")]) -> None:
    """Back up the database (configured or embedded) with pg_dump, consistent while the
    service runs. Restore with `ledger db restore FILE`. The keys are NOT in the backup."""
    from ledger.persistence.backup import BackupError, backup

    try:
        tool = backup(ledger_url(), file)
    except BackupError as exc:
        _fail(str(exc))
    console.print(f"backed up to {file} ({file.stat().st_size:,} bytes, pg_dump "
                  f"{tool.major})")
    err_console.print(f"[yellow]{_keys_reminder()}[/]")


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="A backup written by `ledger db backup`.")],
    replace: bool = typer.Option(False, "--replace", help="Drop the database and create it "
                                 "anew first (everything in it is lost)."),
) -> None:
    """Restore a backup into the database (configured or embedded), which must be empty
    unless --replace. Stop the service first. Then `ledger verify` and `ledger projections
    verify` should report the same positions and checkpoints as before the backup."""
    from ledger.persistence.backup import BackupError, restore

    try:
        restore(ledger_url(), file, replace=replace)
    except BackupError as exc:
        _fail(str(exc))
    console.print(f"restored {file}; next: ledger migrate (if this release has newer "
                  "migrations), ledger verify, ledger projections verify")
    err_console.print(f"[yellow]{_keys_reminder()}[/]")


def _fail(message: str) -> NoReturn:
    err_console.print(f"ledger: {message}", markup=False, highlight=False)
    raise typer.Exit(1)


@app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (LEDGER_HOST)."),
    port: int = typer.Option(None, help="Port (LEDGER_PORT)."),
    workers: int = typer.Option(1, help="API processes."),
    demo: bool = typer.Option(False, "--demo", help="Load sample encounters first."),
) -> None:
    """Migrate, then serve the HTTP API (embedded PostgreSQL unless LEDGER_DATABASE_URL)."""
    import uvicorn

    setup_logging()
    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    if not settings.database_url:
        os.environ["LEDGER_EMBEDDED"] = "1"
    url = ledger_url()
    # Workers (other processes) reach the same server through the URL.
    os.environ["LEDGER_DATABASE_URL"] = url
    get_settings.cache_clear()
    from ledger.persistence.migrate import migrate as run

    run(url)
    if demo or settings.demo:
        from ledger.demo import demo_users, load_demo, next_steps

        for line in load_demo(url).describe():
            console.print(line, markup=False, highlight=False)
        tokens = demo_users(url)
        for user, token in tokens.items():
            console.print(f"demo token for {user}: {token}", soft_wrap=True, markup=False)
        for line in next_steps(f"http://{host}:{port}", tokens):
            console.print(line, markup=False, highlight=False)
    _hint_first_admin(url)
    console.print(f"[bold green]Claims ledger serving on http://{host}:{port}[/] "
                  f"(docs: http://{host}:{port}/docs, health: http://{host}:{port}/health)")
    sys.stdout.flush()
    # uvicorn re-raises SIGTERM after a graceful shutdown; turn it into a normal exit so the
    # embedded server's exit hook stops PostgreSQL instead of leaving it running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    projections = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # /metrics of any worker reports every worker's counts (ledger/metrics.py)
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ledger-metrics-")
    if workers > 1 and settings.projections_in_process:
        # Several API processes: none runs the projections; one worker process of its own
        # does (`ledger projections run`), so each event is projected by one runner. With
        # LEDGER_PROJECTIONS_IN_PROCESS=0 they run elsewhere (compose: their own service).
        import subprocess

        os.environ["LEDGER_PROJECTIONS_IN_PROCESS"] = "0"
        projections = subprocess.Popen([sys.executable, "-m", "ledger.cli.main", "projections",
                                        "run"], env=dict(os.environ))
        console.print(f"projections: running in their own process (pid {projections.pid})")
    from ledger.audit.writer import start_in_process  # issue 8: signed checkpoints

    start_in_process(url)
    try:
        from ledger.logs import uvicorn_log_config

        uvicorn.run("api.main:create_app", factory=True, host=host, port=port,
                    workers=workers, log_level=settings.log_level.lower(), access_log=False,
                    # uvloop's event loop and httptools' parser (dependencies, issue 21);
                    # "auto" falls back to asyncio and h11 where they cannot be installed
                    loop="auto", http="auto",
                    # the client address is resolved by api.client_address from
                    # LEDGER_TRUSTED_PROXIES only; uvicorn's own handling would trust any
                    # loopback proxy's X-Forwarded-For
                    proxy_headers=False, forwarded_allow_ips="",
                    log_config=uvicorn_log_config(settings.log_level, settings.log_format))
    finally:
        if projections is not None:
            import subprocess

            projections.terminate()
            try:
                projections.wait(timeout=15)
            except subprocess.TimeoutExpired:
                projections.kill()


app.command("verify")(audit.verify_command)
app.add_typer(audit.checkpoints_app, name="checkpoints")
app.command("import")(x12.import_files)
app.add_typer(x12.x12_app, name="x12")


def _one_line(exc: BaseException) -> str | None:
    """What to tell the operator instead of a traceback, for the failures an operator fixes
    (no database, no server, no migrations); None for anything else (a bug: full traceback)."""
    import psycopg

    from ledger.persistence.migrate import MigrationError

    if isinstance(exc, MigrationError):
        return f"ledger: {exc}"
    if isinstance(exc, psycopg.OperationalError):
        import re

        text = " ".join(str(exc).split()) or type(exc).__name__
        missing = re.search(r'database "[^"]+" does not exist', text)
        if missing:
            return (f"ledger: {missing.group(0)}; create it with `ledger db create` (or "
                    "createdb), then `ledger migrate`")
        reason = text.split(" failed: ", 1)[-1]
        return (f"ledger: cannot reach the database ({reason}); check LEDGER_DATABASE_URL "
                "and that the server is running")
    return None


def main() -> None:
    """The ``ledger`` console script: the Typer app, with operator errors as one line."""
    try:
        app(standalone_mode=True)
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is an operator's error
        line = _one_line(exc)
        if line is None:
            raise
        print(line, file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":  # pragma: no cover
    main()
