"""The read-access log (HIPAA 45 CFR 164.312(b)): who read what, when, from where, and the
outcome, in the append-only ``ledger_access_log`` table (migration 0033).

``record_access(...)`` is called for every read of claim/encounter data (the API's middleware in
``api/read_access.py`` does it for every GET); ``query_access(...)`` is the auditors' view,
newest first, with keyset pagination (``before_id``).

Nothing here may carry PHI: actors are staff/system ids, resources are opaque ids (UUIDs,
claim numbers) or pseudonyms (``pseudonym``: a SHA-256 prefix of, e.g., a patient reference)
and route templates; query strings and bodies are never recorded.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from ledger.persistence.conditions import given

OUTCOMES = ("allowed", "denied", "not_found", "invalid", "error")
Target = psycopg.Connection[Any] | ConnectionPool | str

_INSERT = (
    "INSERT INTO ledger_access_log (actor, actor_role, action, resource_type, resource_id, "
    "encounter_id, route, client, outcome, status, request_id) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id")
_COLUMNS = ("id, at, actor, actor_role, action, resource_type, resource_id, encounter_id, "
            "route, client, outcome, status, request_id")


@dataclass(frozen=True)
class AccessRecord:
    id: int
    at: datetime
    actor: str
    actor_role: str | None
    action: str
    resource_type: str
    resource_id: str | None
    encounter_id: UUID | None
    route: str | None
    client: str | None
    outcome: str
    status: int | None
    request_id: str | None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["at"] = self.at.isoformat()
        d["encounter_id"] = str(self.encounter_id) if self.encounter_id else None
        return d


def pseudonym(value: str) -> str:
    """How a non-opaque identifier (a patient reference, say) is recorded: a SHA-256 prefix,
    so the access log holds no PHI; auditors search with the same function."""
    return "h:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:24]


def is_opaque(name: str, value: str) -> bool:
    """UUID ids and claim numbers identify records without identifying a patient."""
    if name == "claim_number":
        return True
    try:
        UUID(value)
    except ValueError:
        return False
    return True


def outcome_for(status: int) -> str:
    if status < 400:
        return "allowed"
    if status in (401, 403):
        return "denied"
    if status == 404:
        return "not_found"
    if status < 500:
        return "invalid"
    return "error"


def _run(target: Target, sql: str, params: tuple[Any, ...] | list[Any]) -> list[tuple[Any, ...]]:
    if isinstance(target, ConnectionPool):
        with target.connection() as conn:
            return _run(conn, sql, params)
    if isinstance(target, str):
        with psycopg.connect(target, autocommit=True) as conn:
            return _run(conn, sql, params)
    # A caller's own connection: in autocommit mode the row is committed now; otherwise it
    # commits with the caller's transaction (e.g. together with what was read).
    cur = target.execute(sql, params)
    rows = cur.fetchall() if cur.description else []
    return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]


def record_access(target: Target, *, actor: str, resource_type: str,
                  resource_id: str | None = None, encounter_id: UUID | str | None = None,
                  outcome: str = "allowed", status: int | None = None,
                  client: str | None = None, actor_role: str | None = None,
                  action: str = "read", route: str | None = None,
                  request_id: str | None = None) -> int:
    """Append one access record; returns its id. ``target``: a connection, pool or URL."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome: one of {OUTCOMES}")
    if encounter_id is not None and not isinstance(encounter_id, UUID):
        try:
            encounter_id = UUID(str(encounter_id))
        except ValueError:
            encounter_id = None
    rows = _run(target, _INSERT, (actor[:200], actor_role, action, resource_type,
                                  resource_id, encounter_id, route, client, outcome, status,
                                  request_id))
    return int(rows[0][0])


def append_access(curs: Any, *, actor: str, resource_type: str, action: str,
                  resource_id: str | None = None, encounter_id: UUID | None = None,
                  outcome: str = "allowed", status: int | None = None,
                  client: str | None = None, actor_role: str | None = None,
                  route: str | None = None, request_id: str | None = None) -> None:
    """``record_access`` on a cursor of a transaction in progress (e.g. the one saving an
    encounter's events: the record commits with them, or not at all). Returns nothing, so it
    also works in pipeline mode."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome: one of {OUTCOMES}")
    curs.execute(_INSERT.removesuffix(" RETURNING id"),
                 (actor[:200], actor_role, action, resource_type, resource_id, encounter_id,
                  route, client, outcome, status, request_id))


def query_access(target: Target, *, actor: str | None = None,
                 resource_type: str | None = None, resource_id: str | None = None,
                 encounter_id: UUID | None = None, outcome: str | None = None,
                 since: datetime | None = None, until: datetime | None = None,
                 before_id: int | None = None, limit: int = 100) -> list[AccessRecord]:
    """Access records matching every given filter, newest first (at most ``limit``)."""
    params: list[Any] = []
    where = given(params, ("actor = %s", actor), ("resource_type = %s", resource_type),
                  ("resource_id = %s", resource_id), ("encounter_id = %s", encounter_id),
                  ("outcome = %s", outcome), ("at >= %s", since), ("at < %s", until),
                  ("id < %s", before_id))
    sql = f"SELECT {_COLUMNS} FROM ledger_access_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT %s"
    params.append(max(1, min(int(limit), 1000)))
    return [AccessRecord(*row) for row in _run(target, sql, params)]
