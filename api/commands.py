"""How every POST command runs: If-Match, Idempotency-Key, ETag and the response body.

Concurrency: a client that sends ``If-Match: "<version>"`` gets 412 when the encounter moved
on, and 409 when it loses a race at save time. A client that sends no If-Match gets its command
re-run against the new state when it loses a race (the domain rules decide again); 409 only
if it keeps losing.

Idempotency: the same key with the same body returns the first response (nothing is written
again); with a different body, 422; while the first is still running, 409. The stored response
is written in the same transaction as the command's events.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.errors import ledger_problem, problem
from api.responses import OrjsonResponse, ProblemResponse, dumps
from ledger.application.idempotency import (
    Claimed,
    IdempotencyStore,
    InFlight,
    Mismatch,
    Replay,
    fingerprint,
)
from ledger.application.results import CommandResult
from ledger.domain.commands import Command
from ledger.domain.errors import (
    ConcurrencyConflict,
    InvalidValue,
    LedgerError,
    PreconditionFailed,
)
from ledger.domain.model import Actor

_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def parse_if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.match(value)
    if not match:
        raise InvalidValue("If-Match", "if_match.format",
                           'If-Match: must be an encounter version ETag such as "3"')
    return int(match.group(1))


def etag(version: int) -> str:
    return f'"{version}"'


def result_body(result: CommandResult, value: Any = None) -> dict[str, Any]:
    return {"encounter_id": str(result.encounter_id), "version": result.version,
            "position": result.position, "result": value}


Runner = Callable[..., Awaitable[CommandResult]]


def handled(ledger: Any, command: Command, actor: Actor) -> Runner:
    """The runner of one typed command: the application handles it (see run_command)."""

    def runner(expected_version: int | None, write_with: Any) -> Any:
        return ledger.handle_async(command, actor=actor, expected_version=expected_version,
                                   write_with=write_with)

    return runner


async def run_command(
    request: Request,
    raw_body: bytes,
    actor: Actor,
    runner: Runner,
    *,
    status_code: int = 200,
    present: Callable[[Any], Any] = lambda v: v,
    location: Callable[[CommandResult], str] | None = None,
) -> Response:
    """Await ``runner(expected_version=…, write_with=…)`` with the HTTP semantics above.
    Only the idempotency bookkeeping touches the database from here (in a thread)."""
    store: IdempotencyStore = request.app.state.idempotency
    expected = parse_if_match(request.headers.get("if-match"))
    key = request.headers.get("idempotency-key")

    def response_parts(result: CommandResult) -> tuple[int, bytes, dict[str, str]]:
        headers = {"ETag": etag(result.version)}
        if result.position is not None:
            headers["X-Log-Position"] = str(result.position)
        if location is not None:
            headers["Location"] = location(result)
        return status_code, dumps(result_body(result, present(result.value))), headers

    if not key:
        result = await runner(expected_version=expected, write_with=None)
        code, body, headers = response_parts(result)
        return Response(body, status_code=code, headers=headers, media_type="application/json")

    if len(key) > 255:
        raise InvalidValue("Idempotency-Key", "idempotency_key.length",
                           "Idempotency-Key: at most 255 characters")
    scope = f"{actor.id}|{request.method}|{request.url.path}"
    fp = fingerprint(request.method, request.url.path, raw_body)
    outcome = await run_in_threadpool(store.begin, scope, key, fp)
    if isinstance(outcome, Replay):
        headers = dict(outcome.headers) | {"Idempotent-Replayed": "true"}
        media = "application/problem+json" if outcome.status_code >= 400 else \
            "application/json"
        return Response(outcome.body, status_code=outcome.status_code, headers=headers,
                        media_type=media)
    if isinstance(outcome, Mismatch):
        return ProblemResponse(problem(
            422, "Idempotency key reused", "Idempotency-Key: this key was used with a "
            "different request", field="Idempotency-Key", rule="idempotency_key.reused",
            instance=request.url.path), status_code=422)
    if isinstance(outcome, InFlight):
        return ProblemResponse(problem(
            409, "Request in progress", "Idempotency-Key: the first request with this key "
            "is still being processed; retry later", field="Idempotency-Key",
            rule="idempotency_key.in_flight", instance=request.url.path), status_code=409,
            headers={"Retry-After": "1"})
    assert isinstance(outcome, Claimed)

    claim = outcome.claim

    def write_with(curs: Any, result: CommandResult) -> None:
        code, body, headers = response_parts(result)
        store.completion_write(scope, key, code, body, headers, curs, claim)

    try:
        result = await runner(expected_version=expected, write_with=write_with)
    except (ConcurrencyConflict, PreconditionFailed):
        # transient: the client may retry with the same key
        await run_in_threadpool(store.release, scope, key, claim)
        raise
    except LedgerError as exc:
        code, problem_body = ledger_problem(exc, request.url.path)
        body = dumps(problem_body)
        await run_in_threadpool(store.complete, scope, key, code, body, {}, claim)
        return Response(body, status_code=code, media_type="application/problem+json")
    except BaseException:
        # includes an unknown commit outcome: once released, that execution can no longer
        # commit (its completion write needs the claim), so a retry runs it at most once more
        await run_in_threadpool(store.release, scope, key, claim)
        raise
    code, body, headers = response_parts(result)
    if result.written == 0:  # nothing saved, so no transaction carried the record
        await run_in_threadpool(store.complete, scope, key, code, body, headers, claim)
    return Response(body, status_code=code, headers=headers, media_type="application/json")


__all__ = ["run_command", "parse_if_match", "etag", "OrjsonResponse"]
