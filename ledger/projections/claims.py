"""Projection "claims": current claims with their lines, encounters with balances per bucket,
payer balances (with aging by submission date), patient balances, and the queue of denials,
rejections and disputes with their deadlines.

One money model: the page's events are applied to the ``Encounter`` aggregate itself
(``ledger.projections.aggregates``), and every amount written comes from its state through
``ledger.domain.figures``, the functions the API's claim read uses too. Beside the aggregate
the view keeps only what the aggregate has no use for: log positions and times (when a claim
was created and last changed, when it was submitted), the lines and diagnoses as last
submitted, write-offs and provider adjustments per claim, and the work-queue items.

Payer and patient balances are sums over claims and encounters, kept by adding the
difference between each touched encounter's contribution before and after the page.

- claim ``allowed`` = ``figures.claim_allowed`` (paid + patient responsibility, net of
  reversals; also covers claim-level DRG payments);
- claim adjustments are net (``figures.claim_adjustments``): an appeal takes the denial's
  adjustments back, an upheld appeal reapplies them;
- claim ``outstanding`` = ``figures.claim_outstanding``;
- payer ``billed`` = ``figures.billed`` of each claim; ``open_claims`` = claims in
  ``figures.OPEN_STATUSES``;
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

from ledger.domain import figures
from ledger.domain.encounter import Encounter
from ledger.domain.figures import BUCKETS, OPEN_STATUSES
from ledger.projections.aggregates import AggregateReadModel
from ledger.projections.base import PagedEvent, event_name
from ledger.projections.history import PositionDeltas, RowHistory, SumHistory, add_step, summed
from ledger.projections.rows import (
    ZERO,
    JsonValue,
    accumulate,
    add_deltas,
    amount,
    copy_rows,
    delete_where_in,
)

DISPUTE_RESPONSE_DAYS = 30   # response target shown as a dispute's deadline
TIMELY_FILING_DAYS = 365     # rejected claims: Medicare's 12 months from the date of service


# ---------------------------------------------------------------- state beside the aggregate
@dataclass(slots=True)
class ClaimMeta:
    created_position: int
    created_at: datetime
    submitted_on: date | None = None
    first_submitted_on: date | None = None
    sent_lines: list[dict[str, Any]] = field(default_factory=list)  # as last submitted
    sent_diagnoses: list[str] = field(default_factory=list)
    written_off: Decimal = ZERO
    provider_adjustments: Decimal = ZERO
    version: int = 0
    last_event: str = ""
    last_position: int = 0
    updated_at: datetime | None = None


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
class EncounterState:
    enc: Encounter
    opened_at: datetime
    claims: dict[str, ClaimMeta] = field(default_factory=dict)
    items: dict[tuple[str, str], WorkItem] = field(default_factory=dict)
    patient_written_off: Decimal = ZERO
    last_statement_amount: Decimal | None = None
    last_statement_position: int | None = None
    events: int = 1
    last_event: str = "EncounterOpened"
    last_position: int = 0
    updated_at: datetime | None = None


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

# History (as-of reads): the claims list's columns, and the three tables of sums.
CLAIM_HISTORY_COLUMNS = (
    "created_position", "patient_ref", "payer_id", "party_kind", "bucket", "frequency",
    "status", "service_from", "service_to", "diagnoses", "total_charge", "allowed", "paid",
    "patient_responsibility", "contractual", "other_adjustments", "written_off", "outstanding",
    "payer_icn", "submitted_on", "denial_deadline", "last_adjudicated_on", "last_paid_on",
    "balance_primary", "balance_secondary", "balance_tertiary", "balance_patient", "version",
    "last_event", "updated_at")
CLAIMS_HISTORY = RowHistory("claims_history", {"encounter_id": "uuid", "claim_number": "text"},
                            CLAIM_HISTORY_COLUMNS)
PAYER_HISTORY = SumHistory("payer_balances", {"payer_id": "text", "party_kind": "text"},
                           PAYER_MEASURES)
AGING_HISTORY = SumHistory("payer_aging", {"payer_id": "text", "party_kind": "text",
                                           "submitted_on": "date"}, AGING_MEASURES)
PATIENT_HISTORY = SumHistory("patient_balances", {"patient_ref": "text"}, PATIENT_MEASURES,
                             extra=("last_statement_date", "last_statement_amount",
                                    "last_statement_position"))


@dataclass(slots=True)
class HistoryRecord:
    """An encounter after one event, as the history needs it."""

    contribution: Contribution
    claims: dict[str, tuple[Any, ...]]  # claim number -> CLAIM_HISTORY_COLUMNS values
    statement: tuple[int, date, Decimal] | None  # (position, date, amount) of the last one
    figures: dict[str, ClaimFigures]  # claim number -> its figures (reused by the next event)


# A claim's figures are a function of the claim and its ``ClaimMeta.written_off``
# (``claim_figures``). Events that change no claim keep every claim's figures; events that
# change only the claim they name keep the others'; any other event (a new claim may mark
# the one it replaces, patient responsibility moves liability to the next payer's claim, a
# write-off or provider adjustment changes the view's per-claim meta, unknown events)
# recomputes all. Checked against a full computation after every event of the randomized
# workload (tests/unit/test_history_records.py).
FIGURES_KEPT = frozenset({
    Encounter.DiagnosisCoded, Encounter.DiagnosisRevised, Encounter.DiagnosisRemoved,
    Encounter.ServiceLineAdded, Encounter.SupplyAdded, Encounter.ServiceLineRevised,
    Encounter.ServiceLineRemoved, Encounter.ChargeAdjusted, Encounter.ChargeReversed,
    Encounter.StatementIssued, Encounter.PatientPaymentReceived, Encounter.RefundIssued,
    Encounter.DisputeOpened, Encounter.DisputeNoteAdded, Encounter.DisputeResolved,
    Encounter.AccessGranted, Encounter.AccessRevoked})
FIGURES_OF_ITS_CLAIM = frozenset({
    Encounter.ClaimScrubbed, Encounter.ClaimSubmitted, Encounter.ClaimAcknowledged,
    Encounter.RemittanceReceived, Encounter.ClaimAdjudicated, Encounter.LineAdjudicated,
    Encounter.DenialRecorded, Encounter.AppealFiled, Encounter.AppealDecided})


def history_record(state: EncounterState, pe: PagedEvent | None = None,
                   previous: HistoryRecord | None = None) -> HistoryRecord:
    """What the history keeps of an encounter after ``pe``; the figures of the claims ``pe``
    cannot have changed are taken from ``previous`` (the record before it)."""
    kind = type(pe.event) if pe is not None and previous is not None else None
    if kind in FIGURES_KEPT:
        figs = previous.figures  # type: ignore[union-attr]
    elif kind in FIGURES_OF_ITS_CLAIM:
        figs = dict(previous.figures)  # type: ignore[union-attr]
        number = pe.event.claim_number  # type: ignore[union-attr]
        figs[number] = claim_figures(state.enc.claims[number], state.claims[number])
    else:
        figs = _figures(state)
    statement = None
    if state.last_statement_position is not None:
        statement = (state.last_statement_position, state.enc.statements[-1],
                     state.last_statement_amount)
    return HistoryRecord(_contribution(state, figs), _claim_history_rows(state, figs),
                         statement, figs)  # type: ignore[arg-type]


def _summed_record(record: HistoryRecord) -> tuple[Any, Any, Any]:
    """A record's payer, aging and patient contributions summed per key (``add_step``)."""
    contribution = record.contribution
    key, values = contribution.patient
    return summed(contribution.payer), summed(contribution.aging), {key: values}


