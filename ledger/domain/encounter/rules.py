"""Rules several sub-domains of the Encounter aggregate share (one copy each). Money figures
derived from a claim live in ``ledger.domain.figures``; value formats in
``ledger.domain.values``."""

from __future__ import annotations

from typing import Any

from ledger.domain.errors import InvalidValue
from ledger.domain.values import Money

MAX_DIAGNOSES = {"professional": 12, "institutional": 25}
ADVOCATE_ROLE = "advocate"


def require_reason(reason: str, what: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidValue("reason", "reason.required", f"reason: a reason is required to {what}")
    return reason.strip()


def positive_money(value: Any, field: str) -> Money:
    amount = Money.parse(value, field)
    if not amount.is_positive():
        raise InvalidValue(field, "money.positive", f"{field}: must be greater than 0")
    return amount
