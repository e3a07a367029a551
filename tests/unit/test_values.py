from decimal import Decimal

import pytest

from ledger.domain.errors import InvalidCode, InvalidValue
from ledger.domain.values import (
    Money,
    icd10cm_format,
    modifiers_format,
    ndc_format,
    npi_format,
    npi_is_valid,
    place_of_service_format,
    positive_units,
    procedure_code_format,
    revenue_code_format,
)


@pytest.mark.parametrize("text,expected", [("12.34", "12.34"), ("0", "0.00"), ("-5.5", "-5.50"),
                                           (" 180.00 ", "180.00")])
def test_money_parses_strings(text, expected):
    assert str(Money.parse(text)) == expected


def test_money_refuses_float_and_names_field():
    with pytest.raises(InvalidValue) as err:
        Money.parse(12.5, "charge")
    assert err.value.field == "charge" and err.value.rule == "money.no_float"
    with pytest.raises(InvalidValue):
        Money.parse(True)


@pytest.mark.parametrize("bad", ["12.345", "abc", "1e3", "", "12,00", "NaN", "--1"])
def test_money_refuses_bad_strings(bad):
    with pytest.raises(InvalidValue):
        Money.parse(bad)


def test_money_refuses_sub_cent_decimal():
    with pytest.raises(InvalidValue):
        Money.parse(Decimal("1.001"))


def test_money_arithmetic_is_exact():
    total = sum([Money.parse("0.10")] * 3, Money.zero())
    assert total == Money.parse("0.30")
    assert Money.parse("240.00") - Money.parse("114.82") == Money.parse("125.18")
    assert -Money.parse("5") == Money.parse("-5.00")
    assert Money.parse("5.00") * 10 == Money.parse("50.00")
    with pytest.raises(TypeError):
        Money.parse("1") + Decimal("1")  # type: ignore[operator]


@pytest.mark.parametrize("code,out", [("E11.9", "E119"), ("r10.31", "R1031"),
                                      ("S52.521A", "S52521A"), ("T07.XXXA", "T07XXXA"),
                                      ("I10", "I10")])
def test_icd10cm_format_normalises(code, out):
    assert icd10cm_format(code) == out


@pytest.mark.parametrize("code", ["ZZ", "1234", "E11.99999", "", "E1"])
def test_icd10cm_format_refuses(code):
    with pytest.raises(InvalidCode) as err:
        icd10cm_format(code)
    assert err.value.rule == "icd10cm.format"


@pytest.mark.parametrize("code", ["99213", "0001F", "0042T", "0001U", "J1100", "A4550"])
def test_procedure_code_formats(code):
    assert procedure_code_format(code) == code


@pytest.mark.parametrize("code", ["99213X", "9921", "W1234", "ABCDE", "1234F5"])
def test_procedure_code_refuses(code):
    with pytest.raises(InvalidCode):
        procedure_code_format(code)


def test_npi_luhn_with_80840_prefix():
    assert npi_is_valid("1234567893")
    assert npi_is_valid("1245319599")
    assert not npi_is_valid("1234567890")
    with pytest.raises(InvalidCode) as err:
        npi_format("1234567890")
    assert err.value.rule == "npi.luhn"


def test_modifiers_limit_and_format():
    assert modifiers_format(["rt", "59"]) == ("RT", "59")
    with pytest.raises(InvalidValue):
        modifiers_format(["25", "59", "XE", "XS", "XU"])
    with pytest.raises(InvalidCode):
        modifiers_format(["2"])


def test_other_code_formats():
    assert place_of_service_format("11") == "11"
    with pytest.raises(InvalidCode):
        place_of_service_format("00")
    assert revenue_code_format("0120") == "0120"
    with pytest.raises(InvalidCode):
        revenue_code_format("120")
    assert ndc_format("00409-4888-02") == "00409488802"
    with pytest.raises(InvalidCode):
        ndc_format("0409-4888-02")


@pytest.mark.parametrize("bad", [0, -1, "0", "abc", 1.5])
def test_units_must_be_positive_numbers(bad):
    with pytest.raises(InvalidValue):
        positive_units(bad)


def test_units_keep_integers_plain():
    assert positive_units(10) == Decimal("10") and str(positive_units(10)) == "10"
    assert positive_units("1.5") == Decimal("1.5")


def test_storable_checks_a_moment_by_its_date() -> None:
    # a grant's valid_until is a datetime: compared as a date, never date-vs-datetime
    from datetime import UTC, datetime

    from ledger.domain.errors import InvalidValue
    from ledger.domain.values import check_storable

    check_storable({"valid_until": datetime(2027, 1, 1, tzinfo=UTC)})
    with pytest.raises(InvalidValue) as err:
        check_storable({"valid_until": datetime(1800, 1, 1, tzinfo=UTC)})
    assert err.value.field == "valid_until"
