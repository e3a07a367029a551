"""Value objects: money and the format rules of billing codes.

Format checks only: whether an ICD-10-CM code is a billable leaf valid on the date of
service is a code-set question (see ``ledger.domain.codeset``), not a regex question.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from ledger.domain.errors import InvalidCode, InvalidValue

CENT = Decimal("0.01")
_MONEY_RE = re.compile(r"^-?\d{1,12}(\.\d{1,2})?$")

# --- the store's limits are the domain's limits ------------------------------------------
# Read models keep money in numeric(14,2) (|x| < 10^12) and sum many amounts per encounter
# (lines, payments): one amount is at most MAX_AMOUNT, which leaves room for 10^4 such
# amounts in one encounter's sums (trend sums across encounters are numeric(18,2), migration
# 0082). Stated in the OpenAPI schema (api/schemas.py) and the README.
MAX_AMOUNT = Decimal("99999999.99")
MAX_AMOUNT_DIGITS = 8  # digits before the decimal point
STORED_MONEY_LIMIT = Decimal("1000000000000")  # numeric(14,2): any stored amount below this
MAX_UNITS = Decimal("99999.999")
# No date before this one is a billing date; dates of service at most a year ahead of today.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2200, 12, 31)  # absolute cap: date arithmetic (deadlines) stays in range
FUTURE_ALLOWANCE = timedelta(days=366)
# PostgreSQL text cannot hold NUL; other C0 controls, DEL and lone surrogates are refused too
# (tab, line feed and carriage return are text).
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def text_is_clean(text: str) -> bool:
    """True when ``text`` has no NUL, other control character or lone surrogate."""
    return _CONTROL_RE.search(text) is None


def check_text(value: Any, field: str) -> None:
    if isinstance(value, str) and not text_is_clean(value):
        raise InvalidValue(field, "text.control_characters",
                           f"{field}: must not contain NUL or other control characters")


def check_date(value: Any, field: str, today: date | None = None) -> None:
    """A date from 1900-01-01 on; with ``today``, at most a year after it (dates of
    service); without, before 2201 (an absolute cap for any date)."""
    if not isinstance(value, date):
        return
    if isinstance(value, datetime):  # a moment (e.g. a grant's valid_until): check its date
        value = value.date()
    latest = today + FUTURE_ALLOWANCE if today is not None else LATEST_DATE
    if not EARLIEST_DATE <= value <= latest:
        raise InvalidValue(field, "date.range",
                           f"{field}: must be between {EARLIEST_DATE.isoformat()} and "
                           f"{latest.isoformat()}")


def check_storable(values: dict[str, Any]) -> None:
    """Refuse, naming the field, any value a read model could not store: text with NUL or
    control characters, money at or beyond numeric(14,2), dates out of range, units beyond
    MAX_UNITS. Walks lists, tuples, dicts and dataclasses (lines, parties, results).
    A value's field name (``lines[0].charge``) is spelled out only when it is refused: a
    first walk without names (``_plainly_storable``) passes the common case; anything it
    does not pass is walked again here, naming the field."""
    if all(map(_plainly_storable, values.values())):
        return
    stack: list[tuple[Any, Any]] = [((None, "", k), v) for k, v in values.items()]
    seen = 0
    while stack:
        path, value = stack.pop()
        seen += 1
        if seen > 100_000:  # pragma: no cover - a pathological event; the save limits apply
            return
        t = type(value)
        if t is int or t is bool or value is None:
            continue
        if t is str:
            if _CONTROL_RE.search(value) is not None:
                check_text(value, _path_name(path))
        elif t is Money:
            if abs(value.amount) >= STORED_MONEY_LIMIT:
                field = _path_name(path)
                raise InvalidValue(field, "money.max", f"{field}: at most "
                                   f"{MAX_AMOUNT:,} in absolute value")
        elif t is list or t is tuple:
            stack.extend(((path, "[", i), v) for i, v in enumerate(value))
        else:
            names = _DATACLASS_FIELDS.get(t)
            if names is not None:
                stack.extend(((path, ".", f), getattr(value, f)) for f in names)
            elif isinstance(value, str):
                check_text(value, _path_name(path))
            elif isinstance(value, Money):
                if abs(value.amount) >= STORED_MONEY_LIMIT:
                    field = _path_name(path)
                    raise InvalidValue(field, "money.max", f"{field}: at most "
                                       f"{MAX_AMOUNT:,} in absolute value")
            elif isinstance(value, date):
                check_date(value, _path_name(path))
            elif isinstance(value, list | tuple):
                stack.extend(((path, "[", i), v) for i, v in enumerate(value))
            elif isinstance(value, dict):
                stack.extend(((path, ".", k), v) for k, v in value.items())
                stack.extend((path, k) for k in value if isinstance(k, str))
            elif dataclasses.is_dataclass(value) and not isinstance(value, type):
                names = tuple(f.name for f in dataclasses.fields(value))
                _DATACLASS_FIELDS[t] = names
                stack.extend(((path, ".", f), getattr(value, f)) for f in names)


_DATACLASS_FIELDS: dict[type, tuple[str, ...]] = {}


def _plainly_storable(value: Any) -> bool:
    """True when ``value`` certainly passes ``check_storable`` (no names built); False when
    it may not (the named walk then decides): the hot path of every new event."""
    t = type(value)
    if t is str:
        return _CONTROL_RE.search(value) is None
    if t is int or t is bool or value is None or t is Decimal:
        return True
    if t is Money:
        return abs(value.amount) < STORED_MONEY_LIMIT
    if t is list or t is tuple:
        return all(map(_plainly_storable, value))
    names = _DATACLASS_FIELDS.get(t)
    if names is not None:
        return all(_plainly_storable(getattr(value, f)) for f in names)
    if t is date:
        return EARLIEST_DATE <= value <= LATEST_DATE
    return False


def _path_name(path: Any) -> str:
    """``lines[0].charge`` from check_storable's (parent, separator, key) links."""
    parts: list[str] = []
    while path is not None:
        path, sep, key = path
        parts.append(f"[{key}]" if sep == "[" else f"{sep}{key}")
    return "".join(reversed(parts))


