"""Diagnosis coding of an encounter: code, revise and remove ICD-10-CM diagnoses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.domain.codeset import DiagnosisCodeSet
from ledger.domain.encounter.rules import MAX_DIAGNOSES, require_reason
from ledger.domain.errors import InvalidCode, InvalidValue, NotFound, RuleViolation
from ledger.domain.model import Actor
from ledger.domain.values import icd10cm_dotted, icd10cm_format

if TYPE_CHECKING:  # the aggregate mixes this class in; only annotations name it
    from ledger.domain.encounter.aggregate import Encounter


class Coding:
    """Diagnosis coding commands; a mixin of ``Encounter``."""

    def _coding_allowed(self: Encounter) -> None:
        # Coding changes are allowed at any time: a change after submission is what a
        # corrected (frequency 7) claim is for. Voided encounters do not exist: claims are voided.
        return None

    # ------------------------------------------------------------------ coding commands
    def code_diagnosis(self: Encounter, code: Any, *, code_set: DiagnosisCodeSet, actor: Actor,
                       position: int | None = None, poa: str = "",
                       reason: str = "") -> None:
        """Assign an ICD-10-CM diagnosis at ``position`` (1 = principal; default: next)."""
        who = self._actor(actor)
        undotted = icd10cm_format(code)
        limit = MAX_DIAGNOSES[self.claim_type]
        if len(self.diagnoses) >= limit:
            raise RuleViolation("code", "diagnoses.max",
                                f"code: at most {limit} diagnoses on a {self.claim_type} claim")
        if any(d.code == undotted for d in self.diagnoses):
            raise RuleViolation("code", "diagnosis.duplicate",
                                f"code: {icd10cm_dotted(undotted)} is already coded")
        if position is None:
            position = len(self.diagnoses) + 1
        if isinstance(position, bool) or not isinstance(position, int) or \
                not 1 <= position <= len(self.diagnoses) + 1:
            raise InvalidValue("position", "position.range",
                               f"position: must be between 1 and {len(self.diagnoses) + 1}")
        if poa not in ("", "Y", "N", "U", "W", "1"):
            raise InvalidValue("poa", "poa.enum", "poa: present-on-admission is Y, N, U, W or 1")
        verdict = code_set.check(undotted, self.service_from)
        if not verdict.billable:
            raise InvalidCode("code", verdict.rule, f"code: {verdict.message}")
        self.trigger_event(self.DiagnosisCoded, position=position, code=undotted, poa=poa,
                           code_set_version=verdict.version, reason=reason, **who)

    def revise_diagnosis(self: Encounter,
                         position: int, new_code: Any, *, code_set: DiagnosisCodeSet,
                         actor: Actor, reason: str) -> None:
        who = self._actor(actor)
        reason = require_reason(reason, "revise a diagnosis")
        if isinstance(position, bool) or not isinstance(position, int) or \
                not 1 <= position <= len(self.diagnoses):
            raise NotFound("position", "diagnosis.exists", f"position: no diagnosis {position}")
        undotted = icd10cm_format(new_code, "new_code")
        old = self.diagnoses[position - 1].code
        if undotted == old:
            raise RuleViolation("new_code", "revision.changes",
                                "new_code: the revision must change the code")
        if any(d.code == undotted for d in self.diagnoses):
            raise RuleViolation("new_code", "diagnosis.duplicate",
                                f"new_code: {icd10cm_dotted(undotted)} is already coded")
        verdict = code_set.check(undotted, self.service_from)
        if not verdict.billable:
            raise InvalidCode("new_code", verdict.rule, f"new_code: {verdict.message}")
        self.trigger_event(self.DiagnosisRevised, position=position, old_code=old,
                           new_code=undotted, code_set_version=verdict.version, reason=reason,
                           **who)

    def remove_diagnosis(self: Encounter, position: int, *, actor: Actor, reason: str) -> None:
        who = self._actor(actor)
        reason = require_reason(reason, "remove a diagnosis")
        if isinstance(position, bool) or not isinstance(position, int) or \
                not 1 <= position <= len(self.diagnoses):
            raise NotFound("position", "diagnosis.exists", f"position: no diagnosis {position}")
        for line in self.active_lines():
            if position in line.pointers:
                raise RuleViolation("position", "diagnosis.pointed_at",
                                    f"position: line {line.line_no} points at diagnosis "
                                    f"{position}; re-point or remove the line first")
        self.trigger_event(self.DiagnosisRemoved, position=position,
                           code=self.diagnoses[position - 1].code, reason=reason, **who)
