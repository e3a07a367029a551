"""Access grants: who may act on an encounter beyond their role (advocates by patient
authorisation, staff by grant)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ledger.domain.encounter.rules import ADVOCATE_ROLE, require_reason
from ledger.domain.errors import IllegalTransition, InvalidValue, NotFound, RuleViolation
from ledger.domain.model import AccessGrant, Actor

if TYPE_CHECKING:  # the aggregate mixes this class in; only annotations name it
    from ledger.domain.encounter.aggregate import Encounter

GRANTOR_ROLES = frozenset({"biller", "admin"})
GRANT_BASES = ("staff", "patient_authorization")


class Grants:
    """Access grant commands and checks; a mixin of ``Encounter``."""

    def access_grants(self: Encounter) -> dict[str, AccessGrant]:
        grants = self.__dict__.get("grants")
        if grants is None:  # an encounter (or snapshot) from before grants existed
            grants = self.__dict__["grants"] = {}
        return grants

    def grant_for(self: Encounter, user_id: str, at: datetime) -> AccessGrant | None:
        """The grant through which ``user_id`` may access this encounter at ``at``."""
        for g in self.access_grants().values():
            if g.grantee_id == user_id and g.active_at(at):
                return g
        return None

    def require_access(self: Encounter, actor: Actor, at: datetime | None) -> None:
        """An advocate acts on this encounter only through an active grant; without one the
        encounter is answered as not found (its existence is not confirmed)."""
        if actor.role != ADVOCATE_ROLE:
            return
        if at is None or self.grant_for(actor.id, at) is None:
            raise NotFound("encounter_id", "encounter.exists", "encounter_id: no such encounter")

    def grant_access(self: Encounter, grant_id: str, *, grantee_id: str, authorization_ref: str,
                     valid_until: datetime, at: datetime, actor: Actor,
                     basis: str = "staff", patient_ref: str | None = None,
                     reason: str = "") -> AccessGrant:
        """Give an advocate access to this encounter until ``valid_until``, on the patient's
        behalf (``authorization_ref``). Billing staff and admins only. For an imported
        patient authorization (``basis='patient_authorization'``) the authorization's
        patient must be this encounter's patient."""
        who = self._actor(actor)
        if actor.role not in GRANTOR_ROLES:
            raise RuleViolation("actor", "grant.grantor",
                                "actor: only billing staff or an admin record access grants")
        if not grant_id or grant_id in self.access_grants():
            raise RuleViolation("grant_id", "grant.unique", "grant_id: must be new")
        if not isinstance(grantee_id, str) or not grantee_id.strip():
            raise InvalidValue("grantee_id", "required", "grantee_id: required")
        if grantee_id == actor.id:
            raise RuleViolation("grantee_id", "grant.self", "grantee_id: no one grants themself")
        if not isinstance(authorization_ref, str) or not authorization_ref.strip():
            raise InvalidValue("authorization_ref", "required",
                               "authorization_ref: the patient's authorization reference")
        if basis not in GRANT_BASES:
            raise InvalidValue("basis", "grant.basis", "basis: staff or patient_authorization")
        if basis == "patient_authorization" and patient_ref != self.patient_ref:
            raise RuleViolation("patient_ref", "grant.patient_matches",
                                "patient_ref: the authorization is not this encounter's patient")
        if not isinstance(valid_until, datetime) or valid_until.tzinfo is None:
            raise InvalidValue("valid_until", "grant.valid_until",
                               "valid_until: a moment with a timezone offset")
        if valid_until <= at:
            raise InvalidValue("valid_until", "grant.future", "valid_until: must be in the future")
        if self.grant_for(grantee_id, at) is not None:
            raise RuleViolation("grantee_id", "grant.active_exists",
                                "grantee_id: already has an active grant on this encounter")
        self.trigger_event(self.AccessGranted, grant_id=grant_id, grantee_id=grantee_id,
                           authorization_ref=authorization_ref.strip()[:80], basis=basis,
                           valid_until=valid_until, reason=str(reason or "")[:500], **who)
        return self.access_grants()[grant_id]

    def revoke_access(self: Encounter, grant_id: str, *, actor: Actor, reason: str) -> AccessGrant:
        """Withdraw a grant (the patient revoked the authorization, the advocate's work is
        done). Billing staff and admins only; a reason is required."""
        who = self._actor(actor)
        if actor.role not in GRANTOR_ROLES:
            raise RuleViolation("actor", "grant.grantor",
                                "actor: only billing staff or an admin revoke access grants")
        reason = require_reason(reason, "revoke an access grant")
        g = self.access_grants().get(grant_id)
        if g is None:
            raise NotFound("grant_id", "grant.exists", "grant_id: no such grant")
        if g.revoked:
            raise IllegalTransition("grant_id", "grant.active", "grant_id: already revoked")
        self.trigger_event(self.AccessRevoked, grant_id=grant_id, grantee_id=g.grantee_id,
                           reason=reason, **who)
        return g
