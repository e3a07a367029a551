"""JSON responses rendered with orjson (Decimal/Money as strings, dates as ISO 8601)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import orjson
from fastapi.responses import JSONResponse

from ledger.domain.values import Money


def _default(obj: Any) -> Any:
    if isinstance(obj, Money):
        return str(obj)
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, default=_default,
                        option=orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS)


class OrjsonResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


class ProblemResponse(OrjsonResponse):
    media_type = "application/problem+json"
