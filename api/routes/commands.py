"""POST commands, one per user action: opening an encounter, then one table (``COMMAND_ROUTES``:
name, path, summary, typed command, body model) from which every other command route is
registered. Each runs body → typed command → ``run_command``."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from inspect import Parameter, Signature, iscoroutinefunction
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



# ---------------------------------------------------------------- the typed commands, one table
def _adjustment(a: s.CasAdjustment) -> Adjustment:
    return Adjustment(a.group, a.reason, Money.parse(a.amount, "amount"),
                      Decimal(a.quantity) if a.quantity else None)


def _adjudication(command: type[c.PostAdjudication], body: s.PostAdjudication,
                  encounter_id: UUID, claim_number: str) -> Command:
    lines = [LineResult(ln.line_no, ln.procedure_code, Money.parse(ln.submitted, "submitted"),
                        Money.parse(ln.paid, "paid"),
                        Money.parse(ln.allowed, "allowed") if ln.allowed is not None else None,
                        Decimal(ln.units), tuple(_adjustment(a) for a in ln.adjustments),
                        tuple(ln.remarks)) for ln in body.lines]
    r = body.remittance
    return command(
        encounter_id=encounter_id, claim_number=claim_number, status_code=body.status_code,
        charge=Money.parse(body.charge, "charge"), paid=Money.parse(body.paid, "paid"),
        patient_responsibility=Money.parse(body.patient_responsibility,
                                           "patient_responsibility"),
        payer_icn=body.payer_icn, adjudication_date=body.adjudication_date,
        remittance=RemittanceRef(r.payer_id, r.trace_number, r.file_hash, r.payment_date),
        claim_adjustments=[_adjustment(a) for a in body.claim_adjustments],
        lines=lines, remarks=list(body.remarks), drg_code=body.drg_code)


def _revision(command: type[c.ReviseServiceLine], body: s.ReviseLine, encounter_id: UUID,
              line_no: int) -> Command:
    """A line revision: the reason, and only the fields the body sets (a partial update)."""
    changes = body.command_kwargs()
    return command(encounter_id=encounter_id, line_no=line_no, reason=changes.pop("reason"),
                   changes=changes)


def _scrub_findings(findings: Any) -> Any:
    return {"passed": not any(f.severity == "error" for f in findings),
            "findings": [{"rule_id": f.rule_id, "severity": f.severity,
                          "line_no": f.line_no, "message": f.message} for f in findings]}


def _from_body(command: type[Command], body: s.Body | None, encounter_id: UUID,
               **path: Any) -> Command:
    if body is None:
        return command(encounter_id=encounter_id, **path)  # type: ignore[call-arg]
    return body.to(command, encounter_id, **path)


@dataclass(frozen=True)
class CommandSpec:
    """One command route: ``POST /encounters{path}`` with ``body`` (None: no body) runs
    ``build(command, body, encounter_id, **path parameters)`` and answers ``present(result)``.
    Who may call it: api/permissions.py (the one permission table)."""

    name: str  # the endpoint's name (and so the OpenAPI operationId)
    path: str
    summary: str
    command: type[Command]
    body: type[s.Body] | None
    build: Callable[..., Command] = _from_body
    present: Callable[[Any], Any] | None = None


_PATH_TYPES = {"position": int, "line_no": int, "claim_number": str}
D, L, C = "/{encounter_id}/diagnoses/{position}", "/{encounter_id}/lines", \
    "/{encounter_id}/claims/{claim_number}"
COMMAND_ROUTES = (
    CommandSpec("code_diagnosis", "/{encounter_id}/diagnoses", "Code a diagnosis (ICD-10-CM)",
                c.CodeDiagnosis, s.CodeDiagnosis),
    CommandSpec("revise_diagnosis", f"{D}/revise", "Revise a diagnosis",
                c.ReviseDiagnosis, s.ReviseDiagnosis),
    CommandSpec("remove_diagnosis", f"{D}/remove", "Remove a diagnosis",
                c.RemoveDiagnosis, s.ReasonOnly),
    CommandSpec("add_service_line", L, "Add a service line (CPT/HCPCS)",
                c.AddServiceLine, s.AddLine),
    CommandSpec("revise_service_line", f"{L}/{{line_no}}/revise", "Revise a service line",
                c.ReviseServiceLine, s.ReviseLine, build=_revision),
    CommandSpec("remove_service_line", f"{L}/{{line_no}}/remove", "Remove a service line",
                c.RemoveServiceLine, s.ReasonOnly),
    CommandSpec("add_supply", "/{encounter_id}/supplies", "Add a supply (HCPCS Level II)",
                c.AddSupply, s.AddSupply),
    CommandSpec("adjust_charge", f"{L}/{{line_no}}/charge-adjustments",
                "Adjust a line's charge", c.AdjustCharge, s.AdjustCharge),
    CommandSpec("create_claim", "/{encounter_id}/claims",
                "Create a claim (original, replacement, void)", c.CreateClaim, s.CreateClaim),
    CommandSpec("scrub_claim", f"{C}/scrub", "Scrub a claim", c.ScrubClaim, None,
                present=_scrub_findings),
    CommandSpec("submit_claim", f"{C}/submit", "Submit a scrubbed claim",
                c.SubmitClaim, s.SubmitClaim),
    CommandSpec("acknowledge_claim", f"{C}/acknowledgements",
                "Record a 999/277CA acknowledgement", c.AcknowledgeClaim, s.Acknowledge),
    CommandSpec("post_adjudication", f"{C}/adjudications",
                "Post an adjudication (claim and lines, with CAS adjustments)",
                c.PostAdjudication, s.PostAdjudication, build=_adjudication,
                present=lambda posted: {"posted": posted}),
    CommandSpec("post_provider_adjustment", f"{C}/provider-adjustments",
                "Post a provider-level (PLB) adjustment", c.PostProviderAdjustment,
                s.ProviderAdjustment),
    CommandSpec("record_denial", f"{C}/denials", "Record a denial",
                c.RecordDenial, s.RecordDenial),
    CommandSpec("file_appeal", f"{C}/appeals", "File an appeal", c.FileAppeal, s.FileAppeal),
    CommandSpec("decide_appeal", f"{C}/appeals/decision", "Record an appeal decision",
                c.DecideAppeal, s.DecideAppeal),
    CommandSpec("issue_statement", "/{encounter_id}/statements", "Issue a patient statement",
                c.IssueStatement, s.IssueStatement, present=lambda due: {"amount_due": due}),
    CommandSpec("record_patient_payment", "/{encounter_id}/patient-payments",
                "Record a patient payment", c.RecordPatientPayment, s.PatientPayment,
                present=lambda after: {"balance_after": after}),
    CommandSpec("issue_refund", "/{encounter_id}/refunds", "Refund a patient credit",
                c.IssueRefund, s.Refund, present=lambda after: {"balance_after": after}),
    CommandSpec("write_off", "/{encounter_id}/write-offs", "Write off a balance",
                c.WriteOff, s.WriteOff),
)


def _endpoint(spec: CommandSpec) -> Callable[..., Coroutine[Any, Any, Response]]:
    """The route function of ``spec``, with the signature FastAPI reads (path parameters,
    body model, the raw body, the ledger and the actor as dependencies): the same parameters,
    so the same OpenAPI and the same CommandRoute fast path, as a hand-written handler."""
    options = {"present": spec.present} if spec.present is not None else {}

    async def endpoint(request: Request, encounter_id: UUID, raw: bytes, ledger: Any,
                       actor: Any, body: Any = None, **path: Any) -> Response:
        command = spec.build(spec.command, body, encounter_id, **path)
        return await run_command(request, raw, actor, handled(ledger, command, actor),
                                 **options)

    kw = Parameter.POSITIONAL_OR_KEYWORD
    params = [Parameter("request", kw, annotation=Request),
              Parameter("encounter_id", kw, annotation=UUID)]
    params += [Parameter(name, kw, annotation=_PATH_TYPES[name])
               for name in re.findall(r"{(\w+)}", spec.path) if name != "encounter_id"]
    if spec.body is not None:
        params.append(Parameter("body", kw, annotation=spec.body))
    params += [Parameter("raw", kw, annotation=RawBody),
               Parameter("ledger", kw, annotation=LedgerDep),
               Parameter("actor", kw, annotation=ActorDep)]
    endpoint.__signature__ = Signature(params, return_annotation=Response)  # type: ignore[attr-defined]
    endpoint.__name__ = endpoint.__qualname__ = spec.name
    return endpoint


for _spec in COMMAND_ROUTES:
    router.add_api_route(_spec.path, _endpoint(_spec), methods=["POST"], name=_spec.name,
                         summary=_spec.summary, responses=COMMAND_RESPONSES)
