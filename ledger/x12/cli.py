"""``ledger import FILE…`` (registered by one import in ledger/cli.py).

Each file's type is detected (835, 837P, 837I, 999, 277CA); a progress bar runs over the
files and a summary table closes: posted, quarantined, unmatched, duplicates per file and in
total. Exit status 1 when any file was quarantined or was not X12.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger.cli import app, console, err_console


@app.command("import")
def import_files(
    files: Annotated[list[Path], typer.Argument(
        exists=True, dir_okay=False, readable=True,
        help="X12 files: 835, 837P, 837I, 999 or 277CA.")],
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object per file on stdout, and nothing else there "
        "(the table and problems go to stderr).")] = False,
) -> None:
    """Import X12 files: 835 remittances (balanced before posting), 837P/837I claims,
    999/277CA acknowledgements."""
    from ledger.application import LedgerApplication
    from ledger.cli import _setup_logging, _url
    from ledger.config import get_settings
    from ledger.database import eventsourcing_env
    from ledger.migrate import migrate
    from ledger.x12.importer import X12Importer

    _setup_logging()
    out = err_console if as_json else console  # with --json, stdout carries only JSON
    settings = get_settings()
    url = _url()
    migrate(url)
    ledger = LedgerApplication(env=eventsourcing_env(url, settings),
                               snapshot_interval=settings.snapshot_interval,
                               appeal_window_days=settings.appeal_window_days)
    importer = X12Importer(ledger, url)
    results = []
    try:
        with Progress(TextColumn("[bold]importing[/] {task.description}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=out,
                      transient=True) as progress:
            task = progress.add_task("", total=len(files))
            for path in files:
                progress.update(task, description=path.name[:40])
                results.append(importer.import_path(path))
                progress.advance(task)
    finally:
        ledger.close()
    table = Table("file", "type", "outcome", "posted", "quarantined", "unmatched", "duplicates",
                  "rules", title="X12 import")
    totals = [0, 0, 0, 0]
    for r in results:
        totals = [totals[0] + r.posted, totals[1] + r.quarantined, totals[2] + r.unmatched,
                  totals[3] + r.duplicates]
        style = {"quarantined": "red", "error": "red", "posted": "green",
                 "imported": "green", "acknowledged": "green"}.get(r.outcome, "yellow")
        table.add_row(r.name, r.kind, f"[{style}]{r.outcome}[/]", str(r.posted),
                      str(r.quarantined), str(r.unmatched), str(r.duplicates),
                      ", ".join(r.rules))
    table.add_row("[bold]total[/]", "", f"{len(results)} file(s)", *map(str, totals), "")
    out.print(table)
    for r in results:
        for issue in r.issues:
            if issue.severity == "error":
                out.print(f"[red]{r.name}[/]: {issue.rule}: {issue.message}")
        if as_json:
            typer.echo(orjson.dumps(r.as_dict()).decode())
    if any(r.outcome in ("quarantined", "error") for r in results):
        raise typer.Exit(1)