@dataclass(frozen=True, order=True, slots=True)
class Money:
    """An amount of US dollars, exact to the cent. Never built from a float."""

    amount: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise InvalidValue("amount", "money.type", "money must be a Decimal")
        if not self.amount.is_finite():
            raise InvalidValue("amount", "money.finite", "money must be a finite number")
        if self.amount != self.amount.quantize(CENT):
            raise InvalidValue("amount", "money.cents", "money has at most 2 decimal places")
        object.__setattr__(self, "amount", self.amount.quantize(CENT))

    @classmethod
    def parse(cls, value: Any, field: str = "amount") -> Money:
        """Money from a string like ``"12.34"``, an int (whole dollars), a Decimal or Money.

        Floats, booleans, more than two decimal places and anything else are refused with
        an ``InvalidValue`` naming ``field``.
        """
        if isinstance(value, Money):
            return _within_limit(value, field)
        if isinstance(value, bool) or isinstance(value, float):
            raise InvalidValue(field, "money.no_float", f"{field}: money must be a string or "
                               "Decimal, never a float")
        if isinstance(value, int):
            if abs(value) > MAX_AMOUNT:
                return _within_limit(Money(MAX_AMOUNT + 1), field)
            return _within_limit(cls(Decimal(value).quantize(CENT)), field)
        if isinstance(value, Decimal):
            if not value.is_finite() or value != value.quantize(CENT, ROUND_HALF_EVEN):
                raise InvalidValue(field, "money.cents",
                                   f"{field}: money has at most 2 decimal places")
            if abs(value) > MAX_AMOUNT:
                return _within_limit(Money(MAX_AMOUNT + 1), field)
            return cls(value.quantize(CENT))
        if isinstance(value, str):
            text = value.strip()
            if not _MONEY_RE.match(text):
                raise InvalidValue(field, "money.format",
                                   f"{field}: '{value[:20]}' is not an amount like 123.45")
            try:
                return _within_limit(cls(Decimal(text).quantize(CENT)), field)
            except InvalidOperation:  # pragma: no cover - regex already guards
                raise InvalidValue(field, "money.format", f"{field}: not an amount") from None
        raise InvalidValue(field, "money.type", f"{field}: money must be a string or Decimal")

    @classmethod
    def zero(cls) -> Money:
        return _ZERO_MONEY  # immutable: one shared instance (a hot path on replay)

    def __add__(self, other: Money) -> Money:
        if type(other) is not Money:
            return NotImplemented
        return _exact(self.amount + other.amount)

    def __radd__(self, other: Any) -> Money:
        if other == 0:  # lets sum() start from 0
            return self
        return NotImplemented

    def __sub__(self, other: Money) -> Money:
        if type(other) is not Money:
            return NotImplemented
        return _exact(self.amount - other.amount)

    def __neg__(self) -> Money:
        return _exact(-self.amount)

    def __mul__(self, units: int) -> Money:
        if isinstance(units, bool) or not isinstance(units, int):
            return NotImplemented
        return Money(self.amount * units)

    def is_zero(self) -> bool:
        return self.amount == 0

    def is_negative(self) -> bool:
        return self.amount < 0

    def is_positive(self) -> bool:
        return self.amount > 0

    def __str__(self) -> str:
        return f"{self.amount:.2f}"

    def __repr__(self) -> str:
        return f"Money('{self}')"


