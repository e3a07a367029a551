"""Projection "audit": the audit trail, one row per event in log order.

Each row says who (actor id and role), what (event type and a readable summary with
before → after for revisions), why (the reason given), when it was recorded and when it took
effect (date of service for coding, adjudication/payment/statement dates for billing), and
which claim and codes it concerns, so that auditors can query by encounter, claim, actor,
code or time range. Summaries name codes, amounts and reasons, never patients: no names,
member ids or patient references, and no free text from disputes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.domain.encounter import Encounter
from ledger.domain.period import AccountingPeriod, period_bounds
from ledger.domain.values import icd10cm_dotted
from ledger.projections.base import PagedEvent, ReadModel, event_name
from ledger.projections.rows import JsonValue, amount, copy_rows, delete_where_in

AUDIT_COLUMNS = ("position", "encounter_id", "version", "event_type", "actor_id", "actor_role",
                 "reason", "recorded_at", "effective_date", "claim_number", "codes", "amount",
                 "summary", "changes", "period")


class EncounterContext:
    """What the audit projection remembers about an encounter to describe later events."""

    __slots__ = ("service_from", "line_codes", "events")

    def __init__(self, service_from: date, line_codes: dict[str, str], events: int) -> None:
        self.service_from = service_from
        self.line_codes = line_codes
        self.events = events


Row = tuple[str, list[str], str | None, Decimal | None, date | None, dict[str, Any] | None]


class AuditTrailView(ReadModel):
    name = "audit"
    tables = ("audit_trail", "audit_encounters")
    keys = {"audit_trail": ("position",), "audit_encounters": ("encounter_id",)}

    def apply(self, curs: Cursor[DictRow], events: Sequence[PagedEvent]) -> None:
        # a period close is its accounting period's event: a row naming the period
        rows = [_period_closed(pe) for pe in events
                if isinstance(pe.event, AccountingPeriod.PeriodClosed)]
        events = [pe for pe in events if isinstance(pe.event, Encounter.Event)]
        ids = list(dict.fromkeys(e.encounter_id for e in events))
        ctx: dict[UUID, EncounterContext] = {}
        curs.execute("SELECT * FROM audit_encounters WHERE encounter_id = ANY(%s)", (ids,))
        for r in curs.fetchall():
            ctx[r["encounter_id"]] = EncounterContext(r["service_from"], dict(r["line_codes"]),
                                                      r["events"])
        for pe in events:
            e = pe.event
            c = ctx.get(pe.encounter_id)
            if c is None:
                if type(e).__name__ != "Opened":
                    raise LookupError(f"audit: event {pe.position} for an encounter the view "
                                      "does not hold")
                c = ctx[pe.encounter_id] = EncounterContext(e.service_from, {}, 0)
            describe = DESCRIBERS.get(type(e).__name__, _plain)
            summary, codes, claim, money, effective, changes = describe(e, c)
            c.events += 1
            rows.append((pe.position, pe.encounter_id, e.originator_version, event_name(e),
                         e.actor_id, e.actor_role, e.reason or "", e.timestamp, effective, claim,
                         codes, money, summary,
                         JsonValue(changes) if changes is not None else None, None))
        copy_rows(curs, "audit_trail", AUDIT_COLUMNS, rows)
        delete_where_in(curs, "audit_encounters", "encounter_id", ids)
        copy_rows(curs, "audit_encounters", ("encounter_id", "service_from", "line_codes",
                                             "events"),
                  ((eid, c.service_from, JsonValue(c.line_codes), c.events)
                   for eid, c in ctx.items()))


def _period_closed(pe: PagedEvent) -> tuple[Any, ...]:
    """Who closed which period, when, why, at which log position, under which checkpoint.
    Effective date: the period's last day."""
    e = pe.event
    _, end = period_bounds(e.period)
    checkpoint = {"tree_size": e.tree_size, "root_hash": e.root_hash, "key_id": e.key_id,
                  "last_position": e.checkpoint_position}
    summary = (f"period {e.period} closed at log position {e.position}; checkpoint tree size "
               f"{e.tree_size}, root {e.root_hash[:12]}…, key {e.key_id}")
    return (pe.position, None, e.originator_version, "PeriodClosed", e.actor_id, e.actor_role,
            e.reason or "", e.timestamp, (end - timedelta(days=1)).date(), None, [], None,
            summary, JsonValue({"period": e.period, "position": e.position,
                                "checkpoint": checkpoint}), e.period)


