"""The exceptions queue: what an import could not post, kept to be worked.

Kinds: ``quarantined_file`` (a file refused whole), ``refused_claim`` (an 837 claim not
imported, with its rule), ``unreconciled_remittance`` (BPR02 is not
Σ CLP04 - Σ PLB), ``unmatched_claim`` (a CLP that names no claim of ours), ``duplicate_payment``
(a second paid/denied adjudication with no reversal in between: both traces kept),
``line_unmatched`` (an SVC that matches no claim line, or two) and ``unposted_plb`` (a PLB that
names a claim we cannot find). Each carries the claim, payer, trace, amount and rule.

The queue is an append-only log (``x12_exception_events``): an exception is *raised* once (its
id derives from what it is about, so re-importing a file raises nothing new) and worked by
appending a resolution event — ``rematched``, ``posted`` or ``dismissed`` — with a reason and
the actor. Rows are never edited; ``x12_exceptions`` shows each with its latest resolution.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from ledger.domain.errors import IllegalTransition, InvalidValue, NotFound

KINDS = ("quarantined_file", "refused_claim", "unreconciled_remittance", "unmatched_claim",
         "duplicate_payment", "line_unmatched", "unposted_plb")
RESOLUTIONS = ("rematched", "posted", "dismissed")
_NAMESPACE = uuid.UUID("0b6f6f5e-5a43-4a57-9a3c-1d2e12c0e012")
COLUMNS = ("exception_id", "kind", "status", "claim_number", "payer_id", "trace_number",
           "amount", "rule", "file_hash", "detail", "raised_at", "resolution",
           "resolution_reason", "resolved_by", "resolved_at")


@dataclass
class RaisedException:
    kind: str
    rule: str
    key: str  # what makes it this exception (file hash, remittance + claim, …)
    claim_number: str = ""
    payer_id: str = ""
    trace_number: str = ""
    amount: Decimal | None = None
    file_hash: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def exception_id(self) -> uuid.UUID:
        return uuid.uuid5(_NAMESPACE, f"{self.kind}|{self.key}")

    def as_dict(self) -> dict[str, Any]:
        return {"exception_id": str(self.exception_id), "kind": self.kind, "rule": self.rule,
                "claim_number": self.claim_number, "payer_id": self.payer_id,
                "trace_number": self.trace_number,
                "amount": None if self.amount is None else str(self.amount),
                "detail": self.detail}


def write_raised(curs: Any, raised: list[RaisedException]) -> None:
    """Append 'raised' events (in the caller's transaction); one already raised is kept."""
    for r in raised:
        curs.execute(
            "INSERT INTO x12_exception_events (exception_id, event, kind, claim_number, payer_id,"
            " trace_number, amount, rule, file_hash, detail, actor_id) VALUES (%s, 'raised', %s,"
            " %s, %s, %s, %s, %s, %s, %s, 'x12-import') ON CONFLICT (exception_id)"
            " WHERE event = 'raised' DO NOTHING",
            (r.exception_id, r.kind, r.claim_number[:60], r.payer_id[:60], r.trace_number[:60],
             r.amount, r.rule[:80], r.file_hash, orjson.dumps(r.detail).decode()))


# The queue as it stood when the log's head was at a position: its events written by then
# (each records the head when written: x12_exception_events.log_position, migration 0120).
_AS_OF = """(SELECT r.exception_id, r.kind, r.claim_number, r.payer_id, r.trace_number,
       r.amount, r.rule, r.file_hash, r.detail, r.recorded_at AS raised_at,
       CASE WHEN last.event IS NULL THEN 'open' ELSE 'resolved' END AS status,
       COALESCE(last.event, '') AS resolution, COALESCE(last.reason, '') AS resolution_reason,
       COALESCE(last.actor_id, '') AS resolved_by, last.recorded_at AS resolved_at
FROM x12_exception_events r
LEFT JOIN LATERAL (
    SELECT e.event, e.reason, e.actor_id, e.recorded_at FROM x12_exception_events e
    WHERE e.exception_id = r.exception_id AND e.event <> 'raised' AND e.log_position <= %s
    ORDER BY e.seq DESC LIMIT 1) last ON true
WHERE r.event = 'raised' AND r.log_position <= %s) x12_exceptions"""


def list_exceptions(conn: Any, *, status: str = "open", kind: str = "",
                    limit: int = 500, position: int | None = None) -> list[dict[str, Any]]:
    """The queue now, or as it stood at log ``position`` (see ``ledger.projections.asof``)."""
    if status not in ("open", "resolved", "all"):
        raise InvalidValue("status", "exceptions.status", "status: open, resolved or all")
    if kind and kind not in KINDS:
        raise InvalidValue("kind", "exceptions.kind", f"kind: one of {', '.join(KINDS)}")
    where, args = [], []
    if status != "all":
        where.append("status = %s")
        args.append(status)
    if kind:
        where.append("kind = %s")
        args.append(kind)
    source = "x12_exceptions" if position is None else _AS_OF
    sql = (f"SELECT {', '.join(COLUMNS)} FROM {source}"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY raised_at, exception_id LIMIT %s")
    before = [] if position is None else [int(position), int(position)]
    rows = conn.execute(sql, (*before, *args, max(1, min(int(limit), 5000)))).fetchall()
    out = []
    for row in rows:
        item = dict(zip(COLUMNS, row, strict=True))
        item["exception_id"] = str(item["exception_id"])
        item["amount"] = None if item["amount"] is None else str(item["amount"])
        for k in ("raised_at", "resolved_at"):
            item[k] = item[k].isoformat() if item[k] is not None else None
        out.append(item)
    return out


def resolve(conn: Any, exception_id: str, *, action: str, reason: str,
            actor_id: str) -> dict[str, Any]:
    """Work an open exception: append a resolution event (never an edit)."""
    if action not in RESOLUTIONS:
        raise InvalidValue("action", "exceptions.action",
                           f"action: one of {', '.join(RESOLUTIONS)}")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidValue("reason", "reason.required", "reason: a reason is required")
    try:
        eid = uuid.UUID(str(exception_id))
    except ValueError:
        raise InvalidValue("exception_id", "exceptions.id", "exception_id: not an id") from None
    with conn.transaction():
        # one resolution at a time per exception
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (str(eid),))
        row = conn.execute("SELECT status FROM x12_exceptions WHERE exception_id = %s",
                           (eid,)).fetchone()
        if row is None:
            raise NotFound("exception_id", "exceptions.exists", "exception_id: no such exception")
        if row[0] != "open":
            raise IllegalTransition("exception_id", "exceptions.open",
                                    "exception_id: already resolved")
        conn.execute("INSERT INTO x12_exception_events (exception_id, event, reason, actor_id)"
                     " VALUES (%s, %s, %s, %s)", (eid, action, reason.strip()[:500],
                                                  str(actor_id)[:60]))
    return {"exception_id": str(eid), "resolution": action, "reason": reason.strip()[:500]}


RECONCILIATION_COLUMNS = ("payer_id", "trace_number", "file_hash", "bpr_amount", "claims_paid",
                          "plb_total", "plb_claims", "plb_provider", "posted_paid", "held_paid",
                          "difference", "reconciled", "outcome", "recorded_at")


def list_reconciliation(conn: Any, *, only_unreconciled: bool = False,
                        limit: int = 500) -> list[dict[str, Any]]:
    """Per remittance: BPR02 against Σ CLP04 − Σ PLB, and what was posted or held."""
    sql = (f"SELECT {', '.join(RECONCILIATION_COLUMNS)} FROM x12_reconciliation"
           + (" WHERE NOT reconciled" if only_unreconciled else "")
           + " ORDER BY recorded_at, payer_id, trace_number LIMIT %s")
    out = []
    for row in conn.execute(sql, (max(1, min(int(limit), 5000)),)).fetchall():
        item = dict(zip(RECONCILIATION_COLUMNS, row, strict=True))
        for k, v in item.items():
            if isinstance(v, Decimal):
                item[k] = str(v)
        item["recorded_at"] = item["recorded_at"].isoformat()
        out.append(item)
    return out