class ClaimsView(AggregateReadModel[EncounterState]):
    name = "claims"
    history_tables = ("claims_history", "payer_balances_history", "payer_aging_history",
                      "patient_balances_history")
    tables = ("claims_encounters", "claims_encounter_lines", "current_claims",
              "current_claim_lines", "payer_balances", "payer_aging", "patient_balances",
              "work_queue", *history_tables)
    keys = {
        "claims_history": ("encounter_id", "claim_number", "valid_from"),
        "payer_balances_history": ("payer_id", "party_kind", "valid_from"),
        "payer_aging_history": ("payer_id", "party_kind", "submitted_on", "valid_from"),
        "patient_balances_history": ("patient_ref", "valid_from"),
        "claims_encounters": ("encounter_id",),
        "claims_encounter_lines": ("encounter_id", "line_no"),
        "current_claims": ("encounter_id", "claim_number"),
        "current_claim_lines": ("encounter_id", "claim_number", "line_no"),
        "payer_balances": ("payer_id", "party_kind"),
        "payer_aging": ("payer_id", "party_kind", "submitted_on"),
        "patient_balances": ("patient_ref",),
        "work_queue": ("encounter_id", "item_kind", "item_ref"),
    }

    def start(self, pe: PagedEvent) -> EncounterState:
        return start_state(pe)

    def fold(self, state: EncounterState, pe: PagedEvent, live: bool) -> None:
        fold_state(state, pe)

    def measure(self, state: EncounterState) -> Contribution:
        return _contribution(state, _figures(state))

    def history_record(self, state: EncounterState, pe: PagedEvent | None = None,
                       previous: Any = None) -> HistoryRecord:
        return history_record(state, pe, previous)

    def write_history(self, curs: Cursor[DictRow],
                      steps: Sequence[tuple[PagedEvent, Any, Any]]) -> None:
        payer: PositionDeltas = {}
        aging: PositionDeltas = {}
        patient: PositionDeltas = {}
        statements: dict[tuple[int, tuple[Any, ...]], tuple[Any, ...]] = {}
        claims: list[tuple[int, str, tuple[Any, ...], tuple[Any, ...]]] = []
        sums: dict[UUID, tuple[Any, Any, Any]] = {}  # encounter -> its last record, summed
        for pe, old, new in steps:
            kind = event_name(pe.event)
            before = sums.get(pe.encounter_id)
            if before is None and old is not None:
                before = _summed_record(old)
            after = sums[pe.encounter_id] = _summed_record(new)
            add_step(payer, pe.position, kind, before and before[0], after[0])
            add_step(aging, pe.position, kind, before and before[1], after[1])
            add_step(patient, pe.position, kind, before and before[2], after[2],
                     keep_zero=True)
            if new.statement is not None and (old is None or old.statement != new.statement):
                position, day, value = new.statement
                statements[(pe.position, new.contribution.patient[0])] = (day, value, position)
            for number, row in new.claims.items():
                if old is None or old.claims.get(number) != row:
                    claims.append((pe.position, kind, (pe.encounter_id, number), row))
        CLAIMS_HISTORY.write(curs, claims)
        PAYER_HISTORY.write(curs, payer)
        AGING_HISTORY.write(curs, aging)
        PATIENT_HISTORY.write(curs, patient, statements)

    def write(self, curs: Cursor[DictRow], events: Sequence[PagedEvent],
              before: dict[UUID, Any], after: dict[UUID, EncounterState],
              ids: list[UUID]) -> dict[UUID, Contribution]:
        payer: dict[tuple[Any, ...], list[Any]] = {}
        aging: dict[tuple[Any, ...], list[Any]] = {}
        patient: dict[tuple[Any, ...], list[Any]] = {}
        for contribution in before.values():
            contribution.add_to(payer, aging, patient, -1)
        last_statements: dict[str, tuple[int, date, Decimal]] = {}
        figs = {eid: _figures(state) for eid, state in after.items()}
        measured = {eid: _contribution(state, figs[eid]) for eid, state in after.items()}
        for eid, state in after.items():
            measured[eid].add_to(payer, aging, patient, +1)
            enc = state.enc
            if state.last_statement_position is not None:
                prev = last_statements.get(enc.patient_ref)
                if prev is None or prev[0] < state.last_statement_position:
                    last_statements[enc.patient_ref] = (
                        state.last_statement_position, enc.statements[-1],
                        state.last_statement_amount)  # type: ignore[assignment]
        _write(curs, ids, after, figs)
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
        return measured


