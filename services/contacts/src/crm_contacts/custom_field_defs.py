"""Tenant-defined custom fields for contacts and companies."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_contacts import models
from crm_contacts.convert import field_definition_to_pb
from crm_contacts.custom_fields import validate_definition
from crm_kit import tenant_cache
from crm_kit.context import Principal
from crm_kit.errors import InvalidArgument, NotFound, PermissionDenied

ENTITIES = ("contact", "company")


def _entity(value: str) -> str:
    entity = value or "contact"
    if entity not in ENTITIES:
        raise InvalidArgument.single("entity", "must be contact or company")
    return entity


async def define(
    session: AsyncSession, principal: Principal, definition: pb.CustomFieldDefinition
) -> pb.CustomFieldDefinition:
    if not principal.has_role("admin"):
        raise PermissionDenied("only admins define custom fields")
    entity = _entity(definition.entity)
    parsed = validate_definition(
        {
            "key": definition.key,
            "label": definition.label,
            "type": definition.type,
            "options": list(definition.options),
            "required": definition.required,
        }
    )
    values = {
        "label": parsed.label,
        "type": str(parsed.type),
        "options": list(parsed.options),
        "required": parsed.required,
    }
    await session.execute(
        pg_insert(models.CustomFieldDefinition)
        .values(tenant_id=principal.tenant_id, entity=entity, key=parsed.key, **values)
        .on_conflict_do_update(index_elements=["tenant_id", "entity", "key"], set_=values)
    )
    await tenant_cache.changed(session, principal.tenant_id)
    row = await session.get(
        models.CustomFieldDefinition,
        (principal.tenant_id, entity, parsed.key),
        populate_existing=True,
    )
    assert row is not None
    return field_definition_to_pb(row)


async def list_definitions(
    session: AsyncSession, principal: Principal, entity: str
) -> pb.ListCustomFieldsResponse:
    rows = await session.scalars(
        sa.select(models.CustomFieldDefinition)
        .where(
            models.CustomFieldDefinition.tenant_id == principal.tenant_id,
            models.CustomFieldDefinition.entity == _entity(entity),
        )
        .order_by(models.CustomFieldDefinition.key)
    )
    return pb.ListCustomFieldsResponse(definitions=[field_definition_to_pb(r) for r in rows])


async def delete(
    session: AsyncSession, principal: Principal, entity: str, key: str
) -> pb.CustomFieldDefinition:
    """Forgets the definition. The values records hold are left where they are: erasing
    them would rewrite every record (and its history) for a settings change, and an admin
    who deletes by mistake gets them back by defining the key again."""
    if not principal.has_role("admin"):
        raise PermissionDenied("only admins delete custom fields")
    row = await session.get(
        models.CustomFieldDefinition, (principal.tenant_id, _entity(entity), key)
    )
    if row is None:
        raise NotFound(f"no custom field {key!r}")
    deleted = field_definition_to_pb(row)
    await session.delete(row)
    await tenant_cache.changed(session, principal.tenant_id)
    return deleted
