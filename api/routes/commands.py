"""POST commands, one per user action. Each is three lines: body → domain kwargs → run."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from decimal import Decimal
from inspect import iscoroutinefunction
from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Request
from fastapi import routing as fastapi_routing
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials

from api import schemas as s
from api.commands import handled, run_command
from api.deps import (
    ActorDep,
    LedgerDep,
    RawBody,
    authorize,
    current_actor,
    get_ledger,
    raw_body,
)
from ledger.domain import commands as c
from ledger.domain.commands import Command
from ledger.domain.model import Adjustment, LineResult, RemittanceRef, ResponsibleParty
from ledger.domain.values import Money


class CommandRoute(APIRoute):
    """A command route answered without FastAPI's per-request dependency solving on the
    common path (it was ~40 % of a command's framework CPU): the body is parsed once with
    orjson and validated by the route's own body field (the same pydantic validation FastAPI
    runs, once), the path parameters by their own fields, then ``authorize`` (the same
    function every route runs) and the endpoint. Anything off the common path — another
    content type, an empty or malformed body, a value that fails validation — is handed to
    FastAPI's own handler, which answers exactly as before (nothing has run yet: parsing and
    validation are pure)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        slow = super().get_route_handler()
        # FastAPI builds an included route's handler with the inclusion's dependencies (the
        # app-wide ``authorize``) on an "effective" copy it names in a context variable; the
        # plan is made from that copy. Without it the plan finds no ``authorize`` and the
        # route keeps FastAPI's handler: authorization is never skipped.
        route: Any = self
        context_var = getattr(fastapi_routing, "_effective_route_context_var", None)
        effective = context_var.get() if context_var is not None else None
        if effective is not None and effective.original_route is self:
            route = effective
        plan = _fast_plan(route.dependant)
        if plan is None:
            return slow
        path_fields, body_field, extras = plan

        async def app(request: Request) -> Response:
            try:
                raw = await request.body()
            except Exception:  # noqa: BLE001 - FastAPI's handler answers (size limit, 400)
                return await slow(request)
            ctype = request.headers.get("content-type", "")
            if not raw or ctype.partition(";")[0].strip().lower() != "application/json":
                return await slow(request)
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return await slow(request)
            body, errors = body_field.validate(data, {}, loc=("body",))
            if errors:
                return await slow(request)
            kwargs: dict[str, Any] = {body_field.name: body}
            given = request.path_params
            for field in path_fields:
                value, errors = field.validate(given.get(field.alias), {},
                                               loc=("path", field.alias))
                if errors:
                    return await slow(request)
                kwargs[field.name] = value
            header = request.headers.get("authorization")
            scheme, _, token = (header or "").partition(" ")
            token = token.strip()
            credentials = HTTPAuthorizationCredentials(scheme=scheme, credentials=token) \
                if header and scheme and token and scheme.lower() == "bearer" else None
            identity = await authorize(request, credentials)
            if identity is None:  # pragma: no cover - commands are never public
                return await slow(request)
            for name, kind in extras:
                if kind == "request":
                    kwargs[name] = request
                elif kind == "raw":
                    kwargs[name] = raw
                elif kind == "ledger":
                    kwargs[name] = request.app.state.ledger
                else:  # actor: the authenticated identity's, never the body's
                    kwargs[name] = identity.actor  # type: ignore[union-attr]
            return await self.dependant.call(**kwargs)  # type: ignore[misc]

        return app


