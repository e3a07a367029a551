"""``ledger codes``: look codes up and check the configured code-set and edit files."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import typer
from rich.table import Table

from ledger.cli.common import console

app = typer.Typer(help="Code sets: look a code up; check the configured CMS files.",
                  no_args_is_help=True)


def _row_style(result: dict[str, Any]) -> str:
    return "green" if result["billable"] else ("yellow" if result["valid"] else "red")


@app.command()
def lookup(
    code: str = typer.Argument(..., help="The code, e.g. E11.9, 99213, J1100, 25, 1234567893."),
    system: str = typer.Option(None, "--system", "-s",
                               help="icd10cm, cpt, hcpcs, modifier, pos, npi, revenue or ndc "
                               "(default: every system whose format fits)."),
    on: str = typer.Option(None, "--date", "-d",
                           help="Date of service, YYYY-MM-DD (default: latest code set)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
) -> None:
    """Is CODE valid and billable, what it means, and which code-set version says so."""
    from ledger.codes.lookup import SYSTEMS, lookup_code, systems_for
    from ledger.domain.errors import LedgerError

    try:
        day = date.fromisoformat(on) if on else None
    except ValueError:
        console.print("[red]--date must be YYYY-MM-DD[/]")
        raise typer.Exit(2) from None
    if system:
        systems = [system.lower()]
    else:
        systems = systems_for(code) or ["icd10cm", "cpt"]  # nothing fits: say why for both
    try:
        results = [lookup_code(s, code, day) for s in systems]
    except LedgerError as err:
        console.print(f"[red]{err.message}[/] (systems: {', '.join(SYSTEMS)})")
        raise typer.Exit(2) from None
    if as_json:
        for r in results:
            typer.echo(orjson.dumps(r).decode())
    else:
        table = Table("system", "code", "valid", "billable", "description", "version",
                      title=f"lookup {code}" + (f" on {day}" if day else ""), show_lines=True)
        for r in results:
            style = _row_style(r)
            why = r["description"] or ""
            if r["message"]:
                why = f"{why}\n[{style}]{r['message']}[/]" if why else f"[{style}]{r['message']}[/]"
            table.add_row(r["system_name"], r["code"], _yn(r["valid"]), _yn(r["billable"]),
                          why, r["version"])
        console.print(table)
    if not any(r["billable"] for r in results):
        raise typer.Exit(1)


def _yn(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[red]no[/]"


@app.command()
def files() -> None:
    """Load every configured code-set and edit file now and show what each holds."""
    from ledger.codes.edits import CMSEditTables, edit_tables_from_settings
    from ledger.codes.lookup import configured_code_sets

    sets = configured_code_sets()
    table = Table("what", "version / file", "entries")
    for edition in sets.icd10cm.editions:
        t = sets.icd10cm.table(edition)
        billable = sum(1 for b, _ in t.entries.values() if b)
        table.add_row("ICD-10-CM", edition.version, f"{len(t)} codes, {billable} billable")
    table.add_row("CPT descriptors", sets.cpt.version or "(none: format only)", "")
    if sets.hcpcs is not None:
        table.add_row("HCPCS Level II", sets.hcpcs.version, f"{len(sets.hcpcs)} codes")
    else:
        table.add_row("HCPCS Level II", "(none: format only)", "")
    tables = edit_tables_from_settings()
    if isinstance(tables, CMSEditTables):
        counts = tables.counts()
        table.add_row("NCCI PTP / MUE", tables.version,
                      f"{counts['ptp_pairs']} PTP rows, {counts['mue_codes']} MUE codes")
    else:
        table.add_row("NCCI PTP / MUE", "(none configured)", "")
    console.print(table)