# ---------------------------------------------------------------- descriptions
def _dx(code: str) -> str:
    return icd10cm_dotted(code)


def _line_code(kind: str, procedure_code: str, revenue_code: str) -> str:
    return procedure_code or revenue_code


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    if hasattr(value, "amount"):
        return f"{value.amount:.2f}"
    if value is None or value == "":
        return "-"
    return str(value)


def _plain(e: Any, c: EncounterContext) -> Row:
    return (event_name(e), [], getattr(e, "claim_number", None) or None, None, None, None)


def _opened(e: Any, c: EncounterContext) -> Row:
    payers = ", ".join(f"{p.bucket} {p.payer_id or 'self'} ({p.kind})"
                       for p in e.responsible_parties)
    dos = str(e.service_from) if e.service_from == e.service_to else \
        f"{e.service_from}..{e.service_to}"
    return (f"encounter opened: {e.claim_type}, facility {e.facility_id}, DOS {dos}, "
            f"POS {e.place_of_service}; responsible: {payers}", [], None, None,
            e.service_from, None)


def _dx_coded(e: Any, c: EncounterContext) -> Row:
    poa = f", POA {e.poa}" if e.poa else ""
    return (f"diagnosis {_dx(e.code)} coded at position {e.position}{poa} "
            f"({e.code_set_version})", [e.code], None, None, c.service_from, None)


def _dx_revised(e: Any, c: EncounterContext) -> Row:
    return (f"diagnosis {e.position} revised {_dx(e.old_code)} → {_dx(e.new_code)}",
            [e.old_code, e.new_code], None, None, c.service_from,
            {"code": [e.old_code, e.new_code]})


def _dx_removed(e: Any, c: EncounterContext) -> Row:
    return (f"diagnosis {_dx(e.code)} removed from position {e.position}", [e.code], None,
            None, c.service_from, None)


def _line_added(e: Any, c: EncounterContext) -> Row:
    ln = e.line
    code = _line_code(ln.kind, ln.procedure_code, ln.revenue_code)
    c.line_codes[str(ln.line_no)] = code
    what = "supply" if ln.kind == "supply" else "service"
    mods = f"-{'-'.join(ln.modifiers)}" if ln.modifiers else ""
    rev = f" rev {ln.revenue_code}" if ln.revenue_code and ln.procedure_code else ""
    codes = [x for x in (ln.procedure_code, ln.revenue_code) if x]
    return (f"{what} line {ln.line_no} added: {code}{mods}{rev} x{ln.units} {ln.unit_type}, "
            f"charge {_show(ln.charge)}, pointers {_show(list(ln.pointers))}", codes, None,
            amount(ln.charge), ln.line_date, None)


def _line_revised(e: Any, c: EncounterContext) -> Row:
    key = str(e.line_no)
    old_code = c.line_codes.get(key, "")
    changes = {name: [_show(e.before.get(name)), _show(value)] for name, value in e.after.items()}
    parts = "; ".join(f"{name} {b} → {a}" for name, (b, a) in changes.items())
    codes = [old_code] if old_code else []
    new_code = e.after.get("procedure_code") or e.after.get("revenue_code")
    if new_code:
        c.line_codes[key] = new_code
        codes.append(new_code)
    return (f"line {e.line_no} revised: {parts}", codes, None,
            amount(e.after["charge"]) if "charge" in e.after else None,
            e.after.get("line_date") or c.service_from, changes)


def _line_removed(e: Any, c: EncounterContext) -> Row:
    code = c.line_codes.get(str(e.line_no), "")
    return (f"line {e.line_no} ({code}) removed", [code] if code else [], None, None,
            c.service_from, None)


def _charge_adjusted(e: Any, c: EncounterContext) -> Row:
    code = c.line_codes.get(str(e.line_no), "")
    verb = "adjustment reversed" if type(e).__name__ == "ChargeReversed" else "charge adjusted"
    return (f"line {e.line_no} ({code}) {verb} by {_show(e.amount)}", [code] if code else [],
            None, amount(e.amount), c.service_from, None)


def _claim_created(e: Any, c: EncounterContext) -> Row:
    extra = f", replaces {e.replaces} (ICN {e.original_icn})" if e.replaces else ""
    return (f"claim {e.claim_number} created for {e.bucket} payer {e.payer_id}, frequency "
            f"{e.frequency}, lines {_show(list(e.line_nos))}{extra}", [], e.claim_number, None,
            None, None)


