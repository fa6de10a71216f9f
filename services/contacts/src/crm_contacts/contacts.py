"""People: validation, placement check, storage, search, duplicates and merge.

Every function takes the caller's Principal and scopes its queries to the tenant and
to what the caller may see; a record the caller may not see is NotFound.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_api.crm.events.v1 import contacts_pb2 as events
from crm_contacts import models, normalize, search_text
from crm_contacts.convert import ADDRESS_FIELDS, contact_to_pb
from crm_contacts.custom_fields import FieldDefinition, FieldType, validate_values
from crm_contacts.duplicates import DuplicateCandidate, find_duplicates, score_pair
from crm_kit import task_access, teams
from crm_kit.context import Principal
from crm_kit.errors import (
    Conflict,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from crm_kit.ids import is_valid_id, new_id, region_of
from crm_kit.messaging import Outbox
from crm_kit.ownership import Reassignable
from crm_kit.placement import ResidencyPolicy, region_for_country
from crm_kit.tenant_cache import MISSING, TenantCache

SOURCES = ("manual", "web_form", "import", "call", "email", "referral", "event", "other")
LIFECYCLE_STAGES = ("lead", "prospect", "customer", "churned")
IMPORTANT_DATE_KINDS = ("birthday", "contract_end", "anniversary", "other")
MAX_NAME = 200
MAX_PAGE = 200
DEFAULT_PAGE = 50
# pg_trgm word similarity above which a dictionary word stands for a query word; low
# enough for one typo.
SEARCH_THRESHOLD = 0.4
# Dictionary words considered per query word (the closest ones), and query words used.
TERMS_PER_WORD = 24
MAX_QUERY_WORDS = 6
# A search gives up (503, retry) rather than hold a connection the writes need.
SEARCH_TIMEOUT_MS = 2000
QUERY_CANCELED = "57014"

# Fields a client may name in an update mask (JSON names of the Contact message).
UPDATABLE = frozenset(
    {
        "first_name",
        "last_name",
        "emails",
        "phones",
        "address",
        "time_zone",
        "language",
        "owner_id",
        "owner_team",
        "source",
        "lifecycle_stage",
        "tags",
        "important_dates",
        "custom_fields_json",
        "companies",
    }
)


# ---------------------------------------------------------------- visibility


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


# Tenant configuration (residency policy, custom field definitions) read on every write,
# cached per process and dropped by the NOTIFY its writers send (crm_kit.tenant_cache).
CONFIG = TenantCache()


async def _tenant_config(
    session: AsyncSession, tenant_id: str, key: Hashable, read: Callable[[], Awaitable[Any]]
) -> Any:
    """From the process's cache, else once per transaction (an import validates thousands
    of contacts in one, also while the cache is not listening)."""
    found = CONFIG.get(tenant_id, key)
    if found is MISSING:
        found = session.info.get(("tenant_config", tenant_id, key), MISSING)
    if found is MISSING:
        generation = CONFIG.generation(tenant_id)
        found = await read()
        CONFIG.put(tenant_id, key, found, generation)
        session.info[("tenant_config", tenant_id, key)] = found
    return found


async def load_policy(session: AsyncSession, tenant_id: str) -> ResidencyPolicy:
    async def read() -> ResidencyPolicy:
        row = await session.get(models.TenantPolicy, tenant_id)
        if row is None:
            return ResidencyPolicy()
        return ResidencyPolicy(
            default_region=row.default_region, overrides=dict(row.residency_overrides)
        )

    policy: ResidencyPolicy = await _tenant_config(session, tenant_id, "residency_policy", read)
    return policy


async def field_definitions(
    session: AsyncSession, tenant_id: str, entity: str
) -> dict[str, FieldDefinition]:
    async def read() -> dict[str, FieldDefinition]:
        rows = (
            await session.scalars(
                sa.select(models.CustomFieldDefinition).where(
                    models.CustomFieldDefinition.tenant_id == tenant_id,
                    models.CustomFieldDefinition.entity == entity,
                )
            )
        ).all()
        return {
            row.key: FieldDefinition(
                key=row.key,
                label=row.label,
                type=FieldType(row.type),
                options=tuple(row.options),
                required=row.required,
            )
            for row in rows
        }

    definitions: dict[str, FieldDefinition] = await _tenant_config(
        session, tenant_id, ("field_definitions", entity), read
    )
    return definitions


# ---------------------------------------------------------------- validation


def _collect(violations: list[FieldViolation], fn: Any, *args: Any) -> Any:
    """Calls a normalizer, moving its InvalidArgument into `violations`."""
    try:
        return fn(*args)
    except InvalidArgument as exc:
        violations.extend(exc.violations)
        return None


def _text(value: str, field: str, violations: list[FieldViolation], limit: int = MAX_NAME) -> str:
    value = " ".join(value.split())
    if len(value) > limit:
        violations.append(FieldViolation(field, f"at most {limit} characters"))
    return value


def validate_custom_fields(
    raw_json: str,
    definitions: dict[str, FieldDefinition],
    *,
    partial: bool,
    country: str | None,
    violations: list[FieldViolation],
) -> dict[str, Any] | None:
    if not raw_json.strip():
        raw_json = "{}"
    try:
        raw = json.loads(raw_json, parse_float=Decimal)
    except ValueError:
        violations.append(FieldViolation("custom_fields", "must be a JSON object"))
        return None
    if not isinstance(raw, dict):
        violations.append(FieldViolation("custom_fields", "must be a JSON object"))
        return None
    values: dict[str, Any] | None = _collect(
        violations,
        lambda: validate_values(raw, definitions, partial=partial, default_country=country),
    )
    return values


async def validate_contact(
    session: AsyncSession,
    principal: Principal,
    region: str,
    regions: Sequence[str],
    msg: pb.Contact,
    fields: frozenset[str],
    existing: models.Contact | None,
) -> dict[str, Any]:
    """Checks and normalizes the named fields; returns column values. Raises one
    InvalidArgument listing every bad field, so nothing is ever half written."""
    violations: list[FieldViolation] = []
    values: dict[str, Any] = {}
    creating = existing is None

    if "address" in fields:
        address = {
            name: _text(getattr(msg.address, name), f"address.{name}", violations)
            for name in ADDRESS_FIELDS
        }
        if address["country"]:
            address["country"] = (
                _collect(violations, normalize.normalize_country, address["country"]) or ""
            )
        values["address"] = {k: v for k, v in address.items() if v}
        values["country"] = address["country"]
    country = values.get("country", existing.country if existing else "") or None
    # A refused country is reported once, not again as "belongs in another region".
    country_refused = "address" in fields and bool(msg.address.country.strip()) and not country

    if "address" in fields and not country_refused:
        target = _collect(
            violations,
            region_for_country,
            country,
            await load_policy(session, principal.tenant_id),
            regions,
        )
        if target is not None and target != region:
            if creating:
                violations.append(
                    FieldViolation(
                        "address.country",
                        f"contacts from {country or 'an unknown country'} are stored in region "
                        f"{target}, not {region}",
                    )
                )
            else:
                violations.append(
                    FieldViolation(
                        "address.country",
                        f"this change would move the contact from region {region} to {target}; "
                        "a relocation is a separate, audited procedure",
                    )
                )

    for name in ("first_name", "last_name"):
        if name in fields:
            values[name] = _text(getattr(msg, name), name, violations)
    if "emails" in fields:
        emails: list[str] = []
        for i, raw in enumerate(msg.emails):
            email = _collect(violations, normalize.normalize_email, raw, f"emails[{i}]")
            if email and email not in emails:
                emails.append(email)
        values["emails"] = emails
    if "phones" in fields:
        phones: list[str] = []
        for i, raw in enumerate(msg.phones):
            phone = _collect(violations, normalize.normalize_phone, raw, country, f"phones[{i}]")
            if phone and phone not in phones:
                phones.append(phone)
        values["phones"] = phones
    if "time_zone" in fields:
        if msg.time_zone.strip():
            values["time_zone"] = (
                _collect(violations, normalize.normalize_time_zone, msg.time_zone) or ""
            )
        else:
            values["time_zone"] = (normalize.default_time_zone(country) if country else None) or ""
    elif "address" in fields and existing is not None and not existing.time_zone and country:
        values["time_zone"] = normalize.default_time_zone(country) or ""
    if "language" in fields:
        values["language"] = (
            _collect(violations, normalize.normalize_language, msg.language) or ""
            if msg.language.strip()
            else ""
        )
    if "source" in fields:
        source = msg.source.strip() or "manual"
        if source not in SOURCES:
            violations.append(FieldViolation("source", f"must be one of {', '.join(SOURCES)}"))
        values["source"] = source
    if "lifecycle_stage" in fields:
        stage = msg.lifecycle_stage.strip() or "lead"
        if stage not in LIFECYCLE_STAGES:
            violations.append(
                FieldViolation("lifecycle_stage", f"must be one of {', '.join(LIFECYCLE_STAGES)}")
            )
        values["lifecycle_stage"] = stage
    if "tags" in fields:
        values["tags"] = _collect(violations, normalize.normalize_tags, list(msg.tags)) or []
    if "important_dates" in fields:
        dates = []
        for i, item in enumerate(msg.important_dates):
            if item.kind not in IMPORTANT_DATE_KINDS:
                violations.append(
                    FieldViolation(
                        f"important_dates[{i}].kind",
                        f"must be one of {', '.join(IMPORTANT_DATE_KINDS)}",
                    )
                )
            try:
                parsed = date.fromisoformat(item.date)
            except ValueError:
                violations.append(
                    FieldViolation(f"important_dates[{i}].date", "expected YYYY-MM-DD")
                )
                continue
            dates.append(
                {"kind": item.kind, "date": parsed.isoformat(), "label": item.label.strip()}
            )
        values["important_dates"] = dates
    if "custom_fields_json" in fields:
        definitions = await field_definitions(session, principal.tenant_id, "contact")
        custom = validate_custom_fields(
            msg.custom_fields_json,
            definitions,
            partial=not creating,
            country=country,
            violations=violations,
        )
        if custom is not None:
            merged = dict(existing.custom_fields) if existing else {}
            merged.update(custom)
            values["custom_fields"] = {k: v for k, v in merged.items() if v is not None}
    if "owner_id" in fields or "owner_team" in fields or creating:
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
    if "companies" in fields:
        values["companies"] = await _validate_links(
            session, principal, region, msg.companies, violations
        )

    if creating and not (
        values.get("first_name") or values.get("last_name") or values.get("emails")
    ):
        violations.append(FieldViolation("first_name", "a contact needs a name or an email"))
    if violations:
        raise InvalidArgument(violations)
    return values


async def _validate_links(
    session: AsyncSession,
    principal: Principal,
    region: str,
    links: Sequence[pb.CompanyLink],
    violations: list[FieldViolation],
) -> list[tuple[str, str]]:
    result: list[tuple[str, str]] = []
    for i, link in enumerate(links):
        field = f"companies[{i}].company_id"
        if not is_valid_id(link.company_id):
            violations.append(FieldViolation(field, f"malformed id {link.company_id!r}"))
            continue
        if region_of(link.company_id) != region:
            violations.append(
                FieldViolation(
                    field,
                    f"the company is stored in region {region_of(link.company_id)} and this "
                    f"contact in {region}; link a company of the same region",
                )
            )
            continue
        found = await session.scalar(
            sa.select(models.Company.id).where(
                models.Company.id == link.company_id,
                models.Company.tenant_id == principal.tenant_id,
            )
        )
        if found is None:
            violations.append(FieldViolation(field, "no such company"))
            continue
        role = _text(link.role, f"companies[{i}].role", violations, 100)
        if link.company_id not in {cid for cid, _ in result}:
            result.append((link.company_id, role))
    return result


# ---------------------------------------------------------------- storage


async def links_of(
    session: AsyncSession, contact_ids: Sequence[str]
) -> dict[str, list[tuple[str, str, str]]]:
    rows = await session.execute(
        sa.select(
            models.CompanyMember.contact_id,
            models.Company.id,
            models.CompanyMember.role,
            models.Company.name,
        )
        .join(models.Company, models.Company.id == models.CompanyMember.company_id)
        .where(models.CompanyMember.contact_id.in_(contact_ids))
        .order_by(models.Company.name)
    )
    found: dict[str, list[tuple[str, str, str]]] = {}
    for contact_id, company_id, role, name in rows:
        found.setdefault(contact_id, []).append((company_id, role, name))
    return found


async def to_pb(session: AsyncSession, row: models.Contact) -> pb.Contact:
    return contact_to_pb(row, (await links_of(session, [row.id])).get(row.id, []))


def refresh_search_text(row: models.Contact, company_names: Sequence[str]) -> None:
    row.search_text = search_text.search_document(
        first_name=row.first_name,
        last_name=row.last_name,
        emails=row.emails,
        phones=row.phones,
        company_names=company_names,
    )


async def _set_links(
    session: AsyncSession, row: models.Contact, links: list[tuple[str, str]]
) -> None:
    await session.execute(
        sa.delete(models.CompanyMember).where(models.CompanyMember.contact_id == row.id)
    )
    for company_id, role in links:
        session.add(
            models.CompanyMember(
                company_id=company_id, contact_id=row.id, tenant_id=row.tenant_id, role=role
            )
        )
    await session.flush()


async def _company_names(session: AsyncSession, contact_id: str) -> list[str]:
    return [name for _, _, name in (await links_of(session, [contact_id])).get(contact_id, [])]


async def create_contact(
    session: AsyncSession,
    principal: Principal,
    region: str,
    regions: Sequence[str],
    outbox: Outbox,
    msg: pb.Contact,
) -> pb.Contact:
    fields = frozenset(UPDATABLE)
    values = await validate_contact(session, principal, region, regions, msg, fields, None)
    links = values.pop("companies", [])
    row = models.Contact(id=new_id(region), tenant_id=principal.tenant_id, version=1, **values)
    if links:
        session.add(row)
        await session.flush()
        await _set_links(session, row, links)
        refresh_search_text(row, await _company_names(session, row.id))
    else:  # a new contact without companies: one INSERT (imports create thousands)
        refresh_search_text(row, [])
        session.add(row)
    await session.flush()
    await outbox.add(
        session,
        principal,
        "contact",
        "created",
        events.ContactCreated(
            contact_id=row.id,
            owner_id=row.owner_id,
            source=row.source,
            lifecycle_stage=row.lifecycle_stage,
            company_ids=[cid for cid, _ in links],
        ),
    )
    return await to_pb(session, row) if links else contact_to_pb(row, [])


async def import_contacts(
    session: AsyncSession,
    principal: Principal,
    region: str,
    regions: Sequence[str],
    outbox: Outbox,
    items: Sequence[pb.ImportContactItem],
) -> pb.ImportContactsResponse:
    """Many creates and updates in one transaction (one commit instead of one per row);
    each item in its own savepoint, so a refused item leaves nothing behind."""
    results = []
    for item in items:
        try:
            async with session.begin_nested():
                if item.contact.id:
                    contact = await update_contact(
                        session,
                        principal,
                        region,
                        regions,
                        outbox,
                        item.contact,
                        list(item.update_mask.paths),
                        0,
                    )
                else:
                    contact = await create_contact(
                        session, principal, region, regions, outbox, item.contact
                    )
            results.append(pb.ImportContactResult(contact=contact))
        except InvalidArgument as exc:
            results.append(
                pb.ImportContactResult(
                    errors=[
                        pb.ImportFieldError(field=v.field, description=v.description)
                        for v in exc.violations
                    ]
                )
            )
        except (NotFound, FailedPrecondition, Conflict, sa.exc.IntegrityError) as exc:
            reason = "conflicts with a stored record" if isinstance(exc, sa.exc.DBAPIError) else exc
            results.append(
                pb.ImportContactResult(errors=[pb.ImportFieldError(description=str(reason))])
            )
    return pb.ImportContactsResponse(results=results)


async def get_row(
    session: AsyncSession,
    principal: Principal,
    contact_id: str,
    *,
    for_update: bool = False,
    via_task: str = "",
) -> models.Contact:
    """The contact if the caller may see it. `via_task` (a read, named for the audit):
    also when an open task of the caller's concerns it (crm_kit.task_access)."""
    region = region_of(contact_id)
    stmt = sa.select(models.Contact).where(
        models.Contact.id == contact_id, visible(models.Contact, principal)
    )
    if for_update:
        stmt = stmt.with_for_update()
    row = await session.scalar(stmt)
    if row is None and via_task:
        task_id = await task_access.granting_task(
            session, models.TaskGrant, principal, "contact_id", contact_id
        )
        if task_id:
            row = await session.scalar(
                sa.select(models.Contact).where(
                    models.Contact.id == contact_id,
                    models.Contact.tenant_id == principal.tenant_id,
                )
            )
            if row is not None:
                await task_access.audit_task_read(
                    session, principal, region, via_task, contact_id, task_id
                )
    if row is None:
        raise NotFound(f"contact {contact_id} not found")
    return row


