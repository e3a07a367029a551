"""The read-access log middleware: every read (GET/HEAD) of claim or encounter data is
recorded in ``ledger_access_log`` (``ledger.audit.access.record_access``) with the caller, the
resource (a path id that is not opaque as its pseudonym), the client address and the outcome,
before the response leaves; a read whose record cannot be written is answered 503 (fails
closed). Auditors query the log with ``GET /audit/access`` (``api/routes/audit.py``).
Installed by ``api.main.create_app`` with ``install(app)``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool

from api.client_address import client_address
from api.errors import problem
from api.responses import ProblemResponse
from ledger.audit.access import is_opaque, outcome_for, pseudonym, record_access

log = logging.getLogger(__name__)

# Reads that are not claim/encounter data and need no access record.
UNAUDITED = ("/health", "/ready", "/metrics", "/problems/", "/docs", "/redoc", "/openapi.json",
             "/docs/oauth2-redirect", "/ui/static/")


def log_target(request: Request) -> Any:
    """Where the access log is written and read: the app's pool, else its database URL."""
    return getattr(request.app.state, "pool", None) or request.app.state.database_url


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
                record_access, log_target(request), actor=actor_id[:200], actor_role=role,
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


def install(app: FastAPI, *, methods: tuple[str, ...] = ("GET", "HEAD")) -> None:
    app.add_middleware(AccessLogMiddleware, methods=methods)
