"""Field staff read the client of their own task: the assignee of an open task may read
the contact and the deal the task concerns (address, phones, title, amount, stage,
notes) for as long as the task is theirs and open, and nothing else of the owner's.

Contacts and deals keep, per open task, who it is assigned to and what it links to,
from the tasks service's events (created, changed, completed); `granting_task` answers
"which open task lets this user read this record" for single-record reads only (never
lists), and the read is audited with that task as its basis.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from nats.aio.msg import Msg
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.events.v1 import envelope_pb2
from crm_api.crm.events.v1 import tasks_pb2 as task_events
from crm_kit.audit import append_audit
from crm_kit.context import Principal
from crm_kit.messaging import Consumer, subject_for


async def granting_task(
    session: AsyncSession, grants: Any, principal: Principal, column: str, record_id: str
) -> str:
    """The id of an open task of the caller's linking to the record ('' if none)."""
    task_id = await session.scalar(
        sa.select(grants.task_id)
        .where(
            grants.tenant_id == principal.tenant_id,
            grants.assignee_id == principal.user_id,
            getattr(grants, column) == record_id,
        )
        .order_by(grants.task_id)
        .limit(1)
    )
    return str(task_id or "")


async def audit_task_read(
    session: AsyncSession,
    principal: Principal,
    region: str,
    action: str,
    record_id: str,
    task_id: str,
) -> None:
    await append_audit(
        session,
        tenant_id=principal.tenant_id,
        actor_id=principal.user_id,
        actor_home_region=principal.home_region or region,
        region=region,
        action=action,
        record_id=record_id,
        legal_basis=f"assignee of open task {task_id}",
    )


async def _apply(
    session: AsyncSession,
    grants: Any,
    tenant_id: str,
    task_id: str,
    assignee_id: str,
    deal_id: str,
    contact_id: str,
    open_: bool,
) -> None:
    await session.execute(
        sa.delete(grants).where(grants.tenant_id == tenant_id, grants.task_id == task_id)
    )
    if open_ and assignee_id and (deal_id or contact_id):
        await session.execute(
            pg_insert(grants)
            .values(
                tenant_id=tenant_id,
                task_id=task_id,
                assignee_id=assignee_id,
                deal_id=deal_id,
                contact_id=contact_id,
            )
            .on_conflict_do_nothing()
        )


def task_access_consumer(runtime: Any, durable: str, grants: Any) -> Consumer:
    async def handle(session: AsyncSession, envelope: envelope_pb2.Envelope, _: Msg) -> None:
        tenant = envelope.tenant_id
        if envelope.event_type == "tasks.task.created":
            created = task_events.TaskCreated()
            if envelope.payload.Unpack(created):
                await _apply(
                    session,
                    grants,
                    tenant,
                    created.task_id,
                    created.assignee_id,
                    created.deal_id,
                    created.contact_id,
                    True,
                )
        elif envelope.event_type == "tasks.task.changed":
            changed = task_events.TaskChanged()
            if envelope.payload.Unpack(changed):
                await _apply(
                    session,
                    grants,
                    tenant,
                    changed.task_id,
                    changed.assignee_id,
                    changed.deal_id,
                    changed.contact_id,
                    changed.status == "open",
                )
        elif envelope.event_type == "tasks.task.completed":
            done = task_events.TaskCompleted()
            if envelope.payload.Unpack(done):
                await _apply(session, grants, tenant, done.task_id, "", "", "", False)

    region = runtime.region
    return Consumer(
        runtime.sessions,
        runtime.nats,
        durable=durable,
        subjects=[
            subject_for(region, "tasks", "task", verb)
            for verb in ("created", "changed", "completed")
        ],
        handler=handle,
    )
