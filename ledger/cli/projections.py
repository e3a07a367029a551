"""``ledger projections``: run the projection runner, see its lag, rebuild, verify.

Kept light at import time: the runner and its dependencies load inside the commands.
"""

from __future__ import annotations

import json
import signal
import sys
import time

import typer
from rich.table import Table

from ledger.cli.common import console, ledger_url, setup_logging
from ledger.projections import PROJECTION_NAMES
from ledger.projections.status import status_rows

app = typer.Typer(help="Read models (claims, balances, queue, audit trail, trends): run, "
                       "status, rebuild, verify.", no_args_is_help=True)


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
    setup_logging()
    from ledger.config import get_settings
    from ledger.persistence.database import apply_connection_options, configure_client
    from ledger.projections.runner import ProjectionRunner, runner_env

    configure_client(get_settings())  # reconnect every 0.2 s after an outage
    runner = ProjectionRunner(runner_env(ledger_url()), _names(only), page_size=page_size,
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


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
           stall_after: float = typer.Option(30.0, help="Seconds without a page while behind "
                                                        "that count as stalled.")) -> None:
    """Lag per projection: tracked position against the log head. Exit 1 if any is stalled
    or failing."""
    rows = status_rows(ledger_url(), stall_after)
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
    setup_logging()
    runner = ProjectionRunner(runner_env(ledger_url()), names, page_size=page_size,
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

    with psycopg.connect(ledger_url(), autocommit=True) as conn:
        result = run_verify(conn)
    for problem in result.problems:
        console.print(f"[red]{problem}[/]")
    console.print(f"log head {result.head}; positions {result.positions}: "
                  + ("[green]every event reflected exactly once[/]" if result.ok
                     else f"[red]{len(result.problems)} problem(s)[/]"))
    if not result.ok:
        raise typer.Exit(1)
