"""Reads from the services that own the data, over gRPC in the own region, at send time:
users (the tasks service's directory), tasks, deals and contacts. Events carry ids only.
"""

from __future__ import annotations

from typing import Any

import grpc

from crm_api.crm.contacts.v1 import contacts_pb2, contacts_pb2_grpc
from crm_api.crm.deals.v1 import deals_pb2, deals_pb2_grpc
from crm_api.crm.directory.v1 import directory_pb2, directory_pb2_grpc
from crm_api.crm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from crm_kit.errors import Unavailable
from crm_kit.peers import Peers, system_principal


class Gone(Exception):
    """The record no longer exists (deleted or erased): the message is not sent."""


def _name(first: str, last: str) -> str:
    return " ".join(part for part in (first, last) if part)


class Lookups:
    def __init__(self, peers: Peers) -> None:
        self.peers = peers

    async def _call(
        self, service: str, stub_class: Any, method: str, request: Any, tenant: str
    ) -> Any:
        try:
            stub = self.peers.stub(service, stub_class)
        except RuntimeError as exc:
            raise Unavailable(str(exc)) from exc
        try:
            return await self.peers.call(getattr(stub, method), request, system_principal(tenant))
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                raise Gone(f"{service}: {exc.details()}") from exc
            raise Unavailable(f"{service}: {exc.code().name} {exc.details()}") from exc

    async def user(self, tenant: str, user_id: str) -> directory_pb2.User:
        return await self._call(  # type: ignore[no-any-return]
            "tasks",
            directory_pb2_grpc.DirectoryServiceStub,
            "GetUser",
            directory_pb2.GetUserRequest(id=user_id),
            tenant,
        )

    async def user_or_none(self, tenant: str, user_id: str) -> directory_pb2.User | None:
        if not user_id:
            return None
        try:
            return await self.user(tenant, user_id)
        except Gone:
            return None

    async def task(self, tenant: str, task_id: str) -> tasks_pb2.Task:
        return await self._call(  # type: ignore[no-any-return]
            "tasks",
            tasks_pb2_grpc.TasksServiceStub,
            "GetTask",
            tasks_pb2.GetTaskRequest(id=task_id),
            tenant,
        )

    async def deal(self, tenant: str, deal_id: str) -> deals_pb2.Deal:
        return await self._call(  # type: ignore[no-any-return]
            "deals",
            deals_pb2_grpc.DealsServiceStub,
            "GetDeal",
            deals_pb2.GetDealRequest(id=deal_id),
            tenant,
        )

    async def contact(self, tenant: str, contact_id: str) -> contacts_pb2.Contact:
        return await self._call(  # type: ignore[no-any-return]
            "contacts",
            contacts_pb2_grpc.ContactsServiceStub,
            "GetContact",
            contacts_pb2.GetContactRequest(id=contact_id),
            tenant,
        )

    async def document_pdf(self, tenant: str, document_id: str) -> deals_pb2.DocumentContent:
        return await self._call(  # type: ignore[no-any-return]
            "deals",
            deals_pb2_grpc.DealsServiceStub,
            "GetDocumentContent",
            deals_pb2.GetDocumentContentRequest(id=document_id, format="pdf"),
            tenant,
        )

    async def log_email(self, tenant: str, contact_id: str, subject: str, body: str) -> None:
        """An email sent to the contact, on the contact's timeline."""
        await self._call(
            "contacts",
            contacts_pb2_grpc.ContactsServiceStub,
            "AddTimelineEntry",
            contacts_pb2.AddTimelineEntryRequest(
                entry=contacts_pb2.TimelineEntry(
                    contact_id=contact_id,
                    kind="email",
                    direction="outbound",
                    subject=subject,
                    body=body,
                )
            ),
            tenant,
        )

    async def consent_status(self, tenant: str, contact_id: str, purpose: str) -> str:
        reply: contacts_pb2.ListConsentsResponse = await self._call(
            "contacts",
            contacts_pb2_grpc.ContactsServiceStub,
            "ListConsents",
            contacts_pb2.ListConsentsRequest(contact_id=contact_id),
            tenant,
        )
        for consent in reply.current:
            if consent.purpose == purpose:
                return consent.status
        return ""

    async def withdraw_consent(
        self, tenant: str, contact_id: str, purpose: str, source: str = "unsubscribe_link"
    ) -> None:
        await self._call(
            "contacts",
            contacts_pb2_grpc.ContactsServiceStub,
            "RecordConsent",
            contacts_pb2.RecordConsentRequest(
                consent=contacts_pb2.Consent(
                    contact_id=contact_id,
                    purpose=purpose,
                    lawful_basis="consent",
                    status="withdrawn",
                    source=source,
                )
            ),
            tenant,
        )

    async def upcoming_dates(self, on_date: str) -> list[contacts_pb2.UpcomingDate]:
        """Important dates on `on_date` (birthdays by month and day) of every tenant."""
        reply: contacts_pb2.ListUpcomingDatesResponse = await self._call(
            "contacts",
            contacts_pb2_grpc.ContactsServiceStub,
            "ListUpcomingDates",
            contacts_pb2.ListUpcomingDatesRequest(on_date=on_date),
            "*",
        )
        return list(reply.dates)

    async def list_contacts(
        self, tenant: str, request: contacts_pb2.ListContactsRequest
    ) -> contacts_pb2.ListContactsResponse:
        return await self._call(  # type: ignore[no-any-return]
            "contacts", contacts_pb2_grpc.ContactsServiceStub, "ListContacts", request, tenant
        )

    @staticmethod
    def contact_name(contact: contacts_pb2.Contact) -> str:
        return _name(contact.first_name, contact.last_name)
