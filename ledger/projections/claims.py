"""Projection "claims": current claims with their lines, encounters with balances per bucket,
payer balances (with aging by submission date), patient balances, and the queue of denials,
rejections and disputes with their deadlines.

How a page is applied: the rows of every encounter the page touches are loaded into the
small state objects below, the events are applied to them in log order (mirroring what the
Encounter aggregate's own ``apply`` methods do to its balances and statuses), and the
encounter's rows are written back (delete + COPY). Payer and patient balances are sums over
claims and encounters, kept by adding the difference between each touched claim's (or
encounter's) contribution before and after the page.

Definitions (the money model is the aggregate's: ``ledger/domain/encounter.py``):

- claim ``allowed`` = paid + patient responsibility (CLP04 + CLP05), net of reversals; this
  also covers claim-level (DRG) payments that carry no line-level AMT*B6.
- claim adjustments are net: an appeal takes the denial's adjustments back (an upheld appeal
  reapplies them), so an overturned CO-50 is not counted as contractual.
- claim ``outstanding`` = submitted charge - paid - every (net) CAS adjustment (PR moves to
  the patient or next payer) - write-offs booked to the claim;
  zero for a claim never submitted, replaced (a frequency 7 carries it on) or voided.
- payer ``billed`` = submitted charges of current claims (not replaced, not voided);
  ``open_claims`` = claims submitted, accepted, rejected, denied or in appeal.
- patient ``owed``/``credit`` = sums of the positive/negative patient buckets of their
  encounters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.domain.model import books_adjustment
from ledger.projections.base import PagedEvent, ReadModel, event_name
from ledger.projections.rows import (
    ZERO,
    JsonValue,
    accumulate,
    add_deltas,
    amount,
    copy_rows,
    delete_where_in,
)

CLAIM_STATUS_FOR_CODE = {"1": "paid", "2": "paid", "3": "paid", "19": "paid", "20": "paid",
                         "21": "paid", "4": "denied", "23": "closed", "25": "adjudicated"}
OPEN_STATUSES = frozenset({"submitted", "accepted", "rejected", "denied", "in_appeal"})
BUCKETS = ("primary", "secondary", "tertiary", "patient")
DISPUTE_RESPONSE_DAYS = 30   # response target shown as a dispute's deadline
TIMELY_FILING_DAYS = 365     # rejected claims: Medicare's 12 months from the date of service


# ---------------------------------------------------------------- state
@dataclass(slots=True)
class Line:
    line_no: int
    kind: str
    procedure_code: str
    revenue_code: str
    modifiers: list[str]
    units: Decimal
    unit_type: str
    base_charge: Decimal
    charge_adjustments: Decimal
    pointers: list[int]
    line_date: date
    ndc: str
    removed: bool = False
    allowed: Decimal = ZERO
    paid: Decimal = ZERO

    @property
    def charge(self) -> Decimal:
        return self.base_charge + self.charge_adjustments


@dataclass(slots=True)
class ClaimLine:
    line_no: int
    kind: str
    procedure_code: str
    revenue_code: str
    modifiers: list[str]
    units: Decimal
    unit_type: str
    charge: Decimal
    pointers: list[int]
    line_date: date
    allowed: Decimal = ZERO
    paid: Decimal = ZERO
    patient_responsibility: Decimal = ZERO
    adjustments: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    remarks: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Claim:
    number: str
    created_position: int
    created_at: datetime
    payer_id: str
    party_kind: str
    bucket: str
    frequency: str
    original_icn: str
    replaces: str
    line_nos: list[int]
    replaced_by: str = ""
    status: str = "draft"
    scrub_passed: bool = False
    submissions: int = 0
    diagnoses: list[str] = field(default_factory=list)  # as last submitted
    lines: dict[int, ClaimLine] = field(default_factory=dict)  # as last submitted
    submitted_charge: Decimal | None = None
    submitted_on: date | None = None
    first_submitted_on: date | None = None
    payer_icn: str = ""
    paid: Decimal = ZERO
    patient_responsibility: Decimal = ZERO
    adjustments: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    written_off: Decimal = ZERO
    provider_adjustments: Decimal = ZERO
    reopened: Decimal = ZERO
    denial_deadline: date | None = None
    denied_amount: Decimal | None = None
    appeal_open: bool = False
    appeals: int = 0
    adjudications: int = 0
    last_adjudicated_on: date | None = None
    remarks: list[str] = field(default_factory=list)
    version: int = 0
    last_event: str = ""
    last_position: int = 0
    updated_at: datetime | None = None

    @property
    def superseded(self) -> bool:
        return bool(self.replaced_by) or self.status == "voided"

    def adjustment_total(self, groups: Sequence[str] | None = None) -> Decimal:
        return sum((v for (g, _), v in self.adjustments.items()
                    if groups is None or g in groups), ZERO)

    @property
    def outstanding(self) -> Decimal:
        if not self.submissions or self.status in ("closed", "voided") or self.replaced_by:
            return ZERO
        return (self.submitted_charge or ZERO) - self.paid - self.adjustment_total() - \
            self.written_off


@dataclass(slots=True)
class WorkItem:
    kind: str
    ref: str
    claim_number: str
    payer_id: str
    status: str
    deadline: date | None
    opened_position: int
    opened_at: datetime
    updated_at: datetime
    amount: Decimal | None = None
    reason_codes: list[str] = field(default_factory=list)
    remark_codes: list[str] = field(default_factory=list)
    category: str = ""
    assignee: str = ""
    line_nos: list[int] = field(default_factory=list)
    notes: int = 0
    appeals: int = 0
    outcome: str = ""
    closed_at: datetime | None = None


@dataclass(slots=True)
class Encounter:
    encounter_id: UUID
    patient_ref: str
    facility_id: str
    claim_type: str
    place_of_service: str
    service_from: date
    service_to: date
    parties: list[dict[str, str]]
    opened_at: datetime
    diagnoses: list[str] = field(default_factory=list)
    buckets: dict[str, Decimal] = field(default_factory=dict)
    patient_paid: Decimal = ZERO
    refunded: Decimal = ZERO
    written_off: Decimal = ZERO
    patient_written_off: Decimal = ZERO
    shares: dict[str, Decimal] = field(default_factory=dict)
    provider_adjustments: Decimal = ZERO
    statements: int = 0
    last_statement_date: date | None = None
    last_statement_amount: Decimal | None = None
    last_statement_position: int | None = None
    events: int = 0
    version: int = 0
    last_event: str = ""
    last_position: int = 0
    updated_at: datetime | None = None
    lines: dict[int, Line] = field(default_factory=dict)
    claims: dict[str, Claim] = field(default_factory=dict)
    items: dict[tuple[str, str], WorkItem] = field(default_factory=dict)

    @property
    def first_bucket(self) -> str:
        return self.parties[0]["bucket"]

    def book(self, bucket: str, value: Decimal) -> None:
        self.buckets[bucket] = self.buckets.get(bucket, ZERO) + value

    def balance(self, bucket: str) -> Decimal:
        return self.buckets.get(bucket, ZERO)

    @property
    def total_charge(self) -> Decimal:
        return sum((ln.charge for ln in self.lines.values() if not ln.removed), ZERO)

    def party(self, bucket: str) -> dict[str, str] | None:
        for p in self.parties:
            if p["bucket"] == bucket:
                return p
        return None


# ---------------------------------------------------------------- the view
ENCOUNTER_COLUMNS = (
    "encounter_id", "patient_ref", "facility_id", "claim_type", "place_of_service",
    "service_from", "service_to", "parties", "diagnoses", "total_charge", "balance_primary",
    "balance_secondary", "balance_tertiary", "balance_patient", "patient_paid", "refunded",
    "written_off", "patient_written_off", "deductible", "coinsurance", "copay",
    "other_patient_responsibility", "provider_adjustments", "statements", "last_statement_date",
    "last_statement_amount", "last_statement_position", "events", "version", "last_event",
    "last_position", "opened_at", "updated_at")
LINE_COLUMNS = (
    "encounter_id", "line_no", "kind", "procedure_code", "revenue_code", "modifiers", "units",
    "unit_type", "base_charge", "charge_adjustments", "charge", "pointers", "line_date", "ndc",
    "removed", "allowed", "paid")
CLAIM_COLUMNS = (
    "encounter_id", "claim_number", "created_position", "patient_ref", "facility_id",
    "claim_type", "payer_id", "party_kind", "bucket", "frequency", "original_icn", "replaces",
    "replaced_by", "status", "scrub_passed", "submissions", "service_from", "service_to",
    "diagnoses", "line_nos", "total_charge", "submitted_charge", "submitted_on",
    "first_submitted_on", "payer_icn", "allowed", "paid", "patient_responsibility",
    "contractual", "other_adjustments", "adjustments", "written_off", "provider_adjustments",
    "reopened", "outstanding", "denial_deadline", "denied_amount", "appeal_open", "appeals",
    "adjudications", "last_adjudicated_on", "remarks", "balance_primary", "balance_secondary",
    "balance_tertiary", "balance_patient", "version", "last_event", "last_position",
    "created_at", "updated_at")
CLAIM_LINE_COLUMNS = (
    "encounter_id", "claim_number", "line_no", "kind", "procedure_code", "revenue_code",
    "modifiers", "units", "unit_type", "charge", "pointers", "line_date", "allowed", "paid",
    "patient_responsibility", "adjustments", "remarks")
ITEM_COLUMNS = (
    "encounter_id", "item_kind", "item_ref", "claim_number", "payer_id", "patient_ref",
    "status", "deadline", "amount", "reason_codes", "remark_codes", "category", "assignee",
    "line_nos", "notes", "appeals", "outcome", "opened_position", "opened_at", "updated_at",
    "closed_at")

PAYER_MEASURES = {"claims": "integer", "open_claims": "integer", "billed": "numeric",
                  "allowed": "numeric", "paid": "numeric", "contractual": "numeric",
                  "other_adjustments": "numeric", "patient_responsibility": "numeric",
                  "written_off": "numeric", "provider_adjustments": "numeric",
                  "outstanding": "numeric"}
AGING_MEASURES = {"open_claims": "integer", "outstanding": "numeric"}
PATIENT_MEASURES = {"encounters": "integer", "charged": "numeric", "owed": "numeric",
                    "credit": "numeric", "paid": "numeric", "refunded": "numeric",
                    "written_off": "numeric", "deductible": "numeric", "coinsurance": "numeric",
                    "copay": "numeric", "statements": "integer"}
# "last statement" (patient balances) is the one with the highest log position: it only
# ever moves forward, so it is set by a guarded UPDATE rather than by adding deltas.


class ClaimsView(ReadModel):
    name = "claims"
    tables = ("claims_encounters", "claims_encounter_lines", "current_claims",
              "current_claim_lines", "payer_balances", "payer_aging", "patient_balances",
              "work_queue")
    keys = {
        "claims_encounters": ("encounter_id",),
        "claims_encounter_lines": ("encounter_id", "line_no"),
        "current_claims": ("encounter_id", "claim_number"),
        "current_claim_lines": ("encounter_id", "claim_number", "line_no"),
        "payer_balances": ("payer_id", "party_kind"),
        "payer_aging": ("payer_id", "party_kind", "submitted_on"),
        "patient_balances": ("patient_ref",),
        "work_queue": ("encounter_id", "item_kind", "item_ref"),
    }

    def apply(self, curs: Cursor[DictRow], events: Sequence[PagedEvent]) -> None:
        ids = list(dict.fromkeys(e.encounter_id for e in events))
        states = _load(curs, ids)
        payer: dict[tuple[Any, ...], list[Any]] = {}
        aging: dict[tuple[Any, ...], list[Any]] = {}
        patient: dict[tuple[Any, ...], list[Any]] = {}
        last_statements: dict[str, tuple[int, date, Decimal]] = {}
        for enc in states.values():
            _contribute(enc, payer, aging, patient, -1)
        for pe in events:
            enc = states.get(pe.encounter_id)
            handler = HANDLERS.get(type(pe.event))
            if enc is None:
                if type(pe.event).__name__ != "Opened":
                    raise LookupError(f"claims: event {pe.position} for an encounter the view "
                                      "does not hold")
                enc = states[pe.encounter_id] = _opened(pe)
            elif handler is not None:
                handler(enc, pe.event, pe)
            enc.events += 1
            enc.version = pe.event.originator_version
            enc.last_event = event_name(pe.event)
            enc.last_position = pe.position
            enc.updated_at = pe.event.timestamp
        for enc in states.values():
            _contribute(enc, payer, aging, patient, +1)
            if enc.last_statement_position is not None:
                prev = last_statements.get(enc.patient_ref)
                if prev is None or prev[0] < enc.last_statement_position:
                    last_statements[enc.patient_ref] = (
                        enc.last_statement_position, enc.last_statement_date,
                        enc.last_statement_amount)  # type: ignore[assignment]
        _write(curs, ids, states)
        add_deltas(curs, "payer_balances", {"payer_id": "text", "party_kind": "text"},
                   PAYER_MEASURES, payer)
        add_deltas(curs, "payer_aging", {"payer_id": "text", "party_kind": "text",
                                         "submitted_on": "date"}, AGING_MEASURES, aging)
        add_deltas(curs, "patient_balances", {"patient_ref": "text"}, PATIENT_MEASURES, patient)
        if last_statements:
            curs.execute(
                "UPDATE patient_balances p SET last_statement_position = s.pos, "
                "last_statement_date = s.day, last_statement_amount = s.amount "
                "FROM unnest(%s::text[], %s::bigint[], %s::date[], %s::numeric[]) "
                "AS s(ref, pos, day, amount) WHERE p.patient_ref = s.ref AND "
                "s.pos > COALESCE(p.last_statement_position, 0)",
                [list(last_statements), [v[0] for v in last_statements.values()],
                 [v[1] for v in last_statements.values()],
                 [v[2] for v in last_statements.values()]])


# ---------------------------------------------------------------- contributions
def _contribute(enc: Encounter, payer: dict[tuple[Any, ...], list[Any]],
                aging: dict[tuple[Any, ...], list[Any]],
                patient: dict[tuple[Any, ...], list[Any]], sign: int) -> None:
    for c in enc.claims.values():
        is_open = 1 if c.status in OPEN_STATUSES else 0
        billed = (c.submitted_charge or ZERO) if c.submissions and not c.superseded else ZERO
        outstanding = c.outstanding
        accumulate(payer, (c.payer_id, c.party_kind), [
            1, is_open, billed, c.paid + c.patient_responsibility, c.paid,
            c.adjustment_total(("CO",)), c.adjustment_total(("OA", "PI")),
            c.adjustment_total(("PR",)), c.written_off, c.provider_adjustments, outstanding],
            sign)
        if c.submitted_on is not None and (is_open or outstanding):
            accumulate(aging, (c.payer_id, c.party_kind, c.submitted_on),
                       [is_open, outstanding], sign)
    bal = enc.balance("patient")
    accumulate(patient, (enc.patient_ref,), [
        1, enc.total_charge, max(bal, ZERO), max(-bal, ZERO), enc.patient_paid, enc.refunded,
        enc.patient_written_off, enc.shares.get("deductible", ZERO),
        enc.shares.get("coinsurance", ZERO), enc.shares.get("copay", ZERO), enc.statements],
        sign)


# ---------------------------------------------------------------- handlers
def _touch(claim: Claim, pe: PagedEvent) -> None:
    claim.version = pe.event.originator_version
    claim.last_event = event_name(pe.event)
    claim.last_position = pe.position
    claim.updated_at = pe.event.timestamp


def _touch_unsubmitted(enc: Encounter, pe: PagedEvent, line_no: int | None = None) -> None:
    """Claims not yet submitted show the encounter's current coding: they change with it."""
    for c in enc.claims.values():
        if not c.submissions and (line_no is None or line_no in c.line_nos):
            _touch(c, pe)


