"""Reads answered from the read models the projections maintain (plain SQL in
``ledger.projections.queries``). Every route accepts ``min_position``: the read waits (bounded
by LEDGER_WAIT_TIMEOUT) until the projections reflect that log position — pass the
``X-Log-Position`` of your own write to read it back (read-your-writes), or keep the
``ledger_min_position`` cookie every write sets (the read waits for the higher of the two;
api.deps.read_position)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from api.deps import IdentityDep, MinPosition, ResponseHeaders
from api.responses import OrjsonResponse
from api.schemas import IsoDate
from ledger.auth.grants import granted_encounters, granted_patient
from ledger.auth.tokens import Identity
from ledger.domain.errors import InvalidValue, NotFound
from ledger.projections import asof
from ledger.projections import queries as q

router = APIRouter(tags=["read models"])

Limit = Annotated[int, Query(ge=1, le=q.MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=40, description="next_cursor of a page")]
AsOfTime = Annotated[datetime | None, Query(description=(
    "recorded time (ISO 8601 with a zone): the report as the ledger knew it then"))]
AsOfPosition = Annotated[int | None, Query(description=(
    "log position: the report as it stood when the log ended there"))]


def _effective(dos_from: IsoDate | None = None, dos_to: IsoDate | None = None,
               adjudicated_from: IsoDate | None = None, adjudicated_to: IsoDate | None = None,
               paid_from: IsoDate | None = None, paid_to: IsoDate | None = None) -> q.Effective:
    """The effective-time filters of a claims or balances read (query parameters)."""
    return q.Effective(dos_from, dos_to, adjudicated_from, adjudicated_to, paid_from, paid_to)


EffectiveDates = Annotated[q.Effective, Depends(_effective)]


@contextmanager
def _as_of_read(request: Request, min_position: int | None, as_of: datetime | None,
                as_of_position: int | None, projections: tuple[str, ...]
                ) -> Iterator[tuple[Any, asof.AsOf | None]]:
    """A connection and the report's position: as-of reads go to the primary (its history is
    the one the projections write), current reads as ``_read``."""
    if as_of is None and as_of_position is None:
        with _read(request, min_position) as conn:
            yield conn, None
        return
    with _conn(request) as conn:
        point = asof.resolve(conn, as_of=as_of, as_of_position=as_of_position,
                             projections=projections,
                             wait_timeout=request.app.state.settings.wait_timeout)
        yield conn, point


def _stamp(body: dict[str, Any], point: asof.AsOf | None) -> dict[str, Any]:
    if point is not None:
        body["as_of"] = point.as_dict()
    return body


def _ready(request: Request, min_position: int | None) -> None:
    """On the primary: wait (bounded) until its read models reflect ``min_position``."""
    if not min_position:
        return
    with _conn(request) as conn:
        head = conn.execute("SELECT COALESCE(MAX(notification_id), 0) FROM ledger_events"
                            ).fetchone()[0]
    if min_position > head:  # no write of the caller's can be there: a client error
        raise InvalidValue("min_position", "min_position.beyond_log",
                           f"min_position: the log ends at {head}")
    waiter = request.app.state.projection_waiter
    timeout = request.app.state.settings.wait_timeout
    if not waiter.wait(min_position, timeout=timeout):
        raise HTTPException(503, f"the read models have not reached position {min_position} "
                            f"within {timeout:g}s; retry", headers={"Retry-After": "1"})


def _conn(request: Request) -> Any:
    return request.app.state.pool.connection()


@contextmanager
def _read(request: Request, min_position: int | None) -> Iterator[Any]:
    """A connection for a read-model query: a read replica's (LEDGER_READ_DATABASE_URL)
    once it has replayed ``min_position``, else the primary's (see ledger.replicas)."""
    replicas = request.app.state.read_replicas
    if replicas:
        wait = request.app.state.settings.read_replica_wait
        with replicas.connection(min_position, wait) as conn:
            if conn is not None:
                request.state.read_from = "replica"
                yield conn
                return
    _ready(request, min_position)
    if replicas:
        request.state.read_from = "primary"
    with _conn(request) as conn:
        yield conn


def _advocate_encounters(conn: Any, identity: Identity) -> set[UUID]:
    return granted_encounters(conn, identity.user_id)


def _page(page: q.ResultPage) -> dict[str, Any]:
    return {"items": page.items, "next_cursor": page.next_cursor}


class ReadFromHeader(ResponseHeaders):
    """A read-model answer says where it was read (``X-Read-From: replica`` or ``primary``),
    when read replicas are configured."""

    def extra(self, scope: Any, message: Any) -> list[tuple[bytes, bytes]]:
        where = scope.get("state", {}).get("read_from")
        return [(b"x-read-from", where.encode())] if where else []