def _claim_scrubbed(e: Any, c: EncounterContext) -> Row:
    errors = sorted({f.rule_id for f in e.findings if f.severity == "error"})
    warnings = sorted({f.rule_id for f in e.findings if f.severity != "error"})
    verdict = "passed" if e.passed else "failed"
    detail = "".join([f"; errors {', '.join(errors)}" if errors else "",
                      f"; warnings {', '.join(warnings)}" if warnings else ""])
    return (f"claim {e.claim_number} scrub {verdict} ({e.ruleset_version}){detail}", [],
            e.claim_number, None, None, None)


def _claim_submitted(e: Any, c: EncounterContext) -> Row:
    codes = list(e.diagnoses) + [ln["procedure_code"] or ln.get("revenue_code", "")
                                 for ln in e.lines]
    dx = ", ".join(_dx(d) for d in e.diagnoses)
    return (f"claim {e.claim_number} submitted: {len(e.lines)} lines, total "
            f"{_show(e.total_charge)}, dx {dx}", [x for x in codes if x], e.claim_number,
            amount(e.total_charge), None, None)


def _claim_acknowledged(e: Any, c: EncounterContext) -> Row:
    verdict = "accepted" if e.accepted else "rejected"
    cat = f" ({e.category})" if e.category else ""
    return (f"claim {e.claim_number} {verdict} by {e.source}{cat}", [], e.claim_number, None,
            None, None)


def _remittance(e: Any, c: EncounterContext) -> Row:
    return (f"remittance from payer {e.payer_id} received for claim {e.claim_number}", [],
            e.claim_number, None, e.payment_date, None)


def _claim_adjudicated(e: Any, c: EncounterContext) -> Row:
    adjs = "".join(f", {a.group}-{a.reason} {_show(a.amount)}" for a in e.claim_adjustments)
    rev = f", reverses adjudication {e.reverses_seq}" if e.reverses_seq is not None else ""
    icn = f", ICN {e.payer_icn}" if e.payer_icn else ""
    return (f"claim {e.claim_number} adjudicated CLP02={e.status_code}: charge "
            f"{_show(e.charge)}, paid {_show(e.paid)}, patient responsibility "
            f"{_show(e.patient_responsibility)}{adjs}{icn}{rev}", [], e.claim_number,
            amount(e.paid), e.adjudication_date, None)


def _line_adjudicated(e: Any, c: EncounterContext) -> Row:
    r = e.result
    allowed = f", allowed {_show(r.allowed)}" if r.allowed is not None else ""
    adjs = "".join(f", {a.group}-{a.reason} {_show(a.amount)}" for a in r.adjustments)
    remarks = f", remarks {', '.join(r.remarks)}" if r.remarks else ""
    code = r.procedure_code or c.line_codes.get(str(r.line_no), "")
    return (f"claim {e.claim_number} line {r.line_no} ({code}): submitted "
            f"{_show(r.submitted)}, paid {_show(r.paid)}{allowed}{adjs}{remarks}",
            [code] if code else [], e.claim_number, amount(r.paid), None, None)


def _patient_share(e: Any, c: EncounterContext) -> Row:
    total = amount(e.deductible) + amount(e.coinsurance) + amount(e.copay) + amount(e.other)
    return (f"patient responsibility on claim {e.claim_number} to {e.to_bucket}: deductible "
            f"{_show(e.deductible)}, coinsurance {_show(e.coinsurance)}, copay "
            f"{_show(e.copay)}, other {_show(e.other)}", [], e.claim_number, total, None, None)


def _forwarded(e: Any, c: EncounterContext) -> Row:
    return (f"claim {e.claim_number} forwarded {_show(e.amount)} to {e.to_bucket} payer "
            f"{e.to_payer_id}", [], e.claim_number, amount(e.amount), None, None)


def _plb(e: Any, c: EncounterContext) -> Row:
    return (f"provider adjustment {e.plb_reason} {_show(e.amount)} on claim {e.claim_number}",
            [], e.claim_number, amount(e.amount), None, None)


def _void_settled(e: Any, c: EncounterContext) -> Row:
    return (f"claim {e.claim_number} voided: open payer balance {_show(e.amount)} removed",
            [], e.claim_number, amount(e.amount), None, None)


def _denial(e: Any, c: EncounterContext) -> Row:
    return (f"claim {e.claim_number} denied: CARC {', '.join(e.carc) or '-'}, RARC "
            f"{', '.join(e.rarc) or '-'}; appeal by {e.deadline}", [], e.claim_number, None,
            None, None)


