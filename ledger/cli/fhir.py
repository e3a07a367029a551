"""``ledger fhir export DIR [--since ISO]``: NDJSON per resource type (see ledger.fhir.export)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson
import typer

app = typer.Typer(help="FHIR R4: bulk export of ExplanationOfBenefit, Claim, ClaimResponse, "
                       "Coverage as NDJSON.", no_args_is_help=True)


@app.command("export")
def export_command(
    directory: Path = typer.Argument(..., help="Where to write <Type>.ndjson"),  # noqa: B008
    since: str = typer.Option(None, "--since", help="Only resources changed at or after this "
                              "moment (ISO 8601 with a timezone, e.g. 2026-04-01T00:00:00Z)"),
) -> None:
    """Write ExplanationOfBenefit, Claim, ClaimResponse and Coverage as NDJSON (one file per
    type) for everything changed since a moment; prints the counts as JSON."""
    from ledger.application.service import LedgerApplication
    from ledger.config import get_settings
    from ledger.fhir.export import export
    from ledger.persistence.database import configure_client, database_url, eventsourcing_env

    moment = None
    if since:
        try:
            moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise typer.BadParameter("--since: an ISO 8601 moment") from None
        if moment.tzinfo is None:
            raise typer.BadParameter("--since: include a timezone, e.g. Z or +00:00")
    settings = get_settings()
    configure_client(settings)
    url = database_url(settings)
    ledger = LedgerApplication(env=eventsourcing_env(url, settings))
    try:
        result = export(url, ledger.mapper, directory, since=moment)
    finally:
        ledger.close()
    typer.echo(orjson.dumps(result.as_dict()).decode())
