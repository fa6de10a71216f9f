"""What the notifications service holds about one person (a contact): deliveries to or
about them (with the address used), the delivery log, and in-app notifications about
them (their titles may quote the name). Export, erasure, and contact.erased.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from google.protobuf import struct_pb2
from nats.aio.msg import Msg
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.events.v1 import contacts_pb2 as contact_events
from crm_api.crm.events.v1 import envelope_pb2
from crm_api.crm.privacy.v1 import privacy_pb2
from crm_kit.context import Principal
from crm_kit.errors import PermissionDenied
from crm_kit.ids import region_of
from crm_notifications import models

log = logging.getLogger(__name__)

SERVICE = "notifications"
DURABLE = "notifications-contacts"


def subjects(region: str) -> list[str]:
    return [f"crm.{region}.contacts.contact.erased"]


def _require_officer(principal: Principal) -> None:
    if not principal.has_role("admin", "compliance_officer"):
        raise PermissionDenied("data-subject requests are for compliance officers and admins")


def _plain(row: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        data[column.key] = value.isoformat() if isinstance(value, datetime) else value
    return data


def _record(kind: str, record_id: str, row: Any) -> privacy_pb2.SubjectRecord:
    data = struct_pb2.Struct()
    data.update(_plain(row))
    return privacy_pb2.SubjectRecord(kind=kind, id=record_id, data=data)


def _about(model: Any, tenant: str, contact_id: str) -> Any:
    return sa.and_(model.tenant_id == tenant, model.contact_id == contact_id)


async def export_subject(
    session: AsyncSession, principal: Principal, contact_id: str
) -> privacy_pb2.ExportSubjectResponse:
    _require_officer(principal)
    region = region_of(contact_id, "contact_id")
    tenant = principal.tenant_id
    response = privacy_pb2.ExportSubjectResponse(service=SERVICE, region=region)
    for row in await session.scalars(
        sa.select(models.Delivery)
        .where(_about(models.Delivery, tenant, contact_id))
        .order_by(models.Delivery.id)
    ):
        response.records.append(_record("delivery", row.id, row))
    for attempt in await session.scalars(
        sa.select(models.DeliveryAttempt)
        .where(_about(models.DeliveryAttempt, tenant, contact_id))
        .order_by(models.DeliveryAttempt.id)
    ):
        response.records.append(_record("delivery_attempt", str(attempt.id), attempt))
    for item in await session.scalars(
        sa.select(models.InboxItem)
        .where(_about(models.InboxItem, tenant, contact_id))
        .order_by(models.InboxItem.id)
    ):
        response.records.append(_record("inbox_notification", item.id, item))
    return response


async def erase(session: AsyncSession, tenant: str, contact_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind, model in (
        ("delivery_attempt", models.DeliveryAttempt),
        ("inbox_notification", models.InboxItem),
        ("delivery", models.Delivery),
    ):
        result = await session.execute(sa.delete(model).where(_about(model, tenant, contact_id)))
        counts[kind] = int(result.rowcount)  # type: ignore[attr-defined]
    return counts


async def erase_subject(
    session: AsyncSession, principal: Principal, contact_id: str
) -> privacy_pb2.EraseSubjectResponse:
    _require_officer(principal)
    region = region_of(contact_id, "contact_id")
    counts = await erase(session, principal.tenant_id, contact_id)
    response = privacy_pb2.EraseSubjectResponse(service=SERVICE, region=region)
    response.erased.extend(privacy_pb2.ErasedCount(kind=k, count=v) for k, v in counts.items())
    return response


async def on_contact_event(session: AsyncSession, envelope: envelope_pb2.Envelope, _: Msg) -> None:
    if envelope.event_type == "contacts.contact.erased":
        erased = contact_events.ContactErased()
        if envelope.payload.Unpack(erased):
            counts = await erase(session, envelope.tenant_id, erased.contact_id)
            log.info("privacy: erased what notifications held about a contact", extra=counts)
