"""The directory and tasks over gRPC, against the running service (real PostgreSQL, NATS)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from ulid import ULID

from crm_api.crm.contacts.v1 import contacts_pb2, contacts_pb2_grpc
from crm_api.crm.directory.v1 import directory_pb2, directory_pb2_grpc
from crm_api.crm.events.v1 import tasks_pb2 as task_events
from crm_api.crm.tasks.v1 import tasks_pb2 as pb
from crm_api.crm.tasks.v1 import tasks_pb2_grpc
from crm_kit import clock
from crm_kit.grpc_server import field_violations, parse_status_details

pytestmark = pytest.mark.asyncio(loop_scope="session")

Caller = Callable[..., list[tuple[str, str]]]


def violations(error: grpc.aio.AioRpcError) -> set[str]:
    return {v.field for v in field_violations(parse_status_details(error.trailing_metadata()))}


def ts(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


async def put_user(channel: grpc.aio.Channel, metadata: Any, **fields: Any) -> directory_pb2.User:
    stub = directory_pb2_grpc.DirectoryServiceStub(channel)
    request = directory_pb2.PutUserRequest(user=directory_pb2.User(**fields))
    reply: directory_pb2.User = await stub.PutUser(request, metadata=metadata, timeout=5)
    return reply


async def test_health_and_reflection(channel: grpc.aio.Channel) -> None:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="crm.tasks.v1.TasksService"), timeout=5
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    names: set[str] = set()
    async for response in stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    ):
        names |= {s.name for s in response.list_services_response.service}
    assert {
        "crm.tasks.v1.TasksService",
        "crm.directory.v1.DirectoryService",
        "crm.privacy.v1.PrivacyService",
    } <= names


async def test_directory_validates_defaults_and_filters(
    channel: grpc.aio.Channel, caller: Caller, tenant: str
) -> None:
    admin = caller(tenant)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await put_user(
            channel,
            admin,
            id="ana",
            time_zone="Mars/Olympus",
            locale="xx-YY",
            working_hours_start="9am",
            working_hours_end="25:00",
            working_days=[1, 8],
            job_roles=["Measurer!"],
            email="not-an-email",
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == {
        "time_zone",
        "locale",
        "working_hours_start",
        "working_hours_end",
        "working_days[1]",
        "job_roles[0]",
        "email",
    }
    with pytest.raises(grpc.aio.AioRpcError) as half:
        await put_user(channel, admin, id="ana", working_hours_start="08:00")
    assert violations(half.value) == {"working_hours_end"}
    plain = await put_user(channel, admin, id="ana", team="north")
    assert (plain.time_zone, plain.locale) == ("UTC", "en")
    # Nothing invented: unset hours and days follow the tenant's default (notifications).
    assert (plain.working_hours_start, plain.working_hours_end) == ("", "")
    assert list(plain.working_days) == []
    own = await put_user(
        channel, admin, id="olav", working_hours_start="07:30", working_hours_end="15:00"
    )
    assert (own.working_hours_start, own.working_hours_end) == ("07:30", "15:00")
    tuned = await put_user(
        channel,
        admin,
        id="bruno",
        team="north",
        manager_id="ana",
        job_roles=["measurer", "installer"],
        time_zone="America/Sao_Paulo",
        locale="pt-br",
        working_days=[6, 2, 2],
    )
    assert (tuned.locale, list(tuned.working_days)) == ("pt-BR", [2, 6])

    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await put_user(channel, caller(tenant, "manager", "m1", "north"), id="carla")
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

    stub = directory_pb2_grpc.DirectoryServiceStub(channel)
    rep = caller(tenant, "sales_rep", "ana", "north")
    measurers = await stub.ListUsers(
        directory_pb2.ListUsersRequest(job_role="measurer"), metadata=rep, timeout=5
    )
    assert [u.id for u in measurers.users] == ["bruno"]
    team = await stub.ListUsers(directory_pb2.ListUsersRequest(team="north"), metadata=rep)
    assert [u.id for u in team.users] == ["ana", "bruno"]
    other_tenant = await stub.ListUsers(
        directory_pb2.ListUsersRequest(), metadata=caller(tenant + "x"), timeout=5
    )
    assert list(other_tenant.users) == []
    got = await stub.GetUser(directory_pb2.GetUserRequest(id="bruno"), metadata=rep, timeout=5)
    assert got.manager_id == "ana"


async def test_task_validation_names_each_field(
    channel: grpc.aio.Channel, caller: Caller, tenant: str
) -> None:
    stub = tasks_pb2_grpc.TasksServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateTask(
            pb.CreateTaskRequest(
                task=pb.Task(
                    title=" ",
                    priority="asap",
                    kind="chore",
                    deal_id="deal-1",
                    contact_id=f"br_{ULID()}",
                    time_zone="Europe/Atlantis",
                ),
                due_local="2031-01-15T10:00",
            ),
            metadata=caller(tenant),
            timeout=5,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == {
        "title",
        "priority",
        "kind",
        "deal_id",
        "contact_id",
        "time_zone",
    }
    with pytest.raises(grpc.aio.AioRpcError) as both:
        await stub.CreateTask(
            pb.CreateTaskRequest(
                task=pb.Task(title="x", due_at=ts(datetime(2031, 1, 1, tzinfo=UTC))),
                due_local="2031-01-15T10:00",
            ),
            metadata=caller(tenant),
            timeout=5,
        )
    assert violations(both.value) == {"due_local"}
    with pytest.raises(grpc.aio.AioRpcError) as gap:
        await stub.CreateTask(
            pb.CreateTaskRequest(
                task=pb.Task(title="x", time_zone="Europe/Berlin"), due_local="2031-03-30T02:30"
            ),
            metadata=caller(tenant),
            timeout=5,
        )
    assert violations(gap.value) == {"due_local"}


async def test_due_local_is_read_and_shown_in_the_assignees_zone(
    channel: grpc.aio.Channel, caller: Caller, tenant: str
) -> None:
    admin = caller(tenant)
    await put_user(channel, admin, id="berlin", time_zone="Europe/Berlin")
    await put_user(channel, admin, id="saopaulo", time_zone="America/Sao_Paulo")
    stub = tasks_pb2_grpc.TasksServiceStub(channel)
    cases = [
        ("berlin", "2031-01-15T10:00", datetime(2031, 1, 15, 9, tzinfo=UTC), "+01:00"),
        ("berlin", "2031-07-15T10:00", datetime(2031, 7, 15, 8, tzinfo=UTC), "+02:00"),
        ("saopaulo", "2031-01-15T10:00", datetime(2031, 1, 15, 13, tzinfo=UTC), "-03:00"),
        ("nobody", "2031-01-15T10:00", datetime(2031, 1, 15, 10, tzinfo=UTC), "+00:00"),
    ]
    for assignee, local, utc, offset in cases:
        task = await stub.CreateTask(
            pb.CreateTaskRequest(task=pb.Task(title="Call", assignee_id=assignee), due_local=local),
            metadata=admin,
            timeout=5,
        )
        assert task.due_at.ToDatetime(tzinfo=UTC) == utc, assignee
        assert task.due_local == f"{local}{offset}"
        again = await stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=admin, timeout=5)
        assert (again.due_local, again.time_zone) == (task.due_local, task.time_zone)
    # An explicit zone wins over the assignee's; reassigning shows the new assignee's zone.
    tokyo = await stub.CreateTask(
        pb.CreateTaskRequest(
            task=pb.Task(title="Call", assignee_id="berlin", time_zone="Asia/Tokyo"),
            due_local="2031-01-15T10:00",
        ),
        metadata=admin,
        timeout=5,
    )
    assert tokyo.due_at.ToDatetime(tzinfo=UTC) == datetime(2031, 1, 15, 1, tzinfo=UTC)
    moved = await stub.UpdateTask(
        pb.UpdateTaskRequest(
            task=pb.Task(id=tokyo.id, assignee_id="saopaulo"),
            update_mask=field_mask_pb2.FieldMask(paths=["assignee_id"]),
        ),
        metadata=admin,
        timeout=5,
    )
    assert (moved.time_zone, moved.due_local) == ("America/Sao_Paulo", "2031-01-14T22:00-03:00")
    assert moved.version == 2


async def test_ownership_like_contacts(
    channel: grpc.aio.Channel, caller: Caller, tenant: str
) -> None:
    stub = tasks_pb2_grpc.TasksServiceStub(channel)
    await put_user(channel, caller(tenant), id="rep-south", team="south")
    alice = caller(tenant, "sales_rep", "alice", "north")
    bob = caller(tenant, "sales_rep", "bob", "north")
    manager = caller(tenant, "manager", "mia", "north")
    other_manager = caller(tenant, "manager", "sam", "south")

    mine = await stub.CreateTask(
        pb.CreateTaskRequest(task=pb.Task(title="Mine")), metadata=alice, timeout=5
    )
    assert (mine.assignee_id, mine.assignee_team, mine.created_by) == ("alice", "north", "alice")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateTask(
            pb.CreateTaskRequest(task=pb.Task(title="Yours", assignee_id="bob")),
            metadata=alice,
            timeout=5,
        )
    assert violations(caught.value) == {"assignee_id"}
    for outsider in (bob, other_manager):
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await stub.GetTask(pb.GetTaskRequest(id=mine.id), metadata=outsider, timeout=5)
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    assigned = await stub.CreateTask(
        pb.CreateTaskRequest(task=pb.Task(title="For Bob", assignee_id="bob")),
        metadata=manager,
        timeout=5,
    )
    assert assigned.assignee_team == "north"
    with pytest.raises(grpc.aio.AioRpcError) as cross_team:
        await stub.CreateTask(
            pb.CreateTaskRequest(task=pb.Task(title="x", assignee_id="rep-south")),
            metadata=manager,
            timeout=5,
        )
    assert violations(cross_team.value) == {"assignee_id"}

    async def titles(metadata: Any) -> list[str]:
        reply = await stub.ListTasks(pb.ListTasksRequest(), metadata=metadata, timeout=5)
        return sorted(t.title for t in reply.tasks)

    assert await titles(alice) == ["Mine"]
    assert await titles(bob) == ["For Bob"]
    assert await titles(manager) == ["For Bob", "Mine"]
    assert await titles(other_manager) == []
    assert await titles(caller(tenant)) == ["For Bob", "Mine"]


async def test_complete_on_time_and_late_emits_completed_once(
    channel: grpc.aio.Channel,
    caller: Caller,
    tenant: str,
    move_clock: Callable[[timedelta], None],
    events: Callable[..., Awaitable[list[Any]]],
    eventually: Callable[..., Awaitable[Any]],
) -> None:
    stub = tasks_pb2_grpc.TasksServiceStub(channel)
    rep = caller(tenant, "sales_rep", "rita")
    now = clock.now()
    early = await stub.CreateTask(
        pb.CreateTaskRequest(task=pb.Task(title="Early", due_at=ts(now + timedelta(minutes=30)))),
        metadata=rep,
        timeout=5,
    )
    late = await stub.CreateTask(
        pb.CreateTaskRequest(task=pb.Task(title="Late", due_at=ts(now + timedelta(minutes=5)))),
        metadata=rep,
        timeout=5,
    )
    done = await stub.CompleteTask(pb.CompleteTaskRequest(id=early.id), metadata=rep, timeout=5)
    assert (done.status, done.completed_on_time) == ("done", True)
    move_clock(timedelta(minutes=6))
    after = await stub.CompleteTask(pb.CompleteTaskRequest(id=late.id), metadata=rep, timeout=5)
    assert (after.status, after.completed_on_time) == ("done", False)
    assert after.completed_at.ToDatetime(tzinfo=UTC) > late.due_at.ToDatetime(tzinfo=UTC)
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await stub.CompleteTask(pb.CompleteTaskRequest(id=late.id), metadata=rep, timeout=5)
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    async def completed() -> dict[str, bool] | None:
        found = await events(tenant, "tasks.task.completed")
        if len(found) < 2:
            return None
        result = {}
        for envelope in found:
            payload = events_pb_unpack(envelope, task_events.TaskCompleted)
            result[payload.task_id] = payload.on_time
        return result

    outcome = await eventually(completed, what="task.completed events")
    assert outcome == {early.id: True, late.id: False}
    created = await events(tenant, "tasks.task.created")
    assert {e.actor_id for e in created} == {"rita"}
    assert len(await events(tenant, "tasks.task.completed")) == 2


def events_pb_unpack(envelope: Any, message_type: Any) -> Any:
    message = message_type()
    assert envelope.payload.Unpack(message)
    return message


async def test_list_filters_and_keyset_pages(
    channel: grpc.aio.Channel, contacts_channel: grpc.aio.Channel, caller: Caller, tenant: str
) -> None:
    stub = tasks_pb2_grpc.TasksServiceStub(channel)
    admin = caller(tenant)
    now = clock.now()
    # A task links only to a contact that exists for the caller.
    contact = (
        await contacts_pb2_grpc.ContactsServiceStub(contacts_channel).CreateContact(
            contacts_pb2.CreateContactRequest(
                contact=contacts_pb2.Contact(
                    first_name="Lia", address=contacts_pb2.Address(country="FR")
                )
            ),
            metadata=admin,
            timeout=5,
        )
    ).id
    ids = []
    for minutes in (50, 10, 40, 20, 30):
        task = await stub.CreateTask(
            pb.CreateTaskRequest(
                task=pb.Task(
                    title=f"T{minutes}",
                    due_at=ts(now + timedelta(days=365, minutes=minutes)),
                    contact_id=contact,
                )
            ),
            metadata=admin,
            timeout=5,
        )
        ids.append(task.id)
    undated = await stub.CreateTask(
        pb.CreateTaskRequest(task=pb.Task(title="Someday")), metadata=admin, timeout=5
    )
    past = await stub.CreateTask(
        pb.CreateTaskRequest(task=pb.Task(title="Past", due_at=ts(now - timedelta(hours=1)))),
        metadata=admin,
        timeout=5,
    )
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListTasks(
            pb.ListTasksRequest(page_size=2, page_token=token), metadata=admin, timeout=5
        )
        seen += [t.title for t in page.tasks]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["Past", "T10", "T20", "T30", "T40", "T50", "Someday"]
    by_contact = await stub.ListTasks(
        pb.ListTasksRequest(contact_id=contact), metadata=admin, timeout=5
    )
    assert len(by_contact.tasks) == 5
    overdue = await stub.ListTasks(
        pb.ListTasksRequest(overdue_only=True), metadata=admin, timeout=5
    )
    assert [t.id for t in overdue.tasks] == [past.id]
    await stub.UpdateTask(
        pb.UpdateTaskRequest(
            task=pb.Task(id=undated.id, status="cancelled"),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        ),
        metadata=admin,
        timeout=5,
    )
    cancelled = await stub.ListTasks(
        pb.ListTasksRequest(status="cancelled"), metadata=admin, timeout=5
    )
    assert [t.id for t in cancelled.tasks] == [undated.id]
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.ListTasks(pb.ListTasksRequest(status="finished"), metadata=admin, timeout=5)
    assert violations(bad.value) == {"status"}


async def test_a_retried_create_with_the_same_key_creates_once(
    channel: grpc.aio.Channel, caller: Caller, tenant: str
) -> None:
    stub = tasks_pb2_grpc.TasksServiceStub(channel)
    metadata = caller(tenant, key="create-once")
    request = pb.CreateTaskRequest(task=pb.Task(title="Once"))
    first = await stub.CreateTask(request, metadata=metadata, timeout=5)
    second = await stub.CreateTask(request, metadata=metadata, timeout=5)
    assert first.id == second.id
    listed = await stub.ListTasks(pb.ListTasksRequest(), metadata=caller(tenant), timeout=5)
    assert len(listed.tasks) == 1
