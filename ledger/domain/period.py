"""An accounting period (a month, e.g. ``2026-10``) and its close: one aggregate per period,
whose only event is ``PeriodClosed``. The event fixes the log position the period's reports
are read at from then on, and the signed checkpoint whose Merkle tree covers that position
(so an auditor can prove a closed report came from the untampered log)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger.domain.errors import InvalidValue

_NAMESPACE = UUID("6a1f0c1e-5c0b-4f57-8e1b-19a7c0d1e019")
PERIOD = re.compile(r"^((?:19|2[0-9])\d{2})-(0[1-9]|1[0-2])$")  # 1900-2999


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a period ``YYYY-MM`` in UTC; refuses anything else."""
    m = PERIOD.match(period or "")
    if m is None:
        raise InvalidValue("period", "period.format", "period: a month as YYYY-MM (e.g. 2026-10)")
    year, month = int(m.group(1)), int(m.group(2))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def next_period(period: str) -> str:
    _, end = period_bounds(period)
    return f"{end.year:04d}-{end.month:02d}"


class AccountingPeriod(Aggregate):
    @staticmethod
    def create_id(period: str) -> UUID:  # type: ignore[override]
        return uuid5(_NAMESPACE, f"period:{period}")

    @event("PeriodClosed")
    def __init__(self, period: str, position: int, closed_at: datetime, tree_size: int,
                 root_hash: str, key_id: str, checkpoint_position: int, actor_id: str,
                 actor_role: str, reason: str = "") -> None:
        self.period = period
        self.position = position
        self.closed_at = closed_at
        self.tree_size = tree_size
        self.root_hash = root_hash
        self.key_id = key_id
        self.checkpoint_position = checkpoint_position
        self.actor_id = actor_id
        self.actor_role = actor_role
        self.reason = reason

    def checkpoint(self) -> dict[str, object]:
        return {"tree_size": self.tree_size, "root_hash": self.root_hash,
                "key_id": self.key_id, "last_position": self.checkpoint_position}
