"""Saved views of the contacts list: a name, the list's filters and its sort.

A view lives in its owner's home region (the gateway writes it there). It is private to
its owner, or shared with the owner's team (the team it was saved in); only its owner
changes or deletes it. A view another user may not see does not exist for them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_contacts import models
from crm_contacts.convert import timestamp
from crm_kit import clock
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied
from crm_kit.ids import new_id

# The contacts list's filters (the query parameters of GET /v1/contacts, and "mine").
FILTERS = frozenset(
    {
        "q",
        "stage",
        "tag",
        "country",
        "source",
        "owner",
        "mine",
        "region",
        "created_from",
        "created_to",
    }
)
# The orders GET /v1/contacts takes (`sort`); a leading "-" is descending.
SORTS = frozenset({"name", "-name", "created_at", "-created_at"})
MAX_NAME = 100
MAX_FILTER_VALUE = 500
MAX_VIEWS_PER_OWNER = 100


def to_pb(row: models.ContactView) -> pb.ContactView:
    return pb.ContactView(
        id=row.id,
        name=row.name,
        owner_id=row.owner_id,
        team=row.team,
        shared=row.shared,
        filters=row.filters,
        sort=row.sort,
        created_at=timestamp(row.created_at),
        updated_at=timestamp(row.updated_at),
    )


def _validated(view: pb.ContactView) -> tuple[str, dict[str, str], str]:
    violations: list[FieldViolation] = []
    name = view.name.strip()
    if not name:
        violations.append(FieldViolation("name", "is required"))
    elif len(name) > MAX_NAME:
        violations.append(FieldViolation("name", f"must be at most {MAX_NAME} characters"))
    filters: dict[str, str] = {}
    for key, value in sorted(view.filters.items()):
        if key not in FILTERS:
            known = ", ".join(sorted(FILTERS))
            violations.append(FieldViolation(f"filters.{key}", f"unknown filter; one of: {known}"))
        elif len(value) > MAX_FILTER_VALUE:
            violations.append(
                FieldViolation(f"filters.{key}", f"must be at most {MAX_FILTER_VALUE} characters")
            )
        elif value.strip():
            filters[key] = value.strip()
    if view.sort and view.sort not in SORTS:
        violations.append(FieldViolation("sort", f"one of: {', '.join(sorted(SORTS))}"))
    if violations:
        raise InvalidArgument(violations)
    return name, filters, view.sort


def _visible(principal: Principal) -> sa.ColumnElement[bool]:
    own = models.ContactView.owner_id == principal.user_id
    if not principal.team:
        return own
    return sa.or_(
        own, sa.and_(models.ContactView.shared, models.ContactView.team == principal.team)
    )


async def _get(session: AsyncSession, principal: Principal, view_id: str) -> models.ContactView:
    row = await session.scalar(
        sa.select(models.ContactView)
        .where(
            models.ContactView.id == view_id,
            models.ContactView.tenant_id == principal.tenant_id,
            _visible(principal),
        )
        .with_for_update()
    )
    if row is None:
        raise NotFound("no such view")
    if row.owner_id != principal.user_id:
        raise PermissionDenied("only the view's owner changes it")
    return row


async def save(
    session: AsyncSession, principal: Principal, region: str, view: pb.ContactView
) -> pb.ContactView:
    name, filters, sort = _validated(view)
    if view.id:
        row = await _get(session, principal, view.id)
        row.name, row.filters, row.sort, row.shared = name, filters, sort, view.shared
        # Sharing goes to the owner's team of now.
        row.team = principal.team
        row.updated_at = clock.now()
    else:
        count = await session.scalar(
            sa.select(sa.func.count())
            .select_from(models.ContactView)
            .where(
                models.ContactView.tenant_id == principal.tenant_id,
                models.ContactView.owner_id == principal.user_id,
            )
        )
        if (count or 0) >= MAX_VIEWS_PER_OWNER:
            raise InvalidArgument.single("name", f"at most {MAX_VIEWS_PER_OWNER} views per user")
        now = clock.now()
        row = models.ContactView(
            id=new_id(region),
            tenant_id=principal.tenant_id,
            owner_id=principal.user_id,
            team=principal.team,
            name=name,
            shared=view.shared,
            filters=filters,
            sort=sort,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
    await session.flush()
    return to_pb(row)


async def list_views(session: AsyncSession, principal: Principal) -> pb.ListContactViewsResponse:
    rows = await session.scalars(
        sa.select(models.ContactView)
        .where(models.ContactView.tenant_id == principal.tenant_id, _visible(principal))
        .order_by(sa.func.lower(models.ContactView.name), models.ContactView.id)
    )
    return pb.ListContactViewsResponse(views=[to_pb(r) for r in rows])


async def delete(session: AsyncSession, principal: Principal, view_id: str) -> None:
    row = await _get(session, principal, view_id)
    await session.delete(row)
