"""What the tasks service holds about one person (a contact): export, erasure, and the
reaction to the contacts service's contact.erased and contact.merged events.

Tasks about the person (contact_id) are deleted outright: their titles and
descriptions are free text that may describe the person. The reminders bookkeeping
goes too. Idempotent responses that may quote the person are dropped as well.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from google.protobuf import struct_pb2
from nats.aio.msg import Msg
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_api.crm.events.v1 import contacts_pb2 as contact_events
from crm_api.crm.events.v1 import envelope_pb2
from crm_api.crm.privacy.v1 import privacy_pb2
from crm_kit.context import Principal
from crm_kit.db import idempotency_table
from crm_kit.errors import PermissionDenied
from crm_kit.ids import region_of
from crm_tasks import models
from crm_tasks.convert import row_to_dict

log = logging.getLogger(__name__)

SERVICE = "tasks"
DURABLE = "tasks-contacts"


def subjects(region: str) -> list[str]:
    return [f"crm.{region}.contacts.contact.erased", f"crm.{region}.contacts.contact.merged"]


def _require_officer(principal: Principal) -> None:
    if not principal.has_role("admin", "compliance_officer"):
        raise PermissionDenied("data-subject requests are for compliance officers and admins")


def _record(kind: str, record_id: str, row: object) -> privacy_pb2.SubjectRecord:
    data = struct_pb2.Struct()
    data.update(row_to_dict(row))
    return privacy_pb2.SubjectRecord(kind=kind, id=record_id, data=data)


async def export_subject(
    session: AsyncSession, principal: Principal, contact_id: str
) -> privacy_pb2.ExportSubjectResponse:
    _require_officer(principal)
    region = region_of(contact_id, "contact_id")
    response = privacy_pb2.ExportSubjectResponse(service=SERVICE, region=region)
    task_rows = await session.scalars(
        sa.select(models.Task)
        .where(models.Task.tenant_id == principal.tenant_id, models.Task.contact_id == contact_id)
        .order_by(models.Task.id)
    )
    response.records.extend(_record("task", row.id, row) for row in task_rows)
    reminders = await session.scalars(
        sa.select(models.ReminderSent)
        .where(
            models.ReminderSent.tenant_id == principal.tenant_id,
            models.ReminderSent.contact_id == contact_id,
        )
        .order_by(models.ReminderSent.date, models.ReminderSent.kind)
    )
    response.records.extend(
        _record("reminder_sent", f"{row.contact_id}:{row.kind}:{row.date}:{row.days_before}", row)
        for row in reminders
    )
    return response


async def erase(session: AsyncSession, tenant_id: str, contact_id: str) -> dict[str, int]:
    """Deletes what this service holds about the person; counts per kind."""
    counts: dict[str, int] = {}
    result = await session.execute(
        sa.delete(models.Task).where(
            models.Task.tenant_id == tenant_id, models.Task.contact_id == contact_id
        )
    )
    counts["task"] = result.rowcount  # type: ignore[attr-defined]
    result = await session.execute(
        sa.delete(models.ReminderSent).where(
            models.ReminderSent.tenant_id == tenant_id,
            models.ReminderSent.contact_id == contact_id,
        )
    )
    counts["reminder_sent"] = result.rowcount  # type: ignore[attr-defined]
    # Stored idempotent responses (e.g. CreateTask) may hold a copy of such a task.
    result = await session.execute(
        sa.delete(idempotency_table).where(
            idempotency_table.c.tenant_id == tenant_id,
            sa.text("position(:needle in response) > 0").bindparams(
                sa.bindparam("needle", contact_id.encode(), type_=sa.LargeBinary)
            ),
        )
    )
    counts["idempotent_response"] = result.rowcount  # type: ignore[attr-defined]
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
    """Consumer handler: contact.erased deletes, contact.merged moves tasks to the survivor."""
    if envelope.event_type == "contacts.contact.erased":
        erased = contact_events.ContactErased()
        if envelope.payload.Unpack(erased):
            counts = await erase(session, envelope.tenant_id, erased.contact_id)
            log.info("privacy: erased what tasks held about a contact", extra=counts)
    elif envelope.event_type == "contacts.contact.merged":
        merged = contact_events.ContactMerged()
        if envelope.payload.Unpack(merged):
            await _move_to_survivor(session, envelope.tenant_id, merged)


async def _move_to_survivor(
    session: AsyncSession, tenant_id: str, merged: contact_events.ContactMerged
) -> None:
    await session.execute(
        sa.update(models.Task)
        .where(models.Task.tenant_id == tenant_id, models.Task.contact_id == merged.merged_id)
        .values(contact_id=merged.survivor_id)
    )
    # Reminders already sent for the merged record count for the survivor (same dates);
    # where the survivor has its own row for the same occurrence, the duplicate goes.
    sent = models.ReminderSent
    survivor = aliased(sent)
    await session.execute(
        sa.update(sent)
        .where(
            sent.tenant_id == tenant_id,
            sent.contact_id == merged.merged_id,
            ~sa.exists().where(
                survivor.tenant_id == sent.tenant_id,
                survivor.contact_id == merged.survivor_id,
                survivor.kind == sent.kind,
                survivor.date == sent.date,
                survivor.days_before == sent.days_before,
            ),
        )
        .values(contact_id=merged.survivor_id)
    )
    await session.execute(
        sa.delete(sent).where(sent.tenant_id == tenant_id, sent.contact_id == merged.merged_id)
    )
