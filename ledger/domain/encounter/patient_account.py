"""The patient account: statements, patient payments, refunds and write-offs."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from ledger.domain.encounter.rules import positive_money, require_reason
from ledger.domain.errors import InvalidValue, NotFound, RuleViolation
from ledger.domain.model import WRITE_OFF_REASONS, Actor
from ledger.domain.values import Money

if TYPE_CHECKING:  # the aggregate mixes this class in; only annotations name it
    from ledger.domain.encounter.aggregate import Encounter


class PatientAccount:
    """Patient account commands; a mixin of ``Encounter``."""

    def issue_statement(self: Encounter, *, statement_date: date, actor: Actor) -> Money:
        """Bill the patient what the payers assigned them (PR), less what they paid."""
        who = self._actor(actor)
        due = self.patient_balance()
        if not due.is_positive():
            raise RuleViolation("statement_date", "statement.nothing_owed",
                                "statement_date: the patient owes nothing on this encounter")
        s = self.patient_share
        self.trigger_event(self.StatementIssued, statement_no=len(self.statements) + 1,
                           statement_date=statement_date, amount_due=due,
                           deductible=s.get("deductible", Money.zero()),
                           coinsurance=s.get("coinsurance", Money.zero()),
                           copay=s.get("copay", Money.zero()),
                           other=s.get("other", Money.zero()), reason="", **who)
        return due

    def record_patient_payment(self: Encounter, amount: Any, *, method: str, received_on: date,
                               actor: Actor) -> Money:
        who = self._actor(actor)
        value = positive_money(amount, "amount")
        if method not in ("cash", "check", "card", "ach", "other"):
            raise InvalidValue("method", "payment.method",
                               "method: cash, check, card, ach or other")
        after = self.patient_balance() - value
        self.trigger_event(self.PatientPaymentReceived, amount=value, method=method,
                           received_on=received_on, balance_after=after, reason="", **who)
        return after

    def issue_refund(self: Encounter, amount: Any, *, method: str, issued_on: date, actor: Actor,
                     reason: str) -> Money:
        who = self._actor(actor)
        reason = require_reason(reason, "issue a refund")
        value = positive_money(amount, "amount")
        credit = -self.patient_balance()
        if value > credit:
            raise RuleViolation("amount", "refund.not_above_credit",
                                f"amount: the refund {value} exceeds the patient's credit "
                                f"{max(credit, Money.zero())}")
        after = self.patient_balance() + value
        self.trigger_event(self.RefundIssued, amount=value, method=str(method)[:20],
                           issued_on=issued_on, balance_after=after, reason=reason, **who)
        return after

    def write_off(self: Encounter, amount: Any, *, bucket: str, category: str, approver_id: str,
                  actor: Actor, reason: str, claim_number: str = "") -> None:
        who = self._actor(actor)
        reason = require_reason(reason, "write off")
        value = positive_money(amount, "amount")
        if category not in WRITE_OFF_REASONS:
            raise InvalidValue("category", "write_off.category",
                               f"category: one of {', '.join(WRITE_OFF_REASONS)}")
        if bucket not in self.buckets:
            raise NotFound("bucket", "bucket.exists", f"bucket: no balance kept as {bucket!r}")
        if value > self.balance(bucket):
            raise RuleViolation("amount", "write_off.not_above_balance",
                                f"amount: exceeds the open {bucket} balance {self.balance(bucket)}")
        if not approver_id:
            raise InvalidValue("approver_id", "required", "approver_id: required")
        if claim_number:
            self._claim(claim_number)
        self.trigger_event(self.WriteOffPosted, bucket=bucket, claim_number=claim_number,
                           amount=value, category=category, approver_id=approver_id,
                           reason=reason, **who)
