"""Every refusal as RFC 9457 problem+json, mapped in one place.

Domain errors name the field and the rule; request-validation errors list each field with the
rule pydantic applied. Messages carry no PHI (domain messages never include patient data, and
validation errors echo no input values).
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.error_log import log_unexpected
from api.middleware import HttpMiddleware
from api.responses import ProblemResponse
from ledger.application.idempotency import ClaimLost
from ledger.domain.errors import (
    ConcurrencyConflict,
    IllegalTransition,
    LedgerError,
    NotFound,
    PreconditionFailed,
)
from ledger.persistence.database import CommitOutcomeUnknown, DatabaseUnavailable

log = logging.getLogger(__name__)
# Problem types are the service's own pages (relative URI references, RFC 9457 §3.1.1):
# GET /problems/{rule} describes the rule (api/routes/problems.py).
PROBLEM_BASE = "/problems/"


def status_for(exc: LedgerError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, PreconditionFailed):
        return 412
    if isinstance(exc, ConcurrencyConflict | IllegalTransition):
        return 409
    return 422


def problem(status: int, title: str, detail: str, *, type_: str = "about:blank",
            instance: str = "", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def ledger_problem(exc: LedgerError, instance: str = "") -> tuple[int, dict[str, Any]]:
    status = status_for(exc)
    return status, problem(status, _title(exc), exc.message, type_=PROBLEM_BASE + exc.rule,
                           instance=instance, field=exc.field, rule=exc.rule)


def _title(exc: LedgerError) -> str:
    return {404: "Not found", 409: "Conflict", 412: "Precondition failed"}.get(
        status_for(exc), "Refused by a ledger rule")


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (("." if out else "") + p)
    return out or "body"


RETRY_AFTER = "1"
# Errors that mean "the database is not there (or not answering in time)", never a bug.
UNAVAILABLE = (DatabaseUnavailable, psycopg.OperationalError, psycopg.InterfaceError,
               StoreOperationalError, StoreInterfaceError)


def is_unavailable(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, UNAVAILABLE):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def unavailable_problem(instance: str, *, abandoned: bool = False,
                        unknown: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
    """503 problem+json and its headers: the database is unavailable, retry later."""
    detail = "the database is not reachable; retry after the time in Retry-After"
    if unknown or abandoned:
        detail += (" (a write may or may not have been applied: retry it with the same "
                   "Idempotency-Key to get its single outcome)")
    return (problem(503, "Service unavailable", detail,
                    type_=PROBLEM_BASE + "database.unavailable", instance=instance,
                    rule="database.unavailable"),
            {"Retry-After": RETRY_AFTER})


def install(app: FastAPI) -> None:
    async def database_unavailable(request: Request, exc: Exception) -> ProblemResponse:
        # one line per change of state comes from the availability monitor, not from here
        log.debug("database unavailable on %s %s: %s", request.method, request.url.path,
                  type(exc).__name__)
        body, headers = unavailable_problem(request.url.path,
                                            unknown=isinstance(exc, CommitOutcomeUnknown))
        return ProblemResponse(body, status_code=503, headers=headers)

    for cls in UNAVAILABLE:
        app.add_exception_handler(cls, database_unavailable)

    @app.exception_handler(ClaimLost)
    async def claim_lost(request: Request, exc: ClaimLost) -> ProblemResponse:
        body = problem(409, "Request superseded", str(exc),
                       type_=PROBLEM_BASE + exc.rule, instance=request.url.path,
                       field=exc.field, rule=exc.rule)
        return ProblemResponse(body, status_code=409, headers={"Retry-After": RETRY_AFTER})

    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, exc: LedgerError) -> ProblemResponse:
        status, body = ledger_problem(exc, request.url.path)
        return ProblemResponse(body, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> ProblemResponse:
        errors = [{"field": _field(tuple(e.get("loc", ()))), "rule": e.get("type", "invalid"),
                   "message": e.get("msg", "invalid")} for e in exc.errors()]
        first = errors[0] if errors else {"field": "body", "rule": "invalid", "message": ""}
        body = problem(422, "Invalid request", f"{first['field']}: {first['message']}",
                       type_=PROBLEM_BASE + "validation", instance=request.url.path,
                       field=first["field"], rule=first["rule"], errors=errors)
        return ProblemResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> ProblemResponse:
        body = problem(exc.status_code, str(exc.detail), str(exc.detail),
                       instance=request.url.path)
        return ProblemResponse(body, status_code=exc.status_code,
                               headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> ProblemResponse:
        if is_unavailable(exc):
            return await database_unavailable(request, exc)
        rid = log_unexpected(request, exc)  # route template + request id only: no PHI
        body = problem(500, "Internal error", "the ledger could not complete the request",
                       instance=request.url.path, request_id=rid)
        return ProblemResponse(body, status_code=500)


class UnexpectedErrors(HttpMiddleware):
    """A pure ASGI middleware, inside the user middlewares, that answers an unexpected error
    with the 500 problem itself (logged by ``api.error_log`` without PHI). Starlette's own
    ServerErrorMiddleware would re-raise the exception after the handler ran, and the server
    (uvicorn) would then log the whole traceback, message included."""

    async def http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = False

        async def tracking(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:  # noqa: BLE001 - every unexpected error ends here
            request = Request(scope)
            if is_unavailable(exc):  # not a bug: the database is gone (503, as api.errors)
                if not started:
                    body, headers = unavailable_problem(
                        request.url.path, unknown=isinstance(exc, CommitOutcomeUnknown))
                    await ProblemResponse(body, status_code=503, headers=headers)(
                        scope, receive, send)
                return
            rid = log_unexpected(request, exc)
            if started:  # too late for a problem body; the server closes the response
                return
            body = problem(500, "Internal error", "the ledger could not complete the request",
                           instance=request.url.path, request_id=rid)
            await ProblemResponse(body, status_code=500)(scope, receive, send)


def install_unexpected_errors(app: Any) -> None:
    app.add_middleware(UnexpectedErrors)
