"""Unit tests for crm_contacts.normalize."""

from __future__ import annotations

import zoneinfo

import pycountry
import pytest

from crm_contacts.normalize import (
    MAX_TAG_LENGTH,
    MAX_TAGS,
    default_time_zone,
    normalize_country,
    normalize_email,
    normalize_language,
    normalize_phone,
    normalize_tags,
    normalize_time_zone,
)
from crm_kit.errors import FieldViolation, InvalidArgument


def only_violation(exc: pytest.ExceptionInfo[InvalidArgument]) -> FieldViolation:
    assert len(exc.value.violations) == 1
    return exc.value.violations[0]


# ---------------------------------------------------------------------------- email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("anna.muller@example.com", "anna.muller@example.com"),
        ("Anna.Muller@Example.COM", "anna.muller@example.com"),
        ("  ravi@example.in  ", "ravi@example.in"),
        ("jöhn@exämple.com", "jöhn@exämple.com"),
    ],
)
def test_normalize_email_lowercases_whole_address(raw: str, expected: str) -> None:
    assert normalize_email(raw, "emails[0]") == expected


@pytest.mark.parametrize("raw", ["bad", "a@b", "two@@example.com", "a b@example.com", ""])
def test_normalize_email_rejects_invalid_and_names_field(raw: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        normalize_email(raw, "emails[1]")
    violation = only_violation(exc)
    assert violation.field == "emails[1]"
    assert violation.description


def test_normalize_email_error_says_why() -> None:
    with pytest.raises(InvalidArgument) as exc:
        normalize_email("anna.example.com", "emails[0]")
    assert only_violation(exc).description.startswith("not a valid email address: ")
    assert "@" in only_violation(exc).description


# ---------------------------------------------------------------------------- phone


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("8 (912) 345-67-89", "RU", "+79123456789"),
        ("+7 912 345 6789", None, "+79123456789"),
        ("+7 912 345 6789", "US", "+79123456789"),
        ("+7 912 345 6789", "DE", "+79123456789"),
        ("00 49 30 1234567", None, "+49301234567"),
        ("00 49 30 1234567", "DE", "+49301234567"),
        # Russians dial 00 nowadays although the metadata lists 810 as the IDD.
        ("00 49 30 1234567", "RU", "+49301234567"),
        ("(11) 98765-4321", "BR", "+5511987654321"),
        ("030 1234567", "DE", "+49301234567"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "us", "+14155552671"),
        ("+1 415 555 2671 ext. 12", None, "+14155552671"),
        ("098765 43210", "IN", "+919876543210"),
    ],
)
def test_normalize_phone_real_inputs(raw: str, country: str | None, expected: str) -> None:
    assert normalize_phone(raw, country, "phones[0]") == expected


def test_normalize_phone_invalid_for_country() -> None:
    with pytest.raises(InvalidArgument) as exc:
        normalize_phone("912 345", "RU", "phones[2]")
    violation = only_violation(exc)
    assert violation.field == "phones[2]"
    assert "not a valid phone number for country RU" in violation.description


def test_normalize_phone_needs_country_code_without_country() -> None:
    with pytest.raises(InvalidArgument) as exc:
        normalize_phone("8 (912) 345-67-89", None, "phones[0]")
    violation = only_violation(exc)
    assert violation.field == "phones[0]"
    assert violation.description == "add a country code (+..) or give the contact a country"


def test_normalize_phone_unknown_default_country_acts_like_none() -> None:
    with pytest.raises(InvalidArgument) as exc:
        normalize_phone("030 1234567", "XX", "phones[0]")
    assert "add a country code" in only_violation(exc).description
    assert normalize_phone("+49 30 1234567", "XX", "phones[0]") == "+49301234567"


@pytest.mark.parametrize("raw", ["+7 912", "+999 123456789", "", "   ", "hello"])
def test_normalize_phone_rejects_garbage(raw: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        normalize_phone(raw, None, "phones[3]")
    assert only_violation(exc).field == "phones[3]"


# ---------------------------------------------------------------------------- country


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("DE", "DE"),
        ("de", "DE"),
        (" br ", "BR"),
        ("DEU", "DE"),
        ("usa", "US"),
        ("Germany", "DE"),
        ("Brazil", "BR"),
        ("United States", "US"),
        ("united states", "US"),
        ("Norway", "NO"),
        ("Switzerland", "CH"),
        ("India", "IN"),
        ("Iran", "IR"),
        ("Russia", "RU"),
        ("UK", "GB"),
        ("Turkey", "TR"),
        ("Côte d'Ivoire", "CI"),
        ("Czech Republic", "CZ"),
    ],
)
def test_normalize_country(raw: str, expected: str) -> None:
    assert normalize_country(raw) == expected


