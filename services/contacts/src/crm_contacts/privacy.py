"""ExportSubject and EraseSubject for what this service holds about one person."""

from __future__ import annotations

import sqlalchemy as sa
from google.protobuf import struct_pb2
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.events.v1 import contacts_pb2 as events
from crm_api.crm.privacy.v1 import privacy_pb2
from crm_contacts import models
from crm_contacts.convert import row_to_dict
from crm_kit.context import Principal
from crm_kit.db import idempotency_table
from crm_kit.errors import PermissionDenied
from crm_kit.ids import region_of
from crm_kit.messaging import Outbox

SERVICE = "contacts"


def _require_officer(principal: Principal) -> None:
    if not principal.has_role("admin", "compliance_officer"):
        raise PermissionDenied("data-subject requests are for compliance officers and admins")


def _record(kind: str, row: object) -> privacy_pb2.SubjectRecord:
    data = struct_pb2.Struct()
    data.update(row_to_dict(row))
    return privacy_pb2.SubjectRecord(kind=kind, id=str(getattr(row, "id", "")), data=data)


async def export_subject(
    session: AsyncSession, principal: Principal, contact_id: str
) -> privacy_pb2.ExportSubjectResponse:
    _require_officer(principal)
    region = region_of(contact_id, "contact_id")
    response = privacy_pb2.ExportSubjectResponse(service=SERVICE, region=region)
    contact = await session.scalar(
        sa.select(models.Contact).where(
            models.Contact.id == contact_id, models.Contact.tenant_id == principal.tenant_id
        )
    )
    if contact is None:
        return response
    response.records.append(_record("contact", contact))
    for kind, model in (
        ("timeline_entry", models.TimelineEntry),
        ("consent", models.Consent),
        # The files' descriptions; their bytes go into the export's ZIP beside them.
        ("attachment", models.Attachment),
    ):
        rows = await session.scalars(
            sa.select(model).where(model.contact_id == contact_id).order_by(model.id)
        )
        response.records.extend(_record(kind, row) for row in rows)
    memberships = await session.scalars(
        sa.select(models.CompanyMember).where(models.CompanyMember.contact_id == contact_id)
    )
    for member in memberships:
        record = _record("company_membership", member)
        record.id = f"{member.company_id}:{member.contact_id}"
        response.records.append(record)
    return response


async def erase_subject(
    session: AsyncSession, principal: Principal, outbox: Outbox, contact_id: str
) -> privacy_pb2.EraseSubjectResponse:
    _require_officer(principal)
    region = region_of(contact_id, "contact_id")
    response = privacy_pb2.EraseSubjectResponse(service=SERVICE, region=region)
    contact = await session.scalar(
        sa.select(models.Contact)
        .where(models.Contact.id == contact_id, models.Contact.tenant_id == principal.tenant_id)
        .with_for_update()
    )
    if contact is None:
        return response
    counts = {}
    for kind, model in (
        ("timeline_entry", models.TimelineEntry),
        ("consent", models.Consent),
        ("company_membership", models.CompanyMember),
        ("attachment", models.Attachment),  # their pieces go with them (ON DELETE CASCADE)
    ):
        result = await session.execute(sa.delete(model).where(model.contact_id == contact_id))
        counts[kind] = result.rowcount  # type: ignore[attr-defined]
    # Tombstones of contacts merged into this one only point at it; they go too.
    result = await session.execute(
        sa.delete(models.Contact).where(models.Contact.merged_into_id == contact_id)
    )
    counts["merged_tombstone"] = result.rowcount  # type: ignore[attr-defined]
    await session.delete(contact)
    counts["contact"] = 1
    # Stored idempotent responses may hold a copy of the person's data.
    result = await session.execute(
        sa.delete(idempotency_table).where(
            idempotency_table.c.tenant_id == principal.tenant_id,
            sa.text("position(:needle in response) > 0").bindparams(
                sa.bindparam("needle", contact_id.encode(), type_=sa.LargeBinary)
            ),
        )
    )
    counts["idempotent_response"] = result.rowcount  # type: ignore[attr-defined]
    await session.flush()
    await outbox.add(
        session, principal, "contact", "erased", events.ContactErased(contact_id=contact_id)
    )
    response.erased.extend(privacy_pb2.ErasedCount(kind=k, count=v) for k, v in counts.items())
    return response
