"""Explain any money figure of an encounter: the events that produced it, each with its signed
effect, summing exactly to the figure.

There is no second copy of the money rules here. The encounter is replayed event by event with
the aggregate's own ``apply`` methods (``event.mutate``), the figure is read from the
aggregate's state before and after each event, and every event that moved it becomes a part.
The parts telescope from zero, so they sum to the figure by construction — and the figure is
the same one the encounter view shows, read from the same state.

A figure is named by a short string (``FIGURE_HELP`` lists them), e.g. ``balance:patient``,
``claim:S1-0001:paid`` or ``line:2:paid``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from ledger.domain import figures
from ledger.domain.encounter import Encounter
from ledger.domain.errors import InvalidValue, NotFound
from ledger.domain.values import Money, icd10cm_dotted

FIGURE_HELP = {
    "total_charge": "the encounter's total charge (active lines)",
    "balance:<bucket>": "open balance of a responsible party: primary, secondary, tertiary "
                        "or patient (negative = credit)",
    "patient_paid": "patient payments received",
    "refunded": "refunds issued",
    "written_off": "write-offs posted",
    "patient_share:<deductible|coinsurance|copay|other>": "patient responsibility assigned",
    "claim:<claim number>:<charge|paid|allowed|patient_responsibility>": "a claim's amount",
    "line:<line no>:<charge|paid|allowed>": "a service line's amount",
}
CLAIM_FIGURES = ("charge", "paid", "allowed", "patient_responsibility")
LINE_FIGURES = ("charge", "paid", "allowed")
BUCKETS = ("primary", "secondary", "tertiary", "patient")
SHARES = ("deductible", "coinsurance", "copay", "other")
# the event field that carries the date the money moved (effective date), when there is one
EFFECTIVE_DATE_FIELDS = ("received_on", "issued_on", "adjudication_date", "payment_date",
                         "statement_date", "decided_on", "filed_on", "line_date")

Reader = Callable[[Encounter | None], Money]


def _invalid(figure: str) -> InvalidValue:
    return InvalidValue("figure", "figure.known",
                        "figure: one of " + ", ".join(FIGURE_HELP) + f" (got {figure[:60]!r})")


def figure_reader(figure: str) -> Reader:
    """A function reading the named figure from an encounter's state (zero before it exists
    or before the claim/line it names exists)."""
    def guard(read: Callable[[Encounter], Money]) -> Reader:
        def reader(enc: Encounter | None) -> Money:
            return Money.zero() if enc is None else read(enc)
        return reader

    if figure == "total_charge":
        return guard(lambda e: e.total_charge)
    if figure in ("patient_paid", "refunded", "written_off"):
        return guard(lambda e: getattr(e, figure))
    kind, _, rest = figure.partition(":")
    if kind == "balance" and rest in BUCKETS:
        return guard(lambda e: e.balance(rest))
    if kind == "patient_share" and rest in SHARES:
        return guard(lambda e: e.patient_share.get(rest, Money.zero()))
    if kind == "claim" and ":" in rest:
        number, _, what = rest.rpartition(":")
        if what in CLAIM_FIGURES and number:
            def claim_figure(e: Encounter) -> Money:
                claim = e.claims.get(number)
                if claim is None:
                    return Money.zero()
                if what == "charge":  # as the claim view shows it
                    return claim.submitted_charge or e.claim_charge(claim)
                if what == "allowed":  # the one money model's rule (ledger.domain.figures)
                    return figures.claim_allowed(claim)
                return getattr(claim, what)
            return guard(claim_figure)
    if kind == "line" and ":" in rest:
        number, _, what = rest.partition(":")
        if number.isdigit() and what in LINE_FIGURES:
            def line_figure(e: Encounter) -> Money:
                line = e.lines.get(number)
                if line is None:
                    return Money.zero()
                if what == "charge":
                    return Money.zero() if line.removed else line.current_charge
                return getattr(line, what)
            return guard(line_figure)
    raise _invalid(figure)


def _effective_date(event: Any) -> date | None:
    for name in EFFECTIVE_DATE_FIELDS:
        value = getattr(event, name, None)
        if isinstance(value, date):
            return value
    return None


def _adjustments(adjustments: Iterable[Any]) -> str:
    return ", ".join(f"{a.group}-{a.reason} {a.amount}" for a in adjustments)


def describe(event: Any) -> str:
    """What an event did, in a few words (codes and amounts, never PHI)."""
    name = type(event).__name__
    g = event.__dict__.get
    if name == "DiagnosisCoded":
        return f"diagnosis {g('position')}: {icd10cm_dotted(g('code'))}"
    if name == "DiagnosisRevised":
        return f"diagnosis {g('position')}: {icd10cm_dotted(g('old_code'))} → " \
               f"{icd10cm_dotted(g('new_code'))}"
    if name == "DiagnosisRemoved":
        return f"diagnosis {g('position')} {icd10cm_dotted(g('code'))} removed"
    if name == "ServiceLineRevised":
        before, after = g("before") or {}, g("after") or {}
        return f"line {g('line_no')}: " + ", ".join(
            f"{k} {before.get(k)} → {after.get(k)}" for k in after)
    if name == "ServiceLineRemoved":
        return f"line {g('line_no')} removed"
    if name == "ClaimCreated":
        return f"claim {g('claim_number')} to {g('payer_id')} ({g('bucket')}), frequency " \
               f"{g('frequency')}"
    if name in ("ServiceLineAdded", "SupplyAdded"):
        line = g("line")
        return f"line {line.line_no} {line.procedure_code or line.revenue_code} " \
               f"charge {line.charge}" if line is not None else ""
    if name == "ClaimAdjudicated":
        text = f"claim {g('claim_number')} CLP02 {g('status_code')}, paid {g('paid')}"
        extra = _adjustments(g("claim_adjustments") or [])
        return text + (f"; claim-level {extra}" if extra else "")
    if name == "LineAdjudicated":
        r = g("result")
        return f"claim {g('claim_number')} line {r.line_no} {r.procedure_code}: paid " \
               f"{r.paid}" + (f"; {_adjustments(r.adjustments)}" if r.adjustments else "")
    if name == "PatientResponsibilityAssigned":
        parts = [f"{k} {g(k)}" for k in SHARES if g(k) is not None and not g(k).is_zero()]
        return f"claim {g('claim_number')}: " + ", ".join(parts) + f" to {g('to_bucket')}"
    if name in ("PatientPaymentReceived", "RefundIssued"):
        return f"{g('method')}, balance after {g('balance_after')}"
    if name == "WriteOffPosted":
        return f"{g('category')} from {g('bucket')}, approved by {g('approver_id')}"
    if name in ("ChargeAdjusted", "ChargeReversed"):
        return f"line {g('line_no')}"
    if name in ("AppealFiled", "AppealDecided"):
        return f"claim {g('claim_number')}" + (f": {g('outcome')}" if g("outcome") else "")
    return f"claim {g('claim_number')}" if g("claim_number") else ""


def explain(events: Iterable[Any], figure: str, *, as_of_version: int | None = None
            ) -> dict[str, Any]:
    """Replay ``events`` (one encounter's, in order) and return the figure with its parts:
    ``{"figure", "value", "version", "parts": [{version, event, recorded_at, effective_date,
    actor_id, actor_role, reason, amount, sign, before, after}], "total"}`` where
    ``total`` (the sum of the parts' amounts) equals ``value``."""
    read = figure_reader(figure)
    enc: Encounter | None = None
    value = read(None)
    parts: list[dict[str, Any]] = []
    for event in events:
        if as_of_version is not None and event.originator_version > as_of_version:
            break
        enc = event.mutate(enc)
        after = read(enc)
        if after != value:
            amount = after - value
            parts.append({
                "version": event.originator_version,
                "event": type(event).__name__,
                "recorded_at": event.timestamp,
                "effective_date": _effective_date(event),
                "actor_id": getattr(event, "actor_id", ""),
                "actor_role": getattr(event, "actor_role", ""),
                "reason": getattr(event, "reason", ""),
                "detail": describe(event),
                "amount": amount,
                "sign": "+" if amount.is_positive() else "-",
                "before": value,
                "after": after,
            })
            value = after
    if enc is None:
        raise NotFound("encounter_id", "encounter.exists", "encounter_id: no such encounter")
    total = sum((p["amount"] for p in parts), Money.zero())
    assert total == value, "parts must telescope to the figure"
    return {"figure": figure, "value": value, "version": enc.version, "parts": parts,
            "total": total}


def figures_of(enc: Encounter) -> list[str]:
    """Every figure name that applies to this encounter (for links and listings)."""
    names = ["total_charge", *(f"balance:{b}" for b in sorted(enc.buckets)),
             "patient_paid", "refunded", "written_off",
             *(f"patient_share:{s}" for s in SHARES)]
    for number in enc.claims:
        names += [f"claim:{number}:{w}" for w in CLAIM_FIGURES]
    for no in enc.lines:
        names += [f"line:{no}:{w}" for w in LINE_FIGURES]
    return names