async def update_contact(
    session: AsyncSession,
    principal: Principal,
    region: str,
    regions: Sequence[str],
    outbox: Outbox,
    msg: pb.Contact,
    mask: Sequence[str],
    expected_version: int,
) -> pb.Contact:
    unknown = [path for path in mask if path not in UPDATABLE]
    if unknown:
        raise InvalidArgument(
            [FieldViolation(path, "unknown or read-only field") for path in unknown]
        )
    if not mask:
        raise InvalidArgument.single("update_mask", "name at least one field to change")
    row = await get_row(session, principal, msg.id, for_update=True)
    if row.merged_into_id:
        raise FailedPrecondition(f"contact {row.id} was merged into {row.merged_into_id}")
    if expected_version and expected_version != row.version:
        raise Conflict(
            f"contact {row.id} changed meanwhile "
            f"(version {row.version}, expected {expected_version})"
        )
    fields = frozenset(mask)
    if "address" in fields and "phones" not in fields:
        fields = fields  # phones are already E.164; a new country does not reinterpret them
    values = await validate_contact(session, principal, region, regions, msg, fields, row)
    links = values.pop("companies", None)
    changed = sorted(name for name, value in values.items() if getattr(row, name) != value)
    for name, value in values.items():
        setattr(row, name, value)
    if links is not None:
        await _set_links(session, row, links)
        changed.append("companies")
    if not changed:
        return await to_pb(session, row)
    refresh_search_text(row, await _company_names(session, row.id))
    row.version += 1
    row.updated_at = datetime.now(UTC)
    await session.flush()
    await outbox.add(
        session,
        principal,
        "contact",
        "updated",
        events.ContactUpdated(
            contact_id=row.id,
            changed_fields=sorted(set(changed)),
            owner_id=row.owner_id,
            lifecycle_stage=row.lifecycle_stage,
        ),
    )
    return await to_pb(session, row)


