"""Privacy: export and erasure of what tasks hold about a person, and the reaction to
the contacts service's contact.erased."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from crm_api.crm.contacts.v1 import contacts_pb2, contacts_pb2_grpc
from crm_api.crm.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from crm_api.crm.tasks.v1 import tasks_pb2 as pb
from crm_api.crm.tasks.v1 import tasks_pb2_grpc

pytestmark = pytest.mark.asyncio(loop_scope="session")

Caller = Callable[..., list[tuple[str, str]]]


async def new_contact(channel: grpc.aio.Channel, metadata: Any, name: str) -> contacts_pb2.Contact:
    contact: contacts_pb2.Contact = await contacts_pb2_grpc.ContactsServiceStub(
        channel
    ).CreateContact(
        contacts_pb2.CreateContactRequest(
            contact=contacts_pb2.Contact(
                first_name=name, address=contacts_pb2.Address(country="FR")
            )
        ),
        metadata=metadata,
        timeout=5,
    )
    return contact


async def test_erasing_a_contact_deletes_the_tasks_about_them(
    channel: grpc.aio.Channel,
    contacts_channel: grpc.aio.Channel,
    caller: Caller,
    tenant: str,
    eventually: Callable[..., Awaitable[Any]],
) -> None:
    admin = caller(tenant)
    officer = caller(tenant, "compliance_officer", "dpo")
    person = await new_contact(contacts_channel, admin, "Jeanne")
    bystander = await new_contact(contacts_channel, admin, "Paul")
    tasks = tasks_pb2_grpc.TasksServiceStub(channel)
    for title in ("Call Jeanne about her divorce", "Send Jeanne the offer"):
        await tasks.CreateTask(
            pb.CreateTaskRequest(task=pb.Task(title=title, contact_id=person.id)),
            metadata=admin,
            timeout=5,
        )
    kept = await tasks.CreateTask(
        pb.CreateTaskRequest(task=pb.Task(title="Call Paul", contact_id=bystander.id)),
        metadata=admin,
        timeout=5,
    )
    privacy = privacy_pb2_grpc.PrivacyServiceStub(channel)
    exported = await privacy.ExportSubject(
        privacy_pb2.ExportSubjectRequest(contact_id=person.id), metadata=officer, timeout=5
    )
    assert (exported.service, exported.region) == ("tasks", "eu")
    assert sorted(r.data["title"] for r in exported.records if r.kind == "task") == [
        "Call Jeanne about her divorce",
        "Send Jeanne the offer",
    ]
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await privacy.ExportSubject(
            privacy_pb2.ExportSubjectRequest(contact_id=person.id),
            metadata=caller(tenant, "sales_rep", "rep"),
            timeout=5,
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # Erasure starts at the contacts service; its contact.erased reaches tasks.
    await privacy_pb2_grpc.PrivacyServiceStub(contacts_channel).EraseSubject(
        privacy_pb2.EraseSubjectRequest(contact_id=person.id), metadata=officer, timeout=5
    )

    async def gone() -> bool:
        reply = await tasks.ListTasks(
            pb.ListTasksRequest(contact_id=person.id), metadata=admin, timeout=5
        )
        return not reply.tasks

    await eventually(gone, what="the person's tasks to be deleted")
    left = await tasks.ListTasks(pb.ListTasksRequest(), metadata=admin, timeout=5)
    assert [t.id for t in left.tasks] == [kept.id]
    exported = await privacy.ExportSubject(
        privacy_pb2.ExportSubjectRequest(contact_id=person.id), metadata=officer, timeout=5
    )
    assert list(exported.records) == []

    # Erasing directly at the tasks service (e.g. a retried data-subject request).
    erased = await privacy.EraseSubject(
        privacy_pb2.EraseSubjectRequest(contact_id=bystander.id), metadata=officer, timeout=5
    )
    assert {e.kind: e.count for e in erased.erased}["task"] == 1
    left = await tasks.ListTasks(pb.ListTasksRequest(), metadata=admin, timeout=5)
    assert list(left.tasks) == []
