"""Projection "trends": which services and supplies are used for which diagnoses, what they
cost (charged, allowed, paid), and which codes coders change most.

Per diagnosis and scope ('principal': the encounter's diagnosis 1 only; 'any': every
diagnosis it carries) the view keeps the number of encounters, their lines and money, and per
service/supply code the number of encounters and lines using it, units and money. An
encounter contributes its *current* coding: when a diagnosis is revised or a line removed,
its contribution moves (the difference before/after each page is added), so the view answers
"for patients with diagnosis X, which services?" without scanning events.

Money: line allowed/paid come from line-level remittance (SVC); an encounter's allowed is
paid + patient responsibility of its claims to the first payer, its paid is every payer's
payments — so claim-level (DRG) payments show on the diagnosis row.

Code revisions count, per coder, diagnoses coded/revised/removed and lines added/revised/
removed, and per code how often it was assigned, revised away from, revised to and removed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.projections.base import PagedEvent, ReadModel
from ledger.projections.rows import (
    ZERO,
    JsonValue,
    accumulate,
    add_deltas,
    amount,
    copy_rows,
    delete_where_in,
)

ICD = "ICD-10-CM"
PROCEDURE = "CPT/HCPCS"
REVENUE = "revenue"


@dataclass(slots=True)
class TrendLine:
    line_no: int
    kind: str
    procedure_code: str
    revenue_code: str
    units: Decimal
    base_charge: Decimal
    charge: Decimal
    allowed: Decimal = ZERO
    paid: Decimal = ZERO
    removed: bool = False

    @property
    def code(self) -> tuple[str, str]:
        return (PROCEDURE, self.procedure_code) if self.procedure_code else \
            (REVENUE, self.revenue_code)


@dataclass(slots=True)
class TrendEncounter:
    encounter_id: UUID
    first_bucket: str
    diagnoses: list[str] = field(default_factory=list)
    claim_buckets: dict[str, str] = field(default_factory=dict)
    allowed: Decimal = ZERO
    paid: Decimal = ZERO
    events: int = 0
    version: int = 0
    lines: dict[int, TrendLine] = field(default_factory=dict)


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
    """Revision counters collected over a page."""

    def __init__(self) -> None:
        self.coders: dict[tuple[Any, ...], list[Any]] = {}
        self.codes: dict[tuple[Any, ...], list[Any]] = {}

    def coder(self, e: Any, measure: str) -> None:
        values = [0] * len(CODER_MEASURES)
        values[CODER_INDEX[measure]] = 1
        accumulate(self.coders, (e.actor_id, e.actor_role), values, 1)

    def code(self, system: str, code: str, measure: str) -> None:
        if not code:
            return
        values = [0] * len(CODE_MEASURES)
        values[CODE_INDEX[measure]] = 1
        accumulate(self.codes, (system, code), values, 1)


class TrendsView(ReadModel):
    name = "trends"
    tables = ("trend_diagnoses", "trend_diagnosis_services", "code_revisions_by_coder",
              "code_revisions_by_code", "trend_encounters", "trend_lines")
    keys = {
        "trend_diagnoses": ("diagnosis", "scope"),
        "trend_diagnosis_services": ("diagnosis", "scope", "kind", "procedure_code",
                                     "revenue_code"),
        "code_revisions_by_coder": ("actor_id", "actor_role"),
        "code_revisions_by_code": ("code_system", "code"),
        "trend_encounters": ("encounter_id",),
        "trend_lines": ("encounter_id", "line_no"),
    }

    def apply(self, curs: Cursor[DictRow], events: Sequence[PagedEvent]) -> None:
        ids = list(dict.fromkeys(e.encounter_id for e in events))
        states = _load(curs, ids)
        dx: dict[tuple[Any, ...], list[Any]] = {}
        services: dict[tuple[Any, ...], list[Any]] = {}
        counters = Counters()
        for enc in states.values():
            _contribute(enc, dx, services, -1)
        for pe in events:
            e = pe.event
            enc = states.get(pe.encounter_id)
            if enc is None:
                if type(e).__name__ != "Opened":
                    raise LookupError(f"trends: event {pe.position} for an encounter the view "
                                      "does not hold")
                enc = states[pe.encounter_id] = TrendEncounter(
                    e.originator_id, e.responsible_parties[0].bucket)
            else:
                handler = HANDLERS.get(type(e).__name__)
                if handler is not None:
                    handler(enc, e, counters)
            enc.events += 1
            enc.version = e.originator_version
        for enc in states.values():
            _contribute(enc, dx, services, +1)
        _write(curs, ids, states)
        add_deltas(curs, "trend_diagnoses", {"diagnosis": "text", "scope": "text"},
                   DX_MEASURES, dx)
        add_deltas(curs, "trend_diagnosis_services",
                   {"diagnosis": "text", "scope": "text", "kind": "text",
                    "procedure_code": "text", "revenue_code": "text"},
                   SERVICE_MEASURES, services)
        add_deltas(curs, "code_revisions_by_coder", {"actor_id": "text", "actor_role": "text"},
                   CODER_MEASURES, counters.coders)
        add_deltas(curs, "code_revisions_by_code", {"code_system": "text", "code": "text"},
                   CODE_MEASURES, counters.codes)


def _contribute(enc: TrendEncounter, dx: dict[tuple[Any, ...], list[Any]],
                services: dict[tuple[Any, ...], list[Any]], sign: int) -> None:
    if not enc.diagnoses:
        return
    active = [ln for ln in enc.lines.values() if not ln.removed]
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for ln in active:
        accumulate(groups, (ln.kind, ln.procedure_code, ln.revenue_code),
                   [1, ln.units, ln.charge, ln.allowed, ln.paid], 1)
    charged = sum((ln.charge for ln in active), ZERO)
    for scope, codes in (("principal", enc.diagnoses[:1]), ("any", enc.diagnoses)):
        for code in dict.fromkeys(codes):
            accumulate(dx, (code, scope), [1, len(active), charged, enc.allowed, enc.paid], sign)
            for (kind, proc, rev), (count, units, charge, allowed, paid) in groups.items():
                accumulate(services, (code, scope, kind, proc, rev),
                           [1, count, units, charge, allowed, paid], sign)


# ---------------------------------------------------------------- handlers
def on_dx_coded(enc: TrendEncounter, e: Any, n: Counters) -> None:
    enc.diagnoses.insert(e.position - 1, e.code)
    n.coder(e, "diagnoses_coded")
    n.code(ICD, e.code, "assigned")


def on_dx_revised(enc: TrendEncounter, e: Any, n: Counters) -> None:
    enc.diagnoses[e.position - 1] = e.new_code
    n.coder(e, "diagnoses_revised")
    n.code(ICD, e.old_code, "revised_from")
    n.code(ICD, e.new_code, "revised_to")


def on_dx_removed(enc: TrendEncounter, e: Any, n: Counters) -> None:
    del enc.diagnoses[e.position - 1]
    n.coder(e, "diagnoses_removed")
    n.code(ICD, e.code, "removed")


def on_line_added(enc: TrendEncounter, e: Any, n: Counters) -> None:
    ln = e.line
    line = enc.lines[ln.line_no] = TrendLine(
        ln.line_no, ln.kind, ln.procedure_code, ln.revenue_code, ln.units, amount(ln.charge),
        amount(ln.charge))
    n.coder(e, "lines_added")
    n.code(*line.code, "assigned")


def on_line_revised(enc: TrendEncounter, e: Any, n: Counters) -> None:
    line = enc.lines[e.line_no]
    before = line.code
    after = e.after
    if "procedure_code" in after:
        line.procedure_code = after["procedure_code"]
    if "revenue_code" in after:
        line.revenue_code = after["revenue_code"]
    if "units" in after:
        line.units = after["units"]
    if "charge" in after:
        new_base = amount(after["charge"])
        line.charge += new_base - line.base_charge
        line.base_charge = new_base
    n.coder(e, "lines_revised")
    if line.code != before:
        n.coder(e, "line_codes_revised")
        n.code(*before, "revised_from")
        n.code(*line.code, "revised_to")


def on_line_removed(enc: TrendEncounter, e: Any, n: Counters) -> None:
    line = enc.lines[e.line_no]
    line.removed = True
    n.coder(e, "lines_removed")
    n.code(*line.code, "removed")


def on_charge_adjusted(enc: TrendEncounter, e: Any, n: Counters) -> None:
    enc.lines[e.line_no].charge += amount(e.amount)
    n.coder(e, "charges_adjusted")


def on_claim_created(enc: TrendEncounter, e: Any, n: Counters) -> None:
    enc.claim_buckets[e.claim_number] = e.bucket


def on_claim_adjudicated(enc: TrendEncounter, e: Any, n: Counters) -> None:
    paid = amount(e.paid)
    enc.paid += paid
    if enc.claim_buckets.get(e.claim_number) == enc.first_bucket:
        enc.allowed += paid + amount(e.patient_responsibility)


def on_line_adjudicated(enc: TrendEncounter, e: Any, n: Counters) -> None:
    r = e.result
    line = enc.lines[r.line_no]
    line.paid += amount(r.paid)
    if r.allowed is not None:
        line.allowed += amount(r.allowed)


HANDLERS: dict[str, Callable[[TrendEncounter, Any, Counters], None]] = {
    "DiagnosisCoded": on_dx_coded, "DiagnosisRevised": on_dx_revised,
    "DiagnosisRemoved": on_dx_removed, "ServiceLineAdded": on_line_added,
    "SupplyAdded": on_line_added, "ServiceLineRevised": on_line_revised,
    "ServiceLineRemoved": on_line_removed, "ChargeAdjusted": on_charge_adjusted,
    "ChargeReversed": on_charge_adjusted, "ClaimCreated": on_claim_created,
    "ClaimAdjudicated": on_claim_adjudicated, "LineAdjudicated": on_line_adjudicated,
}


# ---------------------------------------------------------------- load and write
ENCOUNTER_COLUMNS = ("encounter_id", "diagnoses", "first_bucket", "claim_buckets", "allowed",
                     "paid", "events", "version")
LINE_COLUMNS = ("encounter_id", "line_no", "kind", "procedure_code", "revenue_code", "units",
                "base_charge", "charge", "allowed", "paid", "removed")


def _load(curs: Cursor[DictRow], ids: list[UUID]) -> dict[UUID, TrendEncounter]:
    states: dict[UUID, TrendEncounter] = {}
    curs.execute("SELECT * FROM trend_encounters WHERE encounter_id = ANY(%s)", (ids,))
    for r in curs.fetchall():
        states[r["encounter_id"]] = TrendEncounter(
            r["encounter_id"], r["first_bucket"], list(r["diagnoses"]), dict(r["claim_buckets"]),
            r["allowed"], r["paid"], r["events"], r["version"])
    if states:
        curs.execute("SELECT * FROM trend_lines WHERE encounter_id = ANY(%s)", (list(states),))
        for r in curs.fetchall():
            states[r["encounter_id"]].lines[r["line_no"]] = TrendLine(
                r["line_no"], r["kind"], r["procedure_code"], r["revenue_code"], r["units"],
                r["base_charge"], r["charge"], r["allowed"], r["paid"], r["removed"])
    return states


def _write(curs: Cursor[DictRow], ids: list[UUID], states: dict[UUID, TrendEncounter]) -> None:
    delete_where_in(curs, "trend_encounters", "encounter_id", ids)
    delete_where_in(curs, "trend_lines", "encounter_id", ids)
    copy_rows(curs, "trend_encounters", ENCOUNTER_COLUMNS, (
        (s.encounter_id, s.diagnoses, s.first_bucket, JsonValue(s.claim_buckets), s.allowed,
         s.paid, s.events, s.version) for s in states.values()))
    copy_rows(curs, "trend_lines", LINE_COLUMNS, (
        (s.encounter_id, ln.line_no, ln.kind, ln.procedure_code, ln.revenue_code, ln.units,
         ln.base_charge, ln.charge, ln.allowed, ln.paid, ln.removed)
        for s in states.values() for ln in s.lines.values()))
