"""How an unexpected error is logged: with the route TEMPLATE and a request id, never the raw
path (``/patients/{patient_ref}/balance`` would put a patient reference in the log), never the
exception's message (a driver error can echo a value from the request). The traceback is
kept as frames (file, line, function), which carry code, not data.

``install(app)`` puts a pure ASGI middleware inside the user middlewares that answers an
unexpected error with the 500 problem itself. Starlette's own ServerErrorMiddleware would
re-raise the exception after the handler ran, and the server (uvicorn) would then log the
whole traceback, message included.
"""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from typing import Any

log = logging.getLogger("api.errors")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id(request: Any) -> str:
    """The caller's X-Request-ID when it is a plain token, else a new one."""
    given = request.headers.get("x-request-id") or ""
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def route_template(request: Any) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or "<unmatched>"


def log_unexpected(request: Any, exc: BaseException) -> str:
    """Log an unexpected error without PHI; returns the request id (for the response)."""
    rid = request_id(request)
    frames = "\n".join(f"  {f.filename}:{f.lineno} in {f.name}"
                       for f in traceback.extract_tb(exc.__traceback__))
    log.error("unexpected error on %s %s request_id=%s: %s\n%s", request.method,
              route_template(request), rid, type(exc).__name__, frames)
    return rid


class UnexpectedErrors:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:  # noqa: BLE001 - every unexpected error ends here
            from starlette.requests import Request

            from api.errors import is_unavailable, problem, unavailable_problem
            from api.responses import ProblemResponse
            from ledger.persistence.database import CommitOutcomeUnknown

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


def install(app: Any) -> None:
    app.add_middleware(UnexpectedErrors)
