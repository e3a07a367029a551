"""FHIR R4 read API under ``/fhir/``: ExplanationOfBenefit, Claim, ClaimResponse and Coverage
read, versioned read (``_history``), search with Bundle paging, and the CapabilityStatement.

Resources are built from the encounter's own events (``ledger.fhir``), so a read is always
consistent with the last write; search finds candidate encounters in the claims read model.
Same authentication, permission table and encounter access check as the rest of the API: an
advocate without access to an encounter gets 404, as for any missing resource. Every answer is
``application/fhir+json``; every refusal is an ``OperationOutcome`` (see ``FhirErrors``).

With read replicas (LEDGER_READ_DATABASE_URL) reads and searches are answered by a replica
under the same rule as the other reads: once it holds ``min_position`` or the client's
``ledger_min_position`` cookie (its own last write), else by the primary (api.deps).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import IdentityDep, LedgerDep, MinPosition, ReadLedgerDep, check_encounter_access
from api.routes.queries import _read
from ledger.domain.encounter import Encounter
from ledger.domain.errors import InvalidValue, NotFound
from ledger.fhir import resources as fr
from ledger.fhir.capability import capability_statement
from ledger.fhir.render import FHIR_JSON, dumps, operation_outcome
from ledger.fhir.replay import Stamps, replay, replay_all


class FhirResponse(Response):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return dumps(content)


RESOURCE_SCHEMA = {"type": "object", "required": ["resourceType"],
                   "properties": {"resourceType": {"type": "string"}}}
router = APIRouter(prefix="/fhir", tags=["fhir"], default_response_class=FhirResponse,
                   responses={200: {"description": "A FHIR resource or Bundle",
                                    "content": {FHIR_JSON: {"schema": RESOURCE_SCHEMA}}}})

TYPES = fr.RESOURCE_TYPES
MAX_COUNT = 200
PREFIX_RE = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb)?(\d{4}-\d{2}-\d{2}([T ][0-9:.]+"
                       r"(Z|[+-]\d{2}:\d{2})?)?)$")


def _not_found(what: str = "resource") -> NotFound:
    return NotFound("id", "resource.exists", f"id: no such {what}")


def _type(resource_type: str) -> str:
    if resource_type not in TYPES:
        raise NotFound("type", "fhir.type", f"type: not supported here; one of {', '.join(TYPES)}")
    return resource_type


def _encounter_events(ledger: Any, identity: Any, resource_type: str, rid: str
                      ) -> tuple[list[Any], tuple[str, str, str | None]]:
    parts = fr.parse_id(resource_type, rid)
    if parts is None:
        raise _not_found(resource_type)
    try:
        events = ledger.history(UUID(hex=parts[0]))
    except NotFound:
        raise _not_found(resource_type) from None
    return events, parts


def _checked(identity: Any, enc: Any, resource_type: str) -> None:
    if not isinstance(enc, Encounter):  # another kind of stream (e.g. the exceptions queue)
        raise _not_found(resource_type)
    try:
        check_encounter_access(identity, enc)
    except NotFound:
        raise _not_found(resource_type) from None


@router.get("/metadata", summary="CapabilityStatement: what this FHIR server reads")
def metadata(request: Request) -> Response:
    return FhirResponse(capability_statement(str(request.base_url).rstrip("/") + "/fhir"))


@router.get("/$export", summary="Bulk export (synchronous, streamed): NDJSON of one resource "
            "type, everything changed since _since", response_class=Response,
            responses={200: {"content": {"application/fhir+ndjson": {
                "schema": {"type": "string"}}}}})
def bulk_export(request: Request, ledger: LedgerDep, identity: IdentityDep,
                type_: Annotated[str, Query(alias="_type", max_length=40)],
                since: Annotated[str | None, Query(alias="_since", max_length=40)] = None
                ) -> Response:
    """Staff only (auditors, billers): the whole ledger, one line per resource, streamed from
    one server-side cursor in constant memory (``ledger fhir export`` writes the same)."""
    import psycopg
    from starlette.responses import StreamingResponse

    from ledger.fhir.export import changed_resources

    _type(type_)
    moment = _instant("_since", since)[1] if since else None
    url = request.app.state.database_url

    def lines() -> Any:
        with psycopg.connect(url) as conn:
            for _, resource in changed_resources(conn, ledger.mapper, since=moment,
                                                 types=(type_,)):
                yield dumps(resource) + b"\n"

    return StreamingResponse(lines(), media_type="application/fhir+ndjson")


@router.get("/{resource_type}/{rid}", summary="A resource as it stands")
def read(resource_type: str, rid: str, ledger: ReadLedgerDep, identity: IdentityDep) -> Response:
    _type(resource_type)
    events, (_, part, seq) = _encounter_events(ledger, identity, resource_type, rid)
    enc, stamps = replay_all(events)
    _checked(identity, enc, resource_type)
    resource = fr.build(enc, stamps, resource_type, part, seq)
    if resource is None:
        raise _not_found(resource_type)
    modified = datetime.fromisoformat(resource["meta"]["lastUpdated"])
    return FhirResponse(resource, headers={"ETag": f'W/"{resource["meta"]["versionId"]}"',
                                           "Last-Modified": format_datetime(modified,
                                                                            usegmt=True)})


def _versions(events: list[Any], resource_type: str, part: str, seq: str | None
              ) -> list[dict[str, Any]]:
    """The resource after each event that touched it, oldest first."""
    out: list[dict[str, Any]] = []
    stamps = Stamps()
    for enc, _, event in replay(events, stamps):
        key = fr.touch_key(enc, resource_type, part, seq)
        if key is None:
            continue
        last = stamps.last(key)
        if last is not None and last.version == event.originator_version:
            resource = fr.build(enc, stamps, resource_type, part, seq)
            if resource is not None:
                out.append(resource)
    return out


@router.get("/{resource_type}/{rid}/_history",
            summary="Every version of a resource: one per encounter event that touched it")
def history(resource_type: str, rid: str, request: Request, ledger: ReadLedgerDep,
            identity: IdentityDep) -> Response:
    _type(resource_type)
    events, (_, part, seq) = _encounter_events(ledger, identity, resource_type, rid)
    enc, _ = replay_all(iter(events))
    _checked(identity, enc, resource_type)
    versions = _versions(events, resource_type, part, seq)
    if not versions:
        raise _not_found(resource_type)
    base = str(request.base_url).rstrip("/") + "/fhir"
    entries = [{"fullUrl": f"{base}/{resource_type}/{rid}/_history/{r['meta']['versionId']}",
                "resource": r, "request": {"method": "PUT" if i else "POST",
                                           "url": f"{resource_type}/{rid}"},
                "response": {"status": "200" if i else "201",
                             "lastModified": r["meta"]["lastUpdated"]}}
               for i, r in enumerate(versions)]
    entries.reverse()  # newest first, as FHIR history is
    return FhirResponse({"resourceType": "Bundle", "type": "history", "total": len(entries),
                         "link": [{"relation": "self", "url": str(request.url)}],
                         "entry": entries})


@router.get("/{resource_type}/{rid}/_history/{vid}",
            summary="A resource as of an encounter version (replayed from the events)")
def vread(resource_type: str, rid: str, vid: str, ledger: ReadLedgerDep,
          identity: IdentityDep) -> Response:
    _type(resource_type)
    if not vid.isdigit() or not 1 <= int(vid) <= 10**12:
        raise InvalidValue("vid", "vid.format", "vid: a positive encounter version")
    events, (_, part, seq) = _encounter_events(ledger, identity, resource_type, rid)
    enc_now, _ = replay_all(events)
    _checked(identity, enc_now, resource_type)
    upto = [e for e in events if e.originator_version <= int(vid)]
    if int(vid) > len(events):
        raise _not_found(f"version of this {resource_type}")
    enc, stamps = replay_all(upto)
    resource = fr.build(enc, stamps, resource_type, part, seq) if enc is not None else None
    if resource is None:
        raise _not_found(f"version of this {resource_type}")
    return FhirResponse(resource, headers={"ETag": f'W/"{resource["meta"]["versionId"]}"'})


# ---------------------------------------------------------------- search
def _instant(name: str, value: str) -> tuple[str, datetime]:
    match = PREFIX_RE.match(value.strip())
    if not match:
        raise InvalidValue(name, "search.date", f"{name}: a date or dateTime with an optional "
                           "prefix (eq, gt, ge, lt, le), e.g. ge2026-04-01")
    prefix = match.group(1) or "eq"
    if prefix not in ("eq", "gt", "ge", "lt", "le"):
        raise InvalidValue(name, "search.prefix", f"{name}: prefix one of eq gt ge lt le")
    text = match.group(2).replace(" ", "T").replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text) if "T" in text else \
            datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    except ValueError:
        raise InvalidValue(name, "search.date", f"{name}: not a valid date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return prefix, moment


def _compare(prefix: str, bound: datetime, date_only: bool
             ) -> Callable[[str], bool]:
    def test(value: str) -> bool:
        if not value:
            return False
        v = datetime.fromisoformat(value) if "T" in value else \
            datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        if v.tzinfo is None:
            v = v.replace(tzinfo=UTC)
        if prefix == "eq":
            if date_only:
                return v.date() == bound.date()
            return v == bound
        return {"gt": v > bound, "ge": v >= bound, "lt": v < bound, "le": v <= bound}[prefix]
    return test


Text = Annotated[str | None, Query(max_length=120)]


@router.get("/{resource_type}", summary="Search: patient, _lastUpdated, status, created, "
            "identifier (claim number); Bundle pages of _count")
def search(resource_type: str, request: Request, ledger: ReadLedgerDep, identity: IdentityDep,
           patient: Text = None, status: Annotated[str | None, Query(max_length=40)] = None,
           identifier: Text = None,
           last_updated: Annotated[list[str] | None, Query(alias="_lastUpdated",
                                                           max_length=4)] = None,
           created: Annotated[list[str] | None, Query(max_length=4)] = None,
           count: Annotated[int, Query(alias="_count", ge=1, le=MAX_COUNT)] = 50,
           cursor: Annotated[str | None, Query(alias="_cursor", max_length=40)] = None,
           min_position: MinPosition = None) -> Response:
    _type(resource_type)
    if patient is not None and patient.startswith("Patient/"):
        patient = patient[len("Patient/"):]
    claim_number = None
    if identifier is not None:
        claim_number = identifier.split("|", 1)[1] if "|" in identifier else identifier
    after = 0
    if cursor is not None:
        if not cursor.isdigit():
            raise InvalidValue("_cursor", "cursor.format", "_cursor: not a cursor of this search")
        after = int(cursor)
    filters: list[Callable[[dict[str, Any]], bool]] = []
    since: datetime | None = None
    for raw in last_updated or []:
        prefix, bound = _instant("_lastUpdated", raw)
        test = _compare(prefix, bound, "T" not in raw)
        filters.append(lambda r, t=test: t(r["meta"]["lastUpdated"]))
        if prefix in ("gt", "ge", "eq"):
            since = bound if since is None or bound > since else since
    for raw in created or []:
        prefix, bound = _instant("created", raw)
        test = _compare(prefix, bound, "T" not in raw)
        filters.append(lambda r, t=test: t(r.get("created") or r.get("period", {}).get(
            "start", "")))
    if status is not None:
        filters.append(lambda r: r.get("status") == status)
    sql = ["SELECT c.encounter_id, c.claim_number, c.created_position FROM current_claims c",
           "JOIN claims_encounters e ON e.encounter_id = c.encounter_id",
           "WHERE c.created_position > %s"]
    params: list[Any] = [after]
    if patient is not None:
        sql.append("AND c.patient_ref = %s")
        params.append(patient)
    if claim_number is not None:
        sql.append("AND (c.claim_number = %s OR split_part(c.claim_number, '~', 1) = %s)")
        params += [claim_number, claim_number]
    if since is not None:
        sql.append("AND e.updated_at >= %s")
        params.append(since)  # the encounter's last event bounds its resources' changes
    sql.append("ORDER BY c.created_position LIMIT %s")
    entries: list[dict[str, Any]] = []
    base = str(request.base_url).rstrip("/") + "/fhir"
    cache: dict[UUID, tuple[Any, Stamps] | None] = {}
    seen_coverage: set[str] = set()
    next_cursor: str | None = None
    with _read(request, min_position) as conn:  # a replica's read models, as /claims
        while len(entries) < count:
            rows = conn.execute(" ".join(sql), (*params, 200)).fetchall()
            if not rows:
                next_cursor = None
                break
            for encounter_id, number, position in rows:
                params[0] = position
                got = cache.get(encounter_id, False)
                if got is False:
                    got = _load(ledger, identity, encounter_id)
                    cache[encounter_id] = got
                if got is None:
                    continue
                enc, stamps = got
                claim = enc.claims.get(number)
                if claim is None:
                    continue
                for resource in _of_claim(enc, stamps, claim, resource_type):
                    if resource_type == "Coverage":
                        if resource["id"] in seen_coverage:
                            continue
                        seen_coverage.add(resource["id"])
                    if all(f(resource) for f in filters):
                        entries.append({"fullUrl": f"{base}/{resource_type}/{resource['id']}",
                                        "resource": resource,
                                        "search": {"mode": "match"}})
                if len(entries) >= count:
                    next_cursor = str(position)
                    break
            if len(rows) < 200 and next_cursor is None:
                break
    links = [{"relation": "self", "url": str(request.url)}]
    if next_cursor is not None:
        query = dict(request.query_params) | {"_cursor": next_cursor}
        from urllib.parse import urlencode

        links.append({"relation": "next",
                      "url": f"{base}/{resource_type}?{urlencode(query)}"})
    return FhirResponse({"resourceType": "Bundle", "type": "searchset", "link": links,
                         "entry": entries})


def _load(ledger: Any, identity: Any, encounter_id: UUID) -> tuple[Any, Stamps] | None:
    try:
        enc, stamps = replay_all(ledger.history(encounter_id))
        _checked(identity, enc, "encounter")
    except NotFound:
        return None
    return enc, stamps


def _of_claim(enc: Any, stamps: Stamps, claim: Any, resource_type: str) -> list[dict[str, Any]]:
    if resource_type == "Coverage":
        return [fr.coverage(enc, p, stamps) for p in enc.parties]
    if resource_type == "Claim":
        return [fr.claim_resource(enc, claim, stamps)]
    if resource_type == "ExplanationOfBenefit":
        return [fr.explanation_of_benefit(enc, claim, stamps)] if fr.has_eob(claim) else []
    return [fr.claim_response(enc, claim, a, stamps) for a in claim.adjudications]


# ---------------------------------------------------------------- errors
class FhirErrors:
    """Under /fhir/, every problem+json answer (auth, permission, validation, domain) leaves
    as an OperationOutcome with the same status: one error mapping (api.errors), FHIR's form."""

    CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
             405: "not-supported", 409: "conflict", 412: "conflict", 422: "invalid",
             429: "throttled", 503: "transient"}

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/fhir"):
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] = {}

        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                ctype = headers.get(b"content-type", b"")
                if message["status"] >= 400 and FHIR_JSON.encode() not in ctype:
                    held["start"] = message
                    held["body"] = b""
                    return
                await send(message)
                return
            if "start" in held and message["type"] == "http.response.body":
                held["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                start = held.pop("start")
                status = start["status"]
                try:
                    problem = orjson.loads(held["body"])
                    text = problem.get("detail") or problem.get("title") or ""
                    if problem.get("errors"):
                        text += ": " + "; ".join(f"{e.get('field')}: {e.get('message')}"
                                                 for e in problem["errors"])
                except (orjson.JSONDecodeError, AttributeError):
                    text = held["body"].decode("utf-8", "replace")[:500]
                body = dumps(operation_outcome(
                    "error", self.CODES.get(status, "exception"), str(text)))
                headers = [(k, v) for k, v in start.get("headers", [])
                           if k.lower() not in (b"content-type", b"content-length")]
                headers += [(b"content-type", FHIR_JSON.encode()),
                            (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": status,
                            "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, wrapped)


__all__ = ["FhirErrors", "router"]
