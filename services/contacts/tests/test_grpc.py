"""The contacts service over gRPC, as other services and the gateway call it."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_api.crm.contacts.v1 import contacts_pb2_grpc
from crm_api.crm.events.v1 import contacts_pb2 as events
from crm_api.crm.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from crm_kit.context import Principal
from crm_kit.grpc_server import field_violations, parse_status_details

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def channel(system: Any) -> Any:
    async with grpc.aio.insecure_channel(system.endpoints["contacts"]["eu"]) as ch:
        yield ch


def caller(
    tenant: str, role: str = "admin", user: str = "u-admin", team: str = ""
) -> list[tuple[str, str]]:
    return Principal(
        tenant_id=tenant, user_id=user, roles=(role,), team=team, home_region="eu"
    ).to_metadata()


def tenant() -> str:
    return f"grpc-{uuid.uuid4().hex[:8]}"


async def test_health_and_reflection(channel: Any) -> None:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="crm.contacts.v1.ContactsService"), timeout=5
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    names: set[str] = set()
    async for response in stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    ):
        names |= {s.name for s in response.list_services_response.service}
    assert {
        "crm.contacts.v1.ContactsService",
        "crm.privacy.v1.PrivacyService",
        "grpc.health.v1.Health",
    } <= names


async def test_invalid_argument_carries_field_violations(channel: Any) -> None:
    stub = contacts_pb2_grpc.ContactsServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateContact(
            pb.CreateContactRequest(
                contact=pb.Contact(
                    first_name="A",
                    emails=["a@b"],
                    phones=["+49 30"],
                    address=pb.Address(country="DE"),
                )
            ),
            metadata=caller(tenant()),
            timeout=5,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {
        v.field for v in field_violations(parse_status_details(caught.value.trailing_metadata()))
    }
    assert fields == {"emails[0]", "phones[0]"}


async def test_calls_without_a_caller_are_refused(channel: Any) -> None:
    stub = contacts_pb2_grpc.ContactsServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListContacts(pb.ListContactsRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_misplaced_contact_is_refused_by_the_region(channel: Any) -> None:
    stub = contacts_pb2_grpc.ContactsServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateContact(
            pb.CreateContactRequest(
                contact=pb.Contact(first_name="Ana", address=pb.Address(country="BR"))
            ),
            metadata=caller(tenant()),
            timeout=5,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "region br" in caught.value.details()


async def test_update_with_stale_version_is_aborted_and_changes_nothing(
    channel: Any, stream_events: Any
) -> None:
    stub = contacts_pb2_grpc.ContactsServiceStub(channel)
    metadata = caller(tenant())
    contact = await stub.CreateContact(
        pb.CreateContactRequest(
            contact=pb.Contact(first_name="Eva", address=pb.Address(country="SE"))
        ),
        metadata=metadata,
        timeout=5,
    )
    updated = await stub.UpdateContact(
        pb.UpdateContactRequest(
            contact=pb.Contact(id=contact.id, lifecycle_stage="customer"),
            update_mask=field_mask_pb2.FieldMask(paths=["lifecycle_stage"]),
            expected_version=1,
        ),
        metadata=metadata,
        timeout=5,
    )
    assert (updated.version, updated.lifecycle_stage) == (2, "customer")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UpdateContact(
            pb.UpdateContactRequest(
                contact=pb.Contact(id=contact.id, lifecycle_stage="churned"),
                update_mask=field_mask_pb2.FieldMask(paths=["lifecycle_stage"]),
                expected_version=1,
            ),
            metadata=metadata,
            timeout=5,
        )
    assert caught.value.code() == grpc.StatusCode.ABORTED
    again = await stub.GetContact(pb.GetContactRequest(id=contact.id), metadata=metadata, timeout=5)
    assert again.lifecycle_stage == "customer"
    # Exactly one contact.updated, naming the changed field and never its value's owner data.
    updates = []
    for _ in range(50):
        updates = []
        for envelope in await stream_events("eu", "contacts.contact.updated"):
            payload = events.ContactUpdated()
            envelope.payload.Unpack(payload)
            if payload.contact_id == contact.id:
                updates.append(payload)
        if updates:
            break
    assert [list(u.changed_fields) for u in updates] == [["lifecycle_stage"]]


async def test_timeline_is_chronological(channel: Any) -> None:
    stub = contacts_pb2_grpc.ContactsServiceStub(channel)
    metadata = caller(tenant())
    contact = await stub.CreateContact(
        pb.CreateContactRequest(
            contact=pb.Contact(first_name="Olaf", address=pb.Address(country="DK"))
        ),
        metadata=metadata,
        timeout=5,
    )
    for day, body in ((3, "third"), (1, "first"), (2, "second")):
        entry = pb.TimelineEntry(contact_id=contact.id, kind="note", body=body)
        entry.occurred_at.FromJsonString(f"2026-01-0{day}T10:00:00Z")
        await stub.AddTimelineEntry(
            pb.AddTimelineEntryRequest(entry=entry), metadata=metadata, timeout=5
        )
    first_page = await stub.ListTimeline(
        pb.ListTimelineRequest(contact_id=contact.id, page_size=2), metadata=metadata, timeout=5
    )
    rest = await stub.ListTimeline(
        pb.ListTimelineRequest(
            contact_id=contact.id, page_size=2, page_token=first_page.next_page_token
        ),
        metadata=metadata,
        timeout=5,
    )
    assert [e.body for e in [*first_page.entries, *rest.entries]] == ["first", "second", "third"]


async def test_export_then_erase_leaves_no_trace(channel: Any, db: Any, stream_events: Any) -> None:
    contacts = contacts_pb2_grpc.ContactsServiceStub(channel)
    privacy = privacy_pb2_grpc.PrivacyServiceStub(channel)
    the_tenant = tenant()
    metadata = caller(the_tenant)
    email = f"{uuid.uuid4().hex[:8]}@example.fi"
    subject = await contacts.CreateContact(
        pb.CreateContactRequest(
            contact=pb.Contact(
                first_name="Aino",
                last_name="Virtanen",
                emails=[email],
                address=pb.Address(country="FI"),
            )
        ),
        metadata=metadata,
        timeout=5,
    )
    bystander = await contacts.CreateContact(
        pb.CreateContactRequest(
            contact=pb.Contact(first_name="Other", address=pb.Address(country="FI"))
        ),
        metadata=metadata,
        timeout=5,
    )
    await contacts.AddTimelineEntry(
        pb.AddTimelineEntryRequest(
            entry=pb.TimelineEntry(contact_id=subject.id, kind="note", body="likes saunas")
        ),
        metadata=metadata,
        timeout=5,
    )
    await contacts.RecordConsent(
        pb.RecordConsentRequest(
            consent=pb.Consent(
                contact_id=subject.id,
                purpose="newsletter",
                lawful_basis="consent",
                status="granted",
            )
        ),
        metadata=metadata,
        timeout=5,
    )
    rep = caller(the_tenant, role="sales_rep", user="u-rep")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await privacy.ExportSubject(
            privacy_pb2.ExportSubjectRequest(contact_id=subject.id), metadata=rep, timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    exported = await privacy.ExportSubject(
        privacy_pb2.ExportSubjectRequest(contact_id=subject.id), metadata=metadata, timeout=5
    )
    assert sorted(r.kind for r in exported.records) == ["consent", "contact", "timeline_entry"]
    assert bystander.id not in str(exported)

    erased = await privacy.EraseSubject(
        privacy_pb2.EraseSubjectRequest(contact_id=subject.id), metadata=metadata, timeout=5
    )
    assert {c.kind: c.count for c in erased.erased}["contact"] == 1
    after = await privacy.ExportSubject(
        privacy_pb2.ExportSubjectRequest(contact_id=subject.id), metadata=metadata, timeout=5
    )
    assert list(after.records) == []
    for table in ("contacts", "timeline_entries", "consents"):
        column = "id" if table == "contacts" else "contact_id"
        rows = await db("contacts", "eu", f"SELECT 1 FROM {table} WHERE {column} = $1", subject.id)  # noqa: S608
        assert rows == [], table
    rows = await db("contacts", "eu", "SELECT 1 FROM contacts WHERE $1 = ANY(emails)", email)
    assert rows == []
    # Events never carried the person's data, only ids.
    for envelope in await stream_events("eu", "contacts.>"):
        if envelope.tenant_id == the_tenant:
            raw = envelope.SerializeToString()
            assert b"Virtanen" not in raw and email.encode() not in raw and b"saunas" not in raw


async def test_upcoming_dates_for_the_reminder_scheduler(channel: Any) -> None:
    stub = contacts_pb2_grpc.ContactsServiceStub(channel)
    the_tenant = tenant()
    contact = await stub.CreateContact(
        pb.CreateContactRequest(
            contact=pb.Contact(
                first_name="Mia",
                address=pb.Address(country="AT"),
                important_dates=[
                    pb.ImportantDate(kind="birthday", date="1980-02-29"),
                    pb.ImportantDate(kind="contract_end", date="2027-01-15"),
                ],
            )
        ),
        metadata=caller(the_tenant),
        timeout=5,
    )
    every_tenant = caller("*", user="scheduler")

    async def on(day: str) -> list[tuple[str, str]]:
        reply = await stub.ListUpcomingDates(
            pb.ListUpcomingDatesRequest(on_date=day), metadata=every_tenant, timeout=5
        )
        return [(d.kind, d.date) for d in reply.dates if d.contact_id == contact.id]

    assert await on("2028-02-29") == [("birthday", "1980-02-29")]
    assert await on("2027-01-15") == [("contract_end", "2027-01-15")]
    assert await on("2026-01-15") == []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListUpcomingDates(
            pb.ListUpcomingDatesRequest(on_date="2027-01-15"),
            metadata=caller(the_tenant, role="sales_rep"),
            timeout=5,
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
