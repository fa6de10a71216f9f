"""From events to planned deliveries, in the consumer's transaction.

The consumer's inbox row makes a redelivered event a no-op; the deliveries' unique key
(event, recipient, channel) makes the plan itself idempotent as well, so one event
gives at most one message per recipient and channel.

Who gets what:
  task.created        -> the assignee (not when they assigned it to themselves)
  task.overdue        -> the assignee and their manager
  reminder.due        -> the contact's owner
  deal.won            -> the owner's manager
  notification.requested (automation rules) -> the rule's recipients
  document.send_requested -> the deal's contact, by email, at once (document.sent)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from nats.aio.msg import Msg
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.events.v1 import deals_pb2 as deal_events
from crm_api.crm.events.v1 import envelope_pb2
from crm_api.crm.events.v1 import tasks_pb2 as task_events
from crm_kit import clock
from crm_kit.ids import new_id
from crm_notifications import models
from crm_notifications.lookups import Lookups

log = logging.getLogger(__name__)

DURABLE = "notifications-events"
DEFAULT_CHANNELS = ("in_app", "email")
EVENT_KINDS = {
    "tasks.task.created": "task.created",
    "tasks.task.overdue": "task.overdue",
    "tasks.reminder.due": "reminder.due",
    "deals.deal.won": "deal.won",
    "tasks.notification.requested": "automation",
    "deals.document.send_requested": "document.sent",
}


def subjects(region: str) -> list[str]:
    return [f"crm.{region}.{event_type}" for event_type in EVENT_KINDS]


def message_id(delivery_id: str, region: str) -> str:
    return f"<{delivery_id}@{region}.notifications.atlas-crm>"


@dataclass
class Plan:
    kind: str
    recipients: list[str]
    context: dict[str, Any] = field(default_factory=dict)
    urgent: bool = False
    contact_id: str = ""
    # "contact": the recipients are contacts, written to by email only.
    recipient_type: str = "user"


class Planner:
    def __init__(self, lookups: Lookups, region: str, urgent_kinds: list[str]) -> None:
        self.lookups = lookups
        self.region = region
        self.urgent_kinds = set(urgent_kinds)

    async def _manager(self, tenant: str, user_id: str) -> str:
        user = await self.lookups.user_or_none(tenant, user_id)
        return user.manager_id if user is not None else ""

    async def plan(self, envelope: envelope_pb2.Envelope) -> Plan | None:
        tenant = envelope.tenant_id
        kind = EVENT_KINDS.get(envelope.event_type)
        if kind == "task.created":
            created = task_events.TaskCreated()
            envelope.payload.Unpack(created)
            recipients = [] if created.assignee_id == envelope.actor_id else [created.assignee_id]
            return Plan(
                kind,
                recipients,
                {
                    "task_id": created.task_id,
                    "deal_id": created.deal_id,
                    "contact_id": created.contact_id,
                    "assignee_id": created.assignee_id,
                },
                created.priority == "urgent",
                created.contact_id,
            )
        if kind == "task.overdue":
            overdue = task_events.TaskOverdue()
            envelope.payload.Unpack(overdue)
            manager = await self._manager(tenant, overdue.assignee_id)
            return Plan(
                kind,
                [overdue.assignee_id, manager],
                {
                    "task_id": overdue.task_id,
                    "deal_id": overdue.deal_id,
                    "contact_id": overdue.contact_id,
                    "assignee_id": overdue.assignee_id,
                },
                overdue.priority == "urgent",
                overdue.contact_id,
            )
        if kind == "reminder.due":
            due = task_events.ReminderDue()
            envelope.payload.Unpack(due)
            return Plan(
                kind,
                [due.owner_id],
                {
                    "contact_id": due.contact_id,
                    "reminder_kind": due.kind,
                    "days_before": due.days_before,
                },
                contact_id=due.contact_id,
            )
        if kind == "deal.won":
            won = deal_events.DealWon()
            envelope.payload.Unpack(won)
            manager = await self._manager(tenant, won.owner_id)
            return Plan(
                kind,
                [manager],
                {
                    "deal_id": won.deal_id,
                    "owner_id": won.owner_id,
                    "amount": won.amount,
                    "currency": won.currency,
                },
            )
        if kind == "document.sent":
            send = deal_events.DocumentSendRequested()
            envelope.payload.Unpack(send)
            # The client asked for nothing: no working hours apply, it goes now.
            return Plan(
                kind,
                [send.contact_id],
                {
                    "deal_id": send.deal_id,
                    "document_id": send.document_id,
                    "contact_id": send.contact_id,
                    # Who sent it sees the delivery in the log (inbox.list_deliveries).
                    "requested_by": envelope.actor_id,
                },
                urgent=True,
                contact_id=send.contact_id,
                recipient_type="contact",
            )
        if kind == "automation":
            requested = task_events.NotificationRequested()
            envelope.payload.Unpack(requested)
            return Plan(
                kind,
                list(requested.recipient_ids),
                {
                    "message": requested.message,
                    "deal_id": requested.deal_id,
                    "contact_id": requested.contact_id,
                    "task_id": requested.task_id,
                    "rule_id": requested.rule_id,
                },
                contact_id=requested.contact_id,
            )
        return None

    async def handle(self, session: AsyncSession, envelope: envelope_pb2.Envelope, _: Msg) -> None:
        plan = await self.plan(envelope)
        if plan is None:
            return
        await self.insert(session, envelope.tenant_id, envelope.event_id, plan)

    async def insert(self, session: AsyncSession, tenant: str, event_id: str, plan: Plan) -> int:
        recipients = list(dict.fromkeys(r for r in plan.recipients if r))
        if not recipients:
            return 0
        prefs: dict[str, list[str]]
        if plan.recipient_type == "contact":
            prefs = {recipient: ["email"] for recipient in recipients}
        else:
            prefs = await self._preferences(session, tenant, recipients, plan.kind)
        now = clock.now()
        rows = []
        for recipient in recipients:
            for channel in prefs.get(recipient, DEFAULT_CHANNELS):
                delivery_id = new_id(self.region)
                rows.append(
                    {
                        "id": delivery_id,
                        "tenant_id": tenant,
                        "event_id": event_id,
                        "kind": plan.kind,
                        "recipient_type": plan.recipient_type,
                        "recipient_id": recipient,
                        "channel": channel,
                        "status": "pending",
                        "urgent": plan.urgent or plan.kind in self.urgent_kinds,
                        "context": plan.context,
                        "next_attempt_at": now,
                        "message_id": message_id(delivery_id, self.region),
                        "contact_id": plan.contact_id,
                    }
                )
        if not rows:
            return 0
        result = await session.execute(
            pg_insert(models.Delivery)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["event_id", "recipient_id", "channel"])
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def _preferences(
        self, session: AsyncSession, tenant: str, recipients: list[str], kind: str
    ) -> dict[str, list[str]]:
        return {
            row.user_id: row.channels
            for row in await session.scalars(
                sa.select(models.Preference).where(
                    models.Preference.tenant_id == tenant,
                    models.Preference.user_id.in_(recipients),
                    models.Preference.kind == kind,
                )
            )
        }
