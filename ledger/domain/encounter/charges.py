"""Charges of an encounter: service lines and supplies, their revisions, removals and charge
adjustments."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from ledger.domain.encounter.rules import require_reason
from ledger.domain.errors import InvalidValue, NotFound, RuleViolation
from ledger.domain.model import Actor, ServiceLine
from ledger.domain.values import (
    Money,
    hcpcs_level2_format,
    modifiers_format,
    ndc_format,
    npi_format,
    positive_units,
    procedure_code_format,
    revenue_code_format,
)

if TYPE_CHECKING:  # the aggregate mixes this class in; only annotations name it
    from ledger.domain.encounter.aggregate import Encounter


class Charges:
    """Service line and charge commands; a mixin of ``Encounter``."""

    def _check_pointers(self: Encounter, pointers: Any, field: str = "pointers") -> list[int]:
        if pointers is None:
            pointers = []
        if not isinstance(pointers, list | tuple):
            raise InvalidValue(field, "pointers.list", f"{field}: must be a list of positions")
        if len(pointers) > 4:
            raise InvalidValue(field, "pointers.max4", f"{field}: at most 4 diagnosis pointers")
        out = []
        for i, p in enumerate(pointers):
            if isinstance(p, bool) or not isinstance(p, int):
                raise InvalidValue(f"{field}[{i}]", "pointer.type",
                                   f"{field}[{i}]: a pointer is a diagnosis position number")
            if not 1 <= p <= len(self.diagnoses):
                raise RuleViolation(f"{field}[{i}]", "pointer.exists",
                                    f"{field}[{i}]: points at diagnosis {p}, but the encounter "
                                    f"has {len(self.diagnoses)} diagnoses")
            out.append(p)
        if len(set(out)) != len(out):
            raise InvalidValue(field, "pointers.unique", f"{field}: a pointer appears twice")
        return out

    def _check_line_date(self: Encounter, line_date: Any) -> date:
        if line_date is None:
            return self.service_from
        if not isinstance(line_date, date):
            raise InvalidValue("line_date", "date", "line_date: must be a date")
        if not self.service_from <= line_date <= self.service_to:
            raise RuleViolation("line_date", "line_date.within_encounter",
                                "line_date: must fall within the encounter's dates of service")
        return line_date


    def _build_line(self: Encounter, *, kind: str, procedure_code: Any, charge: Any, units: Any,
                    pointers: Any, modifiers: Any, unit_type: str, line_date: Any,
                    rendering_npi: Any, revenue_code: Any, ndc: Any, ndc_quantity: Any,
                    description: str) -> ServiceLine:
        if kind == "supply":
            code = hcpcs_level2_format(procedure_code)
        else:
            code = procedure_code_format(procedure_code) if procedure_code else ""
        if not code and not revenue_code:
            raise InvalidValue("procedure_code", "required",
                               "procedure_code: required (or revenue_code on institutional lines)")
        if self.claim_type == "institutional":
            rev = revenue_code_format(revenue_code)
        else:
            if not code:
                raise InvalidValue("procedure_code", "required", "procedure_code: required")
            rev = revenue_code_format(revenue_code) if revenue_code else ""
        amount = Money.parse(charge, "charge")
        if amount.is_negative():
            raise InvalidValue("charge", "money.non_negative", "charge: must not be negative")
        qty = positive_units(units)
        if unit_type not in ("UN", "MJ", "DA"):
            raise InvalidValue("unit_type", "unit_type.enum", "unit_type: UN, MJ or DA")
        npi = npi_format(rendering_npi, "rendering_npi") if rendering_npi else ""
        ndc_code = ndc_format(ndc) if ndc else ""
        ndc_qty = positive_units(ndc_quantity, "ndc_quantity") if ndc_quantity is not None \
            else None
        return ServiceLine(
            line_no=self.next_line_no, kind=kind, procedure_code=code,
            modifiers=list(modifiers_format(modifiers)), units=qty, unit_type=unit_type,
            charge=amount, pointers=self._check_pointers(pointers),
            line_date=self._check_line_date(line_date), rendering_npi=npi, revenue_code=rev,
            ndc=ndc_code, ndc_quantity=ndc_qty, description=str(description or "")[:80],
        )

    def add_service_line(self: Encounter, *, procedure_code: Any, charge: Any, actor: Actor,
                         units: Any = 1, pointers: Any = None, modifiers: Any = None,
                         unit_type: str = "UN", line_date: Any = None, rendering_npi: Any = "",
                         revenue_code: Any = "", ndc: Any = "", ndc_quantity: Any = None,
                         description: str = "", reason: str = "") -> int:
        """Add a service line; returns its line number."""
        who = self._actor(actor)
        line = self._build_line(kind="service", procedure_code=procedure_code, charge=charge,
                                units=units, pointers=pointers, modifiers=modifiers,
                                unit_type=unit_type, line_date=line_date,
                                rendering_npi=rendering_npi, revenue_code=revenue_code, ndc=ndc,
                                ndc_quantity=ndc_quantity, description=description)
        if self.claim_type == "professional" and len(self.active_lines()) >= 50:
            raise RuleViolation("procedure_code", "lines.max50",
                                "procedure_code: a professional claim holds at most 50 lines")
        self.trigger_event(self.ServiceLineAdded, line=line, reason=reason, **who)
        return line.line_no

    def add_supply(self: Encounter,
                   *, procedure_code: Any, charge: Any, actor: Actor, units: Any = 1,
                   pointers: Any = None, modifiers: Any = None, line_date: Any = None,
                   revenue_code: Any = "", ndc: Any = "", ndc_quantity: Any = None,
                   description: str = "", reason: str = "") -> int:
        """Add a supply (HCPCS Level II: A/E/J/L… codes); returns its line number."""
        who = self._actor(actor)
        line = self._build_line(kind="supply", procedure_code=procedure_code, charge=charge,
                                units=units, pointers=pointers, modifiers=modifiers,
                                unit_type="UN", line_date=line_date, rendering_npi="",
                                revenue_code=revenue_code, ndc=ndc, ndc_quantity=ndc_quantity,
                                description=description)
        self.trigger_event(self.SupplyAdded, line=line, reason=reason, **who)
        return line.line_no

    REVISABLE = ("procedure_code", "modifiers", "units", "charge", "pointers", "rendering_npi",
                 "revenue_code", "ndc", "ndc_quantity", "line_date", "description")

    def revise_service_line(self: Encounter, line_no: int, *, actor: Actor, reason: str,
                            **changes: Any) -> None:
        """Change fields of a line (code, modifiers, units, charge, pointers…) with a reason."""
        who = self._actor(actor)
        reason = require_reason(reason, "revise a line")
        line = self._line(line_no)
        unknown = set(changes) - set(self.REVISABLE)
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidValue(name, "line.field", f"{name}: not a revisable line field")
        if not changes:
            raise InvalidValue("changes", "revision.changes", "changes: nothing to revise")
        merged = {name: getattr(line, name) for name in self.REVISABLE}
        merged.update(changes)
        candidate = self._build_line(
            kind=line.kind, procedure_code=merged["procedure_code"], charge=merged["charge"],
            units=merged["units"], pointers=merged["pointers"], modifiers=merged["modifiers"],
            unit_type=line.unit_type, line_date=merged["line_date"],
            rendering_npi=merged["rendering_npi"], revenue_code=merged["revenue_code"],
            ndc=merged["ndc"], ndc_quantity=merged["ndc_quantity"],
            description=merged["description"])
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for name in changes:
            old, new = getattr(line, name), getattr(candidate, name)
            if old != new:
                before[name], after[name] = old, new
        if not after:
            raise RuleViolation("changes", "revision.changes",
                                "changes: the revision does not change the line")
        self.trigger_event(self.ServiceLineRevised, line_no=line.line_no, before=before,
                           after=after, reason=reason, **who)

    def remove_service_line(self: Encounter, line_no: int, *, actor: Actor, reason: str) -> None:
        who = self._actor(actor)
        reason = require_reason(reason, "remove a line")
        line = self._line(line_no)
        for claim in self.claims.values():
            if line.line_no in claim.line_nos and claim.status not in ("draft", "scrubbed",
                                                                       "voided", "closed"):
                if not line.paid.is_zero():
                    raise RuleViolation("line_no", "line.paid",
                                        f"line_no: line {line_no} has payments posted; reverse "
                                        "them or correct the claim instead")
        self.trigger_event(self.ServiceLineRemoved, line_no=line.line_no, reason=reason, **who)

    def adjust_charge(self: Encounter,
                      line_no: int, amount: Any, *, actor: Actor, reason: str) -> None:
        """Add (or, negative, subtract) an amount to a line's charge."""
        who = self._actor(actor)
        reason = require_reason(reason, "adjust a charge")
        line = self._line(line_no)
        delta = Money.parse(amount, "amount")
        if delta.is_zero():
            raise InvalidValue("amount", "money.non_zero", "amount: must not be zero")
        if (line.current_charge + delta).is_negative():
            raise RuleViolation("amount", "charge.non_negative",
                                "amount: the line's charge would become negative")
        self.trigger_event(self.ChargeAdjusted, line_no=line.line_no, amount=delta,
                           reason=reason, **who)

    def reverse_charge_adjustment(self: Encounter, line_no: int, index: int, *, actor: Actor,
                                  reason: str) -> None:
        who = self._actor(actor)
        reason = require_reason(reason, "reverse a charge adjustment")
        line = self._line(line_no)
        if not 0 <= index < len(line.charge_adjustments):
            raise NotFound("index", "adjustment.exists", f"index: no charge adjustment {index}")
        amount = -line.charge_adjustments[index]
        if (line.current_charge + amount).is_negative():
            raise RuleViolation("index", "charge.non_negative",
                                "index: the line's charge would become negative")
        self.trigger_event(self.ChargeReversed, line_no=line.line_no, adjustment_index=index,
                           amount=amount, reason=reason, **who)