@router.get("/claims", summary="Current claims, filtered, newest first (cursor pages)")
def list_claims(request: Request, identity: IdentityDep, effective: EffectiveDates,
                status: Annotated[str | None, Query(max_length=20)] = None,
                payer_id: Annotated[str | None, Query(max_length=80)] = None,
                patient_ref: Annotated[str | None, Query(max_length=80)] = None,
                code: Annotated[str | None, Query(max_length=12)] = None,
                actor_id: Annotated[str | None, Query(max_length=80)] = None,
                limit: Limit = 50, cursor: Cursor = None,
                min_position: MinPosition = None, as_of: AsOfTime = None,
                as_of_position: AsOfPosition = None) -> OrjsonResponse:
    with _as_of_read(request, min_position, as_of, as_of_position, ("claims",)) as (
            conn, point):
        page = q.list_claims(conn, status=status, payer_id=payer_id, patient_ref=patient_ref,
                             code=code, actor_id=actor_id, limit=limit, cursor=cursor,
                             position=point.position if point else None,
                             **effective.as_dict())
        if identity.role == "advocate":
            mine = _advocate_encounters(conn, identity)
            page = q.ResultPage([c for c in page.items if c["encounter_id"] in mine],
                                page.next_cursor)
    return OrjsonResponse(_stamp(_page(page), point))


@router.get("/payers/balances",
            summary="Per payer and kind of party: billed, paid, adjustments, outstanding, aging")
def payer_balances(request: Request, identity: IdentityDep, effective: EffectiveDates,
                   payer_id: Annotated[str | None, Query(max_length=80)] = None,
                   party_kind: Literal["insurer", "business", "patient"] | None = None,
                   as_of: Annotated[str | None, Query(max_length=40, description=(
                       "a date (YYYY-MM-DD): current balances aged to that date; a recorded "
                       "time (ISO 8601 with a zone): the balances as the ledger knew them "
                       "then, aged to that date"))] = None,
                   as_of_position: AsOfPosition = None, aging_date: IsoDate | None = None,
                   min_position: MinPosition = None) -> OrjsonResponse:
    moment, day = _date_or_time(as_of)
    with _as_of_read(request, min_position, moment, as_of_position, ("claims",)) as (
            conn, point):
        aged = aging_date or day or (point.day if point else None)
        position = point.position if point else None
        if effective.given():
            rows = q.payer_balances_effective(conn, effective, payer_id=payer_id, as_of=aged,
                                              position=position)
        else:
            rows = q.payer_balances(conn, payer_id, as_of=aged, position=position)
    if party_kind:
        rows = [r for r in rows if r.get("party_kind") == party_kind]
    body: dict[str, Any] = {"as_of": aged or date.today(), "payers": rows}
    if effective.given():
        body["effective"] = effective.as_dict()
    if point is not None:
        body["aging_date"] = aged
        body["as_of"] = point.as_dict()
    return OrjsonResponse(body)


def _date_or_time(value: str | None) -> tuple[datetime | None, date | None]:
    """``as_of`` of payer balances: a date alone (the aging date, as before) or a time."""
    if value is None or value == "":
        return None, None
    try:
        if "T" in value or " " in value:
            return datetime.fromisoformat(value.replace("Z", "+00:00")), None
        return None, date.fromisoformat(value)
    except ValueError:
        raise InvalidValue("as_of", "as_of.format", "as_of: an ISO 8601 date or time "
                           "(e.g. 2026-10-31 or 2026-10-31T23:59:59Z)") from None


@router.get("/patients/{patient_ref}/balance",
            summary="What a patient owes across encounters: owed, paid, credit, statements")
def patient_balance(request: Request, patient_ref: str, identity: IdentityDep,
                    min_position: MinPosition = None, as_of: AsOfTime = None,
                    as_of_position: AsOfPosition = None) -> OrjsonResponse:
    with _as_of_read(request, min_position, as_of, as_of_position, ("claims",)) as (
            conn, point):
        if identity.role == "advocate":
            if not granted_patient(conn, identity.user_id, patient_ref):
                raise NotFound("patient_ref", "patient.exists", "patient_ref: not found")
        row = q.patient_balance(conn, patient_ref, position=point.position if point else None)
    if row is None:
        raise NotFound("patient_ref", "patient.exists", "patient_ref: not found")
    return OrjsonResponse(_stamp(row, point))


@router.get("/patients/balances",
            summary="Patients' balances (owed, credit), largest owed first; now or as of")
def patient_balances(request: Request, identity: IdentityDep, effective: EffectiveDates,
                     owing_only: bool = True, limit: Limit = 100,
                     min_position: MinPosition = None, as_of: AsOfTime = None,
                     as_of_position: AsOfPosition = None) -> OrjsonResponse:
    if identity.role == "advocate":
        raise HTTPException(403, "advocates read the balances of the patients granted to them")
    with _as_of_read(request, min_position, as_of, as_of_position, ("claims",)) as (
            conn, point):
        position = point.position if point else None
        if effective.given():
            rows = q.patient_balances_effective(conn, effective, owing_only=owing_only,
                                                limit=limit, position=position)
            body: dict[str, Any] = {"patients": rows, "effective": effective.as_dict()}
        else:
            body = {"patients": q.patient_balances(conn, owing_only=owing_only, limit=limit,
                                                   position=position)}
    return OrjsonResponse(_stamp(body, point))


