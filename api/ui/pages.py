"""The workbench pages under /ui/: sign-in, billing, audit, advocacy, explanations.

Thin like the API routes: reads replay the encounter (``LedgerApplication``) or query the read
models; forms validate with the API's own request schemas and run the same application
commands (``execute_async``), so the domain's refusals are the API's, shown next to the field
they name. Every page passes ``gate`` first (session, permission table, CSRF on forms) and every
encounter goes through the API's own encounter-access check (``check_encounter_access``).
"""

from __future__ import annotations

import csv
import hmac
import io
import secrets
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import unquote, urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from api import schemas as s
from api.deps import MinPosition, check_encounter_access
from api.routes.queries import _advocate_encounters, _read
from api.ui import queries as uq
from api.ui.gate import UC, UE, gate, may_page, sessions
from api.ui.reference import GROUPS, carc_text, rarc_text
from api.ui.render import render
from api.ui.sessions import COOKIE, SIGNIN_COOKIE, Session
from ledger.audit.access import query_access
from ledger.auth.tokens import Identity
from ledger.domain.commands import ScrubClaim
from ledger.domain.encounter import Encounter
from ledger.domain.errors import InvalidValue, LedgerError, NotFound
from ledger.explain import describe, explain, figures_of
from ledger.projections import queries as q
from ledger.views import claim_view, diff_claims, encounter_view, event_view

router = APIRouter(dependencies=[Depends(gate)])


# ---------------------------------------------------------------------------- helpers
def _identity(request: Request) -> Identity:
    return request.state.identity


def _session(request: Request) -> Session:
    return request.state.session


def _ledger(request: Request) -> Any:
    return request.app.state.ledger


def _pool(request: Request) -> Any:
    return request.app.state.pool


def _encounter(request: Request, encounter_id: UUID, version: int | None = None) -> Encounter:
    """The encounter (optionally as of a version) after the API's encounter-access check."""
    ledger = _ledger(request)
    current = ledger.get_encounter(encounter_id)
    check_encounter_access(_identity(request), current)
    if version is None or version == current.version:
        return current
    if not 1 <= version <= current.version:
        raise NotFound("version", "version.exists",
                       f"version: the encounter is at version {current.version}")
    return ledger.get_encounter(encounter_id, version=version)


def _cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is quoted (CSV injection); amounts,
    which are not text here, keep their minus sign."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv(name: str, header: list[str], rows: list[list[Any]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def _page(request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    identity = getattr(request.state, "identity", None)
    session = getattr(request.state, "session", None)
    return render(request, template, status_code=status_code, identity=identity,
                  csrf_token=session.csrf_token if session else "",
                  may=lambda method, tpl: identity is not None and may_page(
                      identity.role, method, tpl), **ctx)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


# ---------------------------------------------------------------------------- sign-in
@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request, next: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = _page(request, "signin.html", signin_csrf=token, next=next, error="")
    response.set_cookie(SIGNIN_COOKIE, token, max_age=600, path="/ui", httponly=True,
                        samesite="strict", secure=_secure(request))
    return response


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request, token: Annotated[str, Form(max_length=300)] = "",
                 csrf_token: Annotated[str, Form(max_length=100)] = "",
                 next: Annotated[str, Form(max_length=2000)] = "") -> Response:
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not csrf_token or not hmac.compare_digest(expected, csrf_token):
        raise HTTPException(403, "the form's CSRF token is missing or wrong; reload the "
                            "sign-in page and try again")
    state = request.app.state
    client = request.client.host if request.client else "unknown"
    if state.auth_failures.blocked(client):
        raise HTTPException(429, "too many failed sign-ins; retry later")
    identity = await run_in_threadpool(state.auth.authenticate, token.strip())
    if identity is None:
        state.auth_failures.failed(client)
        return _page(request, "signin.html", status_code=401, signin_csrf=expected,
                     next=next, error="That token is not valid (or it was revoked).")
    session_id, _ = await run_in_threadpool(sessions(request).start, identity)
    target = unquote(next) if next else "/ui/"
    if not target.startswith("/ui/") or target.startswith("//"):
        target = "/ui/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, session_id,
                        max_age=int(sessions(request).lifetime.total_seconds()),
                        path="/ui", httponly=True, samesite="strict", secure=_secure(request))
    response.delete_cookie(SIGNIN_COOKIE, path="/ui")
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    await run_in_threadpool(sessions(request).end, request.cookies.get(COOKIE))
    response = RedirectResponse("/ui/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict",
                           secure=_secure(request))
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return _page(request, "home.html")