def _fast_plan(dependant: Any) -> tuple[list[Any], Any, list[tuple[str, str]]] | None:
    """What the fast path needs, or None when the route has anything else (query, header or
    cookie parameters, other dependencies): such a route keeps FastAPI's handler."""
    if dependant.query_params or dependant.header_params or dependant.cookie_params \
            or len(dependant.body_params) != 1 or not iscoroutinefunction(dependant.call):
        return None
    extras: list[tuple[str, str]] = []
    if dependant.request_param_name:
        extras.append((dependant.request_param_name, "request"))
    saw_authorize = False
    for dep in dependant.dependencies:
        if dep.call is authorize and dep.name is None:
            saw_authorize = True
        elif dep.call is raw_body:
            extras.append((dep.name, "raw"))
        elif dep.call is get_ledger:
            extras.append((dep.name, "ledger"))
        elif dep.call is current_actor:
            extras.append((dep.name, "actor"))
        else:
            return None
    if not saw_authorize:
        return None
    return list(dependant.path_params), dependant.body_params[0], extras


router = APIRouter(prefix="/encounters", tags=["commands"], route_class=CommandRoute)

COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "State conflict, lost race, or idempotency key in flight"},
    412: {"description": "If-Match does not match the encounter's version"},
    422: {"description": "Refused: the problem names the field and the rule"},
}


async def _command(request: Request, body: bytes, ledger: Any, actor: Any, command: Command,
                   **options: Any) -> Response:
    return await run_command(request, body, actor, handled(ledger, command, actor), **options)


@router.post("", status_code=201, summary="Open an encounter", responses=COMMAND_RESPONSES)
async def open_encounter(request: Request, body: s.OpenEncounter, raw: RawBody, ledger: LedgerDep,
                   actor: ActorDep) -> Response:
    details = body.model_dump()
    details["responsible_parties"] = [ResponsibleParty(**p) for p in
                                      details["responsible_parties"]]

    def runner(expected_version: int | None, write_with: Any) -> Any:
        return ledger.open_encounter_async(actor=actor, write_with=write_with, **details)

    return await run_command(request, raw, actor, runner, status_code=201, present=str,
                       location=lambda r: f"/encounters/{r.encounter_id}")


@router.post("/{encounter_id}/diagnoses", summary="Code a diagnosis (ICD-10-CM)",
             responses=COMMAND_RESPONSES)
async def code_diagnosis(request: Request, encounter_id: UUID, body: s.CodeDiagnosis, raw: RawBody,
                   ledger: LedgerDep, actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.CodeDiagnosis, encounter_id))


@router.post("/{encounter_id}/diagnoses/{position}/revise", summary="Revise a diagnosis",
             responses=COMMAND_RESPONSES)
async def revise_diagnosis(request: Request, encounter_id: UUID, position: int,
                     body: s.ReviseDiagnosis, raw: RawBody, ledger: LedgerDep,
                     actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.ReviseDiagnosis, encounter_id, position=position))


@router.post("/{encounter_id}/diagnoses/{position}/remove", summary="Remove a diagnosis",
             responses=COMMAND_RESPONSES)
async def remove_diagnosis(request: Request, encounter_id: UUID, position: int, body: s.ReasonOnly,
                     raw: RawBody, ledger: LedgerDep, actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.RemoveDiagnosis, encounter_id, position=position))


@router.post("/{encounter_id}/lines", summary="Add a service line (CPT/HCPCS)",
             responses=COMMAND_RESPONSES)
async def add_service_line(request: Request, encounter_id: UUID, body: s.AddLine, raw: RawBody,
                     ledger: LedgerDep, actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.AddServiceLine, encounter_id))


@router.post("/{encounter_id}/lines/{line_no}/revise", summary="Revise a service line",
             responses=COMMAND_RESPONSES)
async def revise_service_line(request: Request, encounter_id: UUID, line_no: int,
                        body: s.ReviseLine, raw: RawBody, ledger: LedgerDep,
                        actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor, c.ReviseServiceLine(
        encounter_id=encounter_id, line_no=line_no, **_revision(body)))


@router.post("/{encounter_id}/lines/{line_no}/remove", summary="Remove a service line",
             responses=COMMAND_RESPONSES)
async def remove_service_line(request: Request, encounter_id: UUID, line_no: int,
                        body: s.ReasonOnly, raw: RawBody, ledger: LedgerDep,
                        actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.RemoveServiceLine, encounter_id, line_no=line_no))


