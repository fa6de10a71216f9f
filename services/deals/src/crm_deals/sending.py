"""Sending a generated document (an invoice) to the deal's contact by email.

The deals service checks what it can answer for at once — the deal is visible, the
document is the deal's, the deal has a contact and the contact has an email address
(422 naming `contact_id` otherwise) — and then writes `deals.document.send_requested`
through the outbox, in the same transaction. The notifications service sends it: it
asks for the PDF over gRPC and the contact's address at the moment of sending, renders
the tenant's `document.sent` template, attaches the PDF, logs the email on the contact's
timeline and keeps the delivery in its log. The event carries ids only; while the
notifications service is down the request waits in the stream and nothing is lost.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.deals.v1 import deals_pb2 as pb
from crm_api.crm.events.v1 import deals_pb2 as events
from crm_deals import models
from crm_deals.access import get_deal_row
from crm_deals.links import Directory
from crm_kit.context import Principal
from crm_kit.errors import InvalidArgument, NotFound
from crm_kit.ids import is_valid_id
from crm_kit.messaging import Outbox


async def send_document(
    session: AsyncSession,
    principal: Principal,
    outbox: Outbox,
    directory: Directory,
    request: pb.SendDocumentRequest,
) -> pb.DocumentSend:
    if not is_valid_id(request.document_id):
        raise InvalidArgument.single("document_id", f"malformed id {request.document_id!r}")
    row = await get_deal_row(session, principal, request.deal_id, field="deal_id")
    document = models.Document
    found = await session.scalar(
        sa.select(document.id).where(
            document.id == request.document_id,
            document.deal_id == row.id,
            document.tenant_id == principal.tenant_id,
        )
    )
    if found is None:
        raise NotFound(f"document {request.document_id} of deal {row.id} not found")
    if not row.contact_id:
        raise InvalidArgument.single("contact_id", "the deal has no contact to send it to")
    contact = await directory.contact(principal, row.contact_id)
    if contact is None:
        raise InvalidArgument.single("contact_id", "the deal's contact is not found")
    if not any(email.strip() for email in contact.emails):
        raise InvalidArgument.single(
            "contact_id", f"the contact {row.contact_id} has no email address"
        )
    event_id = await outbox.add(
        session,
        principal,
        "document",
        "send_requested",
        events.DocumentSendRequested(
            document_id=request.document_id, deal_id=row.id, contact_id=row.contact_id
        ),
    )
    return pb.DocumentSend(
        event_id=event_id,
        document_id=request.document_id,
        deal_id=row.id,
        contact_id=row.contact_id,
        status="queued",
    )
