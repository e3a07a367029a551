"""``ledger projections``: run the projection runner, see its lag, rebuild, verify.

Kept light at import time: the runner and its dependencies load inside the commands.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from typing import Any

import typer
from rich.table import Table

from ledger.console import make_console
from ledger.projections import PROJECTION_NAMES

app = typer.Typer(help="Read models (claims, balances, queue, audit trail, trends): run, "
                       "status, rebuild, verify.", no_args_is_help=True)
console = make_console()


def _url() -> str:
    from ledger.config import get_settings
    from ledger.persistence.database import database_url

    return database_url(get_settings())


def _logging() -> None:
    from ledger.config import get_settings
    from ledger.logs import configure

    settings = get_settings()
    configure(settings.log_level, settings.log_format)


def _names(names: list[str] | None) -> list[str]:
    chosen = names or list(PROJECTION_NAMES)
    unknown = [n for n in chosen if n not in PROJECTION_NAMES]
    if unknown:
        raise typer.BadParameter(f"unknown projection {', '.join(unknown)}; known: "
                                 f"{', '.join(PROJECTION_NAMES)}")
    return chosen


@app.command()
def run(
    only: list[str] = typer.Option(None, "--only", help="Run only these projections."),  # noqa: B008
    page_size: int = typer.Option(500, help="Events per page (transaction) when live."),
    max_page_size: int = typer.Option(10_000, help="Largest page when catching up (pages "
                                                   "double while they come back full)."),
    poll_interval: float = typer.Option(0.5, help="Seconds between polls without NOTIFY."),
    stall_after: float = typer.Option(30.0, help="Seconds behind without progress = stalled."),
) -> None:
    """Run the projections until stopped (SIGTERM/Ctrl-C): the deployment worker."""
    _logging()
    from ledger.config import get_settings
    from ledger.persistence.database import apply_connection_options, configure_client
    from ledger.projections.runner import ProjectionRunner, runner_env

    configure_client(get_settings())  # reconnect every 0.2 s after an outage
    runner = ProjectionRunner(runner_env(_url()), _names(only), page_size=page_size,
                              max_page_size=max_page_size, poll_interval=poll_interval,
                              stall_after=stall_after)
    apply_connection_options(runner.datastore.pool, get_settings())
    stop = runner.stop
    signal.signal(signal.SIGTERM, lambda *_: stop(timeout=0))
    signal.signal(signal.SIGINT, lambda *_: stop(timeout=0))
    console.print(f"projections running: {', '.join(runner.views)} from positions "
                  f"{runner.positions()}")
    sys.stdout.flush()
    runner.run_forever()


def status_rows(url: str, stall_after: float = 30.0) -> list[dict[str, Any]]:
    """Per projection: tracked position, log head, events behind, last page, last error and a
    state (ok, behind, stalled, failing)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return status_rows_on(conn, stall_after)


