"""The automation engine: a durable consumer that runs the tenant's rules on events.

It runs inside `crm_kit.messaging.Consumer`'s transaction, so the tasks a rule
creates, their task.created events and the notification requests commit atomically
with the inbox row: each event fires each rule exactly once, redelivery or not.
Calls to other services (stage names, deal fields, set_field) happen inside the
handler as the tenant's system principal; a transient failure there fails the whole
event, which is then retried (remote writes carry an idempotency key per event,
rule and action, so a retry does not apply them twice).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import grpc
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message
from nats.aio.msg import Msg
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.contacts.v1 import contacts_pb2, contacts_pb2_grpc
from crm_api.crm.deals.v1 import deals_pb2, deals_pb2_grpc
from crm_api.crm.events.v1 import contacts_pb2 as contact_events
from crm_api.crm.events.v1 import deals_pb2 as deal_events
from crm_api.crm.events.v1 import envelope_pb2
from crm_api.crm.events.v1 import tasks_pb2 as task_events
from crm_kit import clock
from crm_kit.context import Principal
from crm_kit.messaging import Outbox
from crm_kit.peers import Peers, system_principal
from crm_tasks import directory, due, models, rules, tasks

log = logging.getLogger(__name__)

S = TypeVar("S")

# Peer failures worth retrying the whole event for; anything else skips the action.
TRANSIENT = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)
DURABLE = "tasks-automation"


def subjects(region: str) -> list[str]:
    return [
        f"crm.{region}.deals.deal.>",
        f"crm.{region}.contacts.contact.created",
        f"crm.{region}.tasks.task.overdue",
        f"crm.{region}.tasks.task.completed",
    ]


@dataclass
class Facts:
    """What rules see of one event: the owner, the linked records and condition values."""

    event_id: str
    event_type: str
    tenant_id: str
    owner_id: str = ""
    deal_id: str = ""
    contact_id: str = ""
    pipeline_id: str = ""
    task: models.Task | None = None
    task_id: str = ""
    # Condition key -> value (stage ids, source, priority, rule_id, on_time...).
    values: dict[str, str] = field(default_factory=dict)
    deal: deals_pb2.Deal | None = None
    deal_loaded: bool = False


def _unpack(envelope: envelope_pb2.Envelope, message_type: type[Message]) -> Any:
    message = message_type()
    if not envelope.payload.Unpack(message):
        return None
    return message


async def facts_of(session: AsyncSession, envelope: envelope_pb2.Envelope) -> Facts | None:
    """The facts of an event rules can trigger on; None for any other event."""
    facts = Facts(envelope.event_id, envelope.event_type, envelope.tenant_id)
    kind = envelope.event_type
    if kind == "deals.deal.created":
        created = _unpack(envelope, deal_events.DealCreated)
        if created is None:
            return None
        facts.owner_id, facts.deal_id, facts.contact_id = (
            created.owner_id,
            created.deal_id,
            created.contact_id,
        )
        facts.pipeline_id = created.pipeline_id
        facts.values = {
            "pipeline_id": created.pipeline_id,
            "stage_id": created.stage_id,
            "source": created.source,
        }
    elif kind == "deals.deal.stage_changed":
        moved = _unpack(envelope, deal_events.DealStageChanged)
        if moved is None:
            return None
        facts.owner_id, facts.deal_id, facts.contact_id = (
            moved.owner_id,
            moved.deal_id,
            moved.contact_id,
        )
        facts.pipeline_id = moved.pipeline_id
        facts.values = {
            "pipeline_id": moved.pipeline_id,
            "from_stage_id": moved.from_stage_id,
            "to_stage_id": moved.to_stage_id,
            "to_stage_kind": moved.to_stage_kind,
        }
    elif kind in ("deals.deal.won", "deals.deal.lost"):
        closed = _unpack(
            envelope, deal_events.DealWon if kind.endswith("won") else deal_events.DealLost
        )
        if closed is None:
            return None
        facts.owner_id, facts.deal_id = closed.owner_id, closed.deal_id
        facts.pipeline_id = closed.pipeline_id
        facts.values = {"pipeline_id": closed.pipeline_id}
    elif kind == "deals.deal.paid_in_full":
        paid = _unpack(envelope, deal_events.DealPaidInFull)
        if paid is None:
            return None
        facts.owner_id, facts.deal_id, facts.contact_id = (
            paid.owner_id,
            paid.deal_id,
            paid.contact_id,
        )
        facts.pipeline_id = paid.pipeline_id
        facts.values = {"pipeline_id": paid.pipeline_id}
    elif kind == "contacts.contact.created":
        contact = _unpack(envelope, contact_events.ContactCreated)
        if contact is None:
            return None
        facts.owner_id, facts.contact_id = contact.owner_id, contact.contact_id
        facts.values = {"source": contact.source, "lifecycle_stage": contact.lifecycle_stage}
    elif kind in ("tasks.task.overdue", "tasks.task.completed"):
        payload_type = (
            task_events.TaskOverdue if kind.endswith("overdue") else task_events.TaskCompleted
        )
        event = _unpack(envelope, payload_type)
        if event is None:
            return None
        facts.owner_id, facts.task_id = event.assignee_id, event.task_id
        facts.deal_id, facts.contact_id = event.deal_id, event.contact_id
        # Our own table: the task's priority, kind and creating rule for conditions.
        facts.task = await session.get(models.Task, event.task_id)
        task = facts.task
        facts.values = {
            "priority": task.priority if task else getattr(event, "priority", ""),
            "kind": task.kind if task else "",
            "rule_id": task.rule_id if task else "",
        }
        if kind.endswith("completed"):
            facts.values["on_time"] = "true" if event.on_time else "false"
    else:
        return None
    return facts


class Automation:
    """Matches an event against the tenant's rules and runs the actions of those that hold."""

    def __init__(
        self,
        outbox: Outbox,
        peers: Peers,
        region: str,
        *,
        pipeline_cache_seconds: float = 30.0,
    ) -> None:
        self.outbox = outbox
        self.peers = peers
        self.region = region
        self.pipeline_cache_seconds = pipeline_cache_seconds
        # (tenant, pipeline) -> (expires at, stage id -> name); stage names change rarely.
        self._pipelines: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}

    # ------------------------------------------------------------ entry point

    async def handle(self, session: AsyncSession, envelope: envelope_pb2.Envelope, _: Msg) -> None:
        candidates = await rules.rules_for(session, envelope.tenant_id, envelope.event_type)
        if not candidates:
            return
        facts = await facts_of(session, envelope)
        if facts is None:
            log.warning("automation: cannot read %s %s", envelope.event_type, envelope.event_id)
            return
        for rule in candidates:
            # A rule never fires on the tasks it created itself: an "on overdue, create a
            # task" rule would otherwise chain forever.
            if facts.task is not None and facts.task.rule_id == rule.id:
                continue
            if await self._matches(rule, facts):
                log.info(
                    "automation: rule fires",
                    extra={"rule_id": rule.id, "event_id": envelope.event_id},
                )
                await self._run(session, rule, facts)

    # ------------------------------------------------------------ conditions

    async def _matches(self, rule: models.AutomationRule, facts: Facts) -> bool:
        for key, expected in rule.conditions.items():
            if key in rules.STAGE_NAME_KEYS:
                stage_id = facts.values.get(rules.STAGE_NAME_KEYS[key], "")
                name = await self._stage_name(facts.tenant_id, facts.pipeline_id, stage_id)
                if name is None or name.casefold() != expected.casefold():
                    return False
            elif facts.values.get(key, "") != expected:
                return False
        return True

    def _stub(self, service: str, stub_class: Callable[[grpc.aio.Channel], S]) -> S | None:
        try:
            return self.peers.stub(service, stub_class)
        except RuntimeError:
            # Not configured in this deployment: a permanent condition, not worth retries.
            log.warning("automation: no %s service configured", service)
            return None

    async def _call(self, method: Any, request: Message, principal: Principal) -> Any | None:
        """A peer call; None (logged) on a permanent error, raises on a transient one."""
        try:
            return await self.peers.call(method, request, principal)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in TRANSIENT:
                raise
            log.warning("automation: peer call failed: %s %s", exc.code().name, exc.details())
            return None

    async def _stage_name(self, tenant_id: str, pipeline_id: str, stage_id: str) -> str | None:
        if not pipeline_id or not stage_id:
            return None
        key = (tenant_id, pipeline_id)
        cached = self._pipelines.get(key)
        if cached is None or cached[0] < time.monotonic() or stage_id not in cached[1]:
            stub = self._stub("deals", deals_pb2_grpc.DealsServiceStub)
            if stub is None:
                return None
            pipeline = await self._call(
                stub.GetPipeline,
                deals_pb2.GetPipelineRequest(id=pipeline_id),
                system_principal(tenant_id),
            )
            if pipeline is None:
                return None
            cached = (
                time.monotonic() + self.pipeline_cache_seconds,
                {stage.id: stage.name for stage in pipeline.stages},
            )
            self._pipelines[key] = cached
        return cached[1].get(stage_id)

    async def _deal(self, facts: Facts) -> deals_pb2.Deal | None:
        if not facts.deal_loaded and facts.deal_id:
            facts.deal_loaded = True
            stub = self._stub("deals", deals_pb2_grpc.DealsServiceStub)
            if stub is not None:
                facts.deal = await self._call(
                    stub.GetDeal,
                    deals_pb2.GetDealRequest(id=facts.deal_id),
                    system_principal(facts.tenant_id),
                )
        return facts.deal

    # ------------------------------------------------------------ actions

    async def _run(self, session: AsyncSession, rule: models.AutomationRule, facts: Facts) -> None:
        if not facts.contact_id and facts.deal_id:
            # deal.won / deal.lost do not carry the contact; the deal knows it.
            deal = await self._deal(facts)
            facts.contact_id = deal.contact_id if deal is not None else ""
        created: list[models.Task] = []
        for index, action in enumerate(rule.actions):
            kind = action.get("type")
            if kind == "create_task":
                task = await self._create_task(session, rule, facts, action)
                if task is not None:
                    created.append(task)
            elif kind == "set_field":
                await self._set_field(rule, facts, action, index)
            elif kind == "notify":
                await self._notify(session, rule, facts, action, created)

    async def _assignee(self, session: AsyncSession, facts: Facts, spec: str) -> tuple[str, str]:
        """(user id, note for the description) for "owner", "user:<id>" or "role:<r>"."""
        if spec.startswith("user:"):
            return spec.removeprefix("user:"), ""
        if spec.startswith("role:"):
            role = spec.removeprefix("role:")
            # The client's region is this one: their deal and contact live here.
            chosen = await directory.least_busy_with_role(
                session, facts.tenant_id, role, self.region
            )
            if chosen is not None:
                return chosen, ""
            return facts.owner_id, (
                f"Nobody has the job role '{role}' in the directory, so this task went to "
                "the owner instead."
            )
        return facts.owner_id, ""

    async def _due(
        self, spec: str, facts: Facts, user: models.User | None, zone_name: str
    ) -> tuple[datetime | None, str]:
        parsed = due.parse_due_spec(spec) if spec else None
        if parsed is None:
            return None, ""
        now = clock.now()
        if parsed.relative is not None:
            return now + parsed.relative, ""
        if parsed.next_working_day is not None:
            days = user.working_days if user is not None else due.DEFAULT_WORKING_DAYS
            return due.next_working_day_at(now, zone_name, days, parsed.next_working_day), ""
        deal = await self._deal(facts)
        custom: dict[str, Any] = {}
        if deal is not None and deal.custom_fields_json:
            try:
                custom = json.loads(deal.custom_fields_json)
            except ValueError:
                custom = {}
        # A time agreed with the client ("measurement at 10:00") is their wall clock:
        # read it in the contact's zone, the assignee's only when the contact has none.
        agreed_zone = await self._contact_zone(facts) or zone_name
        value = due.parse_field_value(custom.get(parsed.field), agreed_zone)
        if value is None:
            return None, f"The deal's '{parsed.field}' was not set, so this task has no due time."
        return value, ""

    async def _contact_zone(self, facts: Facts) -> str:
        """The time zone of the event's contact ("" when unknown or not reachable)."""
        contact_id = facts.contact_id
        if not contact_id:
            deal = await self._deal(facts)
            contact_id = deal.contact_id if deal is not None else ""
        stub = self._stub("contacts", contacts_pb2_grpc.ContactsServiceStub)
        if not contact_id or stub is None:
            return ""
        contact = await self._call(
            stub.GetContact,
            contacts_pb2.GetContactRequest(id=contact_id),
            system_principal(facts.tenant_id),
        )
        zone_name = contact.time_zone if contact is not None else ""
        return zone_name if due.is_zone(zone_name) else ""

    async def _create_task(
        self,
        session: AsyncSession,
        rule: models.AutomationRule,
        facts: Facts,
        action: dict[str, Any],
    ) -> models.Task | None:
        assignee, note = await self._assignee(session, facts, action.get("assignee", "owner"))
        if not assignee:
            log.warning("automation: rule %s has nobody to assign to", rule.id)
            return None
        user = await directory.find(session, facts.tenant_id, assignee)
        zone_name = user.time_zone if user is not None else due.DEFAULT_ZONE
        due_at, due_note = await self._due(action.get("due", ""), facts, user, zone_name)
        description = "\n\n".join(
            part for part in (action.get("description", ""), note, due_note) if part
        )
        return await tasks.insert_task(
            session,
            system_principal(facts.tenant_id),
            self.outbox,
            self.region,
            tasks.NewTask(
                title=action["title"],
                description=description,
                priority=action.get("priority") or "normal",
                assignee_id=assignee,
                assignee_team=user.team if user is not None else "",
                time_zone=zone_name,
                due_at=due_at,
                deal_id=facts.deal_id,
                contact_id=facts.contact_id,
                rule_id=rule.id,
            ),
        )

    async def _set_field(
        self, rule: models.AutomationRule, facts: Facts, action: dict[str, Any], index: int
    ) -> None:
        entity, _, name = str(action["field"]).partition(".")
        value = str(action["value"])
        # The same key on a redelivered event: the peer answers from its idempotency
        # store instead of applying the change again.
        principal = system_principal(facts.tenant_id).with_changes(
            idempotency_key=f"automation:{facts.event_id}:{rule.id}:{index}"
        )
        if entity == "deal":
            if not facts.deal_id:
                return
            stub = self._stub("deals", deals_pb2_grpc.DealsServiceStub)
            if stub is None:
                return
            deal = deals_pb2.Deal(id=facts.deal_id)
            if name.startswith("custom."):
                current = await self._deal(facts)
                custom = json.loads(current.custom_fields_json or "{}") if current else {}
                custom[name.removeprefix("custom.")] = value
                deal.custom_fields_json = json.dumps(custom, ensure_ascii=False, sort_keys=True)
                path = "custom_fields_json"
            else:
                setattr(deal, name, value)
                path = name
            await self._call(
                stub.UpdateDeal,
                deals_pb2.UpdateDealRequest(
                    deal=deal, update_mask=field_mask_pb2.FieldMask(paths=[path])
                ),
                principal,
            )
            return
        if not facts.contact_id:
            return
        contacts = self._stub("contacts", contacts_pb2_grpc.ContactsServiceStub)
        if contacts is None:
            return
        contact = contacts_pb2.Contact(id=facts.contact_id)
        if name == "tags":
            current = await self._call(
                contacts.GetContact,
                contacts_pb2.GetContactRequest(id=facts.contact_id),
                system_principal(facts.tenant_id),
            )
            if current is None:
                return
            tags = list(current.tags)
            tags += [t.strip() for t in value.split(",") if t.strip() and t.strip() not in tags]
            contact.tags.extend(tags)
        else:
            setattr(contact, name, value)
        await self._call(
            contacts.UpdateContact,
            contacts_pb2.UpdateContactRequest(
                contact=contact, update_mask=field_mask_pb2.FieldMask(paths=[name])
            ),
            principal,
        )

    async def _manager_of(self, session: AsyncSession, tenant_id: str, user_id: str) -> str:
        user = await directory.find(session, tenant_id, user_id)
        return user.manager_id if user is not None else ""

    async def _notify(
        self,
        session: AsyncSession,
        rule: models.AutomationRule,
        facts: Facts,
        action: dict[str, Any],
        created: list[models.Task],
    ) -> None:
        # "assignee": of the task this rule just created, else of the task the event is about.
        assignee = created[-1].assignee_id if created else facts.owner_id
        recipients: list[str] = []
        for spec in action.get("recipients", []):
            found: list[str]
            if spec == "owner":
                found = [facts.owner_id]
            elif spec == "owner_manager":
                found = [await self._manager_of(session, facts.tenant_id, facts.owner_id)]
            elif spec == "assignee":
                found = [assignee]
            elif spec == "assignee_manager":
                found = [await self._manager_of(session, facts.tenant_id, assignee)]
            elif spec.startswith("user:"):
                found = [spec.removeprefix("user:")]
            else:
                found = list(
                    await directory.users_with_role(
                        session, facts.tenant_id, spec.removeprefix("role:")
                    )
                )
            recipients += [r for r in found if r and r not in recipients]
        if not recipients:
            log.warning("automation: rule %s has nobody to notify", rule.id)
            return
        await self.outbox.add(
            session,
            system_principal(facts.tenant_id),
            "notification",
            "requested",
            task_events.NotificationRequested(
                rule_id=rule.id,
                cause_event_id=facts.event_id,
                recipient_ids=recipients,
                message=str(action.get("message", "")),
                deal_id=facts.deal_id,
                contact_id=facts.contact_id,
                task_id=facts.task_id or (created[-1].id if created else ""),
            ),
        )
