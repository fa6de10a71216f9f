"""/v1/attachments: files on contacts and deals, kept with the contact in its region."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_api.crm.deals.v1 import deals_pb2
from crm_gateway import answers, schemas
from crm_gateway.access import Caller, caller, idempotency_key, region_of_id
from crm_gateway.problems import invalid
from crm_gateway.routes.imports import file_chunks  # the form is parsed once, cached

router = APIRouter(tags=["attachments"])

# What a download may be shown as inline; anything else is always a download.
_INLINE = ("application/pdf", "image/jpeg", "image/png", "image/gif", "image/webp")


def _contacts(who: Caller, region: str) -> Any:
    return who.stub("contacts", "contacts", region)


async def _deal_contact(who: Caller, deal_id: str) -> str:
    """The contact of a deal the caller may see (404 otherwise)."""
    region = region_of_id(deal_id, "deal_id")
    deal = await who.stub("deals", "deals", region).GetDeal(
        deals_pb2.GetDealRequest(id=deal_id),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    if not deal.contact_id:
        raise invalid("deal_id", "the deal has no contact to keep its files with")
    return str(deal.contact_id)


@router.post(
    "/v1/attachments",
    status_code=201,
    summary="Attach a file to a contact or to a deal (at most 10 MiB; PDF, images, "
    "text, CSV, office documents)",
    **answers.ok(answers.Attachment, 201),
)
async def upload_attachment(
    request: Request,
    response: Response,
    who: Caller = Depends(caller),
    contact_id: str = Query("", max_length=64),
    deal_id: str = Query("", max_length=64),
    filename: str = Query("", max_length=300, description="the file's name (raw bodies)"),
    key: str | None = Header(None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    if bool(contact_id) == bool(deal_id):
        raise invalid("contact_id", "name either contact_id or deal_id")
    if deal_id:
        contact_id = await _deal_contact(who, deal_id)
    region = region_of_id(contact_id, "contact_id")
    name = filename
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        form = await request.form(max_files=1)
        upload = form.get("file")
        if upload is not None and not isinstance(upload, str):
            name = name or upload.filename or ""

    async def pieces() -> AsyncIterator[pb.UploadAttachmentRequest]:
        yield pb.UploadAttachmentRequest(
            attachment=pb.Attachment(contact_id=contact_id, deal_id=deal_id, filename=name)
        )
        async for data in file_chunks(request):
            yield pb.UploadAttachmentRequest(data=data)

    attachment = await _contacts(who, region).UploadAttachment(
        pieces(),
        metadata=await who.metadata(region, idempotency_key(key)),
        timeout=max(who.timeout, 60),
    )
    response.headers["Location"] = f"/v1/attachments/{attachment.id}"
    return schemas.to_json(attachment)


@router.get(
    "/v1/contacts/{contact_id}/attachments",
    summary="The contact's files (and its deals'), newest first",
    **answers.ok(answers.AttachmentList),
)
async def contact_attachments(contact_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    region = region_of_id(contact_id, "contact_id")
    reply = await _contacts(who, region).ListAttachments(
        pb.ListAttachmentsRequest(contact_id=contact_id),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return {"data": [schemas.to_json(a) for a in reply.attachments]}


@router.get(
    "/v1/deals/{deal_id}/attachments",
    summary="The deal's files, newest first",
    **answers.ok(answers.AttachmentList),
)
async def deal_attachments(deal_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    contact_id = await _deal_contact(who, deal_id)
    region = region_of_id(contact_id, "contact_id")
    reply = await _contacts(who, region).ListAttachments(
        pb.ListAttachmentsRequest(contact_id=contact_id, deal_id=deal_id),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return {"data": [schemas.to_json(a) for a in reply.attachments]}


@router.get(
    "/v1/attachments/{attachment_id}",
    summary="Download a file (audited when read from another region)",
    **answers.file(200, "application/octet-stream"),
)
async def download_attachment(attachment_id: str, who: Caller = Depends(caller)) -> Response:
    region = region_of_id(attachment_id, "attachment_id")
    call = _contacts(who, region).GetAttachmentContent(
        pb.GetAttachmentContentRequest(id=attachment_id),
        metadata=await who.metadata(region),
        timeout=max(who.timeout, 60),
    )
    # The first message describes the file; a refusal (404) surfaces here, before any
    # byte of the answer is sent.
    first = await call.read()
    described = first.attachment

    async def body() -> AsyncIterator[bytes]:
        async for piece in call:
            yield piece.data

    disposition = "inline" if described.media_type in _INLINE else "attachment"
    return StreamingResponse(
        body(),
        media_type=described.media_type,
        headers={
            "Content-Length": str(described.size),
            "Content-Disposition": f"{disposition}; filename*=UTF-8''" + quote(described.filename),
            # The declared type, never a browser's guess (no HTML out of a "text" file).
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )


@router.delete(
    "/v1/attachments/{attachment_id}",
    status_code=204,
    summary="Delete a file (and its timeline entry)",
)
async def delete_attachment(
    attachment_id: str,
    who: Caller = Depends(caller),
    key: str | None = Header(None, alias="Idempotency-Key"),
) -> Response:
    region = region_of_id(attachment_id, "attachment_id")
    await _contacts(who, region).DeleteAttachment(
        pb.DeleteAttachmentRequest(id=attachment_id),
        metadata=await who.metadata(region, idempotency_key(key)),
        timeout=who.timeout,
    )
    return Response(status_code=204)
