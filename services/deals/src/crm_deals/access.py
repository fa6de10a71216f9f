"""Who sees and owns which deal: the same rules as for contacts.

Sales reps see the deals they own, managers their team's, and admins, compliance
officers and integrations the whole tenant. A deal the caller may not see is NotFound.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_deals import models
from crm_kit import task_access
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, NotFound
from crm_kit.ids import region_of


def visible(model: Any, principal: Principal) -> sa.ColumnElement[bool]:
    """Tenant scope plus ownership: reps see their own, managers their team's."""
    scope: sa.ColumnElement[bool] = model.tenant_id == principal.tenant_id
    if principal.sees_whole_tenant:
        return scope
    if principal.has_role("manager"):
        return sa.and_(
            scope, sa.or_(model.owner_team == principal.team, model.owner_id == principal.user_id)
        )
    return sa.and_(scope, model.owner_id == principal.user_id)


def resolve_owner(
    principal: Principal, owner_id: str, owner_team: str, violations: list[FieldViolation]
) -> tuple[str, str]:
    """Who owns a new or reassigned record, within what the caller may assign."""
    owner_id = owner_id.strip() or principal.user_id
    if principal.has_role("admin", "integration"):
        return owner_id, owner_team.strip() or (
            principal.team if owner_id == principal.user_id else ""
        )
    if principal.has_role("manager"):
        if owner_team and owner_team != principal.team:
            violations.append(
                FieldViolation("owner_team", "a manager assigns only within their team")
            )
        return owner_id, principal.team
    if owner_id != principal.user_id:
        violations.append(FieldViolation("owner_id", "a sales rep can only own records themselves"))
    return principal.user_id, principal.team


async def get_deal_row(
    session: AsyncSession,
    principal: Principal,
    deal_id: str,
    *,
    field: str = "id",
    for_update: bool = False,
    via_task: str = "",
) -> models.Deal:
    region = region_of(deal_id, field)
    stmt = sa.select(models.Deal).where(models.Deal.id == deal_id, visible(models.Deal, principal))
    if for_update:
        # A move waits here for a concurrent move of the same deal to commit, then
        # sees its result: the stage history stays a single consistent chain.
        stmt = stmt.with_for_update()
    row = await session.scalar(stmt)
    if row is None and via_task:
        # Field staff read the deal of their open task (crm_kit.task_access), audited.
        task_id = await task_access.granting_task(
            session, models.TaskGrant, principal, "deal_id", deal_id
        )
        if task_id:
            row = await session.scalar(
                sa.select(models.Deal).where(
                    models.Deal.id == deal_id, models.Deal.tenant_id == principal.tenant_id
                )
            )
            if row is not None:
                await task_access.audit_task_read(
                    session, principal, region, via_task, deal_id, task_id
                )
    if row is None:
        raise NotFound(f"deal {deal_id} not found")
    return row
