"""FHIR JSON: money and quantities are exact decimals written as JSON numbers (never floats)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

FHIR_JSON = "application/fhir+json"


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return orjson.Fragment(format(obj, "f").encode())
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(resource: Any) -> bytes:
    return orjson.dumps(resource, default=_default)


def operation_outcome(severity: str, code: str, diagnostics: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]}