def _sync_items(enc: Encounter, claim: Claim, pe: PagedEvent) -> None:
    ts = pe.event.timestamp
    for kind, status in (("denial", {"denied": "open", "in_appeal": "in_appeal"}),
                         ("rejection", {"rejected": "open"})):
        item = enc.items.get((kind, claim.number))
        if item is None:
            continue
        new = status.get(claim.status, "resolved")
        if kind == "denial":
            item.deadline = claim.denial_deadline
            item.appeals = claim.appeals
        if new != item.status:
            item.status = new
            item.closed_at = ts if new == "resolved" else None
            item.outcome = claim.status if new == "resolved" else ""
        item.updated_at = ts


def _opened(pe: PagedEvent) -> Encounter:
    e = pe.event
    return Encounter(
        encounter_id=e.originator_id, patient_ref=e.patient_ref, facility_id=e.facility_id,
        claim_type=e.claim_type, place_of_service=e.place_of_service,
        service_from=e.service_from, service_to=e.service_to,
        parties=[{"bucket": p.bucket, "kind": p.kind, "payer_id": p.payer_id}
                 for p in e.responsible_parties],
        opened_at=e.timestamp)


def _shift_pointers(enc: Encounter, from_position: int, delta: int) -> None:
    for line in enc.lines.values():
        line.pointers = [p + delta if p >= from_position else p for p in line.pointers]


