"""The service's own request log: method, route TEMPLATE, status, duration — never the raw
path or query string, which may carry a patient reference (uvicorn's access log is off).
A pure ASGI middleware (no per-request task or body streaming wrapper)."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI

log = logging.getLogger("ledger.access")


class AccessLog:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            if log.isEnabledFor(logging.INFO):
                route = scope.get("route")
                identity = (scope.get("state") or {}).get("identity")
                log.info("%s %s %d %.1fms actor=%s", scope["method"],
                         getattr(route, "path", "<unmatched>"), status,
                         (time.perf_counter() - started) * 1000,
                         identity.user_id if identity else "-")


def install(app: FastAPI) -> None:
    app.add_middleware(AccessLog)