def start_state(pe: PagedEvent) -> EncounterState:
    """The state of an encounter from its ``Opened`` event."""
    e = pe.event
    return EncounterState(enc=e.mutate(None), opened_at=e.timestamp,
                          last_position=pe.position, updated_at=e.timestamp)


def fold_state(state: EncounterState, pe: PagedEvent) -> None:
    """Apply one event: to the aggregate (its own rules, and its check that the event is the
    next version), then to what the view keeps beside it."""
    e = pe.event
    e.mutate(state.enc)
    handler = HANDLERS.get(type(e))
    if handler is not None:
        handler(state, e, pe)
    number = getattr(e, "claim_number", "")
    if number and number in state.claims:
        _touch(state.claims[number], pe)
    state.events += 1
    state.last_event = event_name(e)
    state.last_position = pe.position
    state.updated_at = e.timestamp


# ---------------------------------------------------------------- figures of a state
@dataclass(slots=True)
class ClaimFigures:
    allowed: Decimal
    paid: Decimal
    patient_responsibility: Decimal
    contractual: Decimal
    other_adjustments: Decimal
    adjustments: dict[tuple[str, str], Decimal]
    outstanding: Decimal
    billed: Decimal
    denied_amount: Decimal | None


def claim_figures(claim: Any, meta: ClaimMeta) -> ClaimFigures:
    """A claim's money, from the aggregate through ``ledger.domain.figures``."""
    adjustments = figures.claim_adjustments(claim)
    denied = figures.denied_amount(claim)
    return ClaimFigures(
        allowed=figures.claim_allowed(claim).amount, paid=claim.paid.amount,
        patient_responsibility=claim.patient_responsibility.amount,
        contractual=figures.adjustment_total(adjustments, ("CO",)).amount,
        other_adjustments=figures.adjustment_total(adjustments, ("OA", "PI")).amount,
        adjustments={k: v.amount for k, v in adjustments.items()},
        outstanding=figures.claim_outstanding(
            claim, figures.Money(meta.written_off)).amount,
        billed=figures.billed(claim).amount,
        denied_amount=denied.amount if denied is not None else None)