_ZERO = Decimal("0.00")


def _within_limit(money: Money, field: str) -> Money:
    if abs(money.amount) > MAX_AMOUNT:
        raise InvalidValue(field, "money.max",
                           f"{field}: at most {MAX_AMOUNT:,} in absolute value")
    return money


_new = object.__new__
_set_amount = Money.__dict__["amount"].__set__  # the slot itself (a quarter of the time of
# object.__setattr__, which frozen Money needs otherwise)


def _exact(amount: Decimal) -> Money:
    """Money from an amount already exact to the cent (the sum/difference of two Money
    values, an amount stored when it was validated), so the constructor's checks are skipped
    on these hot paths."""
    m = _new(Money)
    _set_amount(m, amount)
    return m


trusted_money = _exact


_ZERO_MONEY = _exact(_ZERO)


def money_sum(values: Any) -> Money:
    total = Money.zero()
    for v in values:
        total = total + v
    return total


# --- codes -------------------------------------------------------------------------------

# The 2nd character is a digit, except in category QA0 (genetic disorders, added in the
# April 2026 update: QA0.0101 ...); validity comes from the code set, not this prefilter.
ICD10CM_RE = re.compile(r"^(?:[A-Z]\d|QA)[0-9A-Z](\.?[0-9A-Z]{1,4})?$")
CPT_CAT1_RE = re.compile(r"^\d{5}$")
CPT_CAT2_RE = re.compile(r"^\d{4}F$")
CPT_CAT3_RE = re.compile(r"^\d{4}T$")
CPT_PLA_RE = re.compile(r"^\d{4}U$")
HCPCS_RE = re.compile(r"^[A-V]\d{4}$")
MODIFIER_RE = re.compile(r"^[0-9A-Z]{2}$")
REVENUE_RE = re.compile(r"^\d{4}$")
NDC_RE = re.compile(r"^\d{11}$")
NPI_RE = re.compile(r"^\d{10}$")

PLACES_OF_SERVICE = {
    "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15",
    "16", "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "31", "32", "33",
    "34", "41", "42", "49", "50", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61",
    "62", "65", "66", "71", "72", "81", "99",
}


def icd10cm_format(code: Any, field: str = "code") -> str:
    """Normalise an ICD-10-CM code (upper case, no dot) after its format prefilter."""
    if not isinstance(code, str):
        raise InvalidCode(field, "icd10cm.format", f"{field}: ICD-10-CM code must be text")
    text = code.strip().upper()
    if not ICD10CM_RE.match(text):
        raise InvalidCode(field, "icd10cm.format",
                          f"{field}: '{text[:12]}' is not in ICD-10-CM format (e.g. E11.9)")
    return text.replace(".", "")


def icd10cm_dotted(code: str) -> str:
    code = code.replace(".", "")
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def procedure_code_system(code: str) -> str | None:
    if CPT_CAT1_RE.match(code):
        return "CPT-I"
    if CPT_CAT2_RE.match(code):
        return "CPT-II"
    if CPT_CAT3_RE.match(code):
        return "CPT-III"
    if CPT_PLA_RE.match(code):
        return "CPT-PLA"
    if HCPCS_RE.match(code):
        return "HCPCS"
    return None


