"""The service's own request log: method, route TEMPLATE, status, duration — never the raw
path or query string, which may carry a patient reference (uvicorn's access log is off)."""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request

log = logging.getLogger("ledger.access")


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def access(request: Request, call_next):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "<unmatched>")
        identity = getattr(request.state, "identity", None)
        log.info("%s %s %d %.1fms actor=%s", request.method, template, response.status_code,
                 (time.perf_counter() - started) * 1000,
                 identity.user_id if identity else "-")
        return response
