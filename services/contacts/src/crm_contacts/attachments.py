"""Files on a contact or on one of its deals: the measurement sheet, photos of the
window, the signed contract.

A file is personal data, so it is kept with its contact, in the contact's region, and
goes wherever the contact goes: export (the files themselves are in the ZIP), erasure,
relocation. Its type is decided from its content (the uploader's claim is not trusted):
documents, images and text only, never anything a browser would run. It is stored in
pieces, so neither a message nor a row holds a whole file.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import AsyncIterator

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_contacts import models
from crm_contacts.contacts import get_row
from crm_contacts.convert import attachment_to_pb
from crm_kit import clock
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, InvalidArgument, NotFound
from crm_kit.ids import is_valid_id, new_id, region_of

MAX_FILE_BYTES = 10 * 1024 * 1024
# All of a contact's files together: a relocation moves them in one step.
MAX_CONTACT_BYTES = 40 * 1024 * 1024
MAX_FILES_LISTED = 500
CHUNK_BYTES = 256 * 1024
MAX_FILENAME = 200

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
# ZIP containers are told apart by their extension (their content is all "PK").
_ZIP_TYPES = {".docx": DOCX, ".xlsx": XLSX, ".odt": ODT, ".ods": ODS}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"}
ALLOWED_TYPES = (
    PDF,
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/heic",
    "text/plain",
    "text/csv",
    DOCX,
    XLSX,
    ODT,
    ODS,
)


def clean_filename(raw: str) -> str:
    """The last path component, without control characters: a name, never a path."""
    name = re.split(r"[/\\]", raw.strip())[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    if name in ("", ".", ".."):
        return ""
    return unicodedata.normalize("NFC", name)[:MAX_FILENAME]


def media_type_of(head: bytes, filename: str) -> str:
    """The type the content shows, or "" when it is none of the allowed ones."""
    extension = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "image/heic"
    if head.startswith(b"PK\x03\x04"):
        return _ZIP_TYPES.get(extension, "")
    if extension in (".txt", ".csv", "") and b"\x00" not in head:
        try:
            # The head may end inside a character; only a broken one before that counts.
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 3:
                return ""
        return "text/csv" if extension == ".csv" else "text/plain"
    return ""


async def upload(
    session: AsyncSession, principal: Principal, described: pb.Attachment, content: bytes
) -> pb.Attachment:
    """Stores the whole file and its timeline entry, or nothing (INVALID_ARGUMENT)."""
    violations: list[FieldViolation] = []
    filename = clean_filename(described.filename)
    if not filename:
        violations.append(FieldViolation("filename", "name the file, e.g. measurement.pdf"))
    if described.deal_id and not is_valid_id(described.deal_id):
        violations.append(FieldViolation("deal_id", "malformed id"))
    if not content:
        violations.append(FieldViolation("file", "the file is empty"))
    if len(content) > MAX_FILE_BYTES:
        violations.append(
            FieldViolation("file", f"a file may be at most {MAX_FILE_BYTES // 1048576} MiB")
        )
    media_type = media_type_of(content[:4096], filename) if content else ""
    if content and not media_type:
        violations.append(
            FieldViolation(
                "file",
                "only PDF, images (JPEG, PNG, GIF, WebP, HEIC), text, CSV and office "
                "documents (DOCX, XLSX, ODT, ODS) may be attached",
            )
        )
    if violations:
        raise InvalidArgument(violations)
    contact = await get_row(session, principal, described.contact_id, for_update=True)
    held = await session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(models.Attachment.size), 0)).where(
            models.Attachment.contact_id == contact.id
        )
    )
    if int(held or 0) + len(content) > MAX_CONTACT_BYTES:
        raise InvalidArgument.single(
            "file",
            f"the contact's files may total at most {MAX_CONTACT_BYTES // 1048576} MiB "
            f"({int(held or 0) // 1048576} MiB are attached)",
        )
    region = region_of(contact.id)
    row = models.Attachment(
        id=new_id(region),
        tenant_id=principal.tenant_id,
        contact_id=contact.id,
        deal_id=described.deal_id,
        filename=filename,
        media_type=media_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        uploaded_by=principal.user_id,
        created_at=clock.now(),
    )
    session.add(row)
    await session.flush()
    session.add_all(
        models.AttachmentChunk(
            attachment_id=row.id,
            sequence=sequence,
            tenant_id=principal.tenant_id,
            data=content[start : start + CHUNK_BYTES],
        )
        for sequence, start in enumerate(range(0, len(content), CHUNK_BYTES))
    )
    session.add(
        models.TimelineEntry(
            id=new_id(region),
            tenant_id=principal.tenant_id,
            contact_id=contact.id,
            kind="attachment",
            subject=filename,
            body="",
            direction="",
            duration_seconds=0,
            occurred_at=row.created_at,
            author_id=principal.user_id,
            attachment_id=row.id,
        )
    )
    await session.flush()
    return attachment_to_pb(row)


async def list_attachments(
    session: AsyncSession, principal: Principal, request: pb.ListAttachmentsRequest
) -> pb.ListAttachmentsResponse:
    contact = await get_row(session, principal, request.contact_id, via_task="attachments.read")
    query = sa.select(models.Attachment).where(models.Attachment.contact_id == contact.id)
    if request.deal_id:
        query = query.where(models.Attachment.deal_id == request.deal_id)
    rows = await session.scalars(
        query.order_by(models.Attachment.created_at.desc(), models.Attachment.id.desc()).limit(
            MAX_FILES_LISTED
        )
    )
    return pb.ListAttachmentsResponse(attachments=[attachment_to_pb(r) for r in rows])


async def _row(
    session: AsyncSession, principal: Principal, attachment_id: str
) -> models.Attachment:
    if not is_valid_id(attachment_id):
        raise InvalidArgument.single("id", "malformed id")
    row = await session.scalar(
        sa.select(models.Attachment).where(
            models.Attachment.id == attachment_id,
            models.Attachment.tenant_id == principal.tenant_id,
        )
    )
    if row is None:
        raise NotFound(f"attachment {attachment_id} not found")
    return row


async def content(
    session: AsyncSession, principal: Principal, attachment_id: str
) -> AsyncIterator[pb.AttachmentContent]:
    """The description, then the bytes; only for who may see the contact."""
    row = await _row(session, principal, attachment_id)
    try:
        await get_row(session, principal, row.contact_id, via_task="attachments.read")
    except NotFound:
        raise NotFound(f"attachment {attachment_id} not found") from None
    yield pb.AttachmentContent(attachment=attachment_to_pb(row))
    chunks = await session.stream_scalars(
        sa.select(models.AttachmentChunk.data)
        .where(models.AttachmentChunk.attachment_id == row.id)
        .order_by(models.AttachmentChunk.sequence)
    )
    async for data in chunks:
        yield pb.AttachmentContent(data=data)


async def delete(session: AsyncSession, principal: Principal, attachment_id: str) -> str:
    """Removes the file and its timeline entry; returns the contact's id."""
    row = await _row(session, principal, attachment_id)
    try:
        await get_row(session, principal, row.contact_id, for_update=True)
    except NotFound:
        raise NotFound(f"attachment {attachment_id} not found") from None
    await session.execute(
        sa.delete(models.TimelineEntry).where(models.TimelineEntry.attachment_id == row.id)
    )
    await session.delete(row)
    await session.flush()
    return row.contact_id


async def files_of(session: AsyncSession, contact_id: str) -> list[tuple[str, bytes]]:
    """Every file of the contact as (name in the export, bytes), for the subject export."""
    rows = (
        await session.scalars(
            sa.select(models.Attachment)
            .where(models.Attachment.contact_id == contact_id)
            .order_by(models.Attachment.id)
        )
    ).all()
    files: list[tuple[str, bytes]] = []
    for row in rows:
        pieces = await session.scalars(
            sa.select(models.AttachmentChunk.data)
            .where(models.AttachmentChunk.attachment_id == row.id)
            .order_by(models.AttachmentChunk.sequence)
        )
        files.append((f"contacts/attachments/{row.id}-{row.filename}", b"".join(pieces)))
    return files
