"""``ledger verify`` and ``ledger checkpoints ...`` (registered in ledger/cli/main.py)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any
from uuid import UUID

import typer
from rich.table import Table

from ledger.cli.common import console, ledger_url

checkpoints_app = typer.Typer(help="Signed Merkle checkpoints over the event log.",
                              no_args_is_help=True)


def trusted_key() -> Any:
    from ledger.audit.checkpoints import trusted_public_key

    return trusted_public_key()


def print_report(report: Any, show: int = 10) -> None:
    summary = Table("", "", show_header=False, box=None)
    scope = f"encounter {report.encounter_id}" if report.encounter_id else "whole log"
    summary.add_row("scope", scope)
    summary.add_row("events", f"{report.events:,}")
    summary.add_row("encounters", f"{report.encounters:,}")
    summary.add_row("checkpoints", f"{report.checkpoints} in database, "
                    f"{report.exported_checkpoints} exported")
    summary.add_row("sealed", f"{report.covered:,} events (to position "
                    f"{report.latest_position or 0})")
    if report.pending:
        summary.add_row("pending", f"{report.pending:,} event(s) from position "
                        f"{report.pending_from} younger than the sealing bound, not sealed yet")
    summary.add_row("trusted key", report.key)
    if report.scope == "all":
        summary.add_row("access log", f"{report.access_records:,} sealed records verified "
                        f"({report.access_seals} seals)")
    if report.snapshots is not None:
        summary.add_row("snapshots", f"{report.snapshots} compared with the events")
    rate = f" ({report.events_per_second:,.0f} events/s)" if report.events else ""
    summary.add_row("time", f"{report.seconds:.3f} s{rate}")
    console.print(summary)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if report.ok:
        console.print("[bold green]OK[/]: every chain and checkpoint verifies")
        return
    first = report.first
    console.print(f"[bold red]FAILED[/]: {report.problem_count} problem(s) "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(report.counts.items()))})")
    console.print(f"[bold]first bad place[/]: [red]{first.kind}[/] at {first.where()}: "
                  f"{first.detail}")
    table = Table("kind", "encounter", "version", "position", "what is wrong")
    for p in report.problems[:show]:
        table.add_row(p.kind, str(p.encounter_id or "-"), str(p.version or "-"),
                      str(p.position or "-"), p.detail)
    console.print(table)
    if report.problem_count > show:
        console.print(f"... and {report.problem_count - show} more")


def verify_command(
    encounter: str = typer.Option(None, "--encounter", "-e",
                                  help="Verify one encounter only (fast)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    snapshots: bool = typer.Option(None, "--snapshots/--no-snapshots",
                                   help="Compare snapshots with the events (default: only "
                                   "with --encounter)."),
    show: int = typer.Option(10, help="How many problems to list."),
) -> None:
    """Verify the hash chains and signed checkpoints; exit 1 if anything was tampered with."""
    from ledger.audit.verify import verify
    from ledger.config import get_settings

    encounter_id = None
    if encounter:
        try:
            encounter_id = UUID(encounter)
        except ValueError:
            console.print("--encounter: not a UUID")
            raise typer.Exit(2) from None
    from ledger.audit.sealing import log_export_dir

    settings = get_settings()
    url = ledger_url()
    report = verify(url, encounter=encounter_id, public_key=trusted_key(),
                    export_dir=log_export_dir(settings.export_dir, url), snapshots=snapshots,
                    require_sealed=settings.seal_per_batch)
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict()) + "\n")
    else:
        print_report(report, show)
    raise typer.Exit(0 if report.ok else 1)


@checkpoints_app.command("keygen")
def keygen(force: bool = typer.Option(False, "--force", help="Replace an existing key.")) -> None:
    """Create the Ed25519 signing key (LEDGER_CHECKPOINT_KEY_FILE) and its .pub."""
    from ledger.audit.checkpoints import generate_key, key_id, public_path, raw_public
    from ledger.config import get_settings

    path = get_settings().key_file
    if path.exists() and not force:
        console.print(f"{path} exists (--force replaces it; its public key is kept as "
                      ".pub.<key id> so that old checkpoints stay verifiable)")
        raise typer.Exit(1)
    key = generate_key(path, overwrite=force)
    console.print(f"private key: {path} (mode 0600)\npublic key:  {public_path(path)}\n"
                  f"key id:      {key_id(raw_public(key.public_key()))}")


def _writer() -> Any:
    from ledger.audit.checkpoints import signing_key
    from ledger.audit.sealing import log_export_dir
    from ledger.audit.writer import CheckpointWriter
    from ledger.config import get_settings

    s = get_settings()
    url = ledger_url()
    return CheckpointWriter(url, signing_key(s.key_file),
                            export_dir=log_export_dir(s.export_dir, url),
                            origin=s.checkpoint_origin, max_leaves=s.checkpoint_max_leaves)


@checkpoints_app.command("run")
def run(
    once: bool = typer.Option(False, "--once", help="Seal what is there, then exit."),
    interval: float = typer.Option(None, help="Seconds between runs "
                                   "(LEDGER_CHECKPOINT_INTERVAL)."),
) -> None:
    """Seal new events under signed checkpoints (a long-running job; --once for cron)."""
    from ledger.cli.common import setup_logging
    from ledger.config import get_settings

    setup_logging()
    writer = _writer()
    if once:
        made = writer.catch_up()
        for c in made:
            console.print(f"checkpoint {c.tree_size}: root {c.root_hash.hex()} "
                          f"(position {c.last_position})")
        if not made:
            console.print("nothing new to seal")
        writer.close()
        return
    every = interval or get_settings().checkpoint_interval
    console.print(f"sealing new events every {every:g} s (Ctrl-C to stop)")
    try:
        writer.run_forever(every)
    except KeyboardInterrupt:
        writer.close()


@checkpoints_app.command("list")
def list_checkpoints(limit: int = typer.Option(20, help="Newest N.")) -> None:
    """The newest checkpoints in the database."""
    import psycopg

    from ledger.audit.checkpoints import load_checkpoints

    with psycopg.connect(ledger_url()) as conn:
        checkpoints = load_checkpoints(conn)[-limit:]
    table = Table("tree size", "position", "time (UTC)", "root", "key", "proof from")
    for c in checkpoints:
        table.add_row(str(c.tree_size), str(c.last_position), c.time.isoformat(),
                      c.root_hash.hex()[:16] + "…", c.key_id, str(c.previous_size or "-"))
    console.print(table)


@checkpoints_app.command("export")
def export_command() -> None:
    """Write any database checkpoint missing from this log's directory in
    LEDGER_CHECKPOINT_DIR."""
    writer = _writer()
    count = writer.export_missing(every=True)
    writer.close()
    console.print(f"exported {count} checkpoint(s) to {writer.export_dir}")


@checkpoints_app.command("prove")
def prove(old: int = typer.Argument(..., help="Older tree size."),
          new: int = typer.Argument(..., help="Newer tree size.")) -> None:
    """An RFC 6962 consistency proof between two checkpoints, from the leaf record (JSON)."""
    import psycopg

    from ledger.audit.checkpoints import load_checkpoints
    from ledger.audit.merkle import LeafList, consistency_proof, event_leaf, verify_consistency

    started = time.perf_counter()
    with psycopg.connect(ledger_url()) as conn:
        by_size = {c.tree_size: c for c in load_checkpoints(conn)}
        if old not in by_size or new not in by_size or old > new:
            console.print("give the tree sizes of two checkpoints, older first "
                          "(`ledger checkpoints list`)")
            raise typer.Exit(2)
        rows = conn.execute("SELECT notification_id, chain_hash FROM ledger_audit_leaves "
                            "ORDER BY notification_id LIMIT %s", (new,)).fetchall()
    leaves = [event_leaf(nid, bytes(h)) for nid, h in rows]
    proof = consistency_proof(old, new, LeafList(leaves))
    ok = verify_consistency(old, new, by_size[old].root_hash, by_size[new].root_hash, proof)
    sys.stdout.write(json.dumps({
        "old_size": old, "new_size": new, "old_root": by_size[old].root_hash.hex(),
        "new_root": by_size[new].root_hash.hex(), "proof": [h.hex() for h in proof],
        "verifies": ok, "seconds": round(time.perf_counter() - started, 3)}) + "\n")
    raise typer.Exit(0 if ok else 1)
