"""Remittance posting (835): payer adjudications, reversals, forwarding to the next payer,
provider-level adjustments; the duplicate-payment rule."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ledger.domain.errors import IllegalTransition, InvalidValue, RuleViolation
from ledger.domain.model import (
    ADJUDICATION_CODES,
    ADJUSTMENT_GROUPS,
    FINAL_CODES,
    FORWARDED_CODES,
    REVERSAL_CODE,
    Actor,
    Adjudication,
    Adjustment,
    Claim,
    LineResult,
    RemittanceRef,
    ResponsibleParty,
)
from ledger.domain.values import Money

if TYPE_CHECKING:  # the aggregate mixes this class in; only annotations name it
    from ledger.domain.encounter.aggregate import Encounter

POSTABLE_STATUSES = {"submitted", "accepted", "adjudicated", "denied", "in_appeal", "paid",
                     "closed"}

DRG_RE = re.compile(r"[0-9A-Z]{1,4}")  # MS-DRG / APR-DRG codes (835 CLP11)


class DuplicatePayment(RuleViolation):
    """A second paid/denied adjudication of a claim by its payer with no reversal in between:
    not posted; the importer puts it in the exceptions queue with both traces."""

    def __init__(self, claim_number: str, earlier_remittance: str, earlier_trace: str) -> None:
        super().__init__("status_code", "payment.duplicate",
                         f"claim {claim_number[:40]}: already adjudicated by this payer "
                         f"(trace {earlier_trace[:30]}) with no reversal since; a second "
                         "payment is a suspected duplicate")
        self.earlier_remittance = earlier_remittance
        self.earlier_trace = earlier_trace


class Remittance:
    """Remittance commands; a mixin of ``Encounter``."""

    def post_adjudication(
        self: Encounter,
        claim_number: str,
        *,
        status_code: str,
        charge: Money,
        paid: Money,
        patient_responsibility: Money,
        payer_icn: str,
        adjudication_date: date,
        remittance: RemittanceRef,
        claim_adjustments: list[Adjustment],
        lines: list[LineResult],
        actor: Actor,
        remarks: list[str] | None = None,
        appeal_window_days: int = 120,
        drg_code: str = "",
    ) -> bool:
        """Post one claim of a remittance (CLP loop). Checks the 835 balancing rules first.

        Returns False (and records nothing) when this remittance was already posted to this
        claim: posting the same remittance twice posts nothing the second time.
        """
        who = self._actor(actor)
        claim = self._claim(claim_number)
        if drg_code and not DRG_RE.fullmatch(str(drg_code)):
            raise InvalidValue("drg_code", "drg.format",
                               "drg_code: a DRG code of 1 to 4 digits or capital letters")
        key = f"{remittance.key}|{claim.number}"
        if key in self.remittances:
            return False
        if status_code not in ADJUDICATION_CODES:
            raise InvalidValue("status_code", "clp02.enum",
                               f"status_code: {status_code!r} is not a CLP02 claim status")
        if claim.status not in POSTABLE_STATUSES and status_code != "22":
            raise IllegalTransition("claim_number", "remittance.requires_submitted",
                                    f"claim_number: a {claim.status} claim was never "
                                    "submitted; a remittance cannot be posted to it")
        charge = Money.parse(charge, "charge")
        paid = Money.parse(paid, "paid")
        patient_responsibility = Money.parse(patient_responsibility, "patient_responsibility")
        for adj in claim_adjustments:
            _check_adjustment(adj, "claim_adjustments")
        line_total = Money.zero()
        seen_lines: set[int] = set()
        for i, res in enumerate(lines):
            field = f"lines[{i}]"
            if res.line_no not in claim.line_nos:
                raise RuleViolation(f"{field}.line_no", "remittance.line_on_claim",
                                    f"{field}.line_no: line {res.line_no} is not on the claim")
            if res.line_no in seen_lines and status_code != "22":
                raise RuleViolation(f"{field}.line_no", "remittance.line_once",
                                    f"{field}.line_no: line {res.line_no} appears twice")
            seen_lines.add(res.line_no)
            cas = Money.zero()
            for adj in res.adjustments:
                _check_adjustment(adj, f"{field}.adjustments")
                cas = cas + adj.amount
            if res.submitted - res.paid != cas:
                raise RuleViolation(f"{field}", "835.line_balance",
                                    f"{field}: submitted {res.submitted} - paid {res.paid} must "
                                    f"equal the line's adjustments {cas} (SVC02-SVC03=ΣCAS)")
            line_total = line_total + cas
        claim_cas = sum((a.amount for a in claim_adjustments), Money.zero())
        if charge - paid != claim_cas + line_total:
            raise RuleViolation("charge", "835.claim_balance",
                                f"charge: {charge} - paid {paid} must equal claim and line "
                                f"adjustments {claim_cas + line_total} (CLP03-CLP04=ΣCAS)")
        all_adjustments = list(claim_adjustments) + [a for r in lines for a in r.adjustments]
        pr_total = sum((a.amount for a in all_adjustments if a.group == "PR"), Money.zero())
        if patient_responsibility != pr_total:
            raise RuleViolation("patient_responsibility", "835.patient_responsibility",
                                f"patient_responsibility: {patient_responsibility} must equal "
                                f"the PR adjustments {pr_total} (CLP05=ΣPR)")
        reverses_seq = None
        if status_code == REVERSAL_CODE:
            original = reversed_adjudication(claim, charge, paid, patient_responsibility,
                                             str(payer_icn or ""), all_adjustments)
            if original is None:
                raise RuleViolation("status_code", "reversal.pairs_with_original",
                                    "status_code: a reversal (22) must negate a posted, "
                                    "unreversed adjudication of this claim (paid, charge, PR "
                                    "and every CAS)")
            reverses_seq = original.seq
            lines = _negated_allowed(lines, original)
        else:
            if not paid.is_zero() and paid.is_negative():
                raise RuleViolation("paid", "835.paid_non_negative",
                                    "paid: a negative payment is only legal on a reversal (22)")
            if status_code in FINAL_CODES and not claim.appeal_open:
                for earlier in claim.active_adjudications():
                    if earlier.status_code in FINAL_CODES:
                        raise DuplicatePayment(claim.wire_number, earlier.remittance_key,
                                               earlier.trace_number)
            claim_charge = claim.submitted_charge or self.claim_charge(claim)
            if claim.paid + paid > claim_charge:
                raise RuleViolation("paid", "payments.not_above_charge",
                                    f"paid: payer payments would exceed the claim charge "
                                    f"{claim_charge}")
            for i, res in enumerate(lines):
                line = self.lines[str(res.line_no)]
                before = claim.line_paid.get(str(res.line_no), Money.zero())
                if before + res.paid > line.current_charge:
                    raise RuleViolation(f"lines[{i}].paid", "payments.line_not_above_charge",
                                        f"lines[{i}].paid: line {res.line_no} would be paid "
                                        f"{before + res.paid}, more than its charge "
                                        f"{line.current_charge}")
        # where the patient-responsibility goes: the next payer in COB order, else the patient
        next_party = self._next_payer(claim.bucket)
        to_bucket = next_party.bucket if next_party is not None and \
            status_code != REVERSAL_CODE else "patient"
        if status_code == REVERSAL_CODE:
            to_bucket = self._reversal_pr_bucket(claim, reverses_seq)
        booked = paid + sum((a.amount for a in all_adjustments
                             if self._books(claim, a)), Money.zero()) + pr_total
        after = self.balance(claim.bucket) - booked
        if after.is_negative():
            raise RuleViolation("paid", "balance.payer_negative",
                                f"paid: posting would leave the {claim.bucket} payer balance at "
                                f"{after}; the remittance does not fit this claim")
        if to_bucket != "patient" and (self.balance(to_bucket) + pr_total).is_negative():
            raise RuleViolation("patient_responsibility", "balance.payer_negative",
                                f"patient_responsibility: the {to_bucket} payer balance would "
                                "go below zero")
        self.trigger_event(self.RemittanceReceived, claim_number=claim.number,
                           remittance_key=remittance.key, payer_id=remittance.payer_id,
                           trace_number=remittance.trace_number, file_hash=remittance.file_hash,
                           payment_date=remittance.payment_date, reason="", **who)
        self.trigger_event(self.ClaimAdjudicated, claim_number=claim.number,
                           status_code=status_code, charge=charge, paid=paid,
                           patient_responsibility=patient_responsibility,
                           payer_icn=str(payer_icn or ""), adjudication_date=adjudication_date,
                           remittance_key=remittance.key,
                           claim_adjustments=list(claim_adjustments),
                           remarks=list(remarks or []), reverses_seq=reverses_seq,
                           trace_number=remittance.trace_number, reason="",
                           **({"drg_code": str(drg_code)} if drg_code else {}), **who)
        for res in lines:
            self.trigger_event(self.LineAdjudicated, claim_number=claim.number, result=res,
                               reason="", **who)
        if not pr_total.is_zero():
            shares = {"1": Money.zero(), "2": Money.zero(), "3": Money.zero()}
            other = Money.zero()
            for a in all_adjustments:
                if a.group == "PR":
                    if a.reason in shares:
                        shares[a.reason] = shares[a.reason] + a.amount
                    else:
                        other = other + a.amount
            self.trigger_event(self.PatientResponsibilityAssigned, claim_number=claim.number,
                               deductible=shares["1"], coinsurance=shares["2"],
                               copay=shares["3"], other=other, to_bucket=to_bucket, reason="",
                               **who)
            if to_bucket != "patient" and status_code != REVERSAL_CODE:
                target = self._party(to_bucket)
                self.trigger_event(self.ClaimForwardedToSecondary, claim_number=claim.number,
                                   to_bucket=to_bucket,
                                   to_payer_id=target.payer_id if target else "",
                                   amount=pr_total, reason="", **who)
                if status_code in FORWARDED_CODES and self.find_claim(
                        claim.wire_number, {target.payer_id} if target else set()) is None:
                    self.create_crossover_claim(claim.number, bucket=to_bucket, actor=actor)
        if claim.status == "voided":
            self._settle_void(claim, who)
        if status_code == "4":
            carcs = sorted({a.reason for a in all_adjustments})
            rarcs = sorted({r for res in lines for r in res.remarks} | set(remarks or []))
            self.trigger_event(
                self.DenialRecorded, claim_number=claim.number, carc=carcs, rarc=rarcs,
                deadline=adjudication_date + timedelta(days=appeal_window_days),
                adjudication_seq=len(claim.adjudications), reason="", **who)
        return True

    def _reversal_pr_bucket(self: Encounter, claim: Claim, seq: int | None) -> str:
        """A reversal takes the PR back from where the original put it."""
        if seq is not None and claim.adjudications[seq - 1].pr_to:
            return claim.adjudications[seq - 1].pr_to
        return "patient"

    def _next_payer(self: Encounter, bucket: str) -> ResponsibleParty | None:
        names = [p.bucket for p in self.parties]
        if bucket not in names:
            return None
        for p in self.parties[names.index(bucket) + 1:]:
            if p.kind != "patient":
                return p
        return None

    def post_provider_adjustment(self: Encounter,
                                 claim_number: str, *, reason_code: str, reference: str,
                                 amount: Any, remittance_key: str, actor: Actor) -> None:
        """A PLB adjustment that names this claim (PLB03-2: its ICN or claim number): WO
        recoupment, FB forwarding balance, 72, J1… A positive amount is money the payer takes
        back: on a voided claim it settles what was owed back; on a live claim it is open with
        the payer again. A negative amount is extra payment on the claim."""
        who = self._actor(actor)
        claim = self._claim(claim_number)
        value = Money.parse(amount, "amount")
        if value.is_zero():
            raise InvalidValue("amount", "money.non_zero", "amount: must not be zero")
        if not isinstance(reason_code, str) or not 2 <= len(reason_code) <= 2:
            raise InvalidValue("reason_code", "plb.reason", "reason_code: a 2-character PLB code")
        if claim.status == "voided":
            if value > claim.owed_back:
                raise RuleViolation("amount", "plb.not_above_owed",
                                    f"amount: {value} is more than the voided claim's payment "
                                    f"still owed back ({claim.owed_back})")
        elif (self.balance(claim.bucket) + value).is_negative():
            raise RuleViolation("amount", "balance.payer_negative",
                                f"amount: the {claim.bucket} payer balance would go below zero")
        self.trigger_event(self.ProviderAdjustmentPosted, claim_number=claim.number,
                           plb_reason=reason_code, reference=str(reference)[:50], amount=value,
                           remittance_key=remittance_key, books=True, reason="", **who)


def reversed_adjudication(claim: Claim, charge: Money, paid: Money, pr: Money, icn: str,
                          adjustments: Iterable[Adjustment]) -> Adjudication | None:
    """The adjudication a reversal (22) names: posted, not yet reversed, whose charge,
    paid, patient responsibility and every CAS (by group and reason) it negates; the
    payer's ICN (CLP07) picks between equal candidates. None: there is none (the importer
    asks too, to pair a reversal's SVCs with the lines of the adjudication it negates)."""
    totals: dict[tuple[str, str], Money] = {}
    for a in adjustments:
        totals[(a.group, a.reason)] = totals.get((a.group, a.reason), Money.zero()) - a.amount
    fits = []
    for adj in claim.active_adjudications():
        if adj.paid != -paid or adj.charge != -charge or adj.patient_responsibility != -pr:
            continue
        theirs: dict[tuple[str, str], Money] = {}
        for a in adj.adjustments:
            theirs[(a.group, a.reason)] = theirs.get((a.group, a.reason), Money.zero()) + \
                a.amount
        if {k: v for k, v in theirs.items() if not v.is_zero()} != \
                {k: v for k, v in totals.items() if not v.is_zero()}:
            continue
        fits.append(adj)
    by_icn = [a for a in fits if icn and a.payer_icn == icn]
    chosen = by_icn or fits
    return chosen[-1] if chosen else None


def _negated_allowed(lines: list[LineResult], original: Adjudication) -> list[LineResult]:
    """A reversal's SVC rarely repeats AMT*B6: it negates the allowed amount the original
    posted for that line."""
    allowed = {r.line_no: r.allowed for r in original.lines}
    out = []
    for res in lines:
        if res.allowed is None and allowed.get(res.line_no) is not None:
            res = LineResult(res.line_no, res.procedure_code, res.submitted, res.paid,
                             -allowed[res.line_no], res.units, tuple(res.adjustments),  # type: ignore[operator]
                             tuple(res.remarks))
        out.append(res)
    return out


def _check_adjustment(adj: Adjustment, field: str) -> None:
    if adj.group not in ADJUSTMENT_GROUPS:
        raise InvalidValue(f"{field}.group", "cas.group",
                           f"{field}.group: {adj.group!r} is not a 5010 CAS group (CO, OA, PI, PR)")
    if not isinstance(adj.amount, Money):
        raise InvalidValue(f"{field}.amount", "money.type", f"{field}.amount: must be money")
    if not adj.reason or len(adj.reason) > 5:
        raise InvalidValue(f"{field}.reason", "cas.reason", f"{field}.reason: a CARC code")
