"""``ledger import FILE…`` (registered in ledger/cli/main.py).

Each file's type is detected (835, 837P, 837I, 999, 277CA); a progress bar runs over the
files and a summary table closes: posted, quarantined, unmatched, duplicates per file and in
total. Exit status 1 when any file was quarantined or was not X12, any claim of an 837 was
refused, or any claim or PLB of an 835 was held in the exceptions queue. ``--json`` prints
only JSON on stdout (one document: the files and the totals); logs go to stderr.

``ledger x12 exceptions`` lists the exceptions queue (table, or ``--json``);
``ledger x12 resolve ID --action dismissed --reason …`` works one by appending an event.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger.cli.common import console, ledger_url, setup_logging

x12_app = typer.Typer(help="X12 exceptions queue: list and resolve.", no_args_is_help=True)


def import_files(
    files: Annotated[list[Path], typer.Argument(
        exists=True, dir_okay=False, readable=True,
        help="X12 files: 835, 837P, 837I, 999 or 277CA.")],
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print only JSON on stdout: every file's report and the totals.")
    ] = False,
) -> None:
    """Import X12 files: 835 remittances (balanced before posting), 837P/837I claims,
    999/277CA acknowledgements."""
    from ledger.application.service import LedgerApplication
    from ledger.config import get_settings
    from ledger.persistence.database import eventsourcing_env
    from ledger.persistence.migrate import migrate
    from ledger.x12.importer import X12Importer

    setup_logging()
    settings = get_settings()
    url = ledger_url()
    migrate(url)
    ledger = LedgerApplication(env=eventsourcing_env(url, settings),
                               snapshot_interval=settings.snapshot_interval,
                               appeal_window_days=settings.appeal_window_days)
    importer = X12Importer(ledger, url)
    results = []
    try:
        if as_json:
            results = [importer.import_path(path) for path in files]
        else:
            with Progress(TextColumn("[bold]importing[/] {task.description}"), BarColumn(),
                          MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                          transient=True) as progress:
                task = progress.add_task("", total=len(files))
                for path in files:
                    progress.update(task, description=path.name[:40])
                    results.append(importer.import_path(path))
                    progress.advance(task)
    finally:
        ledger.close()
    totals = {"files": len(results), "posted": sum(r.posted for r in results),
              "quarantined": sum(r.quarantined for r in results),
              "unmatched": sum(r.unmatched for r in results),
              "duplicates": sum(r.duplicates for r in results),
              "held": sum(r.held for r in results)}
    failed = any(r.outcome in ("quarantined", "error") or r.quarantined or r.held
                 for r in results)
    if as_json:
        sys.stdout.write(orjson.dumps({"files": [r.as_dict() for r in results],
                                       "totals": totals, "ok": not failed}).decode() + "\n")
        sys.stdout.flush()
        if failed:
            raise typer.Exit(1)
        return
    table = Table("file", "type", "outcome", "posted", "quarantined", "unmatched", "duplicates",
                  "held", "rules", title="X12 import")
    for r in results:
        style = {"quarantined": "red", "error": "red", "posted": "green",
                 "imported": "green", "acknowledged": "green"}.get(r.outcome, "yellow")
        table.add_row(r.name, r.kind, f"[{style}]{r.outcome}[/]", str(r.posted),
                      str(r.quarantined), str(r.unmatched), str(r.duplicates), str(r.held),
                      ", ".join(r.rules))
    table.add_row("[bold]total[/]", "", f"{len(results)} file(s)", str(totals["posted"]),
                  str(totals["quarantined"]), str(totals["unmatched"]),
                  str(totals["duplicates"]), str(totals["held"]), "")
    console.print(table)
    for r in results:
        for issue in r.issues:
            if issue.severity == "error":
                console.print(f"[red]{r.name}[/]: {issue.rule}: {issue.message}")
        for e in r.exceptions:
            console.print(f"[yellow]{r.name}[/]: held {e.kind} ({e.rule}) claim "
                          f"{e.claim_number or '-'} amount {e.amount}")
    if failed:
        raise typer.Exit(1)


def _connect() -> object:
    import psycopg

    from ledger.persistence.migrate import migrate

    url = ledger_url()
    migrate(url)
    return psycopg.connect(url, autocommit=True)


@x12_app.command("exceptions")
def list_exceptions_cmd(
    status: Annotated[str, typer.Option(help="open, resolved or all")] = "open",
    kind: Annotated[str, typer.Option(help="only this kind")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="print only JSON on stdout")] = False,
) -> None:
    """List the exceptions queue: quarantined files, unreconciled remittances, unmatched
    claims, suspected duplicate payments, unmatched SVC lines and unposted PLBs."""
    from ledger.domain.errors import LedgerError
    from ledger.x12.exceptions import list_exceptions

    try:
        with _connect() as conn:  # type: ignore[attr-defined]
            items = list_exceptions(conn, status=status, kind=kind)
    except LedgerError as err:
        console.print(f"[red]{err.field}[/]: {err.rule}: {err.message}")
        raise typer.Exit(2) from None
    if as_json:
        sys.stdout.write(orjson.dumps({"exceptions": items}).decode() + "\n")
        return
    table = Table("id", "kind", "status", "claim", "payer", "trace", "amount", "rule",
                  title=f"X12 exceptions ({status})")
    for e in items:
        table.add_row(e["exception_id"], e["kind"], e["status"], e["claim_number"] or "-",
                      e["payer_id"] or "-", e["trace_number"] or "-", e["amount"] or "-",
                      e["rule"])
    console.print(table)


@x12_app.command("resolve")
def resolve_cmd(
    exception_id: Annotated[str, typer.Argument(help="the exception's id")],
    action: Annotated[str, typer.Option(help="rematched, posted or dismissed")],
    reason: Annotated[str, typer.Option(help="why (required)")],
    actor: Annotated[str, typer.Option(help="who resolves it (staff id)")] = "cli",
) -> None:
    """Resolve an exception by appending a resolution event (rows are never edited)."""
    from ledger.domain.errors import LedgerError
    from ledger.x12.exceptions import resolve

    try:
        with _connect() as conn:  # type: ignore[attr-defined]
            out = resolve(conn, exception_id, action=action, reason=reason, actor_id=actor)
    except LedgerError as err:
        console.print(f"[red]{err.field}[/]: {err.rule}: {err.message}")
        raise typer.Exit(2) from None
    console.print(f"{out['exception_id']}: {out['resolution']}")


@x12_app.command("reconciliation")
def reconciliation_cmd(
    unreconciled: Annotated[bool, typer.Option(help="only those that do not reconcile")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print only JSON on stdout")] = False,
) -> None:
    """Per remittance: BPR02 = Σ CLP04 − Σ PLB, and what was posted or held."""
    from ledger.x12.exceptions import list_reconciliation

    with _connect() as conn:  # type: ignore[attr-defined]
        items = list_reconciliation(conn, only_unreconciled=unreconciled)
    if as_json:
        sys.stdout.write(orjson.dumps({"remittances": items}).decode() + "\n")
        return
    table = Table("payer", "trace", "BPR02", "ΣCLP04", "ΣPLB", "PLB claims", "PLB provider",
                  "posted", "held", "difference", "reconciled", "outcome",
                  title="X12 remittance reconciliation")
    for r in items:
        table.add_row(r["payer_id"], r["trace_number"], r["bpr_amount"], r["claims_paid"],
                      r["plb_total"], r["plb_claims"], r["plb_provider"], r["posted_paid"],
                      r["held_paid"], r["difference"], "yes" if r["reconciled"] else "[red]no[/]",
                      r["outcome"])
    console.print(table)