@pytest.mark.parametrize("raw", ["XX", "EU", "Narnia", "Korea", "", "  "])
def test_normalize_country_unknown_or_ambiguous(raw: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        normalize_country(raw)
    assert only_violation(exc).field == "address.country"


def test_normalize_country_uses_given_field() -> None:
    with pytest.raises(InvalidArgument) as exc:
        normalize_country("Atlantis", "companies[0].country")
    assert only_violation(exc).field == "companies[0].country"


# ---------------------------------------------------------------------------- language


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("pt_BR", "pt-BR"),
        ("pt-br", "pt-BR"),
        ("pt-BR", "pt-BR"),
        ("de", "de"),
        ("DE", "de"),
        ("fa", "fa"),
        ("hi", "hi"),
        ("gu", "gu"),
        ("en_US", "en-US"),
        ("sr-Latn", "sr-Latn"),
    ],
)
def test_normalize_language(raw: str, expected: str) -> None:
    assert normalize_language(raw) == expected


@pytest.mark.parametrize("raw", ["xx", "klingon", "", "12"])
def test_normalize_language_unknown(raw: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        normalize_language(raw)
    assert only_violation(exc).field == "language"


# ---------------------------------------------------------------------------- time zone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("europe/berlin", "Europe/Berlin"),
        ("AMERICA/SAO_PAULO", "America/Sao_Paulo"),
        ("America/New York", "America/New_York"),
        ("Asia/Kolkata", "Asia/Kolkata"),
        ("Asia/Tehran", "Asia/Tehran"),
        ("UTC", "UTC"),
    ],
)
def test_normalize_time_zone(raw: str, expected: str) -> None:
    assert normalize_time_zone(raw) == expected
    zoneinfo.ZoneInfo(expected)  # loadable


@pytest.mark.parametrize("raw", ["Mars/Olympus", "CEST+2", "Factory", ""])
def test_normalize_time_zone_unknown(raw: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        normalize_time_zone(raw)
    assert only_violation(exc).field == "time_zone"


@pytest.mark.parametrize(
    ("country", "expected"),
    [
        ("DE", "Europe/Berlin"),
        ("de", "Europe/Berlin"),
        ("IN", "Asia/Kolkata"),
        ("IR", "Asia/Tehran"),
        ("NO", "Europe/Oslo"),
        ("CH", "Europe/Zurich"),
        ("US", "America/New_York"),
        ("BR", "America/Sao_Paulo"),
        ("RU", "Europe/Moscow"),
        ("ES", "Europe/Madrid"),
        ("PT", "Europe/Lisbon"),
        ("AU", "Australia/Sydney"),
        ("XX", None),
        ("", None),
        ("AQ", None),
    ],
)
def test_default_time_zone(country: str, expected: str | None) -> None:
    assert default_time_zone(country) == expected


def test_default_time_zone_loadable_for_every_inhabited_country() -> None:
    available = zoneinfo.available_timezones()
    missing = []
    for country in pycountry.countries:
        zone = default_time_zone(country.alpha_2)
        if zone is None:
            missing.append(country.alpha_2)
        else:
            assert zone in available, (country.alpha_2, zone)
    # Only uninhabited territories have no zone.
    assert set(missing) <= {"AQ", "BV", "HM"}


# ---------------------------------------------------------------------------- tags


def test_normalize_tags_cleans_and_dedupes_keeping_first_spelling() -> None:
    raw = ["  VIP ", "vip", "Trade   show\t2024", "", "   ", "trade show 2024", "Lead"]
    assert normalize_tags(raw) == ["VIP", "Trade show 2024", "Lead"]


def test_normalize_tags_empty() -> None:
    assert normalize_tags([]) == []


def test_normalize_tags_limits() -> None:
    assert len(normalize_tags([f"t{i}" for i in range(MAX_TAGS)])) == MAX_TAGS
    # Duplicates do not count toward the limit.
    assert len(normalize_tags([f"t{i}" for i in range(MAX_TAGS)] + ["T1", "t2"])) == MAX_TAGS
    with pytest.raises(InvalidArgument) as exc:
        normalize_tags([f"t{i}" for i in range(MAX_TAGS + 1)])
    assert only_violation(exc).field == "tags"


def test_normalize_tags_collects_all_violations() -> None:
    long_tag = "x" * (MAX_TAG_LENGTH + 1)
    with pytest.raises(InvalidArgument) as exc:
        normalize_tags(["ok", long_tag, "fine", long_tag + "y"])
    assert [v.field for v in exc.value.violations] == ["tags[1]", "tags[3]"]
    assert normalize_tags(["x" * MAX_TAG_LENGTH]) == ["x" * MAX_TAG_LENGTH]