# ---------------------------------------------------------------- list and search


def _encode_cursor(score: Decimal, contact_id: str) -> str:
    raw = json.dumps({"s": str(score), "i": contact_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[Decimal, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        if "o" in data:
            raise ValueError("a cursor of a sorted listing")
        return Decimal(data["s"]), str(data["i"])
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        raise InvalidArgument.single("page_token", "malformed page token") from exc


# The orders a listing may ask for; "-" is descending. Ties go by id (a ULID: by time).
SORTS = ("name", "-name", "created_at", "-created_at")


def _encode_sorted_cursor(sort: str, key: str, contact_id: str) -> str:
    raw = json.dumps({"o": sort, "k": key, "i": contact_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_sorted_cursor(token: str, sort: str) -> tuple[str, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        if data["o"] != sort:
            raise ValueError("a cursor of another order")
        return str(data["k"]), str(data["i"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument.single(
            "page_token", "malformed page token, or one of a listing in another order"
        ) from exc


def _sort_key(contact: type[models.Contact], sort: str) -> sa.ColumnElement[str]:
    if sort.lstrip("-") == "name":
        name = sa.func.lower(sa.func.trim(contact.first_name + " " + contact.last_name))
        # Byte order (code points), so a caller merging regions compares the same way.
        return name.collate("C")
    return sa.literal("", sa.Text).collate("C")


async def list_contacts(
    session: AsyncSession, principal: Principal, request: pb.ListContactsRequest
) -> pb.ListContactsResponse:
    page_size = request.page_size or DEFAULT_PAGE
    if not 1 <= page_size <= MAX_PAGE:
        raise InvalidArgument.single("page_size", f"between 1 and {MAX_PAGE}")
    contact = models.Contact
    conditions: list[sa.ColumnElement[bool]] = [
        visible(contact, principal),
        contact.merged_into_id.is_(None),
    ]
    violations: list[FieldViolation] = []
    if request.owner_id:
        conditions.append(contact.owner_id == request.owner_id)
    if request.tag:
        conditions.append(contact.tags.contains([request.tag]))
    if request.lifecycle_stage:
        if request.lifecycle_stage not in LIFECYCLE_STAGES:
            violations.append(
                FieldViolation("lifecycle_stage", f"must be one of {', '.join(LIFECYCLE_STAGES)}")
            )
        conditions.append(contact.lifecycle_stage == request.lifecycle_stage)
    if request.source:
        if request.source not in SOURCES:
            violations.append(FieldViolation("source", f"must be one of {', '.join(SOURCES)}"))
        conditions.append(contact.source == request.source)
    if request.country:
        country = _collect(violations, normalize.normalize_country, request.country, "country")
        conditions.append(contact.country == (country or ""))
    if request.HasField("created_after"):
        conditions.append(contact.created_at >= request.created_after.ToDatetime(UTC))
    if request.HasField("created_before"):
        conditions.append(contact.created_at < request.created_before.ToDatetime(UTC))
    if request.company_id:
        conditions.append(
            contact.id.in_(
                sa.select(models.CompanyMember.contact_id).where(
                    models.CompanyMember.company_id == request.company_id
                )
            )
        )
    if request.sort and request.sort not in SORTS:
        violations.append(FieldViolation("sort", f"must be one of {', '.join(SORTS)}"))
    if violations:
        raise InvalidArgument(violations)

    try:
        if request.sort:
            score: sa.ColumnElement[Any] = sa.literal(Decimal("0"), sa.Numeric)
            if request.query.strip():
                # In the asked order: every contact that holds a close word for each
                # query word (the walk below ranks by score instead).
                await _limit_search(session)
                match = _query_match(principal, request)
                conditions.append(sa.and_(*(match.holds(t) for t in range(match.words))))
                score = match.score
            stmt = _sorted(conditions, score, request.sort, request)
        elif request.query.strip():
            stmt = await _search(session, principal, request, conditions, page_size)
        else:
            stmt = _listing(request, conditions)
        rows = (await session.execute(stmt.limit(page_size + 1))).all()
    except sa.exc.DBAPIError as exc:
        if _sqlstate(exc) == QUERY_CANCELED:
            raise Unavailable("the search took too long; try again or narrow it") from exc
        raise
    more = len(rows) > page_size
    rows = rows[:page_size]
    links = await links_of(session, [row[0].id for row in rows])
    hits = []
    for found, row_score, *sort_key in rows:
        hit = pb.ContactHit(
            contact=contact_to_pb(found, links.get(found.id, [])), score=float(row_score)
        )
        if request.sort:  # rows of a sorted page carry their sort key
            hit.sort_key = sort_key[0]
            hit.cursor = _encode_sorted_cursor(request.sort, sort_key[0], found.id)
        else:
            hit.cursor = _encode_cursor(Decimal(row_score), found.id)
        hits.append(hit)
    return pb.ListContactsResponse(
        hits=hits, next_page_token=hits[-1].cursor if more and hits else ""
    )


def _sorted(
    conditions: list[sa.ColumnElement[bool]],
    score: sa.ColumnElement[Any],
    sort: str,
    request: pb.ListContactsRequest,
) -> sa.Select[Any]:
    """Contacts in the asked order, resumed after (sort key, id) of the last hit seen."""
    contact = models.Contact
    scored = (
        sa.select(contact, score.label("score"), _sort_key(contact, sort).label("sort_key"))
        .where(*conditions)
        .subquery()
    )
    aliased = sa.orm.aliased(contact, scored)
    key = scored.c.sort_key.collate("C")
    descending = sort.startswith("-")
    stmt = sa.select(aliased, scored.c.score, scored.c.sort_key)
    if request.page_token:
        after_key, after_id = _decode_sorted_cursor(request.page_token, sort)
        if descending:
            stmt = stmt.where(
                sa.or_(key < after_key, sa.and_(key == after_key, scored.c.id < after_id))
            )
        else:
            stmt = stmt.where(
                sa.or_(key > after_key, sa.and_(key == after_key, scored.c.id > after_id))
            )
    order = (key.desc(), scored.c.id.desc()) if descending else (key.asc(), scored.c.id.asc())
    return stmt.order_by(*order)


def _sqlstate(exc: sa.exc.DBAPIError) -> str:
    cause = exc.orig.__cause__ if exc.orig is not None else None
    return str(getattr(exc.orig, "sqlstate", "") or getattr(cause, "sqlstate", ""))


def _listing(
    request: pb.ListContactsRequest, conditions: list[sa.ColumnElement[bool]]
) -> sa.Select[Any]:
    """Without a query: newest first (score 0 for every row, so cursors stay one format)."""
    contact = models.Contact
    score = sa.literal(Decimal("0"), sa.Numeric).label("score")
    stmt = sa.select(contact, score).where(*conditions)
    if request.page_token:
        _after_score, after_id = _decode_cursor(request.page_token)
        stmt = stmt.where(contact.id < after_id)
    return stmt.order_by(contact.id.desc())


def _matched_terms(tenant_id: str, request: pb.ListContactsRequest) -> tuple[Any, int]:
    """The dictionary words each query word stands for, with how well they match
    (word similarity, as the old whole-document search scored): a CTE of
    (token, term, sim), and the number of query words."""
    term = models.SearchTerm
    digits = search_text.phone_digits(request.query)
    if digits:
        # A phone fragment: the stored phone terms containing its digits.
        phone = (
            sa.select(
                sa.literal(0).label("token"),
                term.term.label("term"),
                sa.literal(1.0, sa.Float).label("sim"),
            )
            .where(term.tenant_id == tenant_id, term.term.contains(digits, autoescape=True))
            .order_by(term.term)
            .limit(TERMS_PER_WORD)
        )
        return phone.cte("matched"), 1
    words = _unique_words(search_text.fold_query(request.query))
    if not words:  # nothing searchable (only symbols): nothing matches
        nothing = sa.select(
            sa.literal(0).label("token"),
            sa.literal("").label("term"),
            sa.literal(1.0, sa.Float).label("sim"),
        ).where(sa.false())
        return nothing.cte("matched"), 1
    selects = []
    for index, word in enumerate(words):
        sim = sa.func.word_similarity(word, term.term)
        close = (
            sa.select(term.term.label("term"), sim.label("sim"))
            .where(term.tenant_id == tenant_id, sa.literal(word).op("<%")(term.term))
            # The closest words first; among equally close ones the shortest (the whole
            # name "muller" before "muller1234" from an email address).
            .order_by(sim.desc(), sa.func.similarity(word, term.term).desc(), term.term)
            .limit(TERMS_PER_WORD)
            .subquery()
        )
        selects.append(sa.select(sa.literal(index).label("token"), close.c.term, close.c.sim))
    return sa.union_all(*selects).cte("matched"), len(words)


def _unique_words(query: str) -> list[str]:
    return list(dict.fromkeys(word for word in query.split(" ") if word))[:MAX_QUERY_WORDS]


async def _limit_search(session: AsyncSession) -> None:
    await session.execute(
        sa.text(f"SET LOCAL pg_trgm.word_similarity_threshold = {SEARCH_THRESHOLD}")
    )
    await session.execute(sa.text(f"SET LOCAL statement_timeout = '{SEARCH_TIMEOUT_MS}ms'"))


@dataclass(frozen=True)
class _QueryMatch:
    """The query's words as dictionary words (`matched`: token, term, sim), how many words
    it has, a contact's score against it, and `holds(token)`: the contact has a close word
    for query word `token`."""

    matched: Any
    words: int
    score: sa.ColumnElement[Any]
    holds: Callable[[int], sa.ColumnElement[bool]]


def _query_match(principal: Principal, request: pb.ListContactsRequest) -> _QueryMatch:
    contact = models.Contact
    matched, words = _matched_terms(principal.tenant_id, request)
    # The contact's own words, from its row (cheaper than its contact_terms rows).
    own_words = sa.func.string_to_array(contact.search_text, " ")

    def best(token: int) -> sa.ColumnElement[Any]:
        """How well the contact's best word matches query word `token` (0 if none)."""
        found = (
            sa.select(sa.func.max(matched.c.sim))
            .where(matched.c.token == token, matched.c.term == sa.func.any(own_words))
            .correlate(contact)
            .scalar_subquery()
        )
        return sa.func.coalesce(found, 0.0)

    def holds(token: int) -> sa.ColumnElement[bool]:
        return (
            sa.select(matched.c.term)
            .where(matched.c.token == token, matched.c.term == sa.func.any(own_words))
            .correlate(contact)
            .exists()
        )

    total = sum((best(token) for token in range(1, words)), best(0))
    score = sa.func.round(sa.cast(total / words, sa.Numeric), 4)
    return _QueryMatch(matched, words, score, holds)


async def _search(
    session: AsyncSession,
    principal: Principal,
    request: pb.ListContactsRequest,
    conditions: list[sa.ColumnElement[bool]],
    page_size: int,
) -> sa.Select[Any]:
    """Ranks without scoring every candidate: the query's words are looked up in the
    tenant's dictionary of distinct words (`search_terms`), and for each close word the
    contacts holding it are walked newest first (`contact_terms`), stopping after a page.

    A contact's score is the mean over the query's words of its best matching word. For a
    one-word query the pages are exact (every contact after the walk's stop scores no
    higher than the word it was reached by); for several words, a contact that holds them
    all is reached through its rarest word.
    """
    await _limit_search(session)
    contact = models.Contact
    walked = sa.orm.aliased(models.ContactTerm)
    match = _query_match(principal, request)
    matched, words, score, holds = match.matched, match.words, match.score, match.holds
    walk_conditions = list(conditions)
    if request.page_token:
        after_score, after_id = _decode_cursor(request.page_token)
        walk_conditions.append(
            sa.or_(score < after_score, sa.and_(score == after_score, contact.id < after_id))
        )

    def walk(name: str, *also: sa.ColumnElement[bool]) -> Any:
        """Per matched word, its holders newest first, up to a page, as a lateral."""
        return (
            sa.select(contact.id.label("id"), score.label("score"))
            .select_from(walked)
            .join(contact, contact.id == walked.contact_id)
            .where(
                walked.tenant_id == principal.tenant_id,
                walked.term == matched.c.term,
                *walk_conditions,
                *also,
            )
            .order_by(walked.contact_id.desc())
            .limit(page_size + 1)
            .lateral(name)
        )

    any_word = walk("walk")
    found = [
        sa.select(any_word.c.id, any_word.c.score).select_from(matched).join(any_word, sa.true())
    ]
    if words > 1:
        # Those holding every word, which the walk above may stop before when each
        # word alone is common ("jurgen muller").
        every_word = walk("walk_all", *(holds(token) for token in range(words)))
        found.append(
            sa.select(every_word.c.id, every_word.c.score)
            .select_from(matched)
            .join(every_word, sa.true())
        )
    # A contact reached through several of its words is one hit.
    reached = sa.union_all(*found).subquery("reached")
    hits = sa.select(reached.c.id, reached.c.score).distinct().subquery("hits")
    return (
        sa.select(contact, hits.c.score)
        .join(hits, hits.c.id == contact.id)
        .order_by(hits.c.score.desc(), contact.id.desc())
        .limit(page_size + 1)
    )


# ---------------------------------------------------------------- duplicates and merge


async def _candidates(
    session: AsyncSession, rows: Sequence[models.Contact]
) -> list[DuplicateCandidate]:
    links = await links_of(session, [row.id for row in rows])
    return [
        DuplicateCandidate(
            id=row.id,
            first_name=row.first_name,
            last_name=row.last_name,
            emails=tuple(row.emails),
            phones=tuple(row.phones),
            company_names=tuple(name for _, _, name in links.get(row.id, [])),
        )
        for row in rows
    ]


async def find_duplicate_pairs(
    session: AsyncSession, principal: Principal, request: pb.FindDuplicatesRequest
) -> pb.FindDuplicatesResponse:
    min_score = request.min_score or 0.6
    limit = request.limit or 50
    if not 0 < min_score <= 1:
        raise InvalidArgument.single("min_score", "between 0 and 1")
    if not 1 <= limit <= 500:
        raise InvalidArgument.single("limit", "between 1 and 500")
    base = [visible(models.Contact, principal), models.Contact.merged_into_id.is_(None)]
    if request.contact_id:
        target = await get_row(session, principal, request.contact_id)
        name = search_text.fold_query(f"{target.first_name} {target.last_name}")
        await session.execute(sa.text("SET LOCAL pg_trgm.similarity_threshold = 0.3"))
        similar = [models.Contact.search_text.op("%")(name)] if name else []
        rows = (
            await session.scalars(
                sa.select(models.Contact)
                .where(
                    *base,
                    models.Contact.id != target.id,
                    sa.or_(
                        models.Contact.emails.overlap(target.emails or [""]),
                        models.Contact.phones.overlap(target.phones or [""]),
                        *similar,
                    ),
                )
                .limit(1000)
            )
        ).all()
        mine = (await _candidates(session, [target]))[0]
        matches = [m for c in await _candidates(session, rows) if (m := score_pair(mine, c))]
        matches = [m for m in matches if m.score >= min_score]
        matches.sort(key=lambda m: -m.score)
    else:
        rows = (await session.scalars(sa.select(models.Contact).where(*base))).all()
        matches = find_duplicates(await _candidates(session, rows), threshold=min_score)
    matches = matches[:limit]
    by_id = {row.id: row for row in rows}
    if request.contact_id:
        by_id[target.id] = target
    links = await links_of(session, list(by_id))
    return pb.FindDuplicatesResponse(
        pairs=[
            pb.DuplicatePair(
                a=contact_to_pb(by_id[m.a_id], links.get(m.a_id, [])),
                b=contact_to_pb(by_id[m.b_id], links.get(m.b_id, [])),
                score=m.score,
                reasons=list(m.reasons),
            )
            for m in matches
        ]
    )


async def merge_contacts(
    session: AsyncSession,
    principal: Principal,
    outbox: Outbox,
    survivor_id: str,
    merged_id: str,
) -> pb.Contact:
    violations = []
    for field, value in (("survivor_id", survivor_id), ("merged_id", merged_id)):
        if not is_valid_id(value):
            violations.append(FieldViolation(field, f"malformed id {value!r}"))
    if violations:
        raise InvalidArgument(violations)
    if survivor_id == merged_id:
        raise InvalidArgument.single("merged_id", "a contact cannot be merged into itself")
    # Lock both in id order so two opposite merges cannot deadlock.
    first, second = sorted([survivor_id, merged_id])
    rows = {
        r.id: r
        for r in [
            await get_row(session, principal, first, for_update=True),
            await get_row(session, principal, second, for_update=True),
        ]
    }
    survivor, merged = rows[survivor_id], rows[merged_id]
    for row in (survivor, merged):
        if row.merged_into_id:
            raise FailedPrecondition(
                f"contact {row.id} was already merged into {row.merged_into_id}"
            )

    survivor.emails = survivor.emails + [e for e in merged.emails if e not in survivor.emails]
    survivor.phones = survivor.phones + [p for p in merged.phones if p not in survivor.phones]
    survivor.tags = survivor.tags + [t for t in merged.tags if t not in survivor.tags]
    known_dates = {(d["kind"], d["date"]) for d in survivor.important_dates}
    survivor.important_dates = survivor.important_dates + [
        d for d in merged.important_dates if (d["kind"], d["date"]) not in known_dates
    ]
    survivor.custom_fields = {**merged.custom_fields, **survivor.custom_fields}
    for name in ("first_name", "last_name", "time_zone", "language"):
        if not getattr(survivor, name):
            setattr(survivor, name, getattr(merged, name))
    if not survivor.address:
        survivor.address, survivor.country = merged.address, merged.country

    # Both histories stay: timeline and consents move to the survivor.
    for model in (models.TimelineEntry, models.Consent):
        await session.execute(
            sa.update(model).where(model.contact_id == merged.id).values(contact_id=survivor.id)
        )
    survivor_companies = set(
        await session.scalars(
            sa.select(models.CompanyMember.company_id).where(
                models.CompanyMember.contact_id == survivor.id
            )
        )
    )
    await session.execute(
        sa.update(models.CompanyMember)
        .where(
            models.CompanyMember.contact_id == merged.id,
            models.CompanyMember.company_id.not_in(survivor_companies or {""}),
        )
        .values(contact_id=survivor.id)
    )
    await session.execute(
        sa.delete(models.CompanyMember).where(models.CompanyMember.contact_id == merged.id)
    )
    now = datetime.now(UTC)
    session.add(
        models.TimelineEntry(
            id=new_id(region_of(survivor.id)),
            tenant_id=principal.tenant_id,
            contact_id=survivor.id,
            kind="note",
            subject="merged",
            body=f"Merged contact {merged.id} into this one.",
            occurred_at=now,
            author_id=principal.user_id,
        )
    )
    # The merged record stays as a tombstone so old links resolve; its personal data
    # now lives only in the survivor.
    merged.merged_into_id = survivor.id
    merged.first_name = merged.last_name = merged.time_zone = merged.language = ""
    merged.emails, merged.phones, merged.tags, merged.important_dates = [], [], [], []
    merged.address, merged.country, merged.custom_fields, merged.search_text = {}, "", {}, ""
    merged.version += 1
    merged.updated_at = now
    survivor.version += 1
    survivor.updated_at = now
    await session.flush()
    refresh_search_text(survivor, await _company_names(session, survivor.id))
    await session.flush()
    await outbox.add(
        session,
        principal,
        "contact",
        "merged",
        events.ContactMerged(survivor_id=survivor.id, merged_id=merged.id),
    )
    return await to_pb(session, survivor)


# ---------------------------------------------------------------- reminders

# Kinds that come back every year on the same day; the others are one-off dates.
YEARLY_KINDS = ("birthday", "anniversary")


async def upcoming_dates(
    session: AsyncSession, principal: Principal, on_date: str
) -> pb.ListUpcomingDatesResponse:
    """Important dates falling on `on_date`, across tenants for the system scheduler."""
    try:
        day = date.fromisoformat(on_date)
    except ValueError as exc:
        raise InvalidArgument.single("on_date", "expected YYYY-MM-DD") from exc
    item = sa.func.jsonb_array_elements(models.Contact.important_dates).table_valued("value")
    kind = item.c.value.op("->>")("kind")
    when = item.c.value.op("->>")("date")
    stmt = (
        sa.select(models.Contact.tenant_id, models.Contact.id, models.Contact.owner_id, kind, when)
        .select_from(models.Contact)
        .join(item, sa.true())
        .where(
            models.Contact.merged_into_id.is_(None),
            sa.or_(
                sa.and_(
                    kind.in_(YEARLY_KINDS), sa.func.substr(when, 6, 5) == day.strftime("%m-%d")
                ),
                sa.and_(kind.not_in(YEARLY_KINDS), when == day.isoformat()),
            ),
        )
        .order_by(models.Contact.tenant_id, models.Contact.id)
    )
    if principal.tenant_id != "*":
        stmt = stmt.where(models.Contact.tenant_id == principal.tenant_id)
    rows = (await session.execute(stmt)).all()
    return pb.ListUpcomingDatesResponse(
        dates=[
            pb.UpcomingDate(tenant_id=t, contact_id=c, owner_id=o, kind=k, date=d)
            for t, c, o, k, d in rows
        ]
    )


def reassignable(outbox: Outbox) -> Reassignable:
    """A leaving user's contacts (not the tombstones of merged ones) for
    crm_kit.ownership, announced like any owner change."""

    async def team_of(session: AsyncSession, tenant_id: str, user_id: str) -> str:
        return await teams.team_of(session, models.UserTeam, tenant_id, user_id)

    async def announce(session: AsyncSession, principal: Principal, row: Any) -> None:
        await outbox.add(
            session,
            principal,
            "contact",
            "updated",
            events.ContactUpdated(
                contact_id=row.id,
                changed_fields=["owner_id", "owner_team"],
                owner_id=row.owner_id,
                lifecycle_stage=row.lifecycle_stage,
            ),
        )

    return Reassignable(
        kind="contacts",
        model=models.Contact,
        is_open=lambda model: model.merged_into_id.is_(None),
        team_of=team_of,
        announce=announce,
    )