def procedure_code_format(code: Any, field: str = "procedure_code") -> str:
    """A CPT (Cat I/II/III/PLA) or HCPCS Level II code, upper case."""
    if not isinstance(code, str):
        raise InvalidCode(field, "procedure.format", f"{field}: procedure code must be text")
    text = code.strip().upper()
    if procedure_code_system(text) is None:
        raise InvalidCode(field, "procedure.format",
                          f"{field}: '{text[:12]}' is not a CPT (5 digits, or 4 digits + F/T/U) "
                          "or HCPCS Level II (letter A-V + 4 digits) code")
    return text


def hcpcs_level2_format(code: Any, field: str = "procedure_code") -> str:
    text = procedure_code_format(code, field)
    if not HCPCS_RE.match(text):
        raise InvalidCode(field, "hcpcs.format",
                          f"{field}: '{text}' is not a HCPCS Level II supply code (A-V + 4 digits)")
    return text


def modifiers_format(mods: Any, field: str = "modifiers") -> tuple[str, ...]:
    if mods is None:
        return ()
    if isinstance(mods, str) or not isinstance(mods, list | tuple):
        raise InvalidValue(field, "modifier.list", f"{field}: modifiers must be a list")
    if len(mods) > 4:
        raise InvalidValue(field, "modifier.max4", f"{field}: at most 4 modifiers per line")
    out = []
    for i, m in enumerate(mods):
        if not isinstance(m, str) or not MODIFIER_RE.match(m.strip().upper()):
            raise InvalidCode(f"{field}[{i}]", "modifier.format",
                              f"{field}[{i}]: a modifier is 2 letters or digits")
        out.append(m.strip().upper())
    return tuple(out)


def place_of_service_format(pos: Any, field: str = "place_of_service") -> str:
    if not isinstance(pos, str) or pos not in PLACES_OF_SERVICE:
        raise InvalidCode(field, "pos.code", f"{field}: not a CMS place-of-service code")
    return pos


def npi_is_valid(npi: str) -> bool:
    """NPI check digit: Luhn over the 9 digits prefixed with 80840 (CMS rule)."""
    if not NPI_RE.match(npi):
        return False
    digits = [int(c) for c in "80840" + npi[:9]]
    total = 0
    # double every second digit from the right of the 14-digit body
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    check = (10 - total % 10) % 10
    return check == int(npi[9])


def npi_format(npi: Any, field: str = "npi") -> str:
    if not isinstance(npi, str) or not NPI_RE.match(npi):
        raise InvalidCode(field, "npi.format", f"{field}: an NPI is 10 digits")
    if not npi_is_valid(npi):
        raise InvalidCode(field, "npi.luhn", f"{field}: NPI check digit is wrong (Luhn, 80840)")
    return npi


def revenue_code_format(code: Any, field: str = "revenue_code") -> str:
    if not isinstance(code, str) or not REVENUE_RE.match(code):
        raise InvalidCode(field, "revenue.format", f"{field}: a revenue code is 4 digits")
    return code


def ndc_format(code: Any, field: str = "ndc") -> str:
    """NDC in the 11-digit 5-4-2 billing form; hyphens allowed only in 5-4-2 positions."""
    if not isinstance(code, str):
        raise InvalidCode(field, "ndc.format", f"{field}: NDC must be text")
    text = code.strip()
    if "-" in text:
        parts = text.split("-")
        if [len(p) for p in parts] != [5, 4, 2]:
            raise InvalidCode(field, "ndc.format", f"{field}: NDC must be 11 digits in 5-4-2 form")
        text = "".join(parts)
    if not NDC_RE.match(text):
        raise InvalidCode(field, "ndc.format", f"{field}: NDC must be 11 digits in 5-4-2 form")
    return text


def positive_units(units: Any, field: str = "units") -> Decimal:
    if isinstance(units, bool) or isinstance(units, float):
        raise InvalidValue(field, "units.type", f"{field}: units must be an integer or decimal "
                           "string, never a float")
    try:
        value = Decimal(str(units)) if isinstance(units, int | str) else units
    except InvalidOperation:
        raise InvalidValue(field, "units.format", f"{field}: units must be a number") from None
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidValue(field, "units.format", f"{field}: units must be a number")
    if value <= 0:
        raise InvalidValue(field, "units.positive", f"{field}: units must be greater than 0")
    if value > MAX_UNITS:
        raise InvalidValue(field, "units.max", f"{field}: at most {MAX_UNITS}")
    if value != value.quantize(Decimal("0.001")):
        raise InvalidValue(field, "units.precision", f"{field}: at most 3 decimal places")
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value
