"""The money figures shown for a claim, derived from the Encounter aggregate's own state.

One copy of each rule: the API's claim read (``ledger.views``) and the read models
(``ledger.projections.claims``, ``ledger.projections.trends``) call these functions on the
same ``Encounter``/``Claim`` objects, so they cannot disagree. The aggregate books the money
(buckets, paid, patient responsibility, each adjudication and its adjustments); this module
only says how those facts add up into the figures people read. Plain functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from ledger.domain.model import SEQUENCES, Adjustment, Claim
from ledger.domain.values import Money

BUCKETS = (*SEQUENCES, "patient")
CENT = Decimal("0.01")
# Claims the payer still has to act on (counted as "open" on payer balances and aging).
OPEN_STATUSES = frozenset({"submitted", "accepted", "rejected", "denied", "in_appeal"})
# Claims whose money another claim carries on (a replacement), or that were withdrawn.
SUPERSEDED_STATUSES = frozenset({"voided", "replaced"})

AdjustmentKey = tuple[str, str]  # (CAS group, CARC)


def claim_allowed(claim: Claim) -> Money:
    """What the payer allowed: its payment plus the patient's responsibility (CLP04 +
    CLP05), net of reversals. Also right for claim-level (DRG) payments, which carry no
    line-level AMT*B6."""
    return claim.paid + claim.patient_responsibility


def is_superseded(claim: Claim) -> bool:
    """Replaced by a later claim, or voided: its charge is no longer billed."""
    return bool(claim.replaced_by) or claim.status in SUPERSEDED_STATUSES


def billed(claim: Claim) -> Money:
    """The submitted charge of a current (not superseded) claim; zero otherwise."""
    if not claim.submissions or claim.submitted_charge is None or is_superseded(claim):
        return Money.zero()
    return claim.submitted_charge


def _reopened(claim: Claim) -> tuple[list[Adjustment], Decimal]:
    """The denial adjustments an appeal took back, and how many times (net): filing an
    appeal reopens the denial's non-PR adjustments, an upheld appeal reapplies them; the
    aggregate keeps their running total in ``claim.reopened``."""
    if claim.reopened.is_zero() or claim.denial_seq is None:
        return [], Decimal(0)
    denial = claim.adjudications[claim.denial_seq - 1]
    taken = [a for a in denial.adjustments if a.group != "PR"]
    total = sum((a.amount for a in taken), Money.zero())
    if total.is_zero():
        return [], Decimal(0)
    return taken, claim.reopened.amount / total.amount


def claim_adjustments(claim: Claim, line_no: int | None = None,
                      *, claim_level: bool = True) -> dict[AdjustmentKey, Money]:
    """Every CAS adjustment of the claim (claim and line level; or only those of line
    ``line_no``), summed by (group, CARC), net of reversals and of denial adjustments an
    open or overturned appeal took back. Zero sums are left out."""
    out: dict[AdjustmentKey, Money] = {}

    def add(adj: Adjustment, sign: Decimal) -> None:
        if line_no is not None and adj.line_no != line_no:
            return
        if line_no is None and not claim_level and adj.line_no is None:
            return
        key = (adj.group, adj.reason)
        value = adj.amount if sign == 1 else Money((adj.amount.amount * sign).quantize(CENT))
        out[key] = out.get(key, Money.zero()) + value

    for adjudication in claim.adjudications:
        for adj in adjudication.adjustments:
            add(adj, Decimal(1))
    taken, times = _reopened(claim)
    for adj in taken:
        add(adj, -times)
    return {k: v for k, v in out.items() if not v.is_zero()}


def adjustment_total(adjustments: dict[AdjustmentKey, Money],
                     groups: tuple[str, ...] | None = None) -> Money:
    return sum((v for (g, _), v in adjustments.items() if groups is None or g in groups),
               Money.zero())


def claim_outstanding(claim: Claim, written_off: Money | None = None) -> Money:
    """What a submitted claim still awaits from its payer: submitted charge − paid − every
    (net) adjustment (PR moved to the patient or the next payer) − write-offs booked to the
    claim. Zero for a claim never submitted, closed, voided or replaced (its replacement
    carries it on)."""
    if not claim.submissions or claim.status in ("closed", *SUPERSEDED_STATUSES) or \
            claim.replaced_by:
        return Money.zero()
    charge = claim.submitted_charge or Money.zero()
    return charge - claim.paid - adjustment_total(claim_adjustments(claim)) - \
        (written_off or Money.zero())


def denied_amount(claim: Claim) -> Money | None:
    """Charge − paid of the claim's latest denial (CLP02 = 4) still standing, if any."""
    for adjudication in reversed(claim.adjudications):
        if adjudication.status_code == "4" and not adjudication.reversed:
            return adjudication.charge - adjudication.paid
    return None


@dataclass(slots=True)
class LineMoney:
    """What the payer said about one line of one claim, over all its adjudications."""

    paid: Money = field(default_factory=Money.zero)
    allowed: Money = field(default_factory=Money.zero)
    patient_responsibility: Money = field(default_factory=Money.zero)
    adjustments: dict[AdjustmentKey, Money] = field(default_factory=dict)
    remarks: list[str] = field(default_factory=list)


def claim_line_money(claim: Claim) -> dict[int, LineMoney]:
    """Per line of the claim: paid, allowed (AMT*B6), patient responsibility, adjustments
    (net, as ``claim_adjustments``) and remarks, summed over the claim's adjudications
    (reversals carry negative amounts, so they net out)."""
    out: dict[int, LineMoney] = {}
    for adjudication in claim.adjudications:
        for result in getattr(adjudication, "lines", ()):
            money = out.get(result.line_no)
            if money is None:
                money = out[result.line_no] = LineMoney()
            money.paid = money.paid + result.paid
            if result.allowed is not None:
                money.allowed = money.allowed + result.allowed
            money.remarks.extend(result.remarks)
    line_nos = set(out) | {a.line_no for adj in claim.adjudications for a in adj.adjustments
                           if a.line_no is not None}
    for n in line_nos:
        money = out.get(n)
        if money is None:
            money = out[n] = LineMoney()
        money.adjustments = claim_adjustments(claim, n)
        money.patient_responsibility = adjustment_total(money.adjustments, ("PR",))
    return out
