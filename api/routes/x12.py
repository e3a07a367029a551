"""X12 upload routes (issue 7): ``POST /remittances`` (an 835) and ``POST /claims/x12``
(an 837P/837I, or a 999/277CA acknowledgement). The body is the X12 file itself
(``Content-Type: application/edi-x12`` or ``text/plain``), at most ``MAX_BYTES``.

Mounted by ``api.main``; the uploader's identity (bearer token) is the actor on the events.
The import runs in a worker thread (it does database I/O through the ledger application on
``app.state.ledger`` and ``app.state.database_url``).

Responses: 200 posted/imported/acknowledged/duplicate/nothing with the import report;
422 quarantined (nothing posted; the report names claim, line and rule); 400 not X12 or the
wrong transaction type for the route; 413 too large.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ReplayPosition
from api.errors import problem
from api.responses import OrjsonResponse, ProblemResponse

MAX_BYTES = 64 * 1024 * 1024

router = APIRouter(tags=["x12"])


async def _import(request: Request, expect: str) -> Response:
    from ledger.x12.importer import X12Importer

    body = await request.body()
    if len(body) > MAX_BYTES:
        return ProblemResponse(problem(413, "Too large", f"body: at most {MAX_BYTES} bytes",
                                       field="body", rule="x12.too_large",
                                       instance=request.url.path), status_code=413)
    state: Any = request.app.state
    identity = request.state.identity  # the events are recorded as the uploader
    importer = X12Importer(state.ledger, state.database_url, actor=identity.actor)
    result = await run_in_threadpool(importer.import_bytes, body,
                                     request.headers.get("x-file-name", "upload")[:200],
                                     expect=expect)
    report = result.as_dict()
    status = {"quarantined": 422, "error": 400}.get(result.outcome, 200)
    if status == 200:
        return OrjsonResponse(report)
    rules = report.get("rules") or ["x12.invalid"]
    title = "Remittance quarantined" if status == 422 else "Not an acceptable X12 file"
    return ProblemResponse(problem(
        status, title, str(report.get("message") or f"{result.outcome}: {rules[0]}"),
        field="body", rule=str(rules[0]), instance=request.url.path, report=report),
        status_code=status)


@router.post("/remittances", summary="Import an 835 remittance (balanced before posting)")
async def post_remittance(request: Request) -> Response:
    return await _import(request, "835")


@router.post("/claims/x12", summary="Import 837P/837I claims or 999/277CA acknowledgements")
async def post_claims_x12(request: Request) -> Response:
    return await _import(request, "837P|837I|999|277CA")


# ---------------------------------------------------------------- exceptions queue (issue 12)
class ResolveException(BaseModel):
    """Work an exception: the resolution is appended as an event, never an edit."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["rematched", "posted", "dismissed"]
    reason: str = Field(min_length=1, max_length=500)


def _exceptions(url: str, status: str, kind: str, limit: int, as_of: datetime | None = None,
                as_of_position: int | None = None) -> dict[str, Any]:
    import psycopg

    from ledger.projections.asof import resolve
    from ledger.x12.exceptions import list_exceptions

    with psycopg.connect(url, autocommit=True) as conn:
        point = resolve(conn, as_of=as_of, as_of_position=as_of_position,
                        projections=("exceptions",))
        items = list_exceptions(conn, status=status, kind=kind, limit=limit,
                                position=point.position if point else None)
    body: dict[str, Any] = {"exceptions": items, "count": len(items)}
    if point is not None:
        body["as_of"] = point.as_dict()
    return body


def _resolve(url: str, exception_id: str, body: ResolveException,
             actor_id: str) -> dict[str, Any]:
    import psycopg

    from ledger.x12.exceptions import resolve

    with psycopg.connect(url, autocommit=True) as conn:
        return resolve(conn, exception_id, action=body.action, reason=body.reason,
                       actor_id=actor_id)


@router.get("/exceptions", summary="The X12 exceptions queue (quarantined files, unmatched "
            "claims, suspected duplicate payments, unreconciled remittances, unposted PLBs)")
async def get_exceptions(request: Request, status: str = "open", kind: str = "",
                         limit: int = Query(500, ge=1, le=5000),
                         as_of: Annotated[datetime | None, Query(description=(
                             "recorded time: the queue as it stood then"))] = None,
                         as_of_position: Annotated[int | None, Query(description=(
                             "the queue as it stood when the log ended at this position"))
                         ] = None) -> Response:
    # on the primary even with read replicas: a resolution is written outside the event log, so
    # no log position (min_position, the position cookie) can say a replica has it yet
    state: Any = request.app.state
    body = await run_in_threadpool(_exceptions, state.database_url, status, kind, limit,
                                   as_of, as_of_position)
    return OrjsonResponse(body)


@router.post("/exceptions/{exception_id}/resolve", summary="Resolve an exception (appends a "
             "resolution event: rematched, posted or dismissed, with a reason)")
async def post_exception_resolution(request: Request, exception_id: str,
                                    body: ResolveException) -> Response:
    state: Any = request.app.state
    identity = request.state.identity
    out = await run_in_threadpool(_resolve, state.database_url, exception_id, body,
                                  identity.actor.id)
    return OrjsonResponse(out)


def _reconciliation(request: Request, unreconciled: bool, limit: int,
                    min_position: int | None) -> list[dict[str, Any]]:
    """From a read replica (LEDGER_READ_DATABASE_URL) whose event log holds ``min_position``
    (a remittance's rows are written in its events' transaction), else from the primary."""
    import psycopg

    from ledger.x12.exceptions import list_reconciliation

    state: Any = request.app.state
    replicas = state.read_replicas
    if replicas:
        with replicas.connection(min_position, state.settings.read_replica_wait,
                                 events=True) as conn:
            if conn is not None:
                request.state.read_from = "replica"
                return list_reconciliation(conn, only_unreconciled=unreconciled, limit=limit)
        request.state.read_from = "primary"
    with psycopg.connect(state.database_url, autocommit=True) as conn:
        return list_reconciliation(conn, only_unreconciled=unreconciled, limit=limit)


@router.get("/remittances/reconciliation", summary="Per remittance: BPR02 = Σ CLP04 − Σ PLB, "
            "posted and held amounts, and whether it reconciles")
async def get_reconciliation(request: Request, unreconciled: bool = False,
                             limit: int = Query(500, ge=1, le=5000),
                             min_position: ReplayPosition = None) -> Response:
    items = await run_in_threadpool(_reconciliation, request, unreconciled, limit,
                                    min_position)
    return OrjsonResponse({"remittances": items, "count": len(items)})
