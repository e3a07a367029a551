"""Denials and appeals of a claim."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from ledger.domain.encounter.rules import require_reason
from ledger.domain.errors import IllegalTransition, InvalidValue, RuleViolation
from ledger.domain.model import Actor, Adjustment

if TYPE_CHECKING:  # the aggregate mixes this class in; only annotations name it
    from ledger.domain.encounter.aggregate import Encounter


class Appeals:
    """Denial and appeal commands; a mixin of ``Encounter``."""

    def file_appeal(self: Encounter,
                    claim_number: str, *, filed_on: date, actor: Actor, reason: str,
                    documents: list[str] | None = None) -> None:
        """Appeal a denial: the denied amount goes back to the payer's open balance."""
        who = self._actor(actor)
        reason = require_reason(reason, "file an appeal")
        claim = self._claim(claim_number)
        if claim.status != "denied":
            raise IllegalTransition("claim_number", "appeal.requires_denial",
                                    f"claim_number: a {claim.status} claim has no denial to "
                                    "appeal")
        if claim.denial_deadline is not None and filed_on > claim.denial_deadline:
            raise RuleViolation("filed_on", "appeal.deadline",
                                f"filed_on: the appeal deadline was {claim.denial_deadline}")
        # reopen what the denial adjusted off (non-PR, claim and line level)
        reopened: list[Adjustment] = []
        if claim.denial_seq is not None:
            denial = claim.adjudications[claim.denial_seq - 1]
            reopened = [a for a in denial.adjustments if a.group != "PR"]
        level = claim.appeals + 1
        self.trigger_event(self.AppealFiled, claim_number=claim.number, level=level,
                           filed_on=filed_on, documents=list(documents or []),
                           reopened=reopened, reason=reason, **who)

    def record_denial(self: Encounter, claim_number: str, *, carc: list[str], deadline: date,
                      actor: Actor, rarc: list[str] | None = None, reason: str = "") -> None:
        """Record a denial received outside an 835 (a letter, a portal), with its appeal
        deadline. Denials that arrive in an 835 (CLP02=4) are recorded by the posting."""
        who = self._actor(actor)
        claim = self._claim(claim_number)
        if claim.status not in ("submitted", "accepted", "adjudicated", "paid"):
            raise IllegalTransition("claim_number", "denial.requires_submitted",
                                    f"claim_number: a {claim.status} claim cannot be denied")
        codes = [c for c in (carc or []) if isinstance(c, str) and 1 <= len(c) <= 5]
        if not codes or len(codes) != len(carc):
            raise InvalidValue("carc", "denial.carc", "carc: one or more CARC codes")
        if not isinstance(deadline, date):
            raise InvalidValue("deadline", "date", "deadline: must be a date")
        self.trigger_event(self.DenialRecorded, claim_number=claim.number, carc=list(codes),
                           rarc=list(rarc or []), deadline=deadline, adjudication_seq=None,
                           reason=reason, **who)

    def decide_appeal(self: Encounter, claim_number: str, *, outcome: str, decided_on: date,
                      actor: Actor, reason: str = "") -> None:
        who = self._actor(actor)
        claim = self._claim(claim_number)
        if not claim.appeal_open:
            raise IllegalTransition("claim_number", "appeal.open",
                                    "claim_number: the claim has no open appeal")
        if outcome not in ("overturned", "upheld", "partial"):
            raise InvalidValue("outcome", "appeal.outcome",
                               "outcome: overturned, upheld or partial")
        reapplied: list[Adjustment] = []
        if outcome == "upheld" and claim.denial_seq is not None:
            denial = claim.adjudications[claim.denial_seq - 1]
            reapplied = [a for a in denial.adjustments if a.group != "PR"]
        self.trigger_event(self.AppealDecided, claim_number=claim.number, outcome=outcome,
                           decided_on=decided_on, reapplied=reapplied, reason=reason, **who)
