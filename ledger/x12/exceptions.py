"""The exceptions queue: what an import could not post, kept to be worked.

Kinds: ``quarantined_file`` (a file refused whole), ``unreconciled_remittance`` (BPR02 is not
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

KINDS = ("quarantined_file", "unreconciled_remittance", "unmatched_claim", "duplicate_payment",
         "line_unmatched", "unposted_plb")
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


def list_exceptions(conn: Any, *, status: str = "open", kind: str = "",
                    limit: int = 500) -> list[dict[str, Any]]:
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
    sql = (f"SELECT {', '.join(COLUMNS)} FROM x12_exceptions"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY raised_at, exception_id LIMIT %s")
    rows = conn.execute(sql, (*args, max(1, min(int(limit), 5000)))).fetchall()
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
