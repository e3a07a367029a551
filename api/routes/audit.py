"""Auditors' routes: ``GET /audit/verify``, ``GET /audit/sealing`` and ``GET /audit/access``.
Mounted like every router (``app.include_router(router)``); the read-access log they query is
written for every read by ``api/read_access.py``'s middleware.

The routes are thin: the work is in ``ledger.audit.verify`` and ``ledger.audit.access``. Only
the ``auditor`` and ``admin`` roles may call them; a refusal is itself recorded (``denied``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import ActorDep
from api.errors import PROBLEM_BASE, problem
from api.read_access import log_target
from api.responses import OrjsonResponse, ProblemResponse
from ledger.audit.access import pseudonym, query_access

router = APIRouter(prefix="/audit", tags=["audit"])
AUDIT_ROLES = ("auditor", "admin")


def _forbidden(request: Request) -> Response:
    return ProblemResponse(problem(
        403, "Forbidden", "X-Actor-Role: the audit routes need the auditor or admin role",
        type_=PROBLEM_BASE + "role.auditor", instance=request.url.path,
        field="X-Actor-Role", rule="role.auditor"), status_code=403)


def _url(request: Request) -> str:
    return request.app.state.database_url


@router.get("/verify", summary="Verify the hash chains and signed checkpoints")
def audit_verify(request: Request, actor: ActorDep,
                 encounter_id: Annotated[UUID | None, Query(
                     description="verify one encounter only (fast)")] = None,
                 snapshots: Annotated[bool | None, Query(
                     description="compare snapshots with the events (default: only for one "
                     "encounter)")] = None) -> Response:
    """The ``ledger verify`` report as JSON (``ok`` false names the first bad place)."""
    if actor.role not in AUDIT_ROLES:
        return _forbidden(request)
    from ledger.audit.checkpoints import trusted_public_key
    from ledger.audit.sealing import log_export_dir
    from ledger.audit.verify import verify
    from ledger.config import get_settings

    settings = get_settings()
    url = _url(request)
    report = verify(url, encounter=encounter_id, public_key=trusted_public_key(),
                    export_dir=log_export_dir(settings.export_dir, url), snapshots=snapshots,
                    require_sealed=settings.seal_per_batch)
    return OrjsonResponse(report.as_dict())


@router.get("/sealing", summary="Sealing: what is not yet signed or copied outside the database")
def audit_sealing(request: Request, actor: ActorDep) -> Response:
    """The unsealed backlog (events after the latest checkpoint), what this process sealed and
    exported, and failures; the same fields ``ledger.audit.sealing.sealing_status`` gives
    ``/ready`` and metrics."""
    if actor.role not in AUDIT_ROLES:
        return _forbidden(request)
    from ledger.audit.sealing import sealing_status

    pool = getattr(request.app.state, "pool", None)
    sealer = getattr(request.app.state, "sealer", None)
    if pool is None:
        return OrjsonResponse(sealing_status(sealer))
    try:
        with pool.connection(timeout=2) as conn:
            return OrjsonResponse(sealing_status(sealer, conn))
    except Exception as exc:  # noqa: BLE001 - the database is down: report what we know
        status = sealing_status(sealer)
        status["database"] = f"unavailable ({type(exc).__name__})"
        return OrjsonResponse(status)


@router.get("/access", summary="The read-access log (newest first)")
def audit_access(
    request: Request, actor: ActorDep,
    actor_id: Annotated[str | None, Query(alias="actor", description="who read")] = None,
    resource_type: Annotated[str | None, Query(description="encounter, claim, ...")] = None,
    resource_id: Annotated[str | None, Query(description="as recorded (a UUID, a claim number "
                                             "or a pseudonym)")] = None,
    resource_value: Annotated[str | None, Query(description="a non-opaque id (e.g. a patient "
                                                "reference): matched by its pseudonym")] = None,
    encounter_id: Annotated[UUID | None, Query(description="reads of this encounter")] = None,
    outcome: Annotated[str | None, Query(description="allowed, denied, not_found, ...")] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
    before_id: Annotated[int | None, Query(description="page: ids below this one")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    if actor.role not in AUDIT_ROLES:
        return _forbidden(request)
    if resource_value is not None:
        resource_id = pseudonym(resource_value)
    records = query_access(log_target(request), actor=actor_id, resource_type=resource_type,
                           resource_id=resource_id, encounter_id=encounter_id, outcome=outcome,
                           since=since, until=until, before_id=before_id, limit=limit)
    items = [r.as_dict() for r in records]
    return OrjsonResponse({"items": items,
                           "next_before_id": items[-1]["id"] if len(items) == limit else None})
