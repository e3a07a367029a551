"""As-of reads: which log position a report is read at, and the checks that refuse a wrong one.

A report is read *as of* a log position P (``as_of_position``) or a recorded moment T
(``as_of``: when the ledger learned it; mapped to the last position recorded at or before T).
The read models answer from their ``*_history`` tables (``ledger.projections.history``).

Refused (422, naming the field and the rule): both given, a negative position, a position
beyond the log's head, a moment without a time zone or in the future, and a position before
the history of a read model starts (a database that existed before migration 0120 keeps
history from its position then, until the projection is rebuilt). A read model that has not
yet applied P is waited for (bounded), then 503.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from psycopg import Connection

from ledger.domain.errors import InvalidValue, LedgerError

PROJECTION_OF = {"current_claims": "claims", "payer_balances": "claims",
                 "payer_aging": "claims", "patient_balances": "claims",
                 "trend_diagnoses": "trends", "trend_diagnosis_services": "trends",
                 "code_revisions_by_coder": "trends", "code_revisions_by_code": "trends"}


class ReadModelBehind(LedgerError):
    """A read model has not applied the requested position yet (retry shortly)."""

    status_hint = 503


@dataclass(frozen=True)
class AsOf:
    """A report's point in recorded time: the log position, the moment it stands for (the
    given moment, or when the event at the position was recorded), and the date aging is
    counted to."""

    position: int
    moment: datetime | None
    head: int

    @property
    def day(self) -> date:
        return (self.moment or datetime.now(UTC)).astimezone(UTC).date()

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position,
                "recorded_at": self.moment.isoformat() if self.moment else None,
                "log_head": self.head}


def log_head(conn: Connection[Any]) -> int:
    return int(conn.execute("SELECT COALESCE(max(notification_id), 0) FROM ledger_events"
                            ).fetchone()[0])


def recorded_at(conn: Connection[Any], position: int) -> datetime | None:
    """When the event at (or last before) ``position`` was recorded (audit trail)."""
    row = conn.execute("SELECT recorded_at FROM audit_trail WHERE position <= %s "
                       "ORDER BY position DESC LIMIT 1", (position,)).fetchone()
    return row[0] if row else None


def position_at(conn: Connection[Any], moment: datetime, head: int) -> int:
    """The last log position recorded at or before ``moment``. Read from the audit trail's
    (position, recorded_at); refused while the audit trail has not reached the events
    recorded up to ``moment``."""
    row = conn.execute("SELECT max(position) FROM audit_trail WHERE recorded_at <= %s",
                       (moment,)).fetchone()
    position = int(row[0] or 0)
    later = conn.execute("SELECT 1 FROM audit_trail WHERE recorded_at > %s LIMIT 1",
                         (moment,)).fetchone()
    if later is None:
        audit = conn.execute("SELECT notification_id FROM audit_tracking "
                             "WHERE application_name = 'ledger'").fetchone()
        if audit is None or int(audit[0] or 0) < head:
            raise ReadModelBehind("as_of", "as_of.index_behind",
                                  "as_of: the recorded-time index (audit trail) has not "
                                  f"reached the log head ({head}) yet; retry shortly")
    return position


def history_start(conn: Connection[Any], name: str) -> int:
    row = conn.execute("SELECT position FROM read_model_history_start WHERE name = %s",
                       (name,)).fetchone()
    return int(row[0]) if row else 0


def resolve(conn: Connection[Any], *, as_of: datetime | None = None,
            as_of_position: int | None = None, projections: Iterable[str] = (),
            wait_timeout: float = 5.0) -> AsOf | None:
    """The report's position (None: a current read). ``projections``: the read models the
    report reads (their history must cover the position; they are waited for)."""
    if as_of is None and as_of_position is None:
        return None
    if as_of is not None and as_of_position is not None:
        raise InvalidValue("as_of_position", "as_of.one_of",
                           "as_of, as_of_position: give one of them, not both")
    head = log_head(conn)
    if as_of_position is not None:
        if isinstance(as_of_position, bool) or not isinstance(as_of_position, int) \
                or as_of_position < 0:
            raise InvalidValue("as_of_position", "as_of_position.range",
                               "as_of_position: a log position (0 or more)")
        if as_of_position > head:
            raise InvalidValue("as_of_position", "as_of_position.beyond_log",
                               f"as_of_position: the log ends at position {head}")
        position = as_of_position
        moment = recorded_at(conn, position) if position else None
    else:
        assert as_of is not None
        if as_of.tzinfo is None:
            raise InvalidValue("as_of", "as_of.timezone",
                               "as_of: give a time zone (e.g. 2026-10-31T23:59:59Z)")
        now = conn.execute("SELECT now()").fetchone()[0]
        if as_of > now:
            raise InvalidValue("as_of", "as_of.future",
                               "as_of: in the future (the ledger cannot know it yet)")
        position = position_at(conn, as_of, head)
        moment = as_of
    names = sorted(set(projections))
    for name in names:
        start = history_start(conn, name)
        if position < start:
            field = "as_of" if as_of is not None else "as_of_position"
            raise InvalidValue(field, "as_of.before_history",
                               f"{field}: the {name} read model keeps history from log "
                               f"position {start} (when this database was migrated to keep "
                               f"it); rebuild it (`ledger projections rebuild {name}`) to "
                               "read earlier positions")
    names = [n for n in names if n != "exceptions"]
    if names and position:
        from ledger.projections.queries import wait_for_position  # noqa: PLC0415

        if not wait_for_position(conn, position, names=names, timeout=wait_timeout):
            raise ReadModelBehind("as_of_position", "as_of.read_model_behind",
                                  f"as_of_position: the read models have not reached "
                                  f"position {position} yet; retry shortly")
    return AsOf(position, moment, head)