@router.get("/queues/disputes-denials",
            summary="Open denials, rejections and disputes, earliest deadline first")
def work_queue(request: Request, identity: IdentityDep,
               kind: Literal["denial", "rejection", "dispute"] | None = None,
               open_only: bool = True, due_before: IsoDate | None = None,
               payer_id: Annotated[str | None, Query(max_length=80)] = None,
               assignee: Annotated[str | None, Query(max_length=80)] = None,
               limit: Limit = 50, cursor: Cursor = None,
               min_position: MinPosition = None) -> OrjsonResponse:
    if identity.role == "advocate":  # only their own disputes, on encounters granted to them
        kind, assignee = "dispute", identity.user_id
    with _read(request, min_position) as conn:
        page = q.work_queue(conn, kind=kind, open_only=open_only, due_before=due_before,
                            payer_id=payer_id, assignee=assignee, limit=limit, cursor=cursor)
        if identity.role == "advocate":
            mine = _advocate_encounters(conn, identity)
            page = q.ResultPage([i for i in page.items if i["encounter_id"] in mine],
                                page.next_cursor)
    return OrjsonResponse(_page(page))


@router.get("/trends/diagnoses", summary="Diagnoses by encounters, with cost per encounter")
def top_diagnoses(request: Request, identity: IdentityDep,
                  scope: Literal["principal", "any"] = "principal", limit: Limit = 50,
                  min_position: MinPosition = None, as_of: AsOfTime = None,
                  as_of_position: AsOfPosition = None) -> OrjsonResponse:
    with _as_of_read(request, min_position, as_of, as_of_position, ("trends",)) as (
            conn, point):
        return OrjsonResponse(_stamp({"scope": scope, "diagnoses": q.top_diagnoses(
            conn, scope=scope, limit=limit, position=point.position if point else None)},
            point))


@router.get("/trends/diagnoses/{code}",
            summary="For one diagnosis: services and supplies used, how often, what they cost")
def diagnosis_trend(request: Request, code: Annotated[str, Path(max_length=12)],
                    identity: IdentityDep, scope: Literal["principal", "any"] = "principal",
                    kind: Literal["service", "supply"] | None = None, limit: Limit = 50,
                    min_position: MinPosition = None, as_of: AsOfTime = None,
                    as_of_position: AsOfPosition = None) -> OrjsonResponse:
    with _as_of_read(request, min_position, as_of, as_of_position, ("trends",)) as (
            conn, point):
        trend = q.diagnosis_trend(conn, code, scope=scope, kind=kind, limit=limit,
                                  position=point.position if point else None)
    if trend is None:
        raise NotFound("code", "trend.exists", "code: no encounters with that diagnosis")
    return OrjsonResponse(_stamp(trend, point))


@router.get("/trends/code-revisions",
            summary="Code revisions per coder, or the codes that get changed most")
def code_revisions(request: Request, identity: IdentityDep,
                   by: Literal["coder", "code"] = "coder",
                   code_system: Annotated[str | None, Query(max_length=20)] = None,
                   limit: Limit = 50, min_position: MinPosition = None,
                   as_of: AsOfTime = None,
                   as_of_position: AsOfPosition = None) -> OrjsonResponse:
    with _as_of_read(request, min_position, as_of, as_of_position, ("trends",)) as (
            conn, point):
        position = point.position if point else None
        rows = q.code_revisions_by_coder(conn, limit=limit, position=position) \
            if by == "coder" else q.code_revisions_by_code(
                conn, code_system=code_system, limit=limit, position=position)
    return OrjsonResponse(_stamp({"by": by, "items": rows}, point))


@router.get("/audit/trail",
            summary="Every change: who, when, why — by encounter, claim, actor, code, time")
def audit_trail(request: Request, identity: IdentityDep, encounter_id: UUID | None = None,
                claim_number: Annotated[str | None, Query(max_length=38)] = None,
                actor_id: Annotated[str | None, Query(max_length=80)] = None,
                code: Annotated[str | None, Query(max_length=12)] = None,
                event_type: Annotated[str | None, Query(max_length=60)] = None,
                since: datetime | None = None, until: datetime | None = None,
                period: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
                limit: Limit = 100, cursor: Cursor = None,
                min_position: MinPosition = None) -> OrjsonResponse:
    with _read(request, min_position) as conn:
        page = q.audit_trail(conn, encounter_id=encounter_id, claim_number=claim_number,
                             actor_id=actor_id, code=code, event_type=event_type, since=since,
                             until=until, limit=limit, cursor=cursor, period=period)
    return OrjsonResponse(_page(page))


@router.get("/projections/status", summary="Each read model's position and lag")
def projections_status(request: Request, identity: IdentityDep) -> OrjsonResponse:
    with _conn(request) as conn:
        positions = q.projection_positions(conn)
        head = conn.execute("SELECT COALESCE(MAX(notification_id), 0) FROM ledger_events"
                            ).fetchone()[0]
    return OrjsonResponse({"head": head, "projections": [
        {"name": n, "position": p, "lag": max(0, head - p)} for n, p in positions.items()]})