def status_rows_on(conn: Any, stall_after: float = 30.0) -> list[dict[str, Any]]:
    """``status_rows`` on an open (autocommit) connection."""
    from ledger.projections.queries import projection_positions

    head = conn.execute("SELECT COALESCE(max(notification_id), 0) FROM ledger_events"
                        ).fetchone()[0]  # type: ignore[index]
    positions = projection_positions(conn)
    info = {r[0]: r[1:] for r in conn.execute(
        "SELECT name, last_page_at, last_error, last_error_at, rebuilt_at, runner, "
        "extract(epoch FROM now() - last_page_at), last_error_position, last_error_event "
        "FROM projection_status")}
    rows = []
    for name in PROJECTION_NAMES:
        pos = positions.get(name, 0)
        behind = conn.execute("SELECT count(*) FROM ledger_events WHERE notification_id > %s",
                              (pos,)).fetchone()[0] if pos < head else 0  # type: ignore
        last_page, error, error_at, rebuilt, runner, age, error_pos, error_event = \
            info.get(name, (None,) * 8)
        if behind == 0:
            state = "ok"
        elif error and (last_page is None or (error_at and error_at >= last_page)):
            state = "failing"
        elif age is None or float(age) > stall_after:
            state = "stalled"
        else:
            state = "behind"
        rows.append({"projection": name, "position": pos, "head": int(head),
                     "behind": int(behind), "state": state,
                     "last_page_at": last_page.isoformat() if last_page else None,
                     "last_error": error,
                     "failed_at_position": error_pos if state == "failing" else None,
                     "failed_event": error_event if state == "failing" else None,
                     "rebuilt_at": rebuilt.isoformat() if rebuilt
                     else None, "runner": runner})
    return rows


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
           stall_after: float = typer.Option(30.0, help="Seconds without a page while behind "
                                                        "that count as stalled.")) -> None:
    """Lag per projection: tracked position against the log head. Exit 1 if any is stalled
    or failing."""
    rows = status_rows(_url(), stall_after)
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r))
    else:
        table = Table("projection", "position", "head", "behind", "state", "last page",
                      "last error", "failed event", "runner")
        for r in rows:
            color = {"ok": "green", "behind": "yellow"}.get(r["state"], "red")
            failed = f"{r['failed_event']} at {r['failed_at_position']}" \
                if r["failed_at_position"] else "-"
            table.add_row(r["projection"], str(r["position"]), str(r["head"]), str(r["behind"]),
                          f"[{color}]{r['state']}[/]", r["last_page_at"] or "-",
                          r["last_error"] or "-", failed, r["runner"] or "-")
        console.print(table)
    if any(r["state"] in ("stalled", "failing") for r in rows):
        raise typer.Exit(1)


@app.command()
def rebuild(
    name: str = typer.Argument(None, help="Projection to rebuild (claims, audit, trends)."),
    all_: bool = typer.Option(False, "--all", help="Rebuild every projection."),
    page_size: int = typer.Option(10_000, help="Events per page (one transaction per view)."),
) -> None:
    """Empty a projection and rebuild it from the first event, with a progress bar.

    Safe beside running runners: they notice the reset and continue from the start too
    (pages are serialised per projection), so nothing is applied twice. Queries see the view
    filling up meanwhile."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ledger.projections.runner import ProjectionRunner, runner_env

    if all_ == bool(name):
        raise typer.BadParameter("give one projection NAME or --all")
    names = _names(None if all_ else [name])
    _logging()
    runner = ProjectionRunner(runner_env(_url()), names, page_size=page_size,
                              max_page_size=page_size)
    try:
        head = runner.reader.head()
        for view in runner.views.values():
            view.reset()
        started = time.monotonic()
        with Progress(TextColumn("rebuilding {task.description}"), BarColumn(),
                      MofNCompleteColumn(), TextColumn("{task.fields[rate]} events/s"),
                      TimeElapsedColumn(), TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task(", ".join(names), total=head or 1, rate="-")

            def progress(position: int, target: int) -> None:
                rate = position / max(time.monotonic() - started, 1e-6)
                bar.update(task, completed=position, total=max(target, 1), rate=f"{rate:,.0f}")

            runner.catch_up(until=head, progress=progress)
            bar.update(task, completed=head or 1)
        elapsed = time.monotonic() - started
        console.print(f"rebuilt {', '.join(names)} to position {head} in {elapsed:.1f}s")
    finally:
        runner.close()


@app.command()
def verify() -> None:
    """Check every projection against the log: one audit row per event, and per encounter
    exactly as many events counted as its stream holds. Exit 1 on any difference."""
    import psycopg

    from ledger.projections.check import verify as run_verify

    with psycopg.connect(_url(), autocommit=True) as conn:
        result = run_verify(conn)
    for problem in result.problems:
        console.print(f"[red]{problem}[/]")
    console.print(f"log head {result.head}; positions {result.positions}: "
                  + ("[green]every event reflected exactly once[/]" if result.ok
                     else f"[red]{len(result.problems)} problem(s)[/]"))
    if not result.ok:
        raise typer.Exit(1)
