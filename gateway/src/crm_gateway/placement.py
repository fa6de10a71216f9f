"""Where a new record goes: its country through the tenant's residency policy."""

from __future__ import annotations

from crm_gateway.access import Caller
from crm_gateway.problems import invalid
from crm_kit.errors import InvalidArgument
from crm_kit.placement import ResidencyPolicy, normalize_country, region_for_country


async def region_for_create(who: Caller, country: str, *, checked_by_service: bool = False) -> str:
    """The region a new record with `country` goes to.

    With `checked_by_service` (contacts, companies: their service checks every field and
    writes nothing when one is bad), a country that names no region sends the request
    to the caller's home region anyway, whose service refuses it naming every bad field,
    the country too: one bad country must not hide the request's other errors.
    """
    policy = await who.gateway.policy(who.principal)
    residency = ResidencyPolicy(
        default_region=policy.default_region or "us", overrides=dict(policy.residency_overrides)
    )
    try:
        code = normalize_country(country) if country.strip() else None
        return region_for_country(code, residency, who.gateway.regions)
    except InvalidArgument as exc:
        if checked_by_service:
            return who.principal.home_region
        violation = exc.violations[0]
        raise invalid(violation.field, violation.description) from exc
