"""Data residency placement: which region's cell stores a record, from its country.

Shared by the gateway (to route a create) and the services (to refuse a misplaced one).
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType

import pycountry

from crm_kit.errors import InvalidArgument

__all__ = [
    "EEA_COUNTRIES",
    "ResidencyPolicy",
    "law_for_region",
    "normalize_country",
    "region_for_country",
    "warm_country_names",
]

_WHITESPACE = re.compile(r"\s+")

# EU-27 plus the EEA-only members: GDPR applies to all of them.
EEA_COUNTRIES: frozenset[str] = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
        "IS", "LI", "NO",
    }
)  # fmt: skip

_COUNTRY_FIELD = "address.country"


def _no_overrides() -> Mapping[str, str]:
    # Read-only, so a frozen policy cannot be changed through its mapping either.
    return MappingProxyType({})


@dataclass(frozen=True)
class ResidencyPolicy:
    """A tenant's residency rules: the region for non-regulated countries, plus overrides.

    `overrides` maps an alpha-2 country to a region and wins over the built-in rules
    (e.g. a tenant that must keep Swiss contacts in `eu`).
    """

    default_region: str = "us"
    overrides: Mapping[str, str] = field(default_factory=_no_overrides)


def region_for_country(country: str | None, policy: ResidencyPolicy, regions: Sequence[str]) -> str:
    """Pick the region for a contact in `country` under `policy`.

    Order: the tenant's override, then the law (EEA → `eu`, Brazil → `br`), then the
    tenant's default. A region that is not configured is an error rather than a silent
    fallback: storing a GDPR contact in `us` would break the residency promise.
    """
    code = country.strip().upper() if country else ""
    overrides = {k.strip().upper(): v for k, v in policy.overrides.items()}
    if code and code in overrides:
        region = overrides[code]
    elif code in EEA_COUNTRIES:
        region = "eu"
    elif code == "BR":
        region = "br"
    else:
        region = policy.default_region
    if region not in regions:
        subject = f"country {code}" if code else "contacts without a country"
        configured = ", ".join(regions) if regions else "none"
        raise InvalidArgument.single(
            _COUNTRY_FIELD,
            f"no region is configured for {subject}: it must be stored in region "
            f"{region!r}, but the configured regions are: {configured}",
        )
    return region


# The one table of laws. A region without a law of its own (`us`) holds the tenants that
# chose it; their subjects' requests are answered to GDPR's standard, the stricter default.
_LAWS: dict[str, str] = {"eu": "GDPR", "br": "LGPD"}
DEFAULT_LAW = "GDPR"


def law_for_region(region: str) -> str:
    """The data protection law a data-subject request in `region` is answered under."""
    return _LAWS.get(region, DEFAULT_LAW)


# ---------------------------------------------------------------------------- country

# Common names pycountry does not know (it follows ISO's current short names, e.g.
# "Türkiye") or where its fuzzy search is ambiguous ("UK" matches dozens).
_COUNTRY_ALIASES: dict[str, str] = {
    "uk": "GB",
    "u.k.": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "turkey": "TR",
    "ivory coast": "CI",
    "cote d'ivoire": "CI",
    "u.s.": "US",
    "u.s.a.": "US",
    "america": "US",
    "united states of america": "US",
    "holland": "NL",
    "russia": "RU",
    "south korea": "KR",
    "north korea": "KP",
    "vatican": "VA",
}


def normalize_country(value: str, field: str = "address.country") -> str:
    """Return the ISO 3166-1 alpha-2 code for a code (alpha-2/alpha-3) or English name."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument.single(field, "must be a country code or name")
    code = _country_code(_WHITESPACE.sub(" ", value.strip()))
    if code is None:
        raise InvalidArgument.single(
            field, f"unknown country {value.strip()!r}; use an ISO 3166-1 code such as DE"
        )
    return code


@cache
def _country_code(text: str) -> str | None:
    """Resolve a cleaned country string; cached because imports repeat the same values."""
    alias = _COUNTRY_ALIASES.get(_strip_accents(text).lower())
    if alias:
        return alias
    try:
        # lookup() matches alpha-2, alpha-3, numeric, name, official and common name.
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        pass
    # A file in its own language: "Россия", "Deutschland", "Brasil", "ジャーマニー"…
    local = _territory_names().get(_name_key(text))
    if local:
        return local
    if len(text) < 4:
        # A short string that is not a code ("XX", "EU") would fuzzy-match noise.
        return None
    try:
        matches = pycountry.countries.search_fuzzy(text)
    except LookupError:
        return None
    # Fuzzy search also matches subdivision names; only trust an unambiguous answer.
    return str(matches[0].alpha_2) if len(matches) == 1 else None


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _name_key(text: str) -> str:
    return _WHITESPACE.sub(" ", _strip_accents(text).casefold()).strip()


@cache
def _territory_names() -> Mapping[str, str]:
    """Every Babel (CLDR) locale's name of every country, normalised -> alpha-2.

    Built once, on first use (reading every locale takes a few seconds). Only codes
    ISO 3166-1 knows (not "EU" or the numeric regions such as "150" Europe), and a
    name that two locales give to different countries is left out rather than guessed.
    """
    from babel import Locale, localedata

    names: dict[str, str | None] = {}
    for identifier in localedata.locale_identifiers():
        try:
            territories = Locale.parse(identifier).territories
        except (ValueError, LookupError):  # pragma: no cover - a broken locale file
            continue
        for code, name in territories.items():
            if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
                continue
            key = _name_key(name)
            if key and names.setdefault(key, code) != code:
                names[key] = None
    return MappingProxyType({k: v for k, v in names.items() if v})


async def warm_country_names() -> None:
    """Builds the locale name map in a thread at start-up, so the first request that
    needs it does not hold the event loop while every locale file is read."""
    await asyncio.to_thread(_territory_names)
