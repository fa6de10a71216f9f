"""ExportSubject and EraseSubject for what this service holds about one person, and
the same erasure when the contacts service announces it (crm_deals.handlers).

A deal outlives its contact's erasure for reporting: it keeps amount, currency,
pipeline, stages, history and dates, and loses the link to the person and every free
text that may describe them (title, description, lost reason, custom fields, the
notes of its payments; the payments' amounts, days and methods stay for the books).
Generated documents carry the person's name and address, so they are deleted.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from google.protobuf import struct_pb2
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.privacy.v1 import privacy_pb2
from crm_deals import models
from crm_deals.convert import row_to_dict
from crm_kit.clock import now
from crm_kit.context import Principal
from crm_kit.db import idempotency_table
from crm_kit.errors import PermissionDenied
from crm_kit.ids import region_of

SERVICE = "deals"
ERASED_TITLE = "Erased"


def _require_officer(principal: Principal) -> None:
    if not principal.has_role("admin", "compliance_officer"):
        raise PermissionDenied("data-subject requests are for compliance officers and admins")


def _record(kind: str, record_id: str, data: dict[str, Any]) -> privacy_pb2.SubjectRecord:
    struct = struct_pb2.Struct()
    struct.update(data)
    return privacy_pb2.SubjectRecord(kind=kind, id=record_id, data=struct)


async def export_subject(
    session: AsyncSession, principal: Principal, contact_id: str
) -> privacy_pb2.ExportSubjectResponse:
    _require_officer(principal)
    region = region_of(contact_id, "contact_id")
    response = privacy_pb2.ExportSubjectResponse(service=SERVICE, region=region)
    deals = (
        await session.scalars(
            sa.select(models.Deal)
            .where(
                models.Deal.tenant_id == principal.tenant_id,
                models.Deal.contact_id == contact_id,
            )
            .order_by(models.Deal.id)
        )
    ).all()
    if not deals:
        return response
    deal_ids = [deal.id for deal in deals]
    response.records.extend(_record("deal", deal.id, row_to_dict(deal)) for deal in deals)
    changes = await session.scalars(
        sa.select(models.StageChange)
        .where(models.StageChange.deal_id.in_(deal_ids))
        .order_by(models.StageChange.id)
    )
    response.records.extend(
        _record("stage_change", str(change.id), row_to_dict(change)) for change in changes
    )
    document = models.Document
    documents = await session.execute(
        sa.select(
            document.id,
            document.deal_id,
            document.template_key,
            document.title,
            document.created_at,
            sa.func.length(document.pdf),
        )
        .where(document.deal_id.in_(deal_ids))
        .order_by(document.id)
    )
    payments = await session.scalars(
        sa.select(models.Payment)
        .where(models.Payment.deal_id.in_(deal_ids))
        .order_by(models.Payment.id)
    )
    response.records.extend(
        _record("payment", payment.id, row_to_dict(payment)) for payment in payments
    )
    for doc_id, deal_id, key, title, created_at, size in documents.tuples():
        response.records.append(
            _record(
                "document",
                doc_id,
                {
                    "id": doc_id,
                    "deal_id": deal_id,
                    "template_key": key,
                    "title": title,
                    "created_at": created_at.isoformat(),
                    "pdf_size": size,
                },
            )
        )
    return response


async def anonymise(session: AsyncSession, tenant_id: str, contact_id: str) -> dict[str, int]:
    """Erases the person from this service's data; idempotent. Returns counts per kind."""
    deal_ids = list(
        await session.scalars(
            sa.select(models.Deal.id)
            .where(models.Deal.tenant_id == tenant_id, models.Deal.contact_id == contact_id)
            .order_by(models.Deal.id)
            .with_for_update()
        )
    )
    counts = {"deal": len(deal_ids), "document": 0, "payment_note": 0}
    if deal_ids:
        deleted = await session.execute(
            sa.delete(models.Document).where(models.Document.deal_id.in_(deal_ids))
        )
        counts["document"] = deleted.rowcount  # type: ignore[attr-defined]
        # Payments stay for the books (amount, day, method); their notes may describe
        # the person, like the deal's own free text.
        noted = await session.execute(
            sa.update(models.Payment)
            .where(models.Payment.deal_id.in_(deal_ids), models.Payment.note != "")
            .values(note="")
        )
        counts["payment_note"] = noted.rowcount  # type: ignore[attr-defined]
        await session.execute(
            sa.update(models.Deal)
            .where(models.Deal.id.in_(deal_ids))
            .values(
                contact_id="",
                title=ERASED_TITLE,
                description="",
                lost_reason="",
                custom_fields={},
                version=models.Deal.version + 1,
                updated_at=now(),
            )
        )
    # Stored idempotent responses may hold a copy of those deals (title, contact id).
    result = await session.execute(
        sa.delete(idempotency_table).where(
            idempotency_table.c.tenant_id == tenant_id,
            sa.text("position(:needle in response) > 0").bindparams(
                sa.bindparam("needle", contact_id.encode(), type_=sa.LargeBinary)
            ),
        )
    )
    counts["idempotent_response"] = result.rowcount  # type: ignore[attr-defined]
    return counts


async def erase_subject(
    session: AsyncSession, principal: Principal, contact_id: str
) -> privacy_pb2.EraseSubjectResponse:
    _require_officer(principal)
    region = region_of(contact_id, "contact_id")
    counts = await anonymise(session, principal.tenant_id, contact_id)
    return privacy_pb2.EraseSubjectResponse(
        service=SERVICE,
        region=region,
        erased=[privacy_pb2.ErasedCount(kind=k, count=v) for k, v in counts.items()],
    )


async def repoint(session: AsyncSession, tenant_id: str, merged_id: str, survivor_id: str) -> int:
    """After a merge, the merged contact's deals belong to the survivor."""
    result = await session.execute(
        sa.update(models.Deal)
        .where(models.Deal.tenant_id == tenant_id, models.Deal.contact_id == merged_id)
        .values(contact_id=survivor_id, version=models.Deal.version + 1, updated_at=now())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