@dataclass(slots=True)
class Contribution:
    """What one encounter adds to the payer, aging and patient sums."""

    payer: list[tuple[tuple[Any, ...], list[Any]]]
    aging: list[tuple[tuple[Any, ...], list[Any]]]
    patient: tuple[tuple[Any, ...], list[Any]]

    def add_to(self, payer: dict[tuple[Any, ...], list[Any]],
               aging: dict[tuple[Any, ...], list[Any]],
               patient: dict[tuple[Any, ...], list[Any]], sign: int) -> None:
        for key, values in self.payer:
            accumulate(payer, key, values, sign)
        for key, values in self.aging:
            accumulate(aging, key, values, sign)
        accumulate(patient, self.patient[0], self.patient[1], sign)


def _party_kind(enc: Encounter, bucket: str) -> str:
    for p in enc.parties:
        if p.bucket == bucket:
            return p.kind
    return ""


def _figures(state: EncounterState) -> dict[str, ClaimFigures]:
    return {c.number: claim_figures(c, state.claims[c.number])
            for c in state.enc.claims.values()}


def _contribution(state: EncounterState, figs: dict[str, ClaimFigures]) -> Contribution:
    enc = state.enc
    payer, aging = [], []
    for c in enc.claims.values():
        meta = state.claims[c.number]
        f = figs[c.number]
        kind = _party_kind(enc, c.bucket)
        is_open = 1 if c.status in OPEN_STATUSES else 0
        payer.append(((c.payer_id, kind), [
            1, is_open, f.billed, f.allowed, f.paid, f.contractual, f.other_adjustments,
            f.patient_responsibility, meta.written_off, meta.provider_adjustments,
            f.outstanding]))
        if meta.submitted_on is not None and (is_open or f.outstanding):
            aging.append(((c.payer_id, kind, meta.submitted_on), [is_open, f.outstanding]))
    bal = enc.balance("patient").amount
    share = enc.patient_share
    patient = ((enc.patient_ref,), [
        1, enc.total_charge.amount, max(bal, ZERO), max(-bal, ZERO), enc.patient_paid.amount,
        enc.refunded.amount, state.patient_written_off,
        amount(share.get("deductible")), amount(share.get("coinsurance")),
        amount(share.get("copay")), len(enc.statements)])
    return Contribution(payer, aging, patient)


def _claim_history_rows(state: EncounterState, figs: dict[str, ClaimFigures]
                        ) -> dict[str, tuple[Any, ...]]:
    """Each claim's row of the claims list (``CLAIM_HISTORY_COLUMNS``), as ``_write`` writes
    it to ``current_claims``."""
    enc = state.enc
    balances = [enc.balance(b).amount for b in BUCKETS]
    diagnoses = [d.code for d in enc.diagnoses]
    out: dict[str, tuple[Any, ...]] = {}
    for c in enc.claims.values():
        meta = state.claims[c.number]
        f = figs[c.number]
        if c.submissions and c.submitted_charge:
            total = c.submitted_charge.amount
        else:
            total = sum((enc.lines[str(n)].current_charge.amount for n in c.line_nos
                         if not enc.lines[str(n)].removed), ZERO)
        last = c.adjudications[-1].adjudication_date if c.adjudications else None
        paid_on = next((a.adjudication_date for a in reversed(c.adjudications)
                        if a.paid.amount != 0), None)
        out[c.number] = (
            meta.created_position, enc.patient_ref, c.payer_id, _party_kind(enc, c.bucket),
            c.bucket, c.frequency, c.status, enc.service_from, enc.service_to,
            list(meta.sent_diagnoses) if c.submissions else diagnoses, total, f.allowed,
            f.paid, f.patient_responsibility, f.contractual, f.other_adjustments,
            meta.written_off, f.outstanding, c.payer_icn, meta.submitted_on,
            c.denial_deadline, last, paid_on, *balances, meta.version, meta.last_event,
            meta.updated_at)
    return out


