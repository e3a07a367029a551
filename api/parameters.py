"""A NUL or other control character in a path or query parameter is refused with 422 naming
the parameter, before any route, middleware (the read-access log) or query sees it:
PostgreSQL text cannot hold NUL, and such a value is never a valid id, code or filter.

A pure ASGI middleware; a clean request costs one regular-expression search."""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import unquote

from starlette.datastructures import QueryParams

from api.errors import PROBLEM_BASE, problem
from api.responses import ProblemResponse
from ledger.domain.values import text_is_clean

MESSAGE = "must not contain NUL or other control characters"


class CleanParameters:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").decode("latin-1")
            if not (text_is_clean(scope["path"]) and text_is_clean(unquote(query))):
                fields = _unclean(scope)
                errors = [{"field": f, "rule": "text.control_characters", "message": MESSAGE}
                          for f in fields]
                body = problem(422, "Invalid request", f"{fields[0]}: {MESSAGE}",
                               type_=PROBLEM_BASE + "validation",
                               instance=scope["path"].replace("\x00", "\\0"),
                               field=fields[0], rule="text.control_characters",
                               errors=errors)
                await ProblemResponse(body, status_code=422)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _unclean(scope: dict[str, Any]) -> list[str]:
    """The names of the parameters that carry a control character."""
    fields: list[str] = []
    if not text_is_clean(scope["path"]):
        for pattern in _patterns():
            match = pattern.match(scope["path"])
            if match:
                fields += [name for name, value in match.groupdict().items()
                           if not text_is_clean(value)]
                break
        if not fields:
            fields.append("path")
    for name, value in QueryParams(scope.get("query_string", b"")).multi_items():
        if not (text_is_clean(name) and text_is_clean(value)):
            fields.append(name if text_is_clean(name) else "query")
    return fields or ["query"]


@functools.cache
def _patterns() -> list[re.Pattern[str]]:
    """Every route template (the permission table lists them all) as a regex with named
    groups, most specific (longest) first."""
    from api.permissions import PERMISSIONS

    out = []
    for template in sorted({t for _, t in PERMISSIONS}, key=len, reverse=True):
        parts = re.split(r"\{(\w+)\}", template)
        regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)"
                        for i, p in enumerate(parts))
        out.append(re.compile(f"^{regex}$", re.DOTALL))
    return out
