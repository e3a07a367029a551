"""Auditors' routes (``GET /audit/verify``, ``GET /audit/access``) and the read-access log
middleware. Mount with ``app.include_router(routes_audit.router)`` and record every read with
``routes_audit.install_access_log(app)`` (or ``routes_audit.install(app)`` for both).

The routes are thin: the work is in ``ledger.audit.verify`` and ``ledger.audit.access``. Only
the ``auditor`` and ``admin`` roles may call them; a refusal is itself recorded (``denied``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.client_address import client_address
from api.deps import ActorDep
from api.errors import PROBLEM_BASE, problem
from api.responses import OrjsonResponse, ProblemResponse
from ledger.audit.access import is_opaque, outcome_for, pseudonym, query_access, record_access

log = logging.getLogger(__name__)

router = APIRouter(prefix="/audit", tags=["audit"])
AUDIT_ROLES = ("auditor", "admin")
# Reads that are not claim/encounter data and need no access record.
UNAUDITED = ("/health", "/ready", "/metrics", "/problems/", "/docs", "/redoc", "/openapi.json",
             "/docs/oauth2-redirect", "/ui/static/")


def _forbidden(request: Request) -> Response:
    return ProblemResponse(problem(
        403, "Forbidden", "X-Actor-Role: the audit routes need the auditor or admin role",
        type_=PROBLEM_BASE + "role.auditor", instance=request.url.path,
        field="X-Actor-Role", rule="role.auditor"), status_code=403)


def _url(request: Request) -> str:
    return request.app.state.database_url


def _target(request: Request) -> Any:
    return getattr(request.app.state, "pool", None) or _url(request)


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
    records = query_access(_target(request), actor=actor_id, resource_type=resource_type,
                           resource_id=resource_id, encounter_id=encounter_id, outcome=outcome,
                           since=since, until=until, before_id=before_id, limit=limit)
    items = [r.as_dict() for r in records]
    return OrjsonResponse({"items": items,
                           "next_before_id": items[-1]["id"] if len(items) == limit else None})


# ---------------------------------------------------------------------- access log middleware
def _resource(scope: dict[str, Any]) -> tuple[str, str | None, str | None, str | None]:
    """(resource type, resource id, encounter id, route template) of the matched route."""
    route = scope.get("route")
    template = getattr(route, "path", None) or scope.get("path", "")
    params: dict[str, Any] = scope.get("path_params") or {}
    if template.startswith("/fhir/") and params.get("rid"):  # issue 18: a FHIR id names
        from ledger.fhir.resources import encounter_of  # the encounter it belongs to

        rid = str(params["rid"])
        encounter_of_rid = encounter_of(str(params.get("resource_type", "")), rid)
        return (str(params.get("resource_type", "fhir")),
                rid if encounter_of_rid else pseudonym(rid), encounter_of_rid,
                template if route is not None else None)
    statics = [p for p in template.strip("/").split("/") if p and not p.startswith("{")]
    kind = statics[-1] if statics else "root"
    kind = kind[:-1] if kind.endswith("s") and kind != "access" else kind
    values = [str(v) if is_opaque(k, str(v)) else pseudonym(str(v)) for k, v in params.items()]
    encounter = params.get("encounter_id")
    return kind, (values[-1] if values else None), (str(encounter) if encounter else None), \
        (template if route is not None else None)


class AccessLogMiddleware:
    """Record every read (GET/HEAD except health and docs) in the access log, with the caller
    (the authenticated identity, ``request.state.identity``), the resource, the client
    address and the outcome. Fails closed: a read whose record cannot be written answers 503,
    not the data (the response is held until its record is written).

    A pure ASGI middleware: writes (POST) pass straight through at no cost."""

    def __init__(self, app: Any, methods: tuple[str, ...] = ("GET", "HEAD")) -> None:
        self.app = app
        self.methods = methods

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in self.methods or \
                scope["path"].startswith(UNAUDITED):
            await self.app(scope, receive, send)
            return
        held: list[dict[str, Any]] = []
        status = 500

        async def hold(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            held.append(message)

        await self.app(scope, receive, hold)
        request = Request(scope)
        identity = (scope.get("state") or {}).get("identity")  # set by api.deps.authorize
        actor_id = getattr(identity, "user_id", None) or "anonymous"
        role = getattr(identity, "role", None)
        kind, resource_id, encounter_id, route = _resource(scope)
        try:
            await run_in_threadpool(
                record_access, _target(request), actor=actor_id[:200], actor_role=role,
                resource_type=kind, resource_id=resource_id, encounter_id=encounter_id,
                route=route, client=client_address(request),
                outcome=outcome_for(status), status=status,
                request_id=(scope.get("state") or {}).get("request_id")
                or request.headers.get("x-request-id"))
        except Exception as exc:  # noqa: BLE001 - any failure to record refuses the read
            log.error("access log write failed (%s); refusing the read", type(exc).__name__)
            refusal = ProblemResponse(problem(
                503, "Service unavailable", "the access could not be recorded; try again",
                instance=request.url.path), status_code=503)
            await refusal(scope, receive, send)
            return
        for message in held:
            await send(message)


def install_access_log(app: FastAPI, *, methods: tuple[str, ...] = ("GET", "HEAD")) -> None:
    app.add_middleware(AccessLogMiddleware, methods=methods)


def install(app: FastAPI) -> None:
    """Mount the audit routes and the access-log middleware."""
    app.include_router(router)
    install_access_log(app)