def on_diagnosis_coded(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    enc.diagnoses.insert(e.position - 1, e.code)
    if e.position <= len(enc.diagnoses) - 1:
        _shift_pointers(enc, e.position, +1)
    _touch_unsubmitted(enc, pe)


def on_diagnosis_revised(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    enc.diagnoses[e.position - 1] = e.new_code
    _touch_unsubmitted(enc, pe)


def on_diagnosis_removed(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    del enc.diagnoses[e.position - 1]
    _shift_pointers(enc, e.position + 1, -1)
    _touch_unsubmitted(enc, pe)


def on_line_added(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    ln = e.line
    enc.lines[ln.line_no] = Line(
        line_no=ln.line_no, kind=ln.kind, procedure_code=ln.procedure_code,
        revenue_code=ln.revenue_code, modifiers=list(ln.modifiers), units=ln.units,
        unit_type=ln.unit_type, base_charge=amount(ln.charge), charge_adjustments=ZERO,
        pointers=list(ln.pointers), line_date=ln.line_date, ndc=ln.ndc)
    enc.book(enc.first_bucket, amount(ln.charge))


_REVISED_FIELDS = {"procedure_code", "modifiers", "units", "pointers", "revenue_code", "ndc",
                   "line_date"}


def on_line_revised(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    line = enc.lines[e.line_no]
    old = line.charge
    for name, value in e.after.items():
        if name == "charge":
            line.base_charge = amount(value)
        elif name in _REVISED_FIELDS:
            setattr(line, name, list(value) if isinstance(value, list) else value)
    enc.book(enc.first_bucket, line.charge - old)
    _touch_unsubmitted(enc, pe, e.line_no)


def on_line_removed(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    line = enc.lines[e.line_no]
    line.removed = True
    enc.book(enc.first_bucket, -line.charge)
    _touch_unsubmitted(enc, pe, e.line_no)


def on_charge_adjusted(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    value = amount(e.amount)
    enc.lines[e.line_no].charge_adjustments += value
    enc.book(enc.first_bucket, value)
    _touch_unsubmitted(enc, pe, e.line_no)


def on_claim_created(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    party = enc.party(e.bucket) or {"kind": ""}
    claim = Claim(number=e.claim_number, created_position=pe.position,
                  created_at=e.timestamp, payer_id=e.payer_id, party_kind=party["kind"],
                  bucket=e.bucket, frequency=e.frequency, original_icn=e.original_icn,
                  replaces=e.replaces, line_nos=list(e.line_nos))
    enc.claims[claim.number] = claim
    if getattr(e, "crossover", False):  # the prior payer forwarded it: already submitted
        claim.status = "submitted"
        claim.submissions = 1
        claim.submitted_on = claim.first_submitted_on = e.timestamp.date()
        claim.submitted_charge = sum((enc.lines[n].charge for n in e.line_nos
                                      if not enc.lines[n].removed), ZERO)
    _touch(claim, pe)
    if e.replaces:
        original = enc.claims[e.replaces]
        original.replaced_by = claim.number
        original.status = "voided" if e.frequency == "8" else "replaced"
        _touch(original, pe)
        _sync_items(enc, original, pe)


def on_claim_scrubbed(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    claim = enc.claims[e.claim_number]
    claim.scrub_passed = e.passed
    if claim.status in ("draft", "scrubbed", "rejected"):
        claim.status = "scrubbed" if e.passed else "draft"
    _touch(claim, pe)
    _sync_items(enc, claim, pe)


def on_claim_submitted(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    claim = enc.claims[e.claim_number]
    claim.status = "submitted"
    claim.submitted_charge = amount(e.total_charge)
    claim.submissions += 1
    claim.submitted_on = e.timestamp.date()
    if claim.first_submitted_on is None:
        claim.first_submitted_on = claim.submitted_on
    claim.diagnoses = list(e.diagnoses)
    lines: dict[int, ClaimLine] = {}
    for sent in e.lines:
        n = int(sent["line_no"])
        enc_line = enc.lines[n]
        cl = claim.lines.get(n) or ClaimLine(
            line_no=n, kind=enc_line.kind, procedure_code="", revenue_code="", modifiers=[],
            units=Decimal(1), unit_type=enc_line.unit_type, charge=ZERO, pointers=[],
            line_date=enc_line.line_date)
        cl.kind, cl.unit_type, cl.line_date = enc_line.kind, enc_line.unit_type, \
            enc_line.line_date
        cl.procedure_code = sent["procedure_code"]
        cl.revenue_code = sent.get("revenue_code", "")
        cl.modifiers = list(sent["modifiers"])
        cl.units = sent["units"]
        cl.charge = amount(sent["charge"])
        cl.pointers = list(sent["pointers"])
        lines[n] = cl
    for n, cl in claim.lines.items():  # keep what was adjudicated on lines no longer sent
        if n not in lines and (cl.paid or cl.allowed or cl.adjustments):
            lines[n] = cl
    claim.lines = lines
    _touch(claim, pe)
    _sync_items(enc, claim, pe)


def on_claim_acknowledged(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    claim = enc.claims[e.claim_number]
    if claim.status in ("submitted", "accepted"):
        claim.status = "accepted" if e.accepted else "rejected"
    if not e.accepted:
        key = ("rejection", claim.number)
        item = enc.items.get(key)
        deadline = enc.service_from + timedelta(days=TIMELY_FILING_DAYS)
        if item is None:
            enc.items[key] = WorkItem(
                kind="rejection", ref=claim.number, claim_number=claim.number,
                payer_id=claim.payer_id, status="open", deadline=deadline,
                opened_position=pe.position, opened_at=e.timestamp, updated_at=e.timestamp,
                reason_codes=[e.category] if e.category else [], category=e.source)
        else:
            item.reason_codes = [e.category] if e.category else []
            item.category = e.source
    _touch(claim, pe)
    _sync_items(enc, claim, pe)


def on_claim_adjudicated(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    claim = enc.claims[e.claim_number]
    paid, pr = amount(e.paid), amount(e.patient_responsibility)
    claim.adjudications += 1
    claim.last_adjudicated_on = e.adjudication_date
    claim.paid += paid
    claim.patient_responsibility += pr
    claim.remarks.extend(e.remarks)
    if e.payer_icn and e.reverses_seq is None:
        claim.payer_icn = e.payer_icn
    enc.book(claim.bucket, -paid)
    for adj in e.claim_adjustments:
        value = amount(adj.amount)
        key = (adj.group, adj.reason)
        claim.adjustments[key] = claim.adjustments.get(key, ZERO) + value
        if books_adjustment(adj.group, adj.reason, claim.bucket, enc.first_bucket):
            enc.book(claim.bucket, -value)
    if e.reverses_seq is not None:
        if claim.status not in ("replaced", "voided"):
            claim.status = "closed" if claim.replaced_by else "submitted"
    else:
        claim.status = CLAIM_STATUS_FOR_CODE.get(e.status_code, "adjudicated")
        if claim.status == "paid" and not paid > 0:
            claim.status = "adjudicated"
        if claim.appeal_open and e.status_code != "4":
            claim.appeal_open = False
        if e.status_code == "4":
            claim.denied_amount = amount(e.charge) - paid
    _touch(claim, pe)
    _sync_items(enc, claim, pe)


def on_line_adjudicated(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    claim = enc.claims[e.claim_number]
    r = e.result
    line = enc.lines[r.line_no]
    cl = claim.lines.get(r.line_no)
    if cl is None:
        cl = claim.lines[r.line_no] = ClaimLine(
            line_no=r.line_no, kind=line.kind, procedure_code=line.procedure_code,
            revenue_code=line.revenue_code, modifiers=list(line.modifiers), units=line.units,
            unit_type=line.unit_type, charge=line.charge, pointers=list(line.pointers),
            line_date=line.line_date)
    paid = amount(r.paid)
    line.paid += paid
    cl.paid += paid
    if r.allowed is not None:
        line.allowed += amount(r.allowed)
        cl.allowed += amount(r.allowed)
    for adj in r.adjustments:
        value = amount(adj.amount)
        key = (adj.group, adj.reason)
        cl.adjustments[key] = cl.adjustments.get(key, ZERO) + value
        claim.adjustments[key] = claim.adjustments.get(key, ZERO) + value
        if adj.group == "PR":
            cl.patient_responsibility += value
        elif books_adjustment(adj.group, adj.reason, claim.bucket, enc.first_bucket):
            enc.book(claim.bucket, -value)
    cl.remarks.extend(r.remarks)
    _touch(claim, pe)


def on_patient_responsibility(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    claim = enc.claims[e.claim_number]
    total = ZERO
    for name in ("deductible", "coinsurance", "copay", "other"):
        value = amount(getattr(e, name))
        enc.shares[name] = enc.shares.get(name, ZERO) + value
        total += value
    enc.book(claim.bucket, -total)
    enc.book(e.to_bucket, total)
    _touch(claim, pe)


def on_provider_adjustment(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    value = amount(e.amount)
    enc.provider_adjustments += value
    claim = enc.claims.get(e.claim_number)
    if claim is not None:
        claim.provider_adjustments += value
        if getattr(e, "books", False) and claim.status != "voided":
            enc.book(claim.bucket, value)
        _touch(claim, pe)


def on_void_settled(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    claim = enc.claims[e.claim_number]
    enc.book(claim.bucket, -amount(e.amount))
    _touch(claim, pe)


def on_denial(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    claim = enc.claims[e.claim_number]
    claim.denial_deadline = e.deadline
    claim.status = "denied"
    key = ("denial", claim.number)
    item = enc.items.get(key)
    if item is None:
        item = enc.items[key] = WorkItem(
            kind="denial", ref=claim.number, claim_number=claim.number,
            payer_id=claim.payer_id, status="open", deadline=e.deadline,
            opened_position=pe.position, opened_at=e.timestamp, updated_at=e.timestamp)
    item.reason_codes = list(e.carc)
    item.remark_codes = list(e.rarc)
    item.amount = claim.denied_amount
    _touch(claim, pe)
    _sync_items(enc, claim, pe)


def _net_adjustment(claim: Claim, adj: Any, value: Decimal) -> None:
    """An appeal takes the denial's adjustments back (and an upheld appeal reapplies them):
    the claim's adjustments are shown net, so a CO-50 overturned on appeal is not counted as
    a contractual adjustment."""
    key = (adj.group, adj.reason)
    claim.adjustments[key] = claim.adjustments.get(key, ZERO) + value
    line = claim.lines.get(adj.line_no) if adj.line_no is not None else None
    if line is not None:
        line.adjustments[key] = line.adjustments.get(key, ZERO) + value


def on_appeal_filed(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    claim = enc.claims[e.claim_number]
    claim.appeal_open = True
    claim.appeals += 1
    claim.status = "in_appeal"
    for adj in e.reopened:
        value = amount(adj.amount)
        enc.book(claim.bucket, value)
        claim.reopened += value
        _net_adjustment(claim, adj, -value)
    _touch(claim, pe)
    _sync_items(enc, claim, pe)


def on_appeal_decided(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    claim = enc.claims[e.claim_number]
    for adj in e.reapplied:
        value = amount(adj.amount)
        enc.book(claim.bucket, -value)
        claim.reopened -= value
        _net_adjustment(claim, adj, value)
    if e.outcome == "upheld":
        claim.appeal_open = False
        claim.status = "denied"
    _touch(claim, pe)
    _sync_items(enc, claim, pe)


def on_statement(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    enc.statements += 1
    enc.last_statement_date = e.statement_date
    enc.last_statement_amount = amount(e.amount_due)
    enc.last_statement_position = pe.position


def on_patient_payment(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    value = amount(e.amount)
    enc.book("patient", -value)
    enc.patient_paid += value


def on_refund(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    value = amount(e.amount)
    enc.book("patient", value)
    enc.refunded += value


def on_write_off(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    value = amount(e.amount)
    enc.book(e.bucket, -value)
    enc.written_off += value
    if e.bucket == "patient":
        enc.patient_written_off += value
    claim = enc.claims.get(e.claim_number) if e.claim_number else None
    if claim is not None:
        if claim.bucket == e.bucket:
            claim.written_off += value
        _touch(claim, pe)


def on_dispute_opened(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    primary = enc.parties[0].get("payer_id", "") if enc.parties else ""
    enc.items[("dispute", e.dispute_id)] = WorkItem(
        kind="dispute", ref=e.dispute_id, claim_number="", payer_id=primary, status="open",
        deadline=e.timestamp.date() + timedelta(days=DISPUTE_RESPONSE_DAYS),
        opened_position=pe.position, opened_at=e.timestamp, updated_at=e.timestamp,
        category=e.category, assignee=e.advocate_id, line_nos=list(e.line_nos))


def on_dispute_note(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    item = enc.items[("dispute", e.dispute_id)]
    item.notes += 1
    item.updated_at = e.timestamp


def on_dispute_resolved(enc: Encounter, e: Any, pe: PagedEvent) -> None:
    item = enc.items[("dispute", e.dispute_id)]
    item.status = "resolved"
    item.outcome = e.outcome
    item.closed_at = item.updated_at = e.timestamp


def _handlers() -> dict[type, Callable[[Encounter, Any, PagedEvent], None]]:
    from ledger.domain.encounter import Encounter as E

    return {
        E.DiagnosisCoded: on_diagnosis_coded, E.DiagnosisRevised: on_diagnosis_revised,
        E.DiagnosisRemoved: on_diagnosis_removed, E.ServiceLineAdded: on_line_added,
        E.SupplyAdded: on_line_added, E.ServiceLineRevised: on_line_revised,
        E.ServiceLineRemoved: on_line_removed, E.ChargeAdjusted: on_charge_adjusted,
        E.ChargeReversed: on_charge_adjusted, E.ClaimCreated: on_claim_created,
        E.ClaimScrubbed: on_claim_scrubbed, E.ClaimSubmitted: on_claim_submitted,
        E.ClaimAcknowledged: on_claim_acknowledged, E.ClaimAdjudicated: on_claim_adjudicated,
        E.LineAdjudicated: on_line_adjudicated,
        E.PatientResponsibilityAssigned: on_patient_responsibility,
        E.ProviderAdjustmentPosted: on_provider_adjustment, E.DenialRecorded: on_denial,
        E.AppealFiled: on_appeal_filed, E.AppealDecided: on_appeal_decided,
        E.StatementIssued: on_statement, E.PatientPaymentReceived: on_patient_payment,
        E.RefundIssued: on_refund, E.WriteOffPosted: on_write_off,
        E.DisputeOpened: on_dispute_opened, E.DisputeNoteAdded: on_dispute_note,
        E.DisputeResolved: on_dispute_resolved, E.ClaimVoidSettled: on_void_settled,
        # RemittanceReceived, ClaimForwardedToSecondary: no state of their own here (the
        # forwarded amount moves with PatientResponsibilityAssigned.to_bucket).
    }


HANDLERS = _handlers()


# ---------------------------------------------------------------- load and write
def _adjustments_json(adjs: dict[tuple[str, str], Decimal]) -> JsonValue:
    return JsonValue([{"group": g, "reason": r, "amount": f"{v:.2f}"}
                  for (g, r), v in sorted(adjs.items()) if v != 0])


def _adjustments_from(rows: list[dict[str, str]]) -> dict[tuple[str, str], Decimal]:
    return {(a["group"], a["reason"]): Decimal(a["amount"]) for a in rows}


def _load(curs: Cursor[DictRow], ids: list[UUID]) -> dict[UUID, Encounter]:
    states: dict[UUID, Encounter] = {}
    curs.execute("SELECT * FROM claims_encounters WHERE encounter_id = ANY(%s)", (ids,))
    for r in curs.fetchall():
        enc = Encounter(
            encounter_id=r["encounter_id"], patient_ref=r["patient_ref"],
            facility_id=r["facility_id"], claim_type=r["claim_type"],
            place_of_service=r["place_of_service"], service_from=r["service_from"],
            service_to=r["service_to"], parties=r["parties"], opened_at=r["opened_at"],
            diagnoses=list(r["diagnoses"]),
            buckets={b: r[f"balance_{b}"] for b in BUCKETS},
            patient_paid=r["patient_paid"], refunded=r["refunded"],
            written_off=r["written_off"], patient_written_off=r["patient_written_off"],
            shares={"deductible": r["deductible"], "coinsurance": r["coinsurance"],
                    "copay": r["copay"], "other": r["other_patient_responsibility"]},
            provider_adjustments=r["provider_adjustments"], statements=r["statements"],
            last_statement_date=r["last_statement_date"],
            last_statement_amount=r["last_statement_amount"],
            last_statement_position=r["last_statement_position"], events=r["events"],
            version=r["version"], last_event=r["last_event"], last_position=r["last_position"],
            updated_at=r["updated_at"])
        states[enc.encounter_id] = enc
    if not states:
        return states
    found = list(states)
    curs.execute("SELECT * FROM claims_encounter_lines WHERE encounter_id = ANY(%s)", (found,))
    for r in curs.fetchall():
        states[r["encounter_id"]].lines[r["line_no"]] = Line(
            line_no=r["line_no"], kind=r["kind"], procedure_code=r["procedure_code"],
            revenue_code=r["revenue_code"], modifiers=list(r["modifiers"]), units=r["units"],
            unit_type=r["unit_type"], base_charge=r["base_charge"],
            charge_adjustments=r["charge_adjustments"], pointers=list(r["pointers"]),
            line_date=r["line_date"], ndc=r["ndc"], removed=r["removed"],
            allowed=r["allowed"], paid=r["paid"])
    curs.execute("SELECT * FROM current_claims WHERE encounter_id = ANY(%s)", (found,))
    for r in curs.fetchall():
        claim = Claim(
            number=r["claim_number"], created_position=r["created_position"],
            created_at=r["created_at"], payer_id=r["payer_id"], party_kind=r["party_kind"],
            bucket=r["bucket"], frequency=r["frequency"], original_icn=r["original_icn"],
            replaces=r["replaces"], line_nos=list(r["line_nos"]),
            replaced_by=r["replaced_by"], status=r["status"], scrub_passed=r["scrub_passed"],
            submissions=r["submissions"],
            diagnoses=list(r["diagnoses"]) if r["submissions"] else [],
            submitted_charge=r["submitted_charge"], submitted_on=r["submitted_on"],
            first_submitted_on=r["first_submitted_on"], payer_icn=r["payer_icn"],
            paid=r["paid"], patient_responsibility=r["patient_responsibility"],
            adjustments=_adjustments_from(r["adjustments"]), written_off=r["written_off"],
            provider_adjustments=r["provider_adjustments"], reopened=r["reopened"],
            denial_deadline=r["denial_deadline"], denied_amount=r["denied_amount"],
            appeal_open=r["appeal_open"], appeals=r["appeals"],
            adjudications=r["adjudications"], last_adjudicated_on=r["last_adjudicated_on"],
            remarks=list(r["remarks"]), version=r["version"], last_event=r["last_event"],
            last_position=r["last_position"], updated_at=r["updated_at"])
        states[r["encounter_id"]].claims[claim.number] = claim
    curs.execute("SELECT * FROM current_claim_lines WHERE encounter_id = ANY(%s)", (found,))
    for r in curs.fetchall():
        claim = states[r["encounter_id"]].claims[r["claim_number"]]
        if not claim.submissions:
            continue  # follows the encounter's lines until submitted
        claim.lines[r["line_no"]] = ClaimLine(
            line_no=r["line_no"], kind=r["kind"], procedure_code=r["procedure_code"],
            revenue_code=r["revenue_code"], modifiers=list(r["modifiers"]), units=r["units"],
            unit_type=r["unit_type"], charge=r["charge"], pointers=list(r["pointers"]),
            line_date=r["line_date"], allowed=r["allowed"], paid=r["paid"],
            patient_responsibility=r["patient_responsibility"],
            adjustments=_adjustments_from(r["adjustments"]), remarks=list(r["remarks"]))
    curs.execute("SELECT * FROM work_queue WHERE encounter_id = ANY(%s)", (found,))
    for r in curs.fetchall():
        states[r["encounter_id"]].items[(r["item_kind"], r["item_ref"])] = WorkItem(
            kind=r["item_kind"], ref=r["item_ref"], claim_number=r["claim_number"],
            payer_id=r["payer_id"], status=r["status"], deadline=r["deadline"],
            opened_position=r["opened_position"], opened_at=r["opened_at"],
            updated_at=r["updated_at"], amount=r["amount"],
            reason_codes=list(r["reason_codes"]), remark_codes=list(r["remark_codes"]),
            category=r["category"], assignee=r["assignee"], line_nos=list(r["line_nos"]),
            notes=r["notes"], appeals=r["appeals"], outcome=r["outcome"],
            closed_at=r["closed_at"])
    return states


def _claim_lines(enc: Encounter, claim: Claim) -> list[ClaimLine]:
    if claim.submissions:
        return [claim.lines[n] for n in sorted(claim.lines)]
    out = []
    for n in claim.line_nos:
        ln = enc.lines.get(n)
        if ln is None or ln.removed:
            continue
        out.append(ClaimLine(
            line_no=n, kind=ln.kind, procedure_code=ln.procedure_code,
            revenue_code=ln.revenue_code, modifiers=list(ln.modifiers), units=ln.units,
            unit_type=ln.unit_type, charge=ln.charge, pointers=list(ln.pointers),
            line_date=ln.line_date))
    return out


def _write(curs: Cursor[DictRow], ids: list[UUID], states: dict[UUID, Encounter]) -> None:
    for table in ("claims_encounters", "claims_encounter_lines", "current_claims",
                  "current_claim_lines", "work_queue"):
        delete_where_in(curs, table, "encounter_id", ids)
    encounters, lines, claims, claim_lines, items = [], [], [], [], []
    for enc in states.values():
        eid = enc.encounter_id
        balances = [enc.balance(b) for b in BUCKETS]
        encounters.append((
            eid, enc.patient_ref, enc.facility_id, enc.claim_type, enc.place_of_service,
            enc.service_from, enc.service_to, JsonValue(enc.parties), enc.diagnoses,
            enc.total_charge, *balances, enc.patient_paid, enc.refunded, enc.written_off,
            enc.patient_written_off, enc.shares.get("deductible", ZERO),
            enc.shares.get("coinsurance", ZERO), enc.shares.get("copay", ZERO),
            enc.shares.get("other", ZERO), enc.provider_adjustments, enc.statements,
            enc.last_statement_date, enc.last_statement_amount, enc.last_statement_position,
            enc.events, enc.version, enc.last_event, enc.last_position, enc.opened_at,
            enc.updated_at))
        for ln in enc.lines.values():
            lines.append((
                eid, ln.line_no, ln.kind, ln.procedure_code, ln.revenue_code, ln.modifiers,
                ln.units, ln.unit_type, ln.base_charge, ln.charge_adjustments, ln.charge,
                ln.pointers, ln.line_date, ln.ndc, ln.removed, ln.allowed, ln.paid))
        for c in enc.claims.values():
            c_lines = _claim_lines(enc, c)
            total = c.submitted_charge if c.submissions else \
                sum((cl.charge for cl in c_lines), ZERO)
            claims.append((
                eid, c.number, c.created_position, enc.patient_ref, enc.facility_id,
                enc.claim_type, c.payer_id, c.party_kind, c.bucket, c.frequency,
                c.original_icn, c.replaces, c.replaced_by, c.status, c.scrub_passed,
                c.submissions, enc.service_from, enc.service_to,
                c.diagnoses if c.submissions else enc.diagnoses, c.line_nos, total,
                c.submitted_charge, c.submitted_on, c.first_submitted_on, c.payer_icn,
                c.paid + c.patient_responsibility, c.paid, c.patient_responsibility,
                c.adjustment_total(("CO",)), c.adjustment_total(("OA", "PI")),
                _adjustments_json(c.adjustments), c.written_off, c.provider_adjustments,
                c.reopened, c.outstanding, c.denial_deadline, c.denied_amount, c.appeal_open,
                c.appeals, c.adjudications, c.last_adjudicated_on, c.remarks, *balances,
                c.version, c.last_event, c.last_position, c.created_at, c.updated_at))
            for cl in c_lines:
                claim_lines.append((
                    eid, c.number, cl.line_no, cl.kind, cl.procedure_code, cl.revenue_code,
                    cl.modifiers, cl.units, cl.unit_type, cl.charge, cl.pointers, cl.line_date,
                    cl.allowed, cl.paid, cl.patient_responsibility,
                    _adjustments_json(cl.adjustments), cl.remarks))
        for it in enc.items.values():
            items.append((
                eid, it.kind, it.ref, it.claim_number, it.payer_id, enc.patient_ref, it.status,
                it.deadline, it.amount, it.reason_codes, it.remark_codes, it.category,
                it.assignee, it.line_nos, it.notes, it.appeals, it.outcome,
                it.opened_position, it.opened_at, it.updated_at, it.closed_at))
    copy_rows(curs, "claims_encounters", ENCOUNTER_COLUMNS, encounters)
    copy_rows(curs, "claims_encounter_lines", LINE_COLUMNS, lines)
    copy_rows(curs, "current_claims", CLAIM_COLUMNS, claims)
    copy_rows(curs, "current_claim_lines", CLAIM_LINE_COLUMNS, claim_lines)
    copy_rows(curs, "work_queue", ITEM_COLUMNS, items)