# ---------------------------------------------------------------------------- billing
@router.get("/claims", response_class=HTMLResponse)
def claim_search(request: Request,
                 claim_number: Annotated[str, Query(max_length=38)] = "",
                 patient_ref: Annotated[str, Query(max_length=80)] = "",
                 payer_id: Annotated[str, Query(max_length=80)] = "",
                 status: Annotated[str, Query(max_length=20)] = "",
                 dos_from: Annotated[str, Query(max_length=10)] = "",
                 dos_to: Annotated[str, Query(max_length=10)] = "",
                 outstanding: bool = False,
                 sort: Annotated[str, Query(max_length=20)] = "created_position",
                 order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
                 page: Annotated[int, Query(ge=1, le=100000)] = 1,
                 format: Annotated[str, Query(pattern="^(html|csv)$")] = "html",
                 min_position: MinPosition = None) -> Response:
    errors: dict[str, str] = {}
    dates: dict[str, date | None] = {}
    for name, text in (("dos_from", dos_from), ("dos_to", dos_to)):
        try:  # an empty date field of the search form means "any"
            dates[name] = date.fromisoformat(text) if text else None
        except ValueError:
            dates[name] = None
            errors[name] = f"{name}: a date like 2026-03-10"
    f = uq.ClaimSearch(claim_number.strip(), patient_ref.strip(), payer_id.strip(),
                       status.strip(), dates["dos_from"], dates["dos_to"], outstanding, sort,
                       order, page)
    identity = _identity(request)
    rows: list[dict[str, Any]] = []
    more = False
    try:
        with _read(request, min_position) as conn:  # the API's read rule (api.deps)
            mine = _advocate_encounters(conn, identity) if identity.role == "advocate" \
                else None
            if not errors:
                rows, more = uq.search_claims(conn, f, per_page=1000 if format == "csv"
                                              else uq.PER_PAGE, encounters=mine)
    except InvalidValue as exc:
        errors.setdefault(exc.field, exc.message)
    if format == "csv":
        cols = ["claim_number", "encounter_id", "payer_id", "status", "service_from",
                "total_charge", "paid", "patient_responsibility", "outstanding"]
        return _csv("claims", cols, [[r[c] for c in cols] for r in rows])
    params = {k: v for k, v in request.query_params.items() if k not in ("page", "format")}
    return _page(request, "claims.html", f=f, rows=rows, more=more, errors=errors,
                 statuses=q.CLAIM_STATUSES, params=params,
                 status_code=422 if errors else 200)


@router.get("/payers", response_class=HTMLResponse)
def payers(request: Request, as_of: date | None = None,
           format: Annotated[str, Query(pattern="^(html|csv)$")] = "html",
           min_position: MinPosition = None) -> Response:
    with _read(request, min_position) as conn:
        rows = q.payer_balances(conn, as_of=as_of)
    buckets = [name for name, _, _ in q.AGING_BUCKETS]
    if format == "csv":
        cols = ["payer_id", "party_kind", "claims", "open_claims", "billed", "paid",
                "contractual", "patient_responsibility", "written_off", "outstanding",
                *(f"aging_{b}" for b in buckets)]
        return _csv("payer-balances", cols, [[r[c] for c in cols] for r in rows])
    return _page(request, "payers.html", rows=rows, buckets=buckets,
                 as_of=as_of or date.today())


