"""The scheduler: task.overdue exactly once per task (also with two replicas), and
reminder.due before a contact's important date."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import timestamp_pb2

import crm_tasks
from crm_api.crm.contacts.v1 import contacts_pb2, contacts_pb2_grpc
from crm_api.crm.directory.v1 import directory_pb2, directory_pb2_grpc
from crm_api.crm.events.v1 import tasks_pb2 as task_events
from crm_api.crm.tasks.v1 import tasks_pb2 as pb
from crm_api.crm.tasks.v1 import tasks_pb2_grpc
from crm_cli.cluster import Cluster
from crm_kit import clock
from crm_kit.db import create_engine, outbox_table, session_factory
from crm_kit.ids import new_id
from crm_kit.messaging import Outbox, unpack_envelope
from crm_kit.peers import Peers
from crm_kit.runtime import migrate
from crm_tasks import models
from crm_tasks.scheduler import Scheduler

pytestmark = pytest.mark.asyncio(loop_scope="session")

Caller = Callable[..., list[tuple[str, str]]]


def unpack(envelope: Any, message_type: Any) -> Any:
    message = message_type()
    assert envelope.payload.Unpack(message)
    return message


async def test_overdue_is_emitted_once_when_the_due_time_passes(
    channel: grpc.aio.Channel,
    caller: Caller,
    tenant: str,
    move_clock: Callable[[timedelta], None],
    events: Callable[..., Awaitable[list[Any]]],
    eventually: Callable[..., Awaitable[Any]],
) -> None:
    stub = tasks_pb2_grpc.TasksServiceStub(channel)
    admin = caller(tenant)
    due_at = timestamp_pb2.Timestamp()
    due_at.FromDatetime(clock.now() + timedelta(minutes=10))
    task = await stub.CreateTask(
        pb.CreateTaskRequest(task=pb.Task(title="Call back", priority="high", due_at=due_at)),
        metadata=admin,
        timeout=5,
    )
    await asyncio.sleep(1.2)  # a few scheduler passes: not due yet
    assert not (await stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=admin)).HasField(
        "overdue_at"
    )
    move_clock(timedelta(minutes=11))

    async def marked() -> pb.Task | None:
        got = await stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=admin, timeout=5)
        return got if got.HasField("overdue_at") else None

    await eventually(marked, what="overdue_at")
    found = await eventually(
        lambda: events(tenant, "tasks.task.overdue"), what="the task.overdue event"
    )
    await asyncio.sleep(1.5)  # more passes must not emit it again
    found = await events(tenant, "tasks.task.overdue")
    assert len(found) == 1
    payload = unpack(found[0], task_events.TaskOverdue)
    assert (payload.task_id, payload.assignee_id, payload.priority) == (task.id, "u-admin", "high")
    assert found[0].actor_id == "system"
    overdue = await stub.ListTasks(pb.ListTasksRequest(overdue_only=True), metadata=admin)
    assert [t.id for t in overdue.tasks] == [task.id]


async def test_two_schedulers_over_one_database_emit_one_overdue_per_task(
    cluster: Cluster,
) -> None:
    """Two scheduler instances (as two replicas would run) race over the same tasks."""
    database = "tasks_scheduler_race"
    cluster.postgres.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    cluster.postgres.ensure_database(database)
    await asyncio.to_thread(migrate, crm_tasks, cluster.postgres.url(database))
    engine = create_engine(cluster.postgres.url(database), pool_size=4)
    sessions = session_factory(engine)
    total = 600
    try:
        now = clock.now()
        async with sessions() as session, session.begin():
            session.add_all(
                models.Task(
                    id=new_id("eu"),
                    tenant_id="race",
                    title="t",
                    description="",
                    kind="task",
                    assignee_id="u1",
                    assignee_team="",
                    deal_id="",
                    contact_id="",
                    priority="normal",
                    status="open",
                    time_zone="UTC",
                    due_at=now - timedelta(minutes=1 + i % 50),
                    created_by="tests",
                    rule_id="",
                    completed_on_time=False,
                    version=1,
                )
                for i in range(total)
            )
        replicas = [
            Scheduler(
                sessions,
                Outbox("tasks", "eu"),
                Peers({}),
                "eu",
                interval=0.01,
                reminder_days_before=(),
                batch_size=25,
            )
            for _ in range(2)
        ]
        running = [asyncio.create_task(replica.run()) for replica in replicas]
        try:
            for _ in range(300):
                async with sessions() as session:
                    left = await session.scalar(
                        sa.select(sa.func.count()).where(models.Task.overdue_at.is_(None))
                    )
                if left == 0:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)  # further passes find nothing
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        async with sessions() as session:
            payloads = (await session.scalars(sa.select(outbox_table.c.payload))).all()
        overdue_ids = [
            unpack(unpack_envelope(p), task_events.TaskOverdue).task_id for p in payloads
        ]
        assert len(overdue_ids) == total
        assert len(set(overdue_ids)) == total
        emitted = [replica.overdue_emitted for replica in replicas]
        assert sum(emitted) == total
        assert all(count > 0 for count in emitted), emitted  # both really took part
    finally:
        await engine.dispose()


async def test_reminder_due_once_before_a_birthday(
    cluster: Cluster,
    channel: grpc.aio.Channel,
    contacts_channel: grpc.aio.Channel,
    caller: Caller,
    tenant: str,
    move_clock: Any,
    events: Callable[..., Awaitable[list[Any]]],
    eventually: Callable[..., Awaitable[Any]],
) -> None:
    # Midday in Lisbon: its date and the UTC date agree, summer and winter.
    move_clock.to(move_clock.next_local("Europe/Lisbon", "12:00"))
    admin = caller(tenant)
    await directory_pb2_grpc.DirectoryServiceStub(channel).PutUser(
        directory_pb2.PutUserRequest(
            user=directory_pb2.User(id="olga", time_zone="Europe/Lisbon", team="west")
        ),
        metadata=admin,
        timeout=5,
    )
    # Eight days ahead now; after a day passes the 7-day reminder is due.
    birthday = (clock.now() + timedelta(days=8)).date()
    contact = await contacts_pb2_grpc.ContactsServiceStub(contacts_channel).CreateContact(
        contacts_pb2.CreateContactRequest(
            contact=contacts_pb2.Contact(
                first_name="Rosa",
                owner_id="olga",
                address=contacts_pb2.Address(country="PT"),
                important_dates=[
                    contacts_pb2.ImportantDate(
                        kind="birthday", date=birthday.replace(year=1990).isoformat()
                    )
                ],
            )
        ),
        metadata=admin,
        timeout=5,
    )
    move_clock(timedelta(days=1))  # a new day: every scheduler checks the dates now

    async def reminders() -> list[Any]:
        return [
            e
            for e in await events(tenant, "tasks.reminder.due")
            if unpack(e, task_events.ReminderDue).contact_id == contact.id
        ]

    found = await eventually(reminders, within=30, what="reminder.due")
    payload = unpack(found[0], task_events.ReminderDue)
    assert (payload.owner_id, payload.kind, payload.days_before) == ("olga", "birthday", 7)
    stub = tasks_pb2_grpc.TasksServiceStub(channel)
    listed = await stub.ListTasks(
        pb.ListTasksRequest(contact_id=contact.id), metadata=admin, timeout=5
    )
    assert len(listed.tasks) == 1
    reminder = listed.tasks[0]
    assert (reminder.kind, reminder.title, reminder.assignee_id, reminder.assignee_team) == (
        "reminder",
        "Birthday in 7 days",
        "olga",
        "west",
    )
    assert reminder.time_zone == "Europe/Lisbon"
    assert reminder.due_local.startswith(f"{birthday.isoformat()}T09:00")
    local = datetime.fromisoformat(reminder.due_local)
    assert local.astimezone(UTC) == reminder.due_at.ToDatetime(tzinfo=UTC)
    # A second replica checking the same day finds the reminder already sent.
    engine = create_engine(cluster.postgres.url(cluster.database("tasks", "eu")), pool_size=2)
    peers = Peers({"contacts": cluster.endpoints["contacts"]["eu"]})
    try:
        replica = Scheduler(session_factory(engine), Outbox("tasks", "eu"), peers, "eu")
        assert await replica.send_reminders(clock.now().date())
    finally:
        await peers.close()
        await engine.dispose()
    await asyncio.sleep(1)
    assert len(await reminders()) == 1
    listed = await stub.ListTasks(pb.ListTasksRequest(contact_id=contact.id), metadata=admin)
    assert len(listed.tasks) == 1