@router.post("/{encounter_id}/supplies", summary="Add a supply (HCPCS Level II)",
             responses=COMMAND_RESPONSES)
async def add_supply(request: Request, encounter_id: UUID, body: s.AddSupply, raw: RawBody,
               ledger: LedgerDep, actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.AddSupply, encounter_id))


@router.post("/{encounter_id}/lines/{line_no}/charge-adjustments",
             summary="Adjust a line's charge", responses=COMMAND_RESPONSES)
async def adjust_charge(request: Request, encounter_id: UUID, line_no: int, body: s.AdjustCharge,
                  raw: RawBody, ledger: LedgerDep, actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.AdjustCharge, encounter_id, line_no=line_no))


@router.post("/{encounter_id}/claims", summary="Create a claim (original, replacement, void)",
             responses=COMMAND_RESPONSES)
async def create_claim(request: Request, encounter_id: UUID, body: s.CreateClaim, raw: RawBody,
                 ledger: LedgerDep, actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.CreateClaim, encounter_id))


@router.post("/{encounter_id}/claims/{claim_number}/scrub", summary="Scrub a claim",
             responses=COMMAND_RESPONSES)
async def scrub_claim(request: Request, encounter_id: UUID, claim_number: str, raw: RawBody,
                ledger: LedgerDep, actor: ActorDep) -> Response:
    def present(findings: Any) -> Any:
        return {"passed": not any(f.severity == "error" for f in findings),
                "findings": [{"rule_id": f.rule_id, "severity": f.severity,
                              "line_no": f.line_no, "message": f.message} for f in findings]}

    command = c.ScrubClaim(encounter_id=encounter_id, claim_number=claim_number)
    return await run_command(request, raw, actor, handled(ledger, command, actor),
                             present=present)


@router.post("/{encounter_id}/claims/{claim_number}/submit", summary="Submit a scrubbed claim",
             responses=COMMAND_RESPONSES)
async def submit_claim(request: Request, encounter_id: UUID, claim_number: str, body: s.SubmitClaim,
                 raw: RawBody, ledger: LedgerDep, actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.SubmitClaim, encounter_id, claim_number=claim_number))


@router.post("/{encounter_id}/claims/{claim_number}/acknowledgements",
             summary="Record a 999/277CA acknowledgement", responses=COMMAND_RESPONSES)
async def acknowledge_claim(request: Request, encounter_id: UUID, claim_number: str,
                      body: s.Acknowledge, raw: RawBody, ledger: LedgerDep,
                      actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.AcknowledgeClaim, encounter_id, claim_number=claim_number))


def _adjustment(a: s.CasAdjustment) -> Adjustment:
    return Adjustment(a.group, a.reason, Money.parse(a.amount, "amount"),
                      Decimal(a.quantity) if a.quantity else None)


@router.post("/{encounter_id}/claims/{claim_number}/adjudications",
             summary="Post an adjudication (claim and lines, with CAS adjustments)",
             responses=COMMAND_RESPONSES)
async def post_adjudication(request: Request, encounter_id: UUID, claim_number: str,
                      body: s.PostAdjudication, raw: RawBody, ledger: LedgerDep,
                      actor: ActorDep) -> Response:
    lines = [LineResult(ln.line_no, ln.procedure_code, Money.parse(ln.submitted, "submitted"),
                        Money.parse(ln.paid, "paid"),
                        Money.parse(ln.allowed, "allowed") if ln.allowed is not None else None,
                        Decimal(ln.units), tuple(_adjustment(a) for a in ln.adjustments),
                        tuple(ln.remarks)) for ln in body.lines]
    r = body.remittance
    kwargs: dict[str, Any] = {
        "claim_number": claim_number, "status_code": body.status_code,
        "charge": Money.parse(body.charge, "charge"), "paid": Money.parse(body.paid, "paid"),
        "patient_responsibility": Money.parse(body.patient_responsibility,
                                              "patient_responsibility"),
        "payer_icn": body.payer_icn, "adjudication_date": body.adjudication_date,
        "remittance": RemittanceRef(r.payer_id, r.trace_number, r.file_hash, r.payment_date),
        "claim_adjustments": [_adjustment(a) for a in body.claim_adjustments],
        "lines": lines, "remarks": list(body.remarks), "drg_code": body.drg_code,
    }
    return await _command(request, raw, ledger, actor,
                          c.PostAdjudication(encounter_id=encounter_id, **kwargs),
                          present=lambda posted: {"posted": posted})


