"""The tenant's residency and cross-region access policy, as stored in this region."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.policy.v1 import policy_pb2
from crm_contacts import models
from crm_contacts.convert import policy_to_pb
from crm_contacts.normalize import normalize_country
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, InvalidArgument, PermissionDenied

DEFAULT_REGION = "us"


async def get_policy(session: AsyncSession, principal: Principal) -> policy_pb2.TenantPolicy:
    row = await session.get(models.TenantPolicy, principal.tenant_id)
    if row is None:
        return policy_pb2.TenantPolicy(tenant_id=principal.tenant_id, default_region=DEFAULT_REGION)
    return policy_to_pb(row)


async def put_policy(
    session: AsyncSession,
    principal: Principal,
    regions: Sequence[str],
    policy: policy_pb2.TenantPolicy,
) -> policy_pb2.TenantPolicy:
    if not principal.has_role("admin", "compliance_officer"):
        raise PermissionDenied("only admins and compliance officers change policies")
    violations: list[FieldViolation] = []
    if policy.default_region not in regions:
        violations.append(FieldViolation("default_region", f"must be one of {', '.join(regions)}"))
    overrides: dict[str, str] = {}
    for country, region in sorted(policy.residency_overrides.items()):
        field = f"residency_overrides.{country}"
        try:
            code = normalize_country(country, field)
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            continue
        if region not in regions:
            violations.append(FieldViolation(field, f"region must be one of {', '.join(regions)}"))
        overrides[code] = region
    grants = []
    for i, grant in enumerate(policy.access_grants):
        for name in ("from_region", "to_region"):
            if getattr(grant, name) not in regions:
                violations.append(
                    FieldViolation(
                        f"access_grants[{i}].{name}", f"must be one of {', '.join(regions)}"
                    )
                )
        if not grant.legal_basis.strip():
            violations.append(
                FieldViolation(
                    f"access_grants[{i}].legal_basis", "name the legal basis of the transfer"
                )
            )
        grants.append(
            {
                "from_region": grant.from_region,
                "to_region": grant.to_region,
                "legal_basis": grant.legal_basis.strip(),
            }
        )
    if violations:
        raise InvalidArgument(violations)
    row = await session.get(models.TenantPolicy, principal.tenant_id, with_for_update=True)
    if row is None:
        row = models.TenantPolicy(tenant_id=principal.tenant_id, version=0)
        session.add(row)
    row.default_region = policy.default_region
    row.residency_overrides = overrides
    row.access_grants = grants
    row.version = (row.version or 0) + 1
    row.updated_by = principal.user_id
    row.updated_at = datetime.now(UTC)
    await session.flush()
    return policy_to_pb(row)
