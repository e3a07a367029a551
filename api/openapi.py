"""The served OpenAPI document, made to say what the API really returns: problem+json
(RFC 9457) for every 4xx/5xx, and the command/read response shapes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "instance": {"type": "string"}, "field": {"type": "string"},
        "rule": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "rule": {"type": "string"},
            "message": {"type": "string"}}}},
    },
}
COMMAND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["encounter_id", "version", "position"],
    "properties": {
        "encounter_id": {"type": "string", "format": "uuid"},
        "version": {"type": "integer", "minimum": 1},
        "position": {"type": ["integer", "null"]},
        "result": {},
    },
}
OPERATION_OUTCOME_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"const": "OperationOutcome"},
                   "issue": {"type": "array", "items": {"type": "object"}}},
}
ERROR_STATUSES = {"400": "Bad request", "401": "Not authenticated", "403": "Forbidden",
                  "404": "Not found", "409": "Conflict", "412": "Precondition failed",
                  "422": "Refused: the problem names the field and the rule",
                  "429": "Too many requests", "500": "Internal error",
                  "503": "Unavailable"}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = \
            PROBLEM_SCHEMA
        problem_content = {"application/problem+json": {
            "schema": {"$ref": "#/components/schemas/Problem"}}}
        # /fhir answers refusals as a FHIR OperationOutcome (issue 18, api/routes/fhir.py)
        outcome_content = {"application/fhir+json": {"schema": OPERATION_OUTCOME_SCHEMA}}
        for path, item in schema.get("paths", {}).items():
            for method, op in item.items():
                responses = op.setdefault("responses", {})
                for status, description in ERROR_STATUSES.items():
                    if status in ("401", "403", "429") and not path.startswith("/"):
                        continue
                    responses[status] = {"description": responses.get(status, {}).get(
                        "description", description), "content": outcome_content
                        if path.startswith("/fhir") else problem_content}
                if method == "post" and path.startswith("/encounters"):
                    for ok in ("200", "201"):
                        if ok in responses:
                            responses[ok]["content"] = {"application/json": {
                                "schema": COMMAND_SCHEMA}}
                    op.setdefault("parameters", []).extend([
                        {"name": "Idempotency-Key", "in": "header", "required": False,
                         "schema": {"type": "string", "maxLength": 255},
                         "description": "make retries safe"},
                        {"name": "If-Match", "in": "header", "required": False,
                         "schema": {"type": "string"},
                         "description": 'expected encounter version, e.g. "3"'},
                    ])
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
