"""The contacts service of this region, as the deals service needs it: does a linked
contact or company exist, and (for documents) its name and address at the moment of use.

Nothing about people is copied into this service's tables except ids; documents are
rendered from what the contacts service returns when they are generated.
"""

from __future__ import annotations

from typing import Protocol

import grpc

from crm_api.crm.contacts.v1 import contacts_pb2, contacts_pb2_grpc
from crm_kit.context import Principal
from crm_kit.errors import Unavailable
from crm_kit.peers import Peers

# Answers that mean "no such record for this caller", as opposed to an outage.
_ABSENT = (
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED,
)


class Directory(Protocol):
    async def contact(self, principal: Principal, contact_id: str) -> contacts_pb2.Contact | None:
        """The contact as `principal` may see it, or None if it does not exist for them."""
        ...

    async def company(
        self, principal: Principal, company_id: str
    ) -> contacts_pb2.Company | None: ...


class ContactsDirectory:
    """`Directory` over gRPC to the region's contacts service."""

    def __init__(self, peers: Peers) -> None:
        self.peers = peers

    def _stub(self) -> contacts_pb2_grpc.ContactsServiceStub:
        return self.peers.stub("contacts", contacts_pb2_grpc.ContactsServiceStub)

    async def contact(self, principal: Principal, contact_id: str) -> contacts_pb2.Contact | None:
        try:
            reply: contacts_pb2.Contact = await self.peers.call(
                self._stub().GetContact, contacts_pb2.GetContactRequest(id=contact_id), principal
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _ABSENT:
                return None
            raise Unavailable(f"the contacts service did not answer: {exc.code().name}") from exc
        return reply

    async def company(self, principal: Principal, company_id: str) -> contacts_pb2.Company | None:
        try:
            reply: contacts_pb2.Company = await self.peers.call(
                self._stub().GetCompany, contacts_pb2.GetCompanyRequest(id=company_id), principal
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _ABSENT:
                return None
            raise Unavailable(f"the contacts service did not answer: {exc.code().name}") from exc
        return reply
