"""The service's own request log and request metrics: method, route TEMPLATE, status,
duration — never the raw path or query string, which may carry a patient reference (uvicorn's
access log is off). Each request gets a request id: the caller's ``X-Request-ID`` when it is a
plain token, else a new one; it is returned in ``X-Request-ID``, carried by every log line
written while the request runs (``ledger.logs.REQUEST_ID``) and visible to handlers as
``scope["state"]["request_id"]``. A pure ASGI middleware (no per-request task or body
streaming wrapper): a header scan, a context variable, a histogram observation."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI

from api.error_log import route_label
from api.middleware import HttpMiddleware
from ledger import metrics
from ledger.logs import REQUEST_ID, accept_request_id

log = logging.getLogger("ledger.access")
HEADER = b"x-request-id"


class AccessLog(HttpMiddleware):
    async def http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        status = 500
        given = None
        for name, value in scope["headers"]:
            if name == HEADER:
                given = value.decode("latin-1")
                break
        request_id = accept_request_id(given)
        scope.setdefault("state", {})["request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        encoded = request_id.encode()

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", encoded)]
            await send(message)

        failed = False
        try:
            await self.app(scope, receive, capture)
        except BaseException:
            failed = True
            raise
        finally:
            seconds = time.perf_counter() - started
            route = route_label(scope)
            metrics.observe_request(scope["method"], route, status, seconds)
            if failed:
                metrics.EXCEPTIONS.labels(route).inc()
            if log.isEnabledFor(logging.INFO):
                identity = (scope.get("state") or {}).get("identity")
                actor = identity.user_id if identity else "-"
                log.info("%s %s %d %.1fms actor=%s", scope["method"], route, status,
                         seconds * 1000, actor,
                         extra={"method": scope["method"], "route": route, "status": status,
                                "duration_ms": round(seconds * 1000, 2), "actor": actor})
            REQUEST_ID.reset(token)


def install(app: FastAPI) -> None:
    app.add_middleware(AccessLog)