# ---------------------------------------------------------------- what the view keeps
def _touch(meta: ClaimMeta, pe: PagedEvent) -> None:
    meta.version = pe.event.originator_version
    meta.last_event = event_name(pe.event)
    meta.last_position = pe.position
    meta.updated_at = pe.event.timestamp


def _touch_unsubmitted(state: EncounterState, pe: PagedEvent,
                       line_no: int | None = None) -> None:
    """Claims not yet submitted show the encounter's current coding: they change with it."""
    for c in state.enc.claims.values():
        if not c.submissions and (line_no is None or line_no in c.line_nos):
            _touch(state.claims[c.number], pe)


def _sync_items(state: EncounterState, number: str, pe: PagedEvent) -> None:
    claim = state.enc.claims[number]
    ts = pe.event.timestamp
    for kind, status in (("denial", {"denied": "open", "in_appeal": "in_appeal"}),
                         ("rejection", {"rejected": "open"})):
        item = state.items.get((kind, number))
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


def on_coding(state: EncounterState, e: Any, pe: PagedEvent) -> None:
    line_no = getattr(e, "line_no", None)
    if line_no is None and hasattr(e, "line"):
        line_no = e.line.line_no
    _touch_unsubmitted(state, pe, line_no)


def on_claim_created(state: EncounterState, e: Any, pe: PagedEvent) -> None:
    state.claims[e.claim_number] = ClaimMeta(created_position=pe.position,
                                             created_at=e.timestamp)
    if e.replaces and e.replaces in state.claims:
        _touch(state.claims[e.replaces], pe)
        _sync_items(state, e.replaces, pe)


def on_claim_changed(state: EncounterState, e: Any, pe: PagedEvent) -> None:
    _sync_items(state, e.claim_number, pe)


def on_claim_submitted(state: EncounterState, e: Any, pe: PagedEvent) -> None:
    meta = state.claims[e.claim_number]
    meta.submitted_on = e.timestamp.date()
    if meta.first_submitted_on is None:
        meta.first_submitted_on = meta.submitted_on
    meta.sent_diagnoses = list(e.diagnoses)
    meta.sent_lines = [dict(sent) for sent in e.lines]
    _sync_items(state, e.claim_number, pe)


def on_claim_acknowledged(state: EncounterState, e: Any, pe: PagedEvent) -> None:
    claim = state.enc.claims[e.claim_number]
    if not e.accepted:
        key = ("rejection", claim.number)
        item = state.items.get(key)
        deadline = state.enc.service_from + timedelta(days=TIMELY_FILING_DAYS)
        if item is None:
            state.items[key] = WorkItem(
                kind="rejection", ref=claim.number, claim_number=claim.number,
                payer_id=claim.payer_id, status="open", deadline=deadline,
                opened_position=pe.position, opened_at=e.timestamp, updated_at=e.timestamp,
                reason_codes=[e.category] if e.category else [], category=e.source)
        else:
            item.reason_codes = [e.category] if e.category else []
            item.category = e.source
    _sync_items(state, e.claim_number, pe)


def on_provider_adjustment(state: EncounterState, e: Any, pe: PagedEvent) -> None:
    meta = state.claims.get(e.claim_number)
    if meta is not None:
        meta.provider_adjustments += amount(e.amount)


def on_denial(state: EncounterState, e: Any, pe: PagedEvent) -> None:
    claim = state.enc.claims[e.claim_number]
    key = ("denial", claim.number)
    item = state.items.get(key)
    if item is None:
        item = state.items[key] = WorkItem(
            kind="denial", ref=claim.number, claim_number=claim.number,
            payer_id=claim.payer_id, status="open", deadline=e.deadline,
            opened_position=pe.position, opened_at=e.timestamp, updated_at=e.timestamp)
    item.reason_codes = list(e.carc)
    item.remark_codes = list(e.rarc)
    denied = figures.denied_amount(claim)
    item.amount = denied.amount if denied is not None else None
    _sync_items(state, e.claim_number, pe)


