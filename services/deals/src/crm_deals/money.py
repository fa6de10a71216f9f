"""Amounts as Decimals in ISO 4217 currencies: parsing, precision and display.

Amounts arrive as plain decimal strings ("1299.90") and never pass through a float;
exponents ("1e3"), signs, separators and more decimals than the currency has
(2 for EUR, 0 for JPY, 3 for BHD) are refused rather than guessed at.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

import pycountry
from babel.numbers import format_currency, get_currency_precision

from crm_kit.errors import FieldViolation

_AMOUNT_RE = re.compile(r"^(\d{1,14})(?:\.(\d{1,12}))?$")
_CODE_RE = re.compile(r"^[A-Za-z]{3}$")
MAX_RATE_DECIMALS = 10


def currency_code(raw: str, field: str, violations: list[FieldViolation]) -> str:
    """The upper-case ISO 4217 code, or "" with a violation naming `field`."""
    code = raw.strip().upper()
    if not _CODE_RE.match(code) or pycountry.currencies.get(alpha_3=code) is None:
        violations.append(FieldViolation(field, f"{raw!r} is not an ISO 4217 currency code"))
        return ""
    return code


def digits(currency: str) -> int:
    """Minor-unit digits of the currency (EUR 2, JPY 0, BHD 3)."""
    return int(get_currency_precision(currency))


def _plain_decimal(raw: str, field: str, violations: list[FieldViolation]) -> Decimal | None:
    text = raw.strip()
    if text.startswith("-"):
        violations.append(FieldViolation(field, "must not be negative"))
        return None
    if not _AMOUNT_RE.match(text):
        violations.append(
            FieldViolation(field, f"{raw!r} is not a plain decimal number such as 1299.90")
        )
        return None
    return Decimal(text)


def parse_amount(
    raw: str, currency: str, field: str, violations: list[FieldViolation]
) -> Decimal | None:
    """A non-negative amount with at most the currency's decimals, quantized to them."""
    value = _plain_decimal(raw, field, violations)
    if value is None or not currency:
        return None
    places = digits(currency)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # a parsed plain decimal is finite
    if -exponent > places:
        violations.append(
            FieldViolation(field, f"{currency} amounts have at most {places} decimals")
        )
        return None
    return value.quantize(Decimal(1).scaleb(-places))


def parse_rate(raw: str, field: str, violations: list[FieldViolation]) -> Decimal | None:
    value = _plain_decimal(raw, field, violations)
    if value is None:
        return None
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > MAX_RATE_DECIMALS:
        violations.append(FieldViolation(field, f"at most {MAX_RATE_DECIMALS} decimals"))
        return None
    if value <= 0:
        violations.append(FieldViolation(field, "must be greater than zero"))
        return None
    return value


def quantize(value: Decimal, currency: str) -> Decimal:
    """Rounded to the currency's minor unit (half up, as invoices round)."""
    return value.quantize(Decimal(1).scaleb(-digits(currency)), rounding=ROUND_HALF_UP)


def to_text(value: Decimal, currency: str) -> str:
    """The canonical string of an amount: "1299.90", "1300" for JPY; never an exponent."""
    return f"{quantize(value, currency):f}"


def display(value: Decimal, currency: str, locale: str) -> str:
    """For people: "1.299,90 €" in de_DE, "€1,299.90" in en."""
    return str(format_currency(value, currency, locale=locale))