@router.get("/payers/explain", response_class=HTMLResponse)
def payer_explain(request: Request, payer_id: Annotated[str, Query(max_length=80)],
                  party_kind: Annotated[str, Query(max_length=20)],
                  bucket: Annotated[str | None, Query(max_length=10)] = None,
                  as_of: date | None = None,
                  format: Annotated[str, Query(pattern="^(html|csv)$")] = "html",
                  min_position: MinPosition = None) -> Response:
    with _read(request, min_position) as conn:
        rows = [r for r in q.payer_balances(conn, payer_id, as_of=as_of)
                if r["party_kind"] == party_kind]
        if not rows:
            raise NotFound("payer_id", "payer.exists", "payer_id: no balances for that payer")
        claims = uq.payer_claims(conn, payer_id, party_kind, bucket, as_of)
    figure = rows[0][f"aging_{bucket}"] if bucket else rows[0]["outstanding"]
    total = sum((c["outstanding"] for c in claims), start=type(figure)(0))
    if format == "csv":
        cols = ["claim_number", "encounter_id", "status", "submitted_on", "outstanding"]
        return _csv("payer-outstanding", cols, [[c[k] for k in cols] for c in claims])
    return _page(request, "payer_explain.html", payer_id=payer_id, party_kind=party_kind,
                 bucket=bucket, figure=figure, total=total, claims=claims,
                 as_of=as_of or date.today())


@router.get(UE, response_class=HTMLResponse)
def encounter_page(request: Request, encounter_id: UUID, done: str = "") -> HTMLResponse:
    enc = _encounter(request, encounter_id)
    return _encounter_page(request, enc, done=done)


def _encounter_page(request: Request, enc: Encounter, *, status_code: int = 200,
                    errors: dict[str, str] | None = None, form: str = "",
                    values: dict[str, Any] | None = None, done: str = "") -> HTMLResponse:
    return _page(request, "encounter.html", status_code=status_code, enc=enc,
                 view=encounter_view(enc), errors=errors or {}, form=form,
                 values=values or {}, done=done, today=date.today())


def _claim_parts(request: Request, enc: Encounter, claim_number: str) -> dict[str, Any]:
    claim = enc._claim(claim_number)
    history = _ledger(request).history(enc.id)
    mine = [e for e in history if e.originator_version <= enc.version
            and getattr(e, "claim_number", None) == claim_number]
    return {
        "claim": claim, "view": claim_view(enc, claim),
        "timeline": [event_view(e) for e in mine],
        "submissions": [event_view(e) for e in mine if type(e).__name__ == "ClaimSubmitted"],
        "remittances": [event_view(e) for e in mine
                        if type(e).__name__ == "RemittanceReceived"],
        "adjudications": claim.adjudications,
        "parties": {p.bucket: p for p in enc.parties},
    }


@router.get(UC, response_class=HTMLResponse)
def claim_page(request: Request, encounter_id: UUID, claim_number: str,
               done: str = "") -> HTMLResponse:
    enc = _encounter(request, encounter_id)
    return _claim_page(request, enc, claim_number, done=done)


def _claim_page(request: Request, enc: Encounter, claim_number: str, *,
                status_code: int = 200, errors: dict[str, str] | None = None,
                form: str = "", values: dict[str, Any] | None = None,
                done: str = "") -> HTMLResponse:
    return _page(request, "claim.html", status_code=status_code, enc=enc,
                 errors=errors or {}, form=form, values=values or {}, done=done,
                 today=date.today(), carc_text=carc_text, rarc_text=rarc_text, groups=GROUPS,
                 **_claim_parts(request, enc, claim_number))


# ---------------------------------------------------------------------------- forms
def _form_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for e in exc.errors():
        field = str(e["loc"][0]) if e.get("loc") else "form"
        errors.setdefault(field, f"{field}: {e.get('msg', 'invalid')}")
    return errors


