"""Amounts and currencies: Decimals with the currency's precision, never floats."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crm_deals import money
from crm_kit.errors import FieldViolation


def parse(raw: str, currency: str = "EUR") -> tuple[Decimal | None, list[str]]:
    violations: list[FieldViolation] = []
    value = money.parse_amount(raw, currency, "amount", violations)
    return value, [v.description for v in violations]


@pytest.mark.parametrize(
    ("raw", "currency", "expected"),
    [
        ("1299.9", "EUR", "1299.90"),
        ("0", "EUR", "0.00"),
        (" 12 ", "EUR", "12.00"),
        ("1000", "JPY", "1000"),
        ("1.234", "BHD", "1.234"),
        ("99999999999999.99", "EUR", "99999999999999.99"),
    ],
)
def test_amounts_take_the_currency_precision(raw: str, currency: str, expected: str) -> None:
    value, problems = parse(raw, currency)
    assert problems == [] and value is not None
    assert money.to_text(value, currency) == expected


@pytest.mark.parametrize(
    "raw", ["1e3", "-5", "+5", "1,5", "1.2.3", "", "NaN", "Infinity", "0x10", "1 000", "12.345"]
)
def test_anything_but_a_plain_decimal_is_refused(raw: str) -> None:
    value, problems = parse(raw)
    assert value is None and len(problems) == 1


def test_negative_amounts_say_so() -> None:
    assert parse("-5")[1] == ["must not be negative"]


def test_currencies_are_iso_4217() -> None:
    violations: list[FieldViolation] = []
    assert money.currency_code("eur", "c", violations) == "EUR"
    assert money.currency_code("BRL", "c", violations) == "BRL"
    assert violations == []
    for bad in ("EURO", "XYZ", "€", ""):
        assert money.currency_code(bad, "c", violations) == ""
    assert [v.field for v in violations] == ["c"] * 4


def test_rates_and_display() -> None:
    violations: list[FieldViolation] = []
    assert money.parse_rate("0.9123456789", "rate", violations) == Decimal("0.9123456789")
    assert money.parse_rate("0", "rate", violations) is None
    assert money.parse_rate("0.12345678901", "rate", violations) is None
    assert len(violations) == 2
    assert money.quantize(Decimal("145.145"), "EUR") == Decimal("145.15")
    assert money.display(Decimal("1299.90"), "EUR", "de_DE") == "1.299,90\xa0€"
    assert money.display(Decimal("1299.90"), "USD", "en_US") == "$1,299.90"
