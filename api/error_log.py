"""How an unexpected error is logged: with the route TEMPLATE and a request id, never the raw
path (``/patients/{patient_ref}/balance`` would put a patient reference in the log), never the
exception's message (a driver error can echo a value from the request). The traceback is
kept as frames (file, line, function), which carry code, not data. (The middleware that
answers such an error is ``api.errors.UnexpectedErrors``.)
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


def route_label(scope: Any) -> str:
    """The matched route's template as the whole app serves it: a route of a mounted app (the
    workbench under /ui) is prefixed by its mount (``root_path`` beyond ``app_root_path``), so
    /ui/signin is labelled /ui/signin, not /signin. Never the raw path."""
    template = getattr(scope.get("route"), "path", None)
    if not template:
        return "<unmatched>"
    base = scope.get("app_root_path")
    root = scope.get("root_path", "")
    if base is not None and root.startswith(base):
        template = root[len(base):] + template
    return template


def route_template(request: Any) -> str:
    return route_label(request.scope)


def log_unexpected(request: Any, exc: BaseException) -> str:
    """Log an unexpected error without PHI; returns the request id (for the response)."""
    rid = request_id(request)
    frames = "\n".join(f"  {f.filename}:{f.lineno} in {f.name}"
                       for f in traceback.extract_tb(exc.__traceback__))
    log.error("unexpected error on %s %s request_id=%s: %s\n%s", request.method,
              route_template(request), rid, type(exc).__name__, frames)
    return rid
