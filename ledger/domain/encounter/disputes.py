"""Patient disputes of service lines: open, annotate, resolve."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ledger.domain.encounter.rules import ADVOCATE_ROLE, require_reason
from ledger.domain.errors import IllegalTransition, InvalidValue, NotFound, RuleViolation
from ledger.domain.model import Actor, Dispute

if TYPE_CHECKING:  # the aggregate mixes this class in; only annotations name it
    from ledger.domain.encounter.aggregate import Encounter


class Disputes:
    """Dispute commands; a mixin of ``Encounter``."""

    def open_dispute(self: Encounter, dispute_id: str, *, line_nos: list[int], category: str,
                     description: str, actor: Actor, advocate_id: str | None = None,
                     at: datetime | None = None) -> None:
        """Open a dispute. An advocate opens it for themself, and only on an encounter
        granted to them (``at`` is the moment the grant is checked against); staff may
        assign it to an advocate who holds an active grant, else it is theirs."""
        who = self._actor(actor)
        self.require_access(actor, at)
        if actor.role == ADVOCATE_ROLE and advocate_id not in (None, actor.id):
            raise RuleViolation("advocate_id", "dispute.advocate_self",
                                "advocate_id: an advocate opens disputes assigned to themself")
        assignee = advocate_id or actor.id
        if not dispute_id or dispute_id in self.disputes:
            raise RuleViolation("dispute_id", "dispute.unique", "dispute_id: must be new")
        if not line_nos:
            raise InvalidValue("line_nos", "dispute.lines", "line_nos: name the disputed lines")
        for i, n in enumerate(line_nos):
            if str(n) not in self.lines:
                raise NotFound(f"line_nos[{i}]", "line.exists", f"line_nos[{i}]: no line {n}")
        if category not in ("charge", "coding", "coverage", "balance", "other"):
            raise InvalidValue("category", "dispute.category",
                               "category: charge, coding, coverage, balance or other")
        if assignee != actor.id and at is not None and self.grant_for(assignee, at) is None:
            raise RuleViolation("advocate_id", "dispute.advocate_grant",
                                "advocate_id: the advocate holds no active grant here")
        self.trigger_event(self.DisputeOpened, dispute_id=dispute_id, line_nos=list(line_nos),
                           category=category, advocate_id=assignee,
                           description=str(description)[:2000], reason="", **who)

    def _open_dispute(self: Encounter,
                      dispute_id: str, actor: Actor, at: datetime | None) -> Dispute:
        self.require_access(actor, at)
        d = self.disputes.get(dispute_id)
        if d is None or (actor.role == "advocate" and d.advocate_id != actor.id):
            # an advocate works only the disputes assigned to them
            raise NotFound("dispute_id", "dispute.exists", "dispute_id: no such dispute")
        if d.status != "open":
            raise IllegalTransition("dispute_id", "dispute.open", "dispute_id: already resolved")
        return d

    def add_dispute_note(self: Encounter, dispute_id: str, *, note: str, actor: Actor,
                         at: datetime | None = None) -> None:
        who = self._actor(actor)
        self._open_dispute(dispute_id, actor, at)
        if not note or not note.strip():
            raise InvalidValue("note", "required", "note: required")
        self.trigger_event(self.DisputeNoteAdded, dispute_id=dispute_id,
                           note=note.strip()[:4000], reason="", **who)

    def resolve_dispute(self: Encounter, dispute_id: str, *, outcome: str, actor: Actor,
                        reason: str, at: datetime | None = None) -> None:
        who = self._actor(actor)
        self._open_dispute(dispute_id, actor, at)
        reason = require_reason(reason, "resolve a dispute")
        if outcome not in ("upheld", "adjusted", "rejected", "withdrawn"):
            raise InvalidValue("outcome", "dispute.outcome",
                               "outcome: upheld, adjusted, rejected or withdrawn")
        if actor.role == "advocate" and outcome != "withdrawn":
            raise RuleViolation("outcome", "dispute.advocate_outcome",
                                "outcome: an advocate may only withdraw a dispute; billing "
                                "staff decide the others")
        self.trigger_event(self.DisputeResolved, dispute_id=dispute_id, outcome=outcome,
                           reason=reason, **who)
