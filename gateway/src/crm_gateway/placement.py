"""Where a new record goes: its country through the tenant's residency policy."""

from __future__ import annotations

from crm_gateway.access import Caller
from crm_gateway.problems import invalid
from crm_kit.errors import InvalidArgument
from crm_kit.placement import ResidencyPolicy, normalize_country, region_for_country


async def region_for_create(who: Caller, country: str) -> str:
    policy = await who.gateway.policy(who.principal)
    residency = ResidencyPolicy(
        default_region=policy.default_region or "us", overrides=dict(policy.residency_overrides)
    )
    try:
        code = normalize_country(country) if country.strip() else None
        return region_for_country(code, residency, who.gateway.regions)
    except InvalidArgument as exc:
        violation = exc.violations[0]
        raise invalid(violation.field, violation.description) from exc
