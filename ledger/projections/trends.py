"""Projection "trends": which services and supplies are used for which diagnoses, what they
cost (charged, allowed, paid), and which codes coders change most.

Per diagnosis and scope ('principal': the encounter's diagnosis 1 only; 'any': every
diagnosis it carries) the view keeps the number of encounters, their lines and money, and per
service/supply code the number of encounters and lines using it, units and money. An
encounter contributes its *current* coding: when a diagnosis is revised or a line removed,
its contribution moves (the difference before/after each page is added), so the view answers
"for patients with diagnosis X, which services?" without scanning events.

Like the claims view, it applies the events to the ``Encounter`` aggregate itself
(``ledger.projections.aggregates``) and reads everything from its state: lines, their
charges, and the money the aggregate posted to each line (allowed AMT*B6, paid). An
encounter's allowed is ``figures.claim_allowed`` of its claims to the first payer, its paid
is every payer's payments, so claim-level (DRG) payments show on the diagnosis row.

Lines are labelled ``supply`` or ``service`` by ``ledger.codes.procedures.line_category``:
supply lines, HCPCS Level II supply/device/drug codes and revenue codes 027x (implants and
supplies) are supplies; CPT, service HCPCS and other revenue codes are services.

Code revisions count, per coder, diagnoses coded/revised/removed and lines added/revised/
removed, and per code how often it was assigned, revised away from, revised to and removed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.codes.procedures import line_category
from ledger.domain import figures
from ledger.domain.encounter import Encounter
from ledger.domain.model import ServiceLine
from ledger.projections.aggregates import AggregateReadModel
from ledger.projections.base import PagedEvent, event_name
from ledger.projections.history import PositionDeltas, SumHistory, add_step, summed
from ledger.projections.rows import (
    ZERO,
    JsonValue,
    accumulate,
    add_deltas,
    copy_rows,
    delete_where_in,
)

ICD = "ICD-10-CM"
PROCEDURE = "CPT/HCPCS"
REVENUE = "revenue"


@dataclass(slots=True)
class TrendState:
    enc: Encounter
    events: int = 1


def line_code(procedure_code: str, revenue_code: str) -> tuple[str, str]:
    return (PROCEDURE, procedure_code) if procedure_code else (REVENUE, revenue_code)


def label(line: ServiceLine) -> str:
    return line_category(line.kind, line.procedure_code, line.revenue_code)


def encounter_money(enc: Encounter) -> tuple[Decimal, Decimal]:
    """(allowed by the first payer, paid by every payer), net of reversals."""
    first = enc.first_bucket
    allowed = sum((figures.claim_allowed(c).amount for c in enc.claims.values()
                   if c.bucket == first), ZERO)
    paid = sum((c.paid.amount for c in enc.claims.values()), ZERO)
    return allowed, paid


DX_MEASURES = {"encounters": "integer", "lines": "integer", "charged": "numeric",
               "allowed": "numeric", "paid": "numeric"}
SERVICE_MEASURES = {"encounters": "integer", "lines": "integer", "units": "numeric",
                    "charged": "numeric", "allowed": "numeric", "paid": "numeric"}
CODER_MEASURES = {m: "integer" for m in (
    "diagnoses_coded", "diagnoses_revised", "diagnoses_removed", "lines_added",
    "line_codes_revised", "lines_revised", "lines_removed", "charges_adjusted")}
CODER_INDEX = {name: i for i, name in enumerate(CODER_MEASURES)}
CODE_MEASURES = {"assigned": "integer", "revised_from": "integer", "revised_to": "integer",
                 "removed": "integer"}
CODE_INDEX = {name: i for i, name in enumerate(CODE_MEASURES)}


class Counters:
    """Revision counters collected over a page (and per event, for the history)."""

    def __init__(self) -> None:
        self.coders: dict[tuple[Any, ...], list[Any]] = {}
        self.codes: dict[tuple[Any, ...], list[Any]] = {}
        self.step: tuple[int, str] = (0, "")  # the event being counted
        self.coders_by_event: PositionDeltas = {}
        self.codes_by_event: PositionDeltas = {}

    def coder(self, e: Any, measure: str) -> None:
        values = [0] * len(CODER_MEASURES)
        values[CODER_INDEX[measure]] = 1
        accumulate(self.coders, (e.actor_id, e.actor_role), values, 1)
        accumulate(self.coders_by_event.setdefault(self.step, {}),
                   (e.actor_id, e.actor_role), values, 1)

    def code(self, system: str, code: str, measure: str) -> None:
        if not code:
            return
        values = [0] * len(CODE_MEASURES)
        values[CODE_INDEX[measure]] = 1
        accumulate(self.codes, (system, code), values, 1)
        accumulate(self.codes_by_event.setdefault(self.step, {}), (system, code), values, 1)


Rows = list[tuple[tuple[Any, ...], list[Any]]]

DX_KEYS = {"diagnosis": "text", "scope": "text"}
SERVICE_KEYS = {"diagnosis": "text", "scope": "text", "kind": "text", "procedure_code": "text",
                "revenue_code": "text"}
CODER_KEYS = {"actor_id": "text", "actor_role": "text"}
CODE_KEYS = {"code_system": "text", "code": "text"}
DX_HISTORY = SumHistory("trend_diagnoses", DX_KEYS, DX_MEASURES)
SERVICE_HISTORY = SumHistory("trend_diagnosis_services", SERVICE_KEYS, SERVICE_MEASURES)
CODER_HISTORY = SumHistory("code_revisions_by_coder", CODER_KEYS, CODER_MEASURES)
CODE_HISTORY = SumHistory("code_revisions_by_code", CODE_KEYS, CODE_MEASURES)


class TrendsView(AggregateReadModel[TrendState]):
    name = "trends"
    history_tables = ("trend_diagnoses_history", "trend_diagnosis_services_history",
                      "code_revisions_by_coder_history", "code_revisions_by_code_history")
    tables = ("trend_diagnoses", "trend_diagnosis_services", "code_revisions_by_coder",
              "code_revisions_by_code", "trend_encounters", "trend_lines", *history_tables)
    keys = {
        "trend_diagnoses_history": (*DX_KEYS, "valid_from"),
        "trend_diagnosis_services_history": (*SERVICE_KEYS, "valid_from"),
        "code_revisions_by_coder_history": (*CODER_KEYS, "valid_from"),
        "code_revisions_by_code_history": (*CODE_KEYS, "valid_from"),
        "trend_diagnoses": ("diagnosis", "scope"),
        "trend_diagnosis_services": ("diagnosis", "scope", "kind", "procedure_code",
                                     "revenue_code"),
        "code_revisions_by_coder": ("actor_id", "actor_role"),
        "code_revisions_by_code": ("code_system", "code"),
        "trend_encounters": ("encounter_id",),
        "trend_lines": ("encounter_id", "line_no"),
    }

    def apply(self, curs: Cursor[DictRow], events: Sequence[PagedEvent]) -> None:
        self._counters = Counters()
        super().apply(curs, events)

    def start(self, pe: PagedEvent) -> TrendState:
        return TrendState(pe.event.mutate(None))

    def fold(self, state: TrendState, pe: PagedEvent, live: bool) -> None:
        e = pe.event
        if live:  # revision counts are per event, counted once
            counter = COUNTERS.get(type(e))
            if counter is not None:
                self._counters.step = (pe.position, event_name(e))
                counter(state.enc, e, self._counters)
        e.mutate(state.enc)
        state.events += 1

    def measure(self, state: TrendState) -> tuple[Rows, Rows]:
        return contribution(state.enc)

    def history_record(self, state: TrendState, pe: PagedEvent | None = None,
                       previous: Any = None) -> tuple[Rows, Rows]:
        return history_record(state, pe, previous)

    def write_history(self, curs: Cursor[DictRow],
                      steps: Sequence[tuple[PagedEvent, Any, Any]]) -> None:
        dx: PositionDeltas = {}
        services: PositionDeltas = {}
        sums: dict[UUID, tuple[Any, Any]] = {}  # encounter -> its last record, summed
        for pe, old, new in steps:
            kind = event_name(pe.event)
            before = sums.get(pe.encounter_id)
            if before is None and old is not None:
                before = (summed(old[0]), summed(old[1]))
            after = sums[pe.encounter_id] = (summed(new[0]), summed(new[1]))
            add_step(dx, pe.position, kind, before and before[0], after[0])
            add_step(services, pe.position, kind, before and before[1], after[1])
        DX_HISTORY.write(curs, dx)
        SERVICE_HISTORY.write(curs, services)
        CODER_HISTORY.write(curs, self._counters.coders_by_event)
        CODE_HISTORY.write(curs, self._counters.codes_by_event)

    def write(self, curs: Cursor[DictRow], events: Sequence[PagedEvent],
              before: dict[UUID, Any], after: dict[UUID, TrendState],
              ids: list[UUID]) -> dict[UUID, tuple[Rows, Rows]]:
        dx: dict[tuple[Any, ...], list[Any]] = {}
        services: dict[tuple[Any, ...], list[Any]] = {}
        measured = {eid: contribution(s.enc) for eid, s in after.items()}
        for sign, parts in ((-1, before.values()), (+1, measured.values())):
            for dx_rows, service_rows in parts:
                for key, values in dx_rows:
                    accumulate(dx, key, values, sign)
                for key, values in service_rows:
                    accumulate(services, key, values, sign)
        _write(curs, ids, after)
        add_deltas(curs, "trend_diagnoses", {"diagnosis": "text", "scope": "text"},
                   DX_MEASURES, dx)
        add_deltas(curs, "trend_diagnosis_services",
                   {"diagnosis": "text", "scope": "text", "kind": "text",
                    "procedure_code": "text", "revenue_code": "text"},
                   SERVICE_MEASURES, services)
        add_deltas(curs, "code_revisions_by_coder", {"actor_id": "text", "actor_role": "text"},
                   CODER_MEASURES, self._counters.coders)
        add_deltas(curs, "code_revisions_by_code", {"code_system": "text", "code": "text"},
                   CODE_MEASURES, self._counters.codes)
        return measured


def contribution(enc: Encounter) -> tuple[Rows, Rows]:
    """What one encounter adds to the per-diagnosis and per-diagnosis-and-code sums."""
    dx: Rows = []
    services: Rows = []
    if not enc.diagnoses:
        return dx, services
    active = enc.active_lines()
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for ln in active:
        accumulate(groups, (label(ln), ln.procedure_code, ln.revenue_code),
                   [1, ln.units, ln.current_charge.amount, ln.allowed.amount, ln.paid.amount],
                   1)
    charged = enc.total_charge.amount
    allowed, paid = encounter_money(enc)
    codes = [d.code for d in enc.diagnoses]
    for scope, scoped in (("principal", codes[:1]), ("any", codes)):
        for code in dict.fromkeys(scoped):
            dx.append(((code, scope), [1, len(active), charged, allowed, paid]))
            for (kind, proc, rev), (count, units, charge, l_allowed, l_paid) in groups.items():
                services.append(((code, scope, kind, proc, rev),
                                 [1, count, units, charge, l_allowed, l_paid]))
    return dx, services


# Events that change none of what ``contribution`` reads (the encounter's diagnoses and
# lines, its claims' paid and patient responsibility, its first bucket): after them the
# history keeps the encounter's previous record. Checked against a full computation after
# every event of the randomized workload (tests/unit/test_history_records.py).
CONTRIBUTION_KEPT = frozenset({
    Encounter.ClaimCreated, Encounter.ClaimScrubbed, Encounter.ClaimSubmitted,
    Encounter.ClaimAcknowledged, Encounter.RemittanceReceived,
    Encounter.PatientResponsibilityAssigned, Encounter.ClaimForwardedToSecondary,
    Encounter.ProviderAdjustmentPosted, Encounter.DenialRecorded, Encounter.AppealFiled,
    Encounter.ClaimVoidSettled, Encounter.StatementIssued, Encounter.PatientPaymentReceived,
    Encounter.RefundIssued, Encounter.WriteOffPosted, Encounter.DisputeOpened,
    Encounter.DisputeNoteAdded, Encounter.DisputeResolved, Encounter.AccessGranted,
    Encounter.AccessRevoked})


def history_record(state: TrendState, pe: PagedEvent | None = None,
                   previous: tuple[Rows, Rows] | None = None) -> tuple[Rows, Rows]:
    """The encounter's contribution after ``pe``: ``previous`` itself when ``pe`` cannot
    have changed it."""
    if previous is not None and pe is not None and type(pe.event) in CONTRIBUTION_KEPT:
        return previous
    return contribution(state.enc)


# ---------------------------------------------------------------- revision counters
def on_dx_coded(enc: Encounter, e: Any, n: Counters) -> None:
    n.coder(e, "diagnoses_coded")
    n.code(ICD, e.code, "assigned")


def on_dx_revised(enc: Encounter, e: Any, n: Counters) -> None:
    n.coder(e, "diagnoses_revised")
    n.code(ICD, e.old_code, "revised_from")
    n.code(ICD, e.new_code, "revised_to")


def on_dx_removed(enc: Encounter, e: Any, n: Counters) -> None:
    n.coder(e, "diagnoses_removed")
    n.code(ICD, e.code, "removed")


def on_line_added(enc: Encounter, e: Any, n: Counters) -> None:
    n.coder(e, "lines_added")
    n.code(*line_code(e.line.procedure_code, e.line.revenue_code), "assigned")


def on_line_revised(enc: Encounter, e: Any, n: Counters) -> None:
    line = enc.lines[str(e.line_no)]  # as it was before this event
    before = line_code(line.procedure_code, line.revenue_code)
    after = line_code(e.after.get("procedure_code", line.procedure_code),
                      e.after.get("revenue_code", line.revenue_code))
    n.coder(e, "lines_revised")
    if after != before:
        n.coder(e, "line_codes_revised")
        n.code(*before, "revised_from")
        n.code(*after, "revised_to")


def on_line_removed(enc: Encounter, e: Any, n: Counters) -> None:
    line = enc.lines[str(e.line_no)]
    n.coder(e, "lines_removed")
    n.code(*line_code(line.procedure_code, line.revenue_code), "removed")


def on_charge_adjusted(enc: Encounter, e: Any, n: Counters) -> None:
    n.coder(e, "charges_adjusted")


COUNTERS: dict[type, Callable[[Encounter, Any, Counters], None]] = {
    Encounter.DiagnosisCoded: on_dx_coded, Encounter.DiagnosisRevised: on_dx_revised,
    Encounter.DiagnosisRemoved: on_dx_removed, Encounter.ServiceLineAdded: on_line_added,
    Encounter.SupplyAdded: on_line_added, Encounter.ServiceLineRevised: on_line_revised,
    Encounter.ServiceLineRemoved: on_line_removed,
    Encounter.ChargeAdjusted: on_charge_adjusted, Encounter.ChargeReversed: on_charge_adjusted,
}


# ---------------------------------------------------------------- rows
ENCOUNTER_COLUMNS = ("encounter_id", "diagnoses", "first_bucket", "claim_buckets", "allowed",
                     "paid", "events", "version")
LINE_COLUMNS = ("encounter_id", "line_no", "kind", "procedure_code", "revenue_code", "units",
                "base_charge", "charge", "allowed", "paid", "removed")


def _write(curs: Cursor[DictRow], ids: list[UUID], states: dict[UUID, TrendState]) -> None:
    delete_where_in(curs, "trend_encounters", "encounter_id", ids)
    delete_where_in(curs, "trend_lines", "encounter_id", ids)
    rows, lines = [], []
    for s in states.values():
        enc = s.enc
        allowed, paid = encounter_money(enc)
        rows.append((enc.id, [d.code for d in enc.diagnoses], enc.first_bucket,
                     JsonValue({c.number: c.bucket for c in enc.claims.values()}), allowed,
                     paid, s.events, enc.version))
        for ln in enc.lines.values():
            lines.append((enc.id, ln.line_no, label(ln), ln.procedure_code, ln.revenue_code,
                          ln.units, ln.charge.amount, ln.current_charge.amount,
                          ln.allowed.amount, ln.paid.amount, ln.removed))
    copy_rows(curs, "trend_encounters", ENCOUNTER_COLUMNS, rows)
    copy_rows(curs, "trend_lines", LINE_COLUMNS, lines)
