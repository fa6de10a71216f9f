"""The tenant's residency and cross-region access policy, as stored in this region."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.policy.v1 import policy_pb2
from crm_contacts import models
from crm_contacts.convert import policy_to_pb, timestamp
from crm_contacts.normalize import normalize_country
from crm_kit import clock, tenant_cache
from crm_kit.audit import audit_as
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, InvalidArgument, PermissionDenied

DEFAULT_REGION = "us"
RETENTION_RULES = ("delete_inactive_leads", "anonymize_lost_deals")


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
    region: str = "",
) -> policy_pb2.TenantPolicy:
    if not principal.has_role("admin", "compliance_officer"):
        raise PermissionDenied("only admins and compliance officers change policies")
    violations: list[FieldViolation] = []
    if policy.default_region not in regions:
        violations.append(FieldViolation("default_region", f"must be one of {', '.join(regions)}"))
    overrides: dict[str, str] = {}
    for country, target in sorted(policy.residency_overrides.items()):
        field = f"residency_overrides.{country}"
        try:
            code = normalize_country(country, field)
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            continue
        if target not in regions:
            violations.append(FieldViolation(field, f"region must be one of {', '.join(regions)}"))
        overrides[code] = target
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
    rules = []
    seen_rules: set[str] = set()
    for i, rule in enumerate(policy.retention_rules):
        if rule.rule not in RETENTION_RULES:
            violations.append(
                FieldViolation(f"retention_rules[{i}].rule", f"one of {', '.join(RETENTION_RULES)}")
            )
        elif rule.rule in seen_rules:
            violations.append(FieldViolation(f"retention_rules[{i}].rule", "given twice"))
        seen_rules.add(rule.rule)
        if not 1 <= rule.after_months <= 1200:
            violations.append(
                FieldViolation(f"retention_rules[{i}].after_months", "between 1 and 1200")
            )
        rules.append({"rule": rule.rule, "after_months": rule.after_months})
    if violations:
        raise InvalidArgument(violations)
    row = await session.get(models.TenantPolicy, principal.tenant_id, with_for_update=True)
    before = _snapshot(row)
    if row is None:
        row = models.TenantPolicy(tenant_id=principal.tenant_id, version=0)
        session.add(row)
    row.default_region = policy.default_region
    row.residency_overrides = overrides
    row.access_grants = grants
    row.retention_rules = rules
    after = _snapshot(row)
    changes = describe_changes(before, after)
    if not changes and row.version:
        return policy_to_pb(row)  # nothing changed: no new version
    row.version = (row.version or 0) + 1
    row.updated_by = principal.user_id
    row.updated_at = clock.now()
    session.add(
        models.TenantPolicyVersion(
            tenant_id=principal.tenant_id,
            version=row.version,
            policy=after,
            changes=changes,
            changed_by=principal.user_id,
            changed_at=row.updated_at,
        )
    )
    await session.flush()
    await tenant_cache.changed(session, principal.tenant_id)
    await audit_as(session, principal, region, "policy.change", f"policy:v{row.version}")
    return policy_to_pb(row)


def _snapshot(row: models.TenantPolicy | None) -> dict[str, Any]:
    if row is None:
        return {}
    return {
        "default_region": row.default_region,
        "residency_overrides": dict(row.residency_overrides or {}),
        "access_grants": list(row.access_grants or []),
        "retention_rules": list(row.retention_rules or []),
    }


def describe_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed, for people: "default_region: us -> eu", "+ access grant eu -> us"."""
    changes: list[str] = []
    if before.get("default_region") != after["default_region"]:
        changes.append(
            f"default_region: {before.get('default_region', '-')} -> {after['default_region']}"
        )
    old, new = before.get("residency_overrides", {}), after["residency_overrides"]
    for country in sorted(set(old) | set(new)):
        if old.get(country) != new.get(country):
            changes.append(
                f"residency {country}: {old.get(country, '-')} -> {new.get(country, '-')}"
            )

    def grant(g: dict[str, str]) -> str:
        return f"{g['from_region']} -> {g['to_region']} ({g['legal_basis']})"

    old_grants = {grant(g) for g in before.get("access_grants", [])}
    new_grants = {grant(g) for g in after["access_grants"]}
    changes += [f"- access grant {g}" for g in sorted(old_grants - new_grants)]
    changes += [f"+ access grant {g}" for g in sorted(new_grants - old_grants)]
    old_rules = {r["rule"]: r["after_months"] for r in before.get("retention_rules", [])}
    new_rules = {r["rule"]: r["after_months"] for r in after["retention_rules"]}
    for rule in sorted(set(old_rules) | set(new_rules)):
        if old_rules.get(rule) != new_rules.get(rule):
            changes.append(
                f"retention {rule}: {old_rules.get(rule, '-')} -> {new_rules.get(rule, '-')} months"
            )
    return changes


async def list_versions(
    session: AsyncSession, principal: Principal
) -> policy_pb2.ListPolicyVersionsResponse:
    _require_officer(principal)
    rows = await session.scalars(
        sa.select(models.TenantPolicyVersion)
        .where(models.TenantPolicyVersion.tenant_id == principal.tenant_id)
        .order_by(models.TenantPolicyVersion.version.desc())
    )
    versions = []
    for row in rows:
        data = row.policy
        versions.append(
            policy_pb2.PolicyVersion(
                version=row.version,
                policy=policy_pb2.TenantPolicy(
                    tenant_id=row.tenant_id,
                    default_region=data["default_region"],
                    residency_overrides=data["residency_overrides"],
                    access_grants=[policy_pb2.AccessGrant(**g) for g in data["access_grants"]],
                    retention_rules=[
                        policy_pb2.RetentionRule(**r) for r in data.get("retention_rules", [])
                    ],
                    version=row.version,
                    updated_by=row.changed_by,
                    updated_at=timestamp(row.changed_at),
                ),
                changes=row.changes,
                changed_by=row.changed_by,
                changed_at=timestamp(row.changed_at),
            )
        )
    return policy_pb2.ListPolicyVersionsResponse(versions=versions)


async def list_retention_runs(
    session: AsyncSession, principal: Principal
) -> policy_pb2.ListRetentionRunsResponse:
    _require_officer(principal)
    rows = await session.scalars(
        sa.select(models.RetentionRun)
        .where(models.RetentionRun.tenant_id == principal.tenant_id)
        .order_by(models.RetentionRun.ran_at.desc())
        .limit(200)
    )
    return policy_pb2.ListRetentionRunsResponse(
        runs=[
            policy_pb2.RetentionRun(
                id=row.id,
                rule=row.rule,
                ran_at=timestamp(row.ran_at),
                affected=row.affected,
                record_ids=row.record_ids,
            )
            for row in rows
        ]
    )


def _require_officer(principal: Principal) -> None:
    if not principal.has_role("admin", "compliance_officer"):
        raise PermissionDenied("policies are for admins and compliance officers")