def _appeal_filed(e: Any, c: EncounterContext) -> Row:
    reopened = sum((amount(a.amount) for a in e.reopened), Decimal("0.00"))
    return (f"appeal level {e.level} filed for claim {e.claim_number}, {len(e.documents)} "
            f"document(s), reopens {reopened:.2f}", [], e.claim_number, reopened, e.filed_on,
            None)


def _appeal_decided(e: Any, c: EncounterContext) -> Row:
    return (f"appeal on claim {e.claim_number} decided: {e.outcome}", [], e.claim_number, None,
            e.decided_on, None)


def _statement(e: Any, c: EncounterContext) -> Row:
    return (f"statement {e.statement_no} issued: amount due {_show(e.amount_due)} (deductible "
            f"{_show(e.deductible)}, coinsurance {_show(e.coinsurance)}, copay "
            f"{_show(e.copay)}, other {_show(e.other)})", [], None, amount(e.amount_due),
            e.statement_date, None)


def _payment(e: Any, c: EncounterContext) -> Row:
    return (f"patient payment {_show(e.amount)} by {e.method}; balance after "
            f"{_show(e.balance_after)}", [], None, amount(e.amount), e.received_on, None)


def _refund(e: Any, c: EncounterContext) -> Row:
    return (f"refund {_show(e.amount)} by {e.method}; balance after {_show(e.balance_after)}",
            [], None, amount(e.amount), e.issued_on, None)


def _write_off(e: Any, c: EncounterContext) -> Row:
    on = f" on claim {e.claim_number}" if e.claim_number else ""
    return (f"write-off {_show(e.amount)} from {e.bucket} ({e.category}){on}, approved by "
            f"{e.approver_id}", [], e.claim_number or None, amount(e.amount), None, None)


def _dispute_opened(e: Any, c: EncounterContext) -> Row:
    return (f"dispute {e.dispute_id} opened ({e.category}) on lines {_show(list(e.line_nos))}, "
            f"advocate {e.advocate_id}", [c.line_codes[str(n)] for n in e.line_nos
                                          if str(n) in c.line_codes], None, None, None, None)


def _dispute_note(e: Any, c: EncounterContext) -> Row:
    return (f"note added to dispute {e.dispute_id}", [], None, None, None, None)


def _dispute_resolved(e: Any, c: EncounterContext) -> Row:
    return (f"dispute {e.dispute_id} resolved: {e.outcome}", [], None, None, None, None)


def _access_granted(e: Any, c: EncounterContext) -> Row:
    return (f"access {e.grant_id} granted to {e.grantee_id} until "
            f"{e.valid_until.isoformat()} ({e.basis}, authorization {e.authorization_ref})",
            [], None, None, None, None)


def _access_revoked(e: Any, c: EncounterContext) -> Row:
    return (f"access {e.grant_id} of {e.grantee_id} revoked", [], None, None, None, None)


DESCRIBERS: dict[str, Callable[[Any, EncounterContext], Row]] = {
    "Opened": _opened, "DiagnosisCoded": _dx_coded, "DiagnosisRevised": _dx_revised,
    "DiagnosisRemoved": _dx_removed, "ServiceLineAdded": _line_added,
    "SupplyAdded": _line_added, "ServiceLineRevised": _line_revised,
    "ServiceLineRemoved": _line_removed, "ChargeAdjusted": _charge_adjusted,
    "ChargeReversed": _charge_adjusted, "ClaimCreated": _claim_created,
    "ClaimScrubbed": _claim_scrubbed, "ClaimSubmitted": _claim_submitted,
    "ClaimAcknowledged": _claim_acknowledged, "RemittanceReceived": _remittance,
    "ClaimAdjudicated": _claim_adjudicated, "LineAdjudicated": _line_adjudicated,
    "PatientResponsibilityAssigned": _patient_share, "ClaimForwardedToSecondary": _forwarded,
    "ProviderAdjustmentPosted": _plb, "ClaimVoidSettled": _void_settled, "DenialRecorded": _denial,
    "AppealFiled": _appeal_filed, "AppealDecided": _appeal_decided,
    "StatementIssued": _statement, "PatientPaymentReceived": _payment,
    "RefundIssued": _refund, "WriteOffPosted": _write_off, "DisputeOpened": _dispute_opened,
    "DisputeNoteAdded": _dispute_note, "DisputeResolved": _dispute_resolved,
    "AccessGranted": _access_granted, "AccessRevoked": _access_revoked,
}