async def _run_form(request: Request, encounter_id: UUID, *, form_name: str,
                    schema: type[BaseModel] | None, command: str,
                    extra: dict[str, Any] | None = None, back: str | None = None,
                    claim_number: str | None = None, convert: Any = None) -> Response:
    """Validate a form with the API's schema, run the API's application command, and either
    go back to the page (303, with a note of what was done) or show the page again with the
    refusal next to the field it names (422)."""
    form = await request.form()
    values = {k: v for k, v in form.items() if k != "csrf_token" and isinstance(v, str)}
    identity = _identity(request)
    ledger = _ledger(request)
    try:
        enc = await run_in_threadpool(_encounter, request, encounter_id)
        data = convert(values) if convert else {k: v for k, v in values.items()
                                                if k not in ("next",) and v != ""}
        kwargs = schema.model_validate(data).command_kwargs() if schema else {}  # type: ignore[attr-defined]
        kwargs.update(extra or {})
        if command == "scrub_claim":
            result = await ledger.handle_async(
                ScrubClaim(encounter_id=encounter_id, claim_number=claim_number),
                actor=identity.actor)
            failed = [f for f in result.value if f.severity == "error"]
            done = "scrub-failed" if failed else "scrubbed"
        else:
            result = await ledger.execute_async(encounter_id, command, actor=identity.actor,
                                                **kwargs)
            done = form_name
    except ValidationError as exc:
        errors = _form_errors(exc)
    except LedgerError as exc:
        if isinstance(exc, NotFound) and exc.field == "encounter_id":
            raise
        errors = {exc.field: exc.message}
    else:
        target = back or f"/ui/encounters/{encounter_id}"
        # as the API's commands: the write's position, kept by the browser in the
        # ledger_min_position cookie (api.deps.PositionCookie) for the pages it reads next
        written = {} if result.position is None else {"X-Log-Position": str(result.position)}
        return RedirectResponse(f"{target}?{urlencode({'done': done})}", status_code=303,
                                headers=written)
    enc = await run_in_threadpool(_encounter, request, encounter_id)
    if claim_number is not None:
        return await run_in_threadpool(lambda: _claim_page(
            request, enc, claim_number, status_code=422, errors=errors, form=form_name,
            values=values))
    return await run_in_threadpool(lambda: _encounter_page(
        request, enc, status_code=422, errors=errors, form=form_name, values=values))


