"""Month-end reporting: reconciliation between two log positions, period close, and reports of
a closed period (issue 19).

- ``reconcile``: for one payer or the whole A/R, the balance at P1, the changes after P1 up to
  P2 grouped by the kind of event that made them, and the balance at P2; the changes are the
  differences between consecutive versions of ``payer_balances_history``, so
  balance(P1) + Σ changes = balance(P2) holds exactly (Decimal), and ``balanced`` says so.
- ``close_period``: records ``PeriodClosed`` (its own aggregate per period, through the
  application) with the last log position recorded before the period ended and the newest
  signed checkpoint whose tree covers that position. No checkpoint covers it yet: refused with
  the reason (seal first: ``ledger audit checkpoint``).
- ``period_report``: a closed period's payer balances, always read at the closed position,
  with the checkpoint; and the next period's post-close adjustments (what changed after the
  close, by event kind), so a late correction never changes the closed report.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from psycopg import Connection
from psycopg.rows import dict_row

from ledger.domain.errors import IllegalTransition, InvalidValue, NotFound
from ledger.domain.period import AccountingPeriod, next_period, period_bounds
from ledger.projections import asof
from ledger.projections import queries as q

MEASURES = ("billed", "paid", "contractual", "other_adjustments", "patient_responsibility",
            "written_off", "provider_adjustments", "outstanding")
CLOSE_ROLES = frozenset({"billing_lead", "admin"})


def balance_at(conn: Connection[Any], position: int, payer_id: str | None = None
               ) -> dict[str, Decimal]:
    where = " AND payer_id = %s" if payer_id else ""
    row = conn.cursor(row_factory=dict_row).execute(
        "SELECT " + ", ".join(f"COALESCE(sum({m}), 0) AS {m}" for m in MEASURES) +
        " FROM payer_balances_history WHERE int8range(valid_from, valid_to) @> %s::bigint"
        + where, [position, *([payer_id] if payer_id else [])]).fetchone()
    return {m: Decimal(row[m]) for m in MEASURES}


def reconcile(conn: Connection[Any], start: int, end: int,
              payer_id: str | None = None) -> dict[str, Any]:
    """balance at ``start`` + changes in (start, end] by event kind = balance at ``end``."""
    if start > end:
        raise InvalidValue("from", "reconcile.order", "from: must not be after to")
    where = " AND h.payer_id = %s" if payer_id else ""
    rows = conn.cursor(row_factory=dict_row).execute(
        "SELECT h.event_type, count(*) AS versions, " + ", ".join(
            f"sum(h.{m} - COALESCE(p.{m}, 0)) AS {m}" for m in MEASURES) +
        " FROM payer_balances_history h LEFT JOIN payer_balances_history p "
        "ON p.payer_id = h.payer_id AND p.party_kind = h.party_kind AND p.valid_to = h.valid_from"
        " WHERE h.valid_from > %s AND h.valid_from <= %s" + where +
        " GROUP BY h.event_type ORDER BY h.event_type",
        [start, end, *([payer_id] if payer_id else [])]).fetchall()
    opening, closing = balance_at(conn, start, payer_id), balance_at(conn, end, payer_id)
    changes = [{"event_type": r["event_type"], "changes": r["versions"],
                **{m: Decimal(r[m]) for m in MEASURES}} for r in rows]
    total = {m: sum((c[m] for c in changes), Decimal("0.00")) for m in MEASURES}
    return {"payer_id": payer_id, "from_position": start, "to_position": end,
            "opening": opening, "changes": changes, "total_change": total, "closing": closing,
            "balanced": all(opening[m] + total[m] == closing[m] for m in MEASURES)}


def covering_checkpoint(conn: Connection[Any], position: int) -> dict[str, Any] | None:
    """The first signed checkpoint whose tree covers ``position`` (its last position is at or
    after it)."""
    from ledger.audit.checkpoints import SELECT_CHECKPOINTS, Checkpoint

    row = conn.execute(SELECT_CHECKPOINTS + " WHERE last_position >= %s ORDER BY tree_size "
                       "LIMIT 1", (position,)).fetchone()
    if row is None:
        return None
    cp = Checkpoint.from_row(row)
    return {"tree_size": cp.tree_size, "root_hash": cp.root_hash.hex(), "key_id": cp.key_id,
            "last_position": cp.last_position, "signature_valid": cp.signature_valid()}


def close_period(app: Any, conn: Connection[Any], period: str, *, actor_id: str,
                 actor_role: str, reason: str = "", now: datetime | None = None
                 ) -> AccountingPeriod:
    """Close ``period`` (YYYY-MM): refused before it has ended, twice, for a role other than
    a billers' lead or admin, or while no signed checkpoint covers its last position."""
    if actor_role not in CLOSE_ROLES:
        raise IllegalTransition("role", "period.close_role",
                                "role: only a billers' lead or an admin closes a period")
    _, end = period_bounds(period)
    now = now or datetime.now(UTC)
    if end > now:
        raise InvalidValue("period", "period.not_ended",
                           f"period: {period} has not ended yet (ends {end.isoformat()})")
    try:
        app.repository.get(AccountingPeriod.create_id(period))
        raise IllegalTransition("period", "period.closed", f"period: {period} is already closed")
    except AggregateNotFoundError:
        pass
    head = asof.log_head(conn)
    position = asof.position_at(conn, end - timedelta(microseconds=1), head)
    checkpoint = covering_checkpoint(conn, position)
    if checkpoint is None:
        raise IllegalTransition("period", "period.unsealed",
                                f"period: no signed checkpoint covers log position {position} "
                                "yet; seal first (`ledger audit checkpoint`), then close")
    closed = AccountingPeriod(period=period, position=position, closed_at=now,
                              tree_size=checkpoint["tree_size"],
                              root_hash=checkpoint["root_hash"], key_id=checkpoint["key_id"],
                              checkpoint_position=checkpoint["last_position"],
                              actor_id=actor_id, actor_role=actor_role, reason=reason)
    app.save(closed)
    return closed


def closed_period(app: Any, period: str) -> AccountingPeriod | None:
    period_bounds(period)
    try:
        return app.repository.get(AccountingPeriod.create_id(period))
    except AggregateNotFoundError:
        return None


def period_report(app: Any, conn: Connection[Any], period: str,
                  aging_date: Any = None) -> dict[str, Any]:
    """A closed period's payer balances (read at its closed position, forever), with the
    checkpoint; and the post-close adjustments (changes recorded after the close, by kind)
    that belong to the next period."""
    closed = closed_period(app, period)
    if closed is None:
        raise NotFound("period", "period.closed", f"period: {period} is not closed")
    _, end = period_bounds(period)
    day = aging_date or (end - timedelta(days=1)).date()
    head = asof.log_head(conn)
    nxt = closed_period(app, next_period(period))
    upto = nxt.position if nxt is not None else head
    return {"period": period, "position": closed.position,
            "closed_at": closed.closed_at.isoformat(), "closed_by": closed.actor_id,
            "checkpoint": closed.checkpoint(), "aging_date": day,
            "payers": q.payer_balances(conn, as_of=day, position=closed.position),
            "post_close_adjustments": {
                "period": next_period(period), "to_position": upto,
                **{k: v for k, v in reconcile(conn, closed.position, upto).items()
                   if k in ("changes", "total_change", "balanced")}}}
