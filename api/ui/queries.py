"""The workbench's list queries over the read models (plain SQL): claim search with sorting and
pages, and the claims behind a payer's balance or aging bucket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.sql import SQL, Composable, Identifier

from ledger.domain.errors import InvalidValue
from ledger.projections.queries import AGING_BUCKETS, CLAIM_LIST_COLUMNS, CLAIM_STATUSES

SORTABLE = ("created_position", "claim_number", "payer_id", "status", "service_from",
            "total_charge", "paid", "outstanding")
PER_PAGE = 25


@dataclass(frozen=True)
class ClaimSearch:
    claim_number: str = ""
    patient_ref: str = ""
    payer_id: str = ""
    status: str = ""
    dos_from: date | None = None
    dos_to: date | None = None
    outstanding: bool = False
    sort: str = "created_position"
    order: str = "desc"
    page: int = 1


def _rows(conn: Connection[Any], query: Composable, params: list[Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return list(cur.fetchall())


def search_claims(conn: Connection[Any], f: ClaimSearch, *, per_page: int = PER_PAGE,
                  encounters: set[UUID] | None = None) -> tuple[list[dict[str, Any]], bool]:
    """One page of claims matching every filter given; (rows, whether a next page exists).
    ``encounters`` limits the search (an advocate's granted encounters)."""
    if f.status and f.status not in CLAIM_STATUSES:
        raise InvalidValue("status", "status.enum", f"status: one of {', '.join(CLAIM_STATUSES)}")
    if f.sort not in SORTABLE:
        raise InvalidValue("sort", "sort.enum", f"sort: one of {', '.join(SORTABLE)}")
    where: list[Composable] = []
    params: list[Any] = []
    for column, value in (("claim_number", f.claim_number), ("patient_ref", f.patient_ref),
                          ("payer_id", f.payer_id), ("status", f.status)):
        if value:
            where.append(SQL("c.{} = %s").format(Identifier(column)))
            params.append(value)
    if f.dos_from is not None:
        where.append(SQL("c.service_to >= %s"))
        params.append(f.dos_from)
    if f.dos_to is not None:
        where.append(SQL("c.service_from <= %s"))
        params.append(f.dos_to)
    if f.outstanding:
        where.append(SQL("c.outstanding > 0"))
    if encounters is not None:
        where.append(SQL("c.encounter_id = ANY(%s)"))
        params.append(list(encounters))
    direction = SQL("ASC") if f.order == "asc" else SQL("DESC")
    query = SQL("SELECT {cols} FROM current_claims c {where} ORDER BY c.{sort} {dir}, "
                "c.created_position {dir} LIMIT %s OFFSET %s").format(
        cols=CLAIM_LIST_COLUMNS, sort=Identifier(f.sort), dir=direction,
        where=SQL("WHERE ") + SQL(" AND ").join(where) if where else SQL(""))
    page = max(1, f.page)
    rows = _rows(conn, query, [*params, per_page + 1, (page - 1) * per_page])
    return rows[:per_page], len(rows) > per_page


def payer_claims(conn: Connection[Any], payer_id: str, party_kind: str,
                 bucket: str | None = None, as_of: date | None = None) -> list[dict[str, Any]]:
    """The claims whose outstanding amounts make up a payer's outstanding (or one aging
    bucket of it: days since the latest submission, counted to ``as_of``)."""
    as_of = as_of or date.today()
    where = [SQL("payer_id = %s"), SQL("party_kind = %s"), SQL("outstanding <> 0")]
    params: list[Any] = [payer_id, party_kind]
    if bucket is not None:
        spans = {name: (lo, hi) for name, lo, hi in AGING_BUCKETS}
        if bucket not in spans:
            raise InvalidValue("bucket", "bucket.enum", f"bucket: one of {', '.join(spans)}")
        lo, hi = spans[bucket]
        where.append(SQL("%s - submitted_on >= %s"))
        params += [as_of, lo]
        if hi is not None:
            where.append(SQL("%s - submitted_on <= %s"))
            params += [as_of, hi]
    query = SQL("SELECT encounter_id, claim_number, status, submitted_on, outstanding, version "
                "FROM current_claims WHERE {} ORDER BY submitted_on, claim_number").format(
        SQL(" AND ").join(where))
    return _rows(conn, query, params)


def exceptions(conn: Connection[Any], limit: int = 200) -> list[dict[str, Any]]:
    """The open exceptions, by the same query as GET /exceptions (ledger.x12.exceptions)."""
    from ledger.x12.exceptions import list_exceptions

    return list_exceptions(conn, status="open", limit=limit)
