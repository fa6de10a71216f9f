"""Normalization of contact input: emails, phones, countries, languages, time zones, tags.

Every function is pure and raises `crm_kit.errors.InvalidArgument` naming the field
exactly as the client sent it, so the gateway can point at the bad input.
"""

from __future__ import annotations

import re
import zoneinfo
from functools import cache

import phonenumbers
from babel import Locale, UnknownLocaleError
from babel.core import get_global
from email_validator import EmailNotValidError, validate_email

from crm_kit.errors import FieldViolation, InvalidArgument
from crm_kit.placement import normalize_country

__all__ = [
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "default_time_zone",
    "normalize_country",
    "normalize_email",
    "normalize_language",
    "normalize_phone",
    "normalize_tags",
    "normalize_time_zone",
]

MAX_TAGS = 50
MAX_TAG_LENGTH = 64

_WHITESPACE = re.compile(r"\s+")

# ---------------------------------------------------------------------------- email


def normalize_email(value: str, field: str) -> str:
    """Validate an email address and return it in the form we store and match on.

    Choice: the *whole* address is lowercased (email-validator only lowercases the
    domain). RFC 5321 lets a server treat the local part case-sensitively, but no
    mainstream provider does, and one canonical spelling makes uniqueness checks and
    duplicate detection plain string equality.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument.single(field, "must be a non-empty email address")
    try:
        # Deliverability needs DNS (I/O); this module stays pure, so we skip it.
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidArgument.single(field, f"not a valid email address: {exc}") from exc
    return result.normalized.lower()


# ---------------------------------------------------------------------------- phone


def normalize_phone(raw: str, default_country: str | None, field: str) -> str:
    """Parse a phone number as people type it and return it in E.164 (`+79123456789`).

    Numbers without `+` are read in `default_country` (the contact's country), so
    national prefixes like Russia's `8` or Germany's `0` are handled. A leading `00`
    is also tried as an international prefix, because people in most of the world
    dial `00` even where phonenumbers' metadata lists another IDD (Russia: `810`).
    Extensions are dropped: E.164 has no place for them.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidArgument.single(field, "must be a non-empty phone number")
    text = raw.strip()
    region = default_country.strip().upper() if default_country else None
    if region not in phonenumbers.SUPPORTED_REGIONS:
        # An unknown country cannot help parsing; treat the number as if none was given.
        region = None
    digits = re.sub(r"\D", "", text)

    attempts: list[str] = [text]
    if not text.startswith("+") and digits.startswith("00"):
        attempts.append("+" + digits[2:])

    parsed_any = False
    for attempt in attempts:
        try:
            number = phonenumbers.parse(attempt, region)
        except phonenumbers.NumberParseException:
            continue
        parsed_any = True
        if phonenumbers.is_valid_number(number):
            return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    if not parsed_any and not text.startswith("+") and region is None:
        raise InvalidArgument.single(
            field, "add a country code (+..) or give the contact a country"
        )
    if text.startswith("+") or region is None:
        raise InvalidArgument.single(field, "not a valid phone number")
    raise InvalidArgument.single(
        field,
        f"not a valid phone number for country {region}; "
        "add a country code (+..) if it is a foreign number",
    )


# ---------------------------------------------------------------------------- language


def normalize_language(value: str, field: str = "language") -> str:
    """Return a BCP 47 tag (`pt-BR`, `zh-Hant-TW`) for a locale in `_` or `-` form.

    babel resolves legacy aliases (e.g. `iw` becomes `he-IL`), so the result is the
    form CLDR has data for, which is what formatting code will later ask babel for.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument.single(field, "must be a language tag such as pt-BR")
    # babel splits on "_" only; clients send BCP 47 with "-".
    identifier = value.strip().replace("-", "_")
    try:
        locale = Locale.parse(identifier)
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise InvalidArgument.single(
            field, f"unknown language {value.strip()!r}; use a tag such as pt-BR"
        ) from exc
    parts = [locale.language, locale.script, locale.territory, locale.variant]
    return "-".join(p for p in parts if p)


# ---------------------------------------------------------------------------- time zone

# Names tzdata ships that are not real places a person lives in.
_NOT_ZONES = frozenset({"Factory", "localtime", "posixrules"})


@cache
def _zones_by_folded_name() -> dict[str, str]:
    """Map lowercase zone name → canonical spelling (tzdata names are case-sensitive)."""
    return {name.lower(): name for name in zoneinfo.available_timezones() if name not in _NOT_ZONES}


def normalize_time_zone(value: str, field: str = "time_zone") -> str:
    """Return the canonically spelled IANA zone name (`europe/berlin` → `Europe/Berlin`).

    Backward-compatible link names (`Asia/Calcutta`) are valid IANA names and are kept
    as given: zoneinfo resolves them, and rewriting them would surprise the client.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument.single(field, "must be an IANA time zone such as Europe/Berlin")
    name = _zones_by_folded_name().get(value.strip().replace(" ", "_").lower())
    if name is None:
        raise InvalidArgument.single(
            field, f"unknown time zone {value.strip()!r}; use an IANA name such as Europe/Berlin"
        )
    return name


# The zone most of the population uses, for countries CLDR lists with several zones.
# CLDR (babel's `territory_zones`) gives no order, so the first entry would be e.g.
# America/Adak for the US; this table picks the capital's or the most populous zone.
_PRIMARY_ZONES: dict[str, str] = {
    "AR": "America/Argentina/Buenos_Aires",
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "CD": "Africa/Kinshasa",
    "CL": "America/Santiago",
    "CN": "Asia/Shanghai",
    "CY": "Asia/Nicosia",
    "DE": "Europe/Berlin",
    "EC": "America/Guayaquil",
    "ES": "Europe/Madrid",
    "FM": "Pacific/Pohnpei",
    "GL": "America/Nuuk",
    "ID": "Asia/Jakarta",
    "KI": "Pacific/Tarawa",
    "KZ": "Asia/Almaty",
    "MH": "Pacific/Majuro",
    "MN": "Asia/Ulaanbaatar",
    "MX": "America/Mexico_City",
    "MY": "Asia/Kuala_Lumpur",
    "NZ": "Pacific/Auckland",
    "PF": "Pacific/Tahiti",
    "PG": "Pacific/Port_Moresby",
    "PS": "Asia/Hebron",
    "PT": "Europe/Lisbon",
    "RU": "Europe/Moscow",
    "UA": "Europe/Kyiv",
    "UM": "Pacific/Wake",
    "US": "America/New_York",
    "UZ": "Asia/Tashkent",
}


def default_time_zone(country: str) -> str | None:
    """The time zone to assume for a contact in `country` (alpha-2) without one.

    Single-zone countries get their zone from CLDR (via babel). Multi-zone countries
    get their primary zone from `_PRIMARY_ZONES` (capital / most populous), falling
    back to CLDR's first listed zone. Unknown countries, and Antarctica, give None.
    """
    code = country.strip().upper() if isinstance(country, str) else ""
    if len(code) != 2 or not code.isalpha() or code == "AQ":
        return None
    available = _zones_by_folded_name()
    primary = _PRIMARY_ZONES.get(code)
    if primary is not None and primary.lower() in available:
        return primary
    zones: list[str] = get_global("territory_zones").get(code, [])
    for zone in zones:
        # CLDR may use names this tzdata build lacks; only return zones zoneinfo loads.
        canonical = available.get(zone.lower())
        if canonical is not None:
            return canonical
    return None


# ---------------------------------------------------------------------------- tags


def normalize_tags(values: list[str], field: str = "tags") -> list[str]:
    """Clean tags: trim, collapse inner whitespace, drop empties, dedupe ignoring case.

    The first spelling wins (`["VIP", "vip"]` → `["VIP"]`), so a user's capitalization
    survives. Limits apply after cleaning, so harmless duplicates do not count.
    """
    if isinstance(values, str) or not isinstance(values, list | tuple):
        raise InvalidArgument.single(field, "must be a list of strings")
    violations: list[FieldViolation] = []
    result: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(values):
        if not isinstance(raw, str):
            violations.append(FieldViolation(f"{field}[{index}]", "must be a string"))
            continue
        tag = _WHITESPACE.sub(" ", raw).strip()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            violations.append(
                FieldViolation(f"{field}[{index}]", f"must be at most {MAX_TAG_LENGTH} characters")
            )
            continue
        key = tag.casefold()
        if key in seen:
            continue
        seen.add(key)
        result.append(tag)
    if len(result) > MAX_TAGS:
        violations.append(
            FieldViolation(field, f"at most {MAX_TAGS} tags are allowed, got {len(result)}")
        )
    if violations:
        raise InvalidArgument(violations)
    return result