def _listed(values: dict[str, Any], *names: str) -> dict[str, Any]:
    """Comma-separated form fields (pointers, modifiers) as lists, empty fields dropped."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if k == "next" or v == "":
            continue
        out[k] = [x.strip() for x in v.split(",") if x.strip()] if k in names else v
    return out


def _claim_back(values: dict[str, Any], encounter_id: UUID) -> str | None:
    nxt = values.get("next", "")
    return nxt if isinstance(nxt, str) and nxt.startswith(f"/ui/encounters/{encounter_id}") \
        else None


@router.post(UE + "/lines")
async def add_line(request: Request, encounter_id: UUID) -> Response:
    return await _run_form(request, encounter_id, form_name="add-line", schema=s.AddLine,
                           command="add_service_line",
                           convert=lambda v: _listed(v, "pointers", "modifiers"))


@router.post(UE + "/lines/{line_no}/revise")
async def revise_line(request: Request, encounter_id: UUID, line_no: int) -> Response:
    return await _run_form(request, encounter_id, form_name=f"revise-line-{line_no}",
                           schema=s.ReviseLine, command="revise_service_line",
                           extra={"line_no": line_no},
                           convert=lambda v: _listed(v, "pointers", "modifiers"))


@router.post(UE + "/diagnoses/{position}/revise")
async def revise_diagnosis(request: Request, encounter_id: UUID, position: int) -> Response:
    return await _run_form(request, encounter_id, form_name=f"revise-dx-{position}",
                           schema=s.ReviseDiagnosis, command="revise_diagnosis",
                           extra={"position": position})


@router.post(UE + "/claims")
async def create_claim(request: Request, encounter_id: UUID) -> Response:
    return await _run_form(request, encounter_id, form_name="create-claim",
                           schema=s.CreateClaim, command="create_claim",
                           convert=lambda v: _listed(v, "line_nos"))


@router.post(UC + "/scrub")
async def scrub_claim(request: Request, encounter_id: UUID, claim_number: str) -> Response:
    return await _run_form(request, encounter_id, form_name="scrub", schema=None,
                           command="scrub_claim", claim_number=claim_number,
                           back=f"/ui/encounters/{encounter_id}/claims/{claim_number}")


@router.post(UC + "/submit")
async def submit_claim(request: Request, encounter_id: UUID, claim_number: str) -> Response:
    return await _run_form(request, encounter_id, form_name="submit", schema=s.SubmitClaim,
                           command="submit_claim", claim_number=claim_number,
                           extra={"claim_number": claim_number},
                           back=f"/ui/encounters/{encounter_id}/claims/{claim_number}")


@router.post(UE + "/patient-payments")
async def patient_payment(request: Request, encounter_id: UUID) -> Response:
    form = await request.form()
    back = _claim_back(dict(form), encounter_id)
    claim = back.rsplit("/claims/", 1)[1] if back and "/claims/" in back else None
    return await _run_form(request, encounter_id, form_name="payment",
                           schema=s.PatientPayment, command="record_patient_payment",
                           back=back, claim_number=claim)


@router.post(UE + "/write-offs")
async def write_off(request: Request, encounter_id: UUID) -> Response:
    form = await request.form()
    back = _claim_back(dict(form), encounter_id)
    claim = back.rsplit("/claims/", 1)[1] if back and "/claims/" in back else None
    return await _run_form(request, encounter_id, form_name="write-off", schema=s.WriteOff,
                           command="write_off", back=back, claim_number=claim)


def _exception_rows(request: Request) -> tuple[list[dict[str, Any]], list[str]]:
    with _pool(request).connection() as conn:
        rows = uq.exceptions(conn)
    return rows, list(rows[0]) if rows else []


def _exceptions_page(request: Request, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    rows, cols = _exception_rows(request)
    ctx.setdefault("errors", {})
    ctx.setdefault("form", "")
    ctx.setdefault("values", {})
    return _page(request, "exceptions.html", status_code=status_code, rows=rows, cols=cols,
                 **ctx)


@router.get("/exceptions", response_class=HTMLResponse)
def exceptions_queue(request: Request,
                     format: Annotated[str, Query(pattern="^(html|csv)$")] = "html",
                     done: Annotated[str, Query(max_length=40)] = "") -> Response:
    if format == "csv":
        rows, cols = _exception_rows(request)
        return _csv("exceptions", cols, [[r[c] for c in cols] for r in rows])
    return _exceptions_page(request, done=done)


@router.post("/exceptions/{exception_id}/resolve", response_class=HTMLResponse)
async def resolve_exception(request: Request, exception_id: UUID) -> Response:
    """Work an exception as POST /exceptions/{id}/resolve does: a resolution event appended
    (never a row edited); a refusal is shown next to the field it names."""
    from ledger.x12.exceptions import resolve

    form = await request.form()
    values = {k: v for k, v in form.items() if k != "csrf_token" and isinstance(v, str)}
    actor_id = _identity(request).actor.id

    def record() -> None:
        with _pool(request).connection() as conn:
            resolve(conn, str(exception_id), action=values.get("action", ""),
                    reason=values.get("reason", ""), actor_id=actor_id)

    try:
        await run_in_threadpool(record)
    except LedgerError as exc:
        errors = {exc.field: exc.message}
        return await run_in_threadpool(
            lambda: _exceptions_page(request, status_code=422, errors=errors,
                                     form=f"resolve-{exception_id}", values=values))
    return RedirectResponse(f"/ui/exceptions?done={exception_id}", status_code=303)


@router.get("/x12", response_class=HTMLResponse)
def x12_form(request: Request) -> HTMLResponse:
    return _page(request, "x12.html", report=None, outcome="")


@router.post("/x12", response_class=HTMLResponse)
async def x12_upload(request: Request) -> HTMLResponse:
    from ledger.x12.importer import X12Importer

    form = await request.form()
    upload = form.get("file")
    kind = form.get("kind", "835")
    if upload is None or isinstance(upload, str):
        return _page(request, "x12.html", status_code=422, report=None, outcome="",
                     errors={"file": "file: choose an X12 file to upload"})
    body = await upload.read()
    expect = "835" if kind == "835" else "837P|837I|999|277CA"
    state = request.app.state
    importer = X12Importer(state.ledger, state.database_url, actor=_identity(request).actor)
    result = await run_in_threadpool(importer.import_bytes, body,
                                     (upload.filename or "upload")[:200], expect=expect)
    report = result.as_dict()
    status = {"quarantined": 422, "error": 400}.get(result.outcome, 200)
    return _page(request, "x12.html", status_code=status, report=report,
                 outcome=result.outcome, errors={})


# ---------------------------------------------------------------------------- auditors
@router.get(UE + "/timeline", response_class=HTMLResponse)
def timeline(request: Request, encounter_id: UUID,
             version: Annotated[int | None, Query(ge=1)] = None,
             as_of: datetime | None = None,
             format: Annotated[str, Query(pattern="^(html|csv)$")] = "html") -> Response:
    current = _encounter(request, encounter_id)
    if as_of is not None:
        if as_of.tzinfo is None:
            from datetime import UTC
            as_of = as_of.replace(tzinfo=UTC)
        version = _ledger(request).version_at(encounter_id, as_of)
    shown = _encounter(request, encounter_id, version)
    events = [event_view(e) | {"detail": describe(e)}
              for e in _ledger(request).history(encounter_id)]
    if format == "csv":
        cols = ["version", "type", "recorded_at", "actor_id", "actor_role", "detail", "reason"]
        return _csv("timeline", cols, [[e[c] for c in cols] for e in events])
    return _page(request, "timeline.html", enc=current, shown=shown,
                 view=encounter_view(shown), events=events)


@router.get(UE + "/diff", response_class=HTMLResponse)
def diff(request: Request, encounter_id: UUID,
         from_version: Annotated[int, Query(ge=1)] = 1,
         to_version: Annotated[int | None, Query(ge=1)] = None) -> HTMLResponse:
    current = _encounter(request, encounter_id)
    to_version = to_version or current.version
    if from_version > to_version:
        from_version, to_version = to_version, from_version
    before = _encounter(request, encounter_id, from_version)
    after = _encounter(request, encounter_id, to_version)

    def coding(enc: Encounter) -> dict[str, Any]:
        view = encounter_view(enc)
        return {"diagnoses": [d["code"] for d in view["diagnoses"]], "lines": view["lines"],
                "status": None, "charge": view["total_charge"]}

    events = [event_view(e) | {"detail": describe(e)}
              for e in _ledger(request).history(encounter_id)
              if from_version < e.originator_version <= to_version]
    claims = []
    for number in sorted(set(before.claims) | set(after.claims)):
        b, a = before.claims.get(number), after.claims.get(number)
        claims.append((number, diff_claims(claim_view(before, b) if b else None,
                                           claim_view(after, a) if a else None)))
    return _page(request, "diff.html", enc=current, from_version=from_version,
                 to_version=to_version, changes=diff_claims(coding(before), coding(after)),
                 claims=claims, events=events)


@router.get(UE + "/access", response_class=HTMLResponse)
def access_log(request: Request, encounter_id: UUID,
               format: Annotated[str, Query(pattern="^(html|csv)$")] = "html") -> Response:
    enc = _encounter(request, encounter_id)
    records = [r.as_dict() for r in query_access(_pool(request), encounter_id=encounter_id,
                                                 limit=500)]
    cols = ["id", "at", "actor", "actor_role", "resource_type", "resource_id", "route",
            "client", "outcome", "status"]
    if format == "csv":
        return _csv("access-log", cols, [[r[c] for c in cols] for r in records])
    return _page(request, "access.html", enc=enc, records=records)


@router.get("/code-revisions", response_class=HTMLResponse)
def code_revisions(request: Request,
                   by: Annotated[str, Query(pattern="^(coder|code)$")] = "coder",
                   format: Annotated[str, Query(pattern="^(html|csv)$")] = "html",
                   min_position: MinPosition = None) -> Response:
    with _read(request, min_position) as conn:
        rows = q.code_revisions_by_coder(conn, limit=200) if by == "coder" else \
            q.code_revisions_by_code(conn, limit=200)
    cols = list(rows[0]) if rows else []
    if format == "csv":
        return _csv("code-revisions", cols, [[r[c] for c in cols] for r in rows])
    return _page(request, "code_revisions.html", rows=rows, cols=cols, by=by)


@router.get("/verify", response_class=HTMLResponse)
def verify_page(request: Request, encounter_id: UUID | None = None,
                run: bool = False) -> HTMLResponse:
    from ledger.audit.checkpoints import latest_checkpoint, trusted_public_key

    with _pool(request).connection() as conn:
        checkpoint = latest_checkpoint(conn)
    report = None
    if run or encounter_id is not None:
        from ledger.audit.verify import verify
        from ledger.config import get_settings

        report = verify(request.app.state.database_url, encounter=encounter_id,
                        public_key=trusted_public_key(),
                        export_dir=get_settings().export_dir).as_dict()
    return _page(request, "verify.html", checkpoint=checkpoint, report=report,
                 encounter_id=encounter_id)


# ---------------------------------------------------------------------------- advocates
@router.get("/disputes", response_class=HTMLResponse)
def my_disputes(request: Request, open_only: bool = False,
                format: Annotated[str, Query(pattern="^(html|csv)$")] = "html",
                min_position: MinPosition = None) -> Response:
    identity = _identity(request)
    # the API's rule: an advocate sees only their own disputes
    assignee = identity.user_id if identity.role == "advocate" else None
    with _read(request, min_position) as conn:
        page = q.work_queue(conn, kind="dispute", open_only=open_only, assignee=assignee,
                            limit=q.MAX_LIMIT)
    rows = page.items
    cols = ["item_ref", "encounter_id", "claim_number", "status", "category", "line_nos",
            "notes", "outcome", "deadline", "opened_at"]
    if format == "csv":
        return _csv("disputes", cols, [[r.get(c) for c in cols] for r in rows])
    return _page(request, "disputes.html", rows=rows, open_only=open_only)


@router.get(UE + "/disputes/{dispute_id}", response_class=HTMLResponse)
def dispute_page(request: Request, encounter_id: UUID, dispute_id: str) -> HTMLResponse:
    enc = _encounter(request, encounter_id)
    dispute = enc.disputes.get(dispute_id)
    if dispute is None:
        raise NotFound("dispute_id", "dispute.exists", "dispute_id: no such dispute")
    trail = [event_view(e) for e in _ledger(request).history(encounter_id)
             if getattr(e, "dispute_id", None) == dispute_id]
    lines = [enc.lines[str(n)] for n in dispute.line_nos if str(n) in enc.lines]
    return _page(request, "dispute.html", enc=enc, dispute=dispute, trail=trail, lines=lines)


@router.get(UE + "/statement", response_class=HTMLResponse)
def statement(request: Request, encounter_id: UUID,
              format: Annotated[str, Query(pattern="^(html|csv)$")] = "html") -> Response:
    enc = _encounter(request, encounter_id)
    history = _ledger(request).history(encounter_id)
    statements = [event_view(e) for e in history if type(e).__name__ == "StatementIssued"]
    payments = [event_view(e) for e in history
                if type(e).__name__ in ("PatientPaymentReceived", "RefundIssued")]
    lines = [ln for ln in enc.lines.values() if not ln.removed]
    if format == "csv":
        return _csv("statement", ["line_no", "code", "line_date", "charge", "paid", "allowed"],
                    [[ln.line_no, ln.procedure_code or ln.revenue_code, ln.line_date,
                      ln.current_charge, ln.paid, ln.allowed] for ln in lines])
    return _page(request, "statement.html", enc=enc, lines=lines, statements=statements,
                 payments=payments)


# ---------------------------------------------------------------------------- explain
@router.get(UE + "/explain", response_class=HTMLResponse)
def explain_page(request: Request, encounter_id: UUID,
                 figure: Annotated[str, Query(max_length=120)] = "balance:patient",
                 format: Annotated[str, Query(pattern="^(html|csv)$")] = "html") -> Response:
    enc = _encounter(request, encounter_id)
    result = explain(_ledger(request).history(encounter_id), figure)
    if format == "csv":
        cols = ["version", "event", "recorded_at", "effective_date", "actor_id",
                "actor_role", "detail", "reason", "amount"]
        return _csv("explanation", cols, [[p[c] for c in cols] for p in result["parts"]])
    return _page(request, "explain.html", enc=enc, result=result, figures=figures_of(enc))
