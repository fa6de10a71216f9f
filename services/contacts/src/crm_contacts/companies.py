"""Companies: organisations with linked contact persons."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_api.crm.events.v1 import contacts_pb2 as events
from crm_contacts import models, normalize, search_text
from crm_contacts.contacts import (
    DEFAULT_PAGE,
    MAX_PAGE,
    _collect,
    _text,
    field_definitions,
    load_policy,
    refresh_search_text,
    resolve_owner,
    validate_custom_fields,
    visible,
)
from crm_contacts.convert import ADDRESS_FIELDS, company_to_pb
from crm_kit import teams
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, InvalidArgument, NotFound
from crm_kit.ids import new_id, region_of
from crm_kit.messaging import Outbox
from crm_kit.placement import region_for_country

UPDATABLE = frozenset(
    {
        "name",
        "domain",
        "industry",
        "address",
        "phones",
        "owner_id",
        "owner_team",
        "tags",
        "custom_fields_json",
    }
)


async def _validate(
    session: AsyncSession,
    principal: Principal,
    region: str,
    regions: Sequence[str],
    msg: pb.Company,
    fields: frozenset[str],
    existing: models.Company | None,
) -> dict[str, Any]:
    violations: list[FieldViolation] = []
    values: dict[str, Any] = {}
    if "address" in fields:
        address = {
            n: _text(getattr(msg.address, n), f"address.{n}", violations) for n in ADDRESS_FIELDS
        }
        if address["country"]:
            address["country"] = (
                _collect(violations, normalize.normalize_country, address["country"]) or ""
            )
        values["address"] = {k: v for k, v in address.items() if v}
        values["country"] = address["country"]
        # A refused country is reported once, not again as "belongs in another region".
        refused = bool(msg.address.country.strip()) and not address["country"]
        target = (
            None
            if refused
            else _collect(
                violations,
                region_for_country,
                address["country"] or None,
                await load_policy(session, principal.tenant_id),
                regions,
            )
        )
        if target is not None and target != region:
            violations.append(
                FieldViolation(
                    "address.country",
                    f"companies from {address['country'] or 'an unknown country'} are stored "
                    f"in region {target}, not {region}",
                )
            )
    country = values.get("country", existing.country if existing else "") or None
    if "name" in fields:
        values["name"] = _text(msg.name, "name", violations)
        if not values["name"]:
            violations.append(FieldViolation("name", "is required"))
    if "domain" in fields:
        values["domain"] = _text(msg.domain.lower(), "domain", violations)
    if "industry" in fields:
        values["industry"] = _text(msg.industry, "industry", violations)
    if "phones" in fields:
        phones: list[str] = []
        for i, raw in enumerate(msg.phones):
            phone = _collect(violations, normalize.normalize_phone, raw, country, f"phones[{i}]")
            if phone and phone not in phones:
                phones.append(phone)
        values["phones"] = phones
    if "tags" in fields:
        values["tags"] = _collect(violations, normalize.normalize_tags, list(msg.tags)) or []
    if "custom_fields_json" in fields:
        definitions = await field_definitions(session, principal.tenant_id, "company")
        custom = validate_custom_fields(
            msg.custom_fields_json,
            definitions,
            partial=existing is not None,
            country=country,
            violations=violations,
        )
        if custom is not None:
            merged = dict(existing.custom_fields) if existing else {}
            merged.update(custom)
            values["custom_fields"] = {k: v for k, v in merged.items() if v is not None}
    if "owner_id" in fields or "owner_team" in fields or existing is None:
        owner = msg.owner_id if "owner_id" in fields else (existing.owner_id if existing else "")
        kept = existing is not None and owner.strip() == existing.owner_id
        team = (
            msg.owner_team
            if "owner_team" in fields
            else (existing.owner_team if existing is not None and kept else "")
        )
        values["owner_id"], values["owner_team"] = resolve_owner(principal, owner, team, violations)
        if not msg.owner_team.strip():
            # The owner's team is the directory's (whoever set the owner: a web form,
            # telephony, an import, an admin); the token's only until it is known.
            known = await teams.team_of(
                session, models.UserTeam, principal.tenant_id, str(values["owner_id"])
            )
            values["owner_team"] = known or values["owner_team"]
    if violations:
        raise InvalidArgument(violations)
    return values


def _search_text(values: dict[str, Any]) -> str:
    return search_text.fold(" ".join([values.get("name", ""), values.get("domain", "")]))


async def members_of(session: AsyncSession, company_id: str) -> list[tuple[str, str, str]]:
    rows = await session.execute(
        sa.select(
            models.Contact.id,
            models.CompanyMember.role,
            models.Contact.first_name,
            models.Contact.last_name,
        )
        .join(models.Contact, models.Contact.id == models.CompanyMember.contact_id)
        .where(models.CompanyMember.company_id == company_id)
        .order_by(models.Contact.last_name, models.Contact.first_name)
    )
    return [(cid, role, f"{first} {last}".strip()) for cid, role, first, last in rows]


async def create_company(
    session: AsyncSession,
    principal: Principal,
    region: str,
    regions: Sequence[str],
    outbox: Outbox,
    msg: pb.Company,
) -> pb.Company:
    values = await _validate(session, principal, region, regions, msg, UPDATABLE, None)
    row = models.Company(id=new_id(region), tenant_id=principal.tenant_id, version=1, **values)
    row.search_text = _search_text(values)
    session.add(row)
    await session.flush()
    await session.refresh(row)
    await outbox.add(
        session,
        principal,
        "company",
        "created",
        events.CompanyCreated(company_id=row.id, owner_id=row.owner_id),
    )
    return company_to_pb(row, [])


async def get_row(
    session: AsyncSession, principal: Principal, company_id: str, *, for_update: bool = False
) -> models.Company:
    region_of(company_id)
    stmt = sa.select(models.Company).where(
        models.Company.id == company_id, visible(models.Company, principal)
    )
    if for_update:
        stmt = stmt.with_for_update()
    row = await session.scalar(stmt)
    if row is None:
        raise NotFound(f"company {company_id} not found")
    return row


async def get_company(session: AsyncSession, principal: Principal, company_id: str) -> pb.Company:
    row = await get_row(session, principal, company_id)
    return company_to_pb(row, await members_of(session, row.id))


async def update_company(
    session: AsyncSession,
    principal: Principal,
    region: str,
    regions: Sequence[str],
    msg: pb.Company,
    mask: Sequence[str],
) -> pb.Company:
    unknown = [path for path in mask if path not in UPDATABLE]
    if unknown:
        raise InvalidArgument([FieldViolation(p, "unknown or read-only field") for p in unknown])
    if not mask:
        raise InvalidArgument.single("update_mask", "name at least one field to change")
    row = await get_row(session, principal, msg.id, for_update=True)
    values = await _validate(session, principal, region, regions, msg, frozenset(mask), row)
    for name, value in values.items():
        setattr(row, name, value)
    row.search_text = _search_text({"name": row.name, "domain": row.domain})
    row.version += 1
    row.updated_at = datetime.now(UTC)
    await session.flush()
    if "name" in values:
        # Members are found by their company's name too.
        member_ids = [cid for cid, _, _ in await members_of(session, row.id)]
        from crm_contacts.contacts import _company_names

        for contact in (
            await session.scalars(
                sa.select(models.Contact).where(models.Contact.id.in_(member_ids))
            )
        ).all():
            refresh_search_text(contact, await _company_names(session, contact.id))
    return company_to_pb(row, await members_of(session, row.id))


async def list_companies(
    session: AsyncSession, principal: Principal, request: pb.ListCompaniesRequest
) -> pb.ListCompaniesResponse:
    page_size = request.page_size or DEFAULT_PAGE
    if not 1 <= page_size <= MAX_PAGE:
        raise InvalidArgument.single("page_size", f"between 1 and {MAX_PAGE}")
    company = models.Company
    stmt = sa.select(company).where(visible(company, principal))
    if request.owner_id:
        stmt = stmt.where(company.owner_id == request.owner_id)
    if request.tag:
        stmt = stmt.where(company.tags.contains([request.tag]))
    if request.query.strip():
        await session.execute(sa.text("SET LOCAL pg_trgm.word_similarity_threshold = 0.4"))
        stmt = stmt.where(company.search_text.op("%>")(search_text.fold_query(request.query)))
    if request.page_token:
        region_of(request.page_token, "page_token")
        stmt = stmt.where(company.id < request.page_token)
    rows = (await session.scalars(stmt.order_by(company.id.desc()).limit(page_size + 1))).all()
    more = len(rows) > page_size
    rows = rows[:page_size]
    return pb.ListCompaniesResponse(
        companies=[company_to_pb(row) for row in rows],
        next_page_token=rows[-1].id if more and rows else "",
    )
