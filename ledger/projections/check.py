"""Checks that the projections reflect the log exactly: every event once, none skipped.

``verify(conn)`` compares each projection with the event log itself: the audit trail must
hold one row per event (same positions, same count), and the per-encounter views must have
counted, for every encounter, exactly the number of events its stream holds, up to the
same version. A skipped event makes a count short; an event applied twice makes it long;
both are reported. ``snapshot`` reads a view's tables in key order (for rebuild comparisons).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg import Connection
from psycopg.sql import SQL, Identifier, Literal

from ledger.projections.base import APPLICATION_NAME, ReadModel


@dataclass
class Verification:
    head: int
    positions: dict[str, int]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _position(conn: Connection[Any], name: str) -> int:
    row = conn.execute(SQL("SELECT notification_id FROM {0} WHERE application_name = %s")
                       .format(Identifier(f"{name}_tracking")), (APPLICATION_NAME,)).fetchone()
    return int(row[0] or 0) if row else 0


PERIOD_TOPICS = "ledger.domain.period"  # module of the AccountingPeriod aggregate


def _stream_counts(upto: int) -> Any:
    # encounters' streams only (an accounting period's PeriodClosed is no encounter's)
    return SQL("SELECT originator_id AS encounter_id, count(*) AS events, "
               "max(originator_version) AS version FROM ledger_events "
               "WHERE notification_id <= {0} AND split_part(topic, ':', 1) <> {1} "
               "GROUP BY originator_id").format(Literal(upto), Literal(PERIOD_TOPICS))


def verify(conn: Connection[Any], names: tuple[str, ...] = ("claims", "audit", "trends"),
           limit: int = 20) -> Verification:
    """Compare each projection with the log up to its tracked position."""
    head = conn.execute("SELECT COALESCE(max(notification_id), 0) FROM ledger_events"
                        ).fetchone()[0]  # type: ignore[index]
    positions = {n: _position(conn, n) for n in names}
    result = Verification(int(head), positions)
    p = result.problems
    if "audit" in names:
        upto = positions["audit"]
        missing = conn.execute(
            "SELECT e.notification_id FROM ledger_events e WHERE e.notification_id <= %s AND "
            "NOT EXISTS (SELECT 1 FROM audit_trail a WHERE a.position = e.notification_id) "
            "ORDER BY 1 LIMIT %s", (upto, limit)).fetchall()
        extra = conn.execute(
            "SELECT a.position FROM audit_trail a WHERE NOT EXISTS (SELECT 1 FROM ledger_events "
            "e WHERE e.notification_id = a.position) OR a.position > %s ORDER BY 1 LIMIT %s",
            (upto, limit)).fetchall()
        p += [f"audit: event {r[0]} missing" for r in missing]
        p += [f"audit: row {r[0]} is no event up to position {upto}" for r in extra]
        mismatched = conn.execute(
            "SELECT a.position FROM audit_trail a JOIN ledger_events e ON "
            "e.notification_id = a.position WHERE e.originator_id <> COALESCE(a.encounter_id, "
            "e.originator_id) OR (a.encounter_id IS NULL) <> (a.period IS NOT NULL) OR "
            "e.originator_version <> a.version LIMIT %s", (limit,)).fetchall()
        p += [f"audit: row {r[0]} names another event" for r in mismatched]
    for name, table in (("claims", "claims_encounters"), ("trends", "trend_encounters")):
        if name not in names:
            continue
        rows = conn.execute(SQL(
            "SELECT s.encounter_id, s.events, s.version, v.events, v.version FROM ({streams}) s "
            "FULL OUTER JOIN {table} v ON v.encounter_id = s.encounter_id "
            "WHERE s.events IS DISTINCT FROM v.events OR s.version IS DISTINCT FROM v.version "
            "LIMIT %s").format(streams=_stream_counts(positions[name]),
                               table=Identifier(table)), (limit,)).fetchall()
        for eid, log_events, log_version, view_events, view_version in rows:
            p.append(f"{name}: encounter {eid} has {log_events or 0} events up to version "
                     f"{log_version or 0} in the log, the view counted {view_events or 0} up to "
                     f"version {view_version or 0}")
    return result


def snapshot(conn: Connection[Any], view: type[ReadModel]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the view's tables, in primary-key order."""
    out = {}
    for table in view.tables:
        keys = view.keys[table]
        out[table] = conn.execute(SQL("SELECT * FROM {0} ORDER BY {1}").format(
            Identifier(table), SQL(", ").join(Identifier(k) for k in keys))).fetchall()
    return out