@router.post("/{encounter_id}/claims/{claim_number}/provider-adjustments",
             summary="Post a provider-level (PLB) adjustment", responses=COMMAND_RESPONSES)
async def post_provider_adjustment(request: Request, encounter_id: UUID, claim_number: str,
                             body: s.ProviderAdjustment, raw: RawBody, ledger: LedgerDep,
                             actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor, body.to(
        c.PostProviderAdjustment, encounter_id, claim_number=claim_number))


@router.post("/{encounter_id}/claims/{claim_number}/denials", summary="Record a denial",
             responses=COMMAND_RESPONSES)
async def record_denial(request: Request, encounter_id: UUID, claim_number: str,
                  body: s.RecordDenial, raw: RawBody, ledger: LedgerDep,
                  actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.RecordDenial, encounter_id, claim_number=claim_number))


@router.post("/{encounter_id}/claims/{claim_number}/appeals", summary="File an appeal",
             responses=COMMAND_RESPONSES)
async def file_appeal(request: Request, encounter_id: UUID, claim_number: str, body: s.FileAppeal,
                raw: RawBody, ledger: LedgerDep, actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.FileAppeal, encounter_id, claim_number=claim_number))


@router.post("/{encounter_id}/claims/{claim_number}/appeals/decision",
             summary="Record an appeal decision", responses=COMMAND_RESPONSES)
async def decide_appeal(request: Request, encounter_id: UUID, claim_number: str,
                  body: s.DecideAppeal, raw: RawBody, ledger: LedgerDep,
                  actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.DecideAppeal, encounter_id, claim_number=claim_number))


@router.post("/{encounter_id}/statements", summary="Issue a patient statement",
             responses=COMMAND_RESPONSES)
async def issue_statement(request: Request, encounter_id: UUID, body: s.IssueStatement,
                    raw: RawBody, ledger: LedgerDep, actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.IssueStatement, encounter_id),
                          present=lambda due: {"amount_due": due})


@router.post("/{encounter_id}/patient-payments", summary="Record a patient payment",
             responses=COMMAND_RESPONSES)
async def record_patient_payment(request: Request, encounter_id: UUID, body: s.PatientPayment,
                           raw: RawBody, ledger: LedgerDep, actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.RecordPatientPayment, encounter_id),
                          present=lambda after: {"balance_after": after})


@router.post("/{encounter_id}/refunds", summary="Refund a patient credit",
             responses=COMMAND_RESPONSES)
async def issue_refund(request: Request, encounter_id: UUID, body: s.Refund, raw: RawBody,
                 ledger: LedgerDep, actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor,
                          body.to(c.IssueRefund, encounter_id),
                          present=lambda after: {"balance_after": after})


@router.post("/{encounter_id}/write-offs", summary="Write off a balance",
             responses=COMMAND_RESPONSES)
async def write_off(request: Request, encounter_id: UUID, body: s.WriteOff, raw: RawBody,
              ledger: LedgerDep, actor: ActorDep) -> Response:
    return await _command(request, raw, ledger, actor, body.to(c.WriteOff, encounter_id))


def _revision(body: s.ReviseLine) -> dict[str, Any]:
    """A line revision: the reason, and only the fields the body sets (a partial update)."""
    changes = body.command_kwargs()
    return {"reason": changes.pop("reason"), "changes": changes}