def on_statement(state: EncounterState, e: Any, pe: PagedEvent) -> None:
    state.last_statement_amount = amount(e.amount_due)
    state.last_statement_position = pe.position


def on_write_off(state: EncounterState, e: Any, pe: PagedEvent) -> None:
    value = amount(e.amount)
    if e.bucket == "patient":
        state.patient_written_off += value
    claim = state.enc.claims.get(e.claim_number) if e.claim_number else None
    if claim is not None and claim.bucket == e.bucket:
        state.claims[claim.number].written_off += value


def on_dispute_opened(state: EncounterState, e: Any, pe: PagedEvent) -> None:
    parties = state.enc.parties
    primary = parties[0].payer_id if parties else ""
    state.items[("dispute", e.dispute_id)] = WorkItem(
        kind="dispute", ref=e.dispute_id, claim_number="", payer_id=primary, status="open",
        deadline=e.timestamp.date() + timedelta(days=DISPUTE_RESPONSE_DAYS),
        opened_position=pe.position, opened_at=e.timestamp, updated_at=e.timestamp,
        category=e.category, assignee=e.advocate_id, line_nos=list(e.line_nos))


def on_dispute_note(state: EncounterState, e: Any, pe: PagedEvent) -> None:
    item = state.items[("dispute", e.dispute_id)]
    item.notes += 1
    item.updated_at = e.timestamp


def on_dispute_resolved(state: EncounterState, e: Any, pe: PagedEvent) -> None:
    item = state.items[("dispute", e.dispute_id)]
    item.status = "resolved"
    item.outcome = e.outcome
    item.closed_at = item.updated_at = e.timestamp


def _handlers() -> dict[type, Callable[[EncounterState, Any, PagedEvent], None]]:
    E = Encounter
    coding = (E.DiagnosisCoded, E.DiagnosisRevised, E.DiagnosisRemoved, E.ServiceLineAdded,
              E.SupplyAdded, E.ServiceLineRevised, E.ServiceLineRemoved, E.ChargeAdjusted,
              E.ChargeReversed)
    handlers: dict[type, Callable[[EncounterState, Any, PagedEvent], None]] = {
        cls: on_coding for cls in coding}
    handlers.update({
        E.ClaimCreated: on_claim_created, E.ClaimScrubbed: on_claim_changed,
        E.ClaimSubmitted: on_claim_submitted, E.ClaimAcknowledged: on_claim_acknowledged,
        E.ClaimAdjudicated: on_claim_changed, E.ProviderAdjustmentPosted: on_provider_adjustment,
        E.DenialRecorded: on_denial, E.AppealFiled: on_claim_changed,
        E.AppealDecided: on_claim_changed, E.StatementIssued: on_statement,
        E.WriteOffPosted: on_write_off, E.DisputeOpened: on_dispute_opened,
        E.DisputeNoteAdded: on_dispute_note, E.DisputeResolved: on_dispute_resolved,
    })
    return handlers


# Events the view keeps something for beside the aggregate. Every other Encounter event
# (and any the aggregate gains later) only changes the aggregate, which the rows come from.
HANDLERS = _handlers()


# ---------------------------------------------------------------- rows
def _adjustments_json(adjs: dict[tuple[str, str], Decimal]) -> JsonValue:
    return JsonValue([{"group": g, "reason": r, "amount": f"{v:.2f}"}
                      for (g, r), v in sorted(adjs.items()) if v != 0])


