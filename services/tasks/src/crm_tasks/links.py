"""The deals and contacts services of this region, as the tasks service needs them: does
a deal or contact a task links to exist for the caller (as the deals service checks a
deal's contact)? A record the caller may not see is answered as absent.
"""

from __future__ import annotations

from typing import Protocol

import grpc

from crm_api.crm.contacts.v1 import contacts_pb2, contacts_pb2_grpc
from crm_api.crm.deals.v1 import deals_pb2, deals_pb2_grpc
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, Unavailable
from crm_kit.peers import Peers

# Answers that mean "no such record for this caller", as opposed to an outage.
_ABSENT = (
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED,
)


class Links(Protocol):
    async def deal(self, principal: Principal, deal_id: str) -> deals_pb2.Deal | None:
        """The deal as `principal` may see it, or None if it does not exist for them."""
        ...

    async def contact(
        self, principal: Principal, contact_id: str
    ) -> contacts_pb2.Contact | None: ...


class PeerLinks:
    """`Links` over gRPC to the region's deals and contacts services."""

    def __init__(self, peers: Peers) -> None:
        self.peers = peers

    async def deal(self, principal: Principal, deal_id: str) -> deals_pb2.Deal | None:
        stub = self.peers.stub("deals", deals_pb2_grpc.DealsServiceStub)
        try:
            reply: deals_pb2.Deal = await self.peers.call(
                stub.GetDeal, deals_pb2.GetDealRequest(id=deal_id), principal
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _ABSENT:
                return None
            raise Unavailable(f"the deals service did not answer: {exc.code().name}") from exc
        return reply

    async def contact(self, principal: Principal, contact_id: str) -> contacts_pb2.Contact | None:
        stub = self.peers.stub("contacts", contacts_pb2_grpc.ContactsServiceStub)
        try:
            reply: contacts_pb2.Contact = await self.peers.call(
                stub.GetContact, contacts_pb2.GetContactRequest(id=contact_id), principal
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _ABSENT:
                return None
            raise Unavailable(f"the contacts service did not answer: {exc.code().name}") from exc
        return reply


async def check_links(
    links: Links,
    principal: Principal,
    values: dict[str, str],
    violations: list[FieldViolation],
) -> None:
    """Each non-empty, well-formed link in `values` must name a record the caller may see
    (a link that did not change is left out of `values` by the caller)."""

    def needs_check(name: str) -> str:
        malformed = any(v.field == name for v in violations)
        return "" if malformed else values.get(name, "")

    if (deal_id := needs_check("deal_id")) and await links.deal(principal, deal_id) is None:
        violations.append(FieldViolation("deal_id", "no such deal"))
    if contact_id := needs_check("contact_id"):
        contact = await links.contact(principal, contact_id)
        if contact is None:
            violations.append(FieldViolation("contact_id", "no such contact"))
        elif contact.merged_into_id:
            violations.append(
                FieldViolation(
                    "contact_id", f"the contact was merged into {contact.merged_into_id}"
                )
            )
