"""Typed domain errors. Each names the field it is about and the rule that refused it.

Messages never carry PHI: they name fields, codes and rules, not patients.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base for every refusal the ledger raises on purpose."""

    status_hint = 422

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


class InvalidValue(LedgerError):
    """A value is malformed: bad money, bad code format, out-of-range units."""


class InvalidCode(InvalidValue):
    """A code fails its format or code-set check."""


class RuleViolation(LedgerError):
    """A business rule of the claim lifecycle refuses the command."""


class IllegalTransition(RuleViolation):
    """The claim or dispute is not in a state that allows the command."""

    status_hint = 409


class NotFound(LedgerError):
    """A referenced encounter, claim, line, diagnosis or dispute does not exist."""

    status_hint = 404


class ConcurrencyConflict(LedgerError):
    """Another writer saved the encounter first (detected at save time)."""

    status_hint = 409


class PreconditionFailed(LedgerError):
    """The caller's expected version (If-Match) is not the current version."""

    status_hint = 412