def _claim_line_rows(state: EncounterState, claim: Any, meta: ClaimMeta) -> list[tuple]:
    enc = state.enc
    money = figures.claim_line_money(claim)
    zero = figures.LineMoney()
    rows: list[tuple] = []
    if claim.submissions:
        sent = {int(s["line_no"]): s for s in meta.sent_lines}
        numbers = sorted(set(sent) | {n for n, m in money.items()
                                       if m.paid or m.allowed or m.adjustments})
    else:
        sent = {}
        numbers = [n for n in claim.line_nos if not enc.lines[str(n)].removed]
    for n in numbers:
        ln = enc.lines[str(n)]
        m = money.get(n, zero)
        s = sent.get(n)
        if s is not None:
            code, rev, mods, units = s["procedure_code"], s.get("revenue_code", ""), \
                list(s["modifiers"]), s["units"]
            charge, pointers = amount(s["charge"]), list(s["pointers"])
        else:
            code, rev, mods, units = ln.procedure_code, ln.revenue_code, list(ln.modifiers), \
                ln.units
            charge, pointers = ln.current_charge.amount, list(ln.pointers)
        rows.append((
            enc.id, claim.number, n, ln.kind, code, rev, mods, units, ln.unit_type, charge,
            pointers, ln.line_date, m.allowed.amount, m.paid.amount,
            m.patient_responsibility.amount,
            _adjustments_json({k: v.amount for k, v in m.adjustments.items()}),
            list(m.remarks)))
    return rows


def _write(curs: Cursor[DictRow], ids: list[UUID], states: dict[UUID, EncounterState],
           figs: dict[UUID, dict[str, ClaimFigures]]) -> None:
    for table in ("claims_encounters", "claims_encounter_lines", "current_claims",
                  "current_claim_lines", "work_queue"):
        delete_where_in(curs, table, "encounter_id", ids)
    encounters, lines, claims, claim_lines, items = [], [], [], [], []
    for state in states.values():
        enc = state.enc
        eid = enc.id
        balances = [enc.balance(b).amount for b in BUCKETS]
        parties = [{"bucket": p.bucket, "kind": p.kind, "payer_id": p.payer_id}
                   for p in enc.parties]
        diagnoses = [d.code for d in enc.diagnoses]
        share = enc.patient_share
        provider = sum((a.amount for a in enc.provider_adjustments), ZERO)
        encounters.append((
            eid, enc.patient_ref, enc.facility_id, enc.claim_type, enc.place_of_service,
            enc.service_from, enc.service_to, JsonValue(parties), diagnoses,
            enc.total_charge.amount, *balances, enc.patient_paid.amount, enc.refunded.amount,
            enc.written_off.amount, state.patient_written_off,
            amount(share.get("deductible")), amount(share.get("coinsurance")),
            amount(share.get("copay")), amount(share.get("other")), provider,
            len(enc.statements), enc.statements[-1] if enc.statements else None,
            state.last_statement_amount, state.last_statement_position, state.events,
            enc.version, state.last_event, state.last_position, state.opened_at,
            state.updated_at))
        for ln in enc.lines.values():
            lines.append((
                eid, ln.line_no, ln.kind, ln.procedure_code, ln.revenue_code,
                list(ln.modifiers), ln.units, ln.unit_type, ln.charge.amount,
                ln.adjustment_total.amount, ln.current_charge.amount, list(ln.pointers),
                ln.line_date, ln.ndc, ln.removed, ln.allowed.amount, ln.paid.amount))
        for c in enc.claims.values():
            meta = state.claims[c.number]
            f = figs[eid][c.number]
            c_lines = _claim_line_rows(state, c, meta)
            total = c.submitted_charge.amount if c.submissions and c.submitted_charge \
                else sum((row[9] for row in c_lines), ZERO)
            last = c.adjudications[-1].adjudication_date if c.adjudications else None
            claims.append((
                eid, c.number, meta.created_position, enc.patient_ref, enc.facility_id,
                enc.claim_type, c.payer_id, _party_kind(enc, c.bucket), c.bucket, c.frequency,
                c.original_icn, c.replaces, c.replaced_by, c.status, c.scrub_passed,
                c.submissions, enc.service_from, enc.service_to,
                meta.sent_diagnoses if c.submissions else diagnoses, list(c.line_nos), total,
                c.submitted_charge.amount if c.submitted_charge is not None else None,
                meta.submitted_on, meta.first_submitted_on, c.payer_icn, f.allowed, f.paid,
                f.patient_responsibility, f.contractual, f.other_adjustments,
                _adjustments_json(f.adjustments), meta.written_off, meta.provider_adjustments,
                c.reopened.amount, f.outstanding, c.denial_deadline, f.denied_amount,
                c.appeal_open, c.appeals, len(c.adjudications), last, list(c.remarks),
                *balances, meta.version, meta.last_event, meta.last_position,
                meta.created_at, meta.updated_at))
            claim_lines.extend(c_lines)
        for it in state.items.values():
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
