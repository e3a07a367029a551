"""Month-end reporting (issue 19): close a period, a closed period's report (with the
checkpoint that proves it), and reconciliation between two moments. Plain calls into
``ledger.reporting``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import IdentityDep
from api.responses import OrjsonResponse
from ledger import reporting
from ledger.projections import asof

router = APIRouter(tags=["reporting"])
Period = Annotated[str, Path(pattern=r"^(19|2[0-9])\d{2}-(0[1-9]|1[0-2])$", description="YYYY-MM")]


class ClosePeriod(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=500)


def _closed(closed: Any) -> dict[str, Any]:
    return {"period": closed.period, "position": closed.position,
            "closed_at": closed.closed_at.isoformat(), "closed_by": closed.actor_id,
            "checkpoint": closed.checkpoint()}


@router.post("/periods/{period}/close", summary="Close an accounting period (PeriodClosed)")
def close_period(request: Request, period: Period, identity: IdentityDep,
                 body: ClosePeriod | None = None) -> OrjsonResponse:
    with request.app.state.pool.connection() as conn:
        closed = reporting.close_period(request.app.state.ledger, conn, period,
                                        actor_id=identity.user_id, actor_role=identity.role,
                                        reason=body.reason if body else "")
    return OrjsonResponse(_closed(closed), status_code=201)


@router.get("/periods/{period}/report",
            summary="A closed period's payer balances (read at its close), its checkpoint, "
                    "and the post-close adjustments of the next period")
def period_report(request: Request, period: Period, identity: IdentityDep) -> OrjsonResponse:
    with request.app.state.pool.connection() as conn:
        return OrjsonResponse(reporting.period_report(request.app.state.ledger, conn, period))


@router.get("/reports/reconciliation",
            summary="Balance at T1 + changes by event kind = balance at T2 (a payer or all A/R)")
def reconciliation(request: Request, identity: IdentityDep,
                   from_position: Annotated[int | None, Query(ge=0)] = None,
                   to_position: Annotated[int | None, Query(ge=0)] = None,
                   from_time: datetime | None = None, to_time: datetime | None = None,
                   payer_id: Annotated[str | None, Query(max_length=80)] = None
                   ) -> OrjsonResponse:
    with request.app.state.pool.connection() as conn:
        start = asof.resolve(conn, as_of=from_time, as_of_position=from_position,
                             projections=("claims",))
        end = asof.resolve(conn, as_of=to_time, as_of_position=to_position,
                           projections=("claims",))
        p1 = start.position if start else 0
        p2 = end.position if end else asof.log_head(conn)
        return OrjsonResponse(reporting.reconcile(conn, p1, p2, payer_id))
