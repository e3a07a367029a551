"""``ledger report …`` (any read model now, as of a recorded time or a log position, a closed
period, reconciliation) and ``ledger period close YYYY-MM`` (issue 19). Output is JSON."""

from __future__ import annotations

import sys
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

import orjson
import typer

from ledger.cli.common import ledger_url

report_app = typer.Typer(help="Reports: now, as of a recorded time or log position, a closed "
                         "period, reconciliation between two moments.", no_args_is_help=True)
period_app = typer.Typer(help="Accounting periods: close a month.", no_args_is_help=True)


class Model(StrEnum):
    payer_balances = "payer-balances"
    claims = "claims"
    patient_balances = "patient-balances"
    exceptions = "exceptions"
    trends = "trends"


PROJECTION = {Model.payer_balances: "claims", Model.claims: "claims",
              Model.patient_balances: "claims", Model.exceptions: "exceptions",
              Model.trends: "trends"}
AsOf = Annotated[datetime | None, typer.Option(
    "--as-of", help="recorded time, ISO 8601 with a zone (e.g. 2026-10-31T23:59:59Z)",
    formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"])]
AsOfPosition = Annotated[int | None, typer.Option("--as-of-position", help="log position")]


def _print(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
                                  default=_default).decode() + "\n")


def _default(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else str(value)
    raise TypeError


def _fail(exc: Exception) -> None:
    from ledger.domain.errors import LedgerError

    if isinstance(exc, LedgerError):
        sys.stderr.write(f"refused: {exc.message} (field {exc.field}, rule {exc.rule})\n")
        raise typer.Exit(2) from None
    raise exc


def _application() -> Any:
    from ledger.application.service import LedgerApplication
    from ledger.config import get_settings
    from ledger.persistence.database import eventsourcing_env

    return LedgerApplication(env=eventsourcing_env(ledger_url(), get_settings()))


def _text_time(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        from ledger.domain.errors import InvalidValue

        _fail(InvalidValue("as_of", "as_of.timezone", "as_of: give a time zone (e.g. Z)"))
    return value


@report_app.command("show")
def show(model: Annotated[Model, typer.Argument(help="which read model")],
         as_of: AsOf = None, as_of_position: AsOfPosition = None,
         payer_id: Annotated[str | None, typer.Option(help="one payer")] = None,
         dos_from: Annotated[str | None, typer.Option(help="claims: service from (date)")] = None,
         dos_to: Annotated[str | None, typer.Option(help="claims: service to (date)")] = None,
         paid_from: Annotated[str | None, typer.Option(help="claims: paid on/after")] = None,
         paid_to: Annotated[str | None, typer.Option(help="claims: paid on/before")] = None,
         limit: Annotated[int, typer.Option(help="rows at most")] = 100,
         adjudicated_from: Annotated[str | None, typer.Option(
             help="claims: last adjudicated on/after")] = None,
         adjudicated_to: Annotated[str | None, typer.Option(
             help="claims: last adjudicated on/before")] = None) -> None:
    """A read model now, or as it stood (``--as-of`` / ``--as-of-position``); the claims
    list, payer and patient balances by effective time too (``--dos-from``/``--dos-to``,
    ``--adjudicated-from``/``--adjudicated-to``, ``--paid-from``/``--paid-to``)."""
    import psycopg

    from ledger.projections import asof
    from ledger.projections import queries as q
    from ledger.x12.exceptions import list_exceptions

    d = {k: _date(k, v) for k, v in (
        ("dos_from", dos_from), ("dos_to", dos_to), ("adjudicated_from", adjudicated_from),
        ("adjudicated_to", adjudicated_to), ("paid_from", paid_from), ("paid_to", paid_to))}
    effective = q_effective(d)
    try:
        with psycopg.connect(ledger_url(), autocommit=True) as conn:
            point = asof.resolve(conn, as_of=_text_time(as_of), as_of_position=as_of_position,
                                 projections=(PROJECTION[model],))
            position = point.position if point else None
            out: dict[str, Any] = {"report": model.value,
                                   "as_of": point.as_dict() if point else None}
            if effective.given():
                out["effective"] = effective.as_dict()
            if model is Model.payer_balances:
                out["aging_date"] = point.day if point else date.today()
                out["payers"] = q.payer_balances_effective(
                    conn, effective, payer_id=payer_id, as_of=out["aging_date"],
                    position=position) if effective.given() else q.payer_balances(
                    conn, payer_id, as_of=out["aging_date"], position=position)
            elif model is Model.claims:
                out["claims"] = q.list_claims(conn, payer_id=payer_id, limit=limit,
                                              position=position, **d).items
            elif model is Model.patient_balances:
                out["patients"] = q.patient_balances_effective(
                    conn, effective, position=position, limit=limit, owing_only=True
                ) if effective.given() else q.patient_balances(
                    conn, position=position, limit=limit, owing_only=True)
            elif model is Model.exceptions:
                out["exceptions"] = list_exceptions(conn, status="all", limit=limit,
                                                    position=position)
            else:
                out["diagnoses"] = q.top_diagnoses(conn, limit=limit, position=position)
                out["coders"] = q.code_revisions_by_coder(conn, limit=limit, position=position)
    except Exception as exc:  # noqa: BLE001 - refusals are printed, the rest re-raised
        _fail(exc)
    _print(out)


def _date(field: str, value: str | None) -> date | None:
    from ledger.domain.errors import InvalidValue

    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(InvalidValue(field, "date.format", f"{field}: a date as YYYY-MM-DD"))
        raise


def q_effective(d: dict[str, date | None]) -> Any:
    from ledger.projections import queries as q

    return q.Effective(**d)


# `ledger report payer-balances …` as a shortcut of `ledger report show payer-balances …`
def _shortcut(model: Model) -> Any:
    def command(as_of: AsOf = None, as_of_position: AsOfPosition = None,
                payer_id: Annotated[str | None, typer.Option(help="one payer")] = None,
                limit: Annotated[int, typer.Option(help="rows at most")] = 100,
                dos_from: Annotated[str | None, typer.Option(help="service from")] = None,
                dos_to: Annotated[str | None, typer.Option(help="service to")] = None,
                adjudicated_from: Annotated[str | None, typer.Option(
                    help="last adjudicated on/after")] = None,
                adjudicated_to: Annotated[str | None, typer.Option(
                    help="last adjudicated on/before")] = None,
                paid_from: Annotated[str | None, typer.Option(help="paid on/after")] = None,
                paid_to: Annotated[str | None, typer.Option(help="paid on/before")] = None,
                ) -> None:
        show(model, as_of=as_of, as_of_position=as_of_position, payer_id=payer_id,
             dos_from=dos_from, dos_to=dos_to, paid_from=paid_from, paid_to=paid_to,
             limit=limit, adjudicated_from=adjudicated_from, adjudicated_to=adjudicated_to)
    return command


for _model in Model:
    report_app.command(_model.value, help=f"{_model.value}: now or as of.")(_shortcut(_model))


@report_app.command("period")
def period(period: Annotated[str, typer.Argument(help="YYYY-MM, closed")]) -> None:
    """A closed period's payer balances (read at its close, forever), the checkpoint that
    proves it, and the post-close adjustments of the next period."""
    import psycopg

    from ledger.reporting import period_report

    app = _application()
    try:
        with psycopg.connect(ledger_url(), autocommit=True) as conn:
            _print(period_report(app, conn, period))
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    finally:
        app.close()


@report_app.command("reconcile")
def reconcile(from_time: Annotated[datetime | None, typer.Option(
                  "--from", help="recorded time T1 (ISO 8601, zone)",
                  formats=["%Y-%m-%dT%H:%M:%S%z"])] = None,
              to_time: Annotated[datetime | None, typer.Option(
                  "--to", help="recorded time T2 (default: now)",
                  formats=["%Y-%m-%dT%H:%M:%S%z"])] = None,
              from_position: Annotated[int | None, typer.Option(
                  "--from-position", help="opening log position")] = None,
              to_position: Annotated[int | None, typer.Option(
                  "--to-position", help="closing log position")] = None,
              payer_id: Annotated[str | None, typer.Option(help="one payer (default: all A/R)")
                                  ] = None) -> None:
    """Balance at T1 + changes by event kind = balance at T2."""
    import psycopg

    from ledger.projections import asof
    from ledger.reporting import reconcile as run

    try:
        with psycopg.connect(ledger_url(), autocommit=True) as conn:
            a = asof.resolve(conn, as_of=from_time, as_of_position=from_position,
                             projections=("claims",))
            b = asof.resolve(conn, as_of=to_time, as_of_position=to_position,
                             projections=("claims",))
            _print(run(conn, a.position if a else 0, b.position if b else asof.log_head(conn),
                       payer_id))
    except Exception as exc:  # noqa: BLE001
        _fail(exc)


@period_app.command("close")
def close(period: Annotated[str, typer.Argument(help="YYYY-MM (ended)")],
          actor: Annotated[str, typer.Option(help="user id of a billers' lead or admin")],
          reason: Annotated[str, typer.Option(
              help="why (kept in the event and the audit trail)")] = "") -> None:
    """Record PeriodClosed: the period's reports are read at its last position from now on."""
    import psycopg

    from ledger.domain.errors import NotFound
    from ledger.reporting import close_period

    app = _application()
    try:
        with psycopg.connect(ledger_url(), autocommit=True) as conn:
            row = conn.execute("SELECT role FROM ledger_users WHERE user_id = %s AND NOT "
                               "disabled", (actor,)).fetchone()
            if row is None:
                raise NotFound("actor", "actor.exists", "actor: no such active user")
            closed = close_period(app, conn, period, actor_id=actor, actor_role=row[0],
                                  reason=reason)
            _print({"period": closed.period, "position": closed.position,
                    "closed_at": closed.closed_at.isoformat(), "closed_by": closed.actor_id,
                    "checkpoint": closed.checkpoint()})
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    finally:
        app.close()
