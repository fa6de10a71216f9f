"""Automation rules: validated when saved, fired exactly once per event.

The deals service may not be running here, so deal events are published by the test
itself (a correct Envelope with Nats-Msg-Id, as the deals outbox relay sends them),
and conditions use stage ids: stage-name conditions and "field:<name>" due times ask
the deals service (GetPipeline, GetDeal) and are covered by the end-to-end workflow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from ulid import ULID

from crm_api.crm.contacts.v1 import contacts_pb2, contacts_pb2_grpc
from crm_api.crm.directory.v1 import directory_pb2, directory_pb2_grpc
from crm_api.crm.events.v1 import deals_pb2 as deal_events
from crm_api.crm.events.v1 import tasks_pb2 as task_events
from crm_api.crm.tasks.v1 import tasks_pb2 as pb
from crm_api.crm.tasks.v1 import tasks_pb2_grpc
from crm_kit import clock
from crm_kit.grpc_server import field_violations, parse_status_details

pytestmark = pytest.mark.asyncio(loop_scope="session")

Caller = Callable[..., list[tuple[str, str]]]


def unpack(envelope: Any, message_type: Any) -> Any:
    message = message_type()
    assert envelope.payload.Unpack(message)
    return message


async def put_users(channel: grpc.aio.Channel, metadata: Any, *users: dict[str, Any]) -> None:
    stub = directory_pb2_grpc.DirectoryServiceStub(channel)
    for user in users:
        await stub.PutUser(
            directory_pb2.PutUserRequest(user=directory_pb2.User(**user)),
            metadata=metadata,
            timeout=5,
        )


async def create_rule(
    channel: grpc.aio.Channel,
    metadata: Any,
    event_type: str,
    conditions: dict[str, str],
    *actions: pb.Action,
    enabled: bool = True,
) -> pb.AutomationRule:
    rule: pb.AutomationRule = await tasks_pb2_grpc.TasksServiceStub(channel).CreateAutomationRule(
        pb.CreateAutomationRuleRequest(
            rule=pb.AutomationRule(
                name=f"on {event_type}",
                enabled=enabled,
                trigger=pb.Trigger(event_type=event_type, conditions=conditions),
                actions=list(actions),
            )
        ),
        metadata=metadata,
        timeout=5,
    )
    return rule


def stage_changed(deal_id: str, to_stage: str, owner: str) -> deal_events.DealStageChanged:
    return deal_events.DealStageChanged(
        deal_id=deal_id,
        pipeline_id="pl-windows",
        from_stage_id="st-new",
        to_stage_id=to_stage,
        to_stage_kind="open",
        owner_id=owner,
        amount="1200.00",
        currency="EUR",
    )


async def tasks_of(channel: grpc.aio.Channel, metadata: Any, **filters: Any) -> list[pb.Task]:
    reply = await tasks_pb2_grpc.TasksServiceStub(channel).ListTasks(
        pb.ListTasksRequest(**filters), metadata=metadata, timeout=5
    )
    return list(reply.tasks)


async def test_rules_are_validated_when_saved_and_managed(
    channel: grpc.aio.Channel, caller: Caller, tenant: str
) -> None:
    admin = caller(tenant)
    stub = tasks_pb2_grpc.TasksServiceStub(channel)
    bad = pb.AutomationRule(
        name="Broken",
        enabled=True,
        trigger=pb.Trigger(
            event_type="deals.deal.stage_changed",
            conditions={"to_stage_id": "st-x", "color": "red"},
        ),
        actions=[
            pb.Action(type="create_task", title="Call", due="+15 minutes"),
            pb.Action(type="create_task", title="Measure", assignee="measurer"),
            pb.Action(type="notify", recipients=["user:ghost"], message="Hi"),
        ],
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateAutomationRule(
            pb.CreateAutomationRuleRequest(rule=bad), metadata=admin, timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {
        v.field for v in field_violations(parse_status_details(caught.value.trailing_metadata()))
    }
    assert fields == {
        "trigger.conditions.color",
        "actions[0].due",
        "actions[1].assignee",
        "actions[2].recipients[0]",
    }
    bad.trigger.conditions.pop("color")
    bad.actions[0].due = "+15m"
    bad.actions[1].assignee = "role:measurer"
    with pytest.raises(grpc.aio.AioRpcError) as unknown_user:
        await stub.CreateAutomationRule(
            pb.CreateAutomationRuleRequest(rule=bad), metadata=admin, timeout=5
        )
    assert "actions[2].recipients[0]: no such user" in unknown_user.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as event_type:
        await stub.CreateAutomationRule(
            pb.CreateAutomationRuleRequest(
                rule=pb.AutomationRule(
                    name="x",
                    trigger=pb.Trigger(event_type="deals.deal.moved"),
                    actions=[pb.Action(type="notify", recipients=["owner"], message="m")],
                )
            ),
            metadata=admin,
            timeout=5,
        )
    assert "trigger.event_type" in event_type.value.details()

    await put_users(channel, admin, {"id": "ghost"})
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.CreateAutomationRule(
            pb.CreateAutomationRuleRequest(rule=bad),
            metadata=caller(tenant, "sales_rep", "rep"),
            timeout=5,
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    rule = await stub.CreateAutomationRule(
        pb.CreateAutomationRuleRequest(rule=bad),
        metadata=caller(tenant, "manager", "mia", "north"),
        timeout=5,
    )
    assert (rule.version, rule.actions[0].assignee, rule.actions[0].priority) == (
        1,
        "owner",
        "normal",
    )
    rule.name = "Renamed"
    rule.enabled = False
    updated = await stub.UpdateAutomationRule(
        pb.UpdateAutomationRuleRequest(rule=rule), metadata=admin, timeout=5
    )
    assert (updated.name, updated.enabled, updated.version) == ("Renamed", False, 2)
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await stub.UpdateAutomationRule(
            pb.UpdateAutomationRuleRequest(rule=rule), metadata=admin, timeout=5
        )
    assert stale.value.code() == grpc.StatusCode.ABORTED
    listed = await stub.ListAutomationRules(
        pb.ListAutomationRulesRequest(), metadata=caller(tenant, "sales_rep", "rep"), timeout=5
    )
    assert [r.id for r in listed.rules] == [rule.id]
    await stub.DeleteAutomationRule(
        pb.DeleteAutomationRuleRequest(id=rule.id), metadata=admin, timeout=5
    )
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.GetAutomationRule(
            pb.GetAutomationRuleRequest(id=rule.id), metadata=admin, timeout=5
        )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_callback_rule_fires_once_and_its_overdue_notifies_owner_and_manager(
    channel: grpc.aio.Channel,
    caller: Caller,
    tenant: str,
    envelope: Callable[..., Any],
    publish: Callable[..., Awaitable[None]],
    events: Callable[..., Awaitable[list[Any]]],
    eventually: Callable[..., Awaitable[Any]],
    move_clock: Callable[[timedelta], None],
) -> None:
    admin = caller(tenant)
    await put_users(
        channel,
        admin,
        {"id": "boss", "team": "north"},
        {"id": "rep-1", "team": "north", "manager_id": "boss", "time_zone": "Europe/Berlin"},
    )
    callback = await create_rule(
        channel,
        admin,
        "deals.deal.stage_changed",
        {"to_stage_id": "st-first-call"},
        pb.Action(
            type="create_task",
            title="Call the client back within 15 minutes",
            assignee="owner",
            due="+15m",
            priority="high",
        ),
    )
    await create_rule(
        channel,
        admin,
        "deals.deal.stage_changed",
        {"to_stage_id": "st-first-call"},
        pb.Action(type="create_task", title="Disabled rule", due="+1h"),
        enabled=False,
    )
    escalate = await create_rule(
        channel,
        admin,
        "tasks.task.overdue",
        {"rule_id": callback.id},
        pb.Action(
            type="notify",
            recipients=["owner", "owner_manager"],
            message="The client was not called back in time",
        ),
    )
    deal_id = f"eu_{ULID()}"
    event = envelope(
        tenant, "deals.deal.stage_changed", stage_changed(deal_id, "st-first-call", "rep-1")
    )
    before = clock.now()
    await publish(event)
    # The same event again under another message id (past JetStream's de-duplication):
    # the consumer's inbox must make it a no-op.
    await publish(event, msg_id=f"redelivery-{event.event_id}")
    created = await eventually(
        lambda: tasks_of(channel, admin, deal_id=deal_id), what="the automated task"
    )
    after = clock.now()
    await asyncio.sleep(1.5)
    created = await tasks_of(channel, admin, deal_id=deal_id)
    assert len(created) == 1
    task = created[0]
    assert (task.title, task.assignee_id, task.assignee_team, task.priority) == (
        "Call the client back within 15 minutes",
        "rep-1",
        "north",
        "high",
    )
    assert (task.rule_id, task.created_by, task.time_zone) == (
        callback.id,
        "system",
        "Europe/Berlin",
    )
    due_at = task.due_at.ToDatetime(tzinfo=UTC)
    assert before + timedelta(minutes=15) <= due_at <= after + timedelta(minutes=15)
    announced = [
        unpack(e, task_events.TaskCreated) for e in await events(tenant, "tasks.task.created")
    ]
    assert [(c.task_id, c.rule_id) for c in announced] == [(task.id, callback.id)]

    move_clock(timedelta(minutes=16))

    async def notifications() -> list[Any]:
        return await events(tenant, "tasks.notification.requested")

    found = await eventually(notifications, what="notification.requested")
    overdue = await events(tenant, "tasks.task.overdue")
    assert len(overdue) == 1
    await asyncio.sleep(1)
    found = await notifications()
    assert len(found) == 1
    request = unpack(found[0], task_events.NotificationRequested)
    assert list(request.recipient_ids) == ["rep-1", "boss"]
    assert (request.rule_id, request.task_id, request.deal_id) == (escalate.id, task.id, deal_id)
    assert request.cause_event_id == overdue[0].event_id
    assert request.message == "The client was not called back in time"


def next_working_day_nine(now: datetime, zone: str, days: set[int]) -> datetime:
    local_day = now.astimezone(ZoneInfo(zone)).date()
    while True:
        local_day += timedelta(days=1)
        if local_day.isoweekday() in days:
            return datetime.combine(local_day, time(9), tzinfo=ZoneInfo(zone)).astimezone(UTC)


async def test_role_assignees_take_turns_by_load_and_due_next_working_day(
    channel: grpc.aio.Channel,
    caller: Caller,
    tenant: str,
    envelope: Callable[..., Any],
    publish: Callable[..., Awaitable[None]],
    eventually: Callable[..., Awaitable[Any]],
    move_clock: Any,
) -> None:
    # Noon UTC: far from midnight in Berlin and Tokyo, so "the next working day" of the
    # rule and of this test are the same day whenever the suite runs.
    move_clock.to(move_clock.next_local("UTC", "12:00"))
    admin = caller(tenant)
    await put_users(
        channel,
        admin,
        {"id": "m-a", "job_roles": ["measurer"], "time_zone": "Europe/Berlin", "team": "field"},
        {
            "id": "m-b",
            "job_roles": ["measurer"],
            "time_zone": "Asia/Tokyo",
            "working_days": [2, 4],
            "team": "field",
        },
    )
    # m-a already has an open task, so m-b (none) is first in line.
    await tasks_pb2_grpc.TasksServiceStub(channel).CreateTask(
        pb.CreateTaskRequest(task=pb.Task(title="Earlier work", assignee_id="m-a")),
        metadata=admin,
        timeout=5,
    )
    rule = await create_rule(
        channel,
        admin,
        "deals.deal.stage_changed",
        {"to_stage_id": "st-measurement"},
        pb.Action(
            type="create_task",
            title="Measure the windows",
            assignee="role:measurer",
            due="next working day 09:00",
        ),
        pb.Action(type="create_task", title="Install", assignee="role:installer", due="+3d"),
    )
    assignees = []
    for _ in range(3):
        deal_id = f"eu_{ULID()}"
        await publish(
            envelope(
                tenant,
                "deals.deal.stage_changed",
                stage_changed(deal_id, "st-measurement", "rep-9"),
            )
        )
        made = await eventually(
            lambda deal_id=deal_id: tasks_of(channel, admin, deal_id=deal_id),
            what="tasks of the rule",
        )
        now = clock.now()
        measure = next(t for t in made if t.title == "Measure the windows")
        assignees.append(measure.assignee_id)
        zone, days = (
            ("Europe/Berlin", {1, 2, 3, 4, 5})
            if measure.assignee_id == "m-a"
            else ("Asia/Tokyo", {2, 4})
        )
        expected = next_working_day_nine(now, zone, days)
        assert measure.due_at.ToDatetime(tzinfo=UTC) == expected
        assert measure.due_local == expected.astimezone(ZoneInfo(zone)).isoformat(
            timespec="minutes"
        )
        assert measure.time_zone == zone
        assert measure.rule_id == rule.id
        # Nobody is an installer: the owner gets it, and the task says why.
        install = next(t for t in made if t.title == "Install")
        assert install.assignee_id == "rep-9"
        assert "installer" in install.description
    assert assignees == ["m-b", "m-a", "m-b"]


async def test_contact_created_from_a_web_form_gets_a_task_and_field_changes(
    channel: grpc.aio.Channel,
    contacts_channel: grpc.aio.Channel,
    caller: Caller,
    tenant: str,
    eventually: Callable[..., Awaitable[Any]],
) -> None:
    admin = caller(tenant)
    rule = await create_rule(
        channel,
        admin,
        "contacts.contact.created",
        {"source": "web_form"},
        pb.Action(type="create_task", title="Qualify the lead", due="+2h"),
        pb.Action(type="set_field", field="contact.lifecycle_stage", value="prospect"),
        pb.Action(type="set_field", field="contact.tags", value="web-lead, hot"),
    )
    await create_rule(
        channel,
        admin,
        "contacts.contact.created",
        {"source": "import"},
        pb.Action(type="create_task", title="Imported: should not fire"),
    )
    contacts = contacts_pb2_grpc.ContactsServiceStub(contacts_channel)
    contact = await contacts.CreateContact(
        contacts_pb2.CreateContactRequest(
            contact=contacts_pb2.Contact(
                first_name="Lena",
                owner_id="rep-web",
                source="web_form",
                tags=["newsletter"],
                address=contacts_pb2.Address(country="AT"),
            )
        ),
        metadata=admin,
        timeout=5,
    )
    made = await eventually(
        lambda: tasks_of(channel, admin, contact_id=contact.id), what="the lead task"
    )
    assert [(t.title, t.assignee_id, t.rule_id) for t in made] == [
        ("Qualify the lead", "rep-web", rule.id)
    ]

    async def updated() -> contacts_pb2.Contact | None:
        got = await contacts.GetContact(
            contacts_pb2.GetContactRequest(id=contact.id), metadata=admin, timeout=5
        )
        return got if got.lifecycle_stage == "prospect" and "hot" in got.tags else None

    changed = await eventually(updated, what="the contact's fields set by the rule")
    assert list(changed.tags) == ["newsletter", "web-lead", "hot"]
