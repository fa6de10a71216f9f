"""crm.privacy.v1.PrivacyService: what integrations holds about one contact.

Submissions, calls, click-to-call requests and inbound emails are linked to a contact
id; import files and row errors are deleted when their job ends, so they are not kept
per person.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from google.protobuf import struct_pb2
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.privacy.v1 import privacy_pb2
from crm_integrations import models
from crm_kit.context import Principal
from crm_kit.errors import PermissionDenied
from crm_kit.ids import region_of

SERVICE = "integrations"
KINDS: tuple[tuple[str, Any], ...] = (
    ("form_submission", models.Submission),
    ("call", models.Call),
    ("call_request", models.CallRequest),
    ("inbound_email", models.InboundEmail),
)


def _require_officer(principal: Principal) -> None:
    if not principal.has_role("compliance_officer", "admin"):
        raise PermissionDenied("data-subject requests need the compliance_officer role")


def _record(kind: str, row: Any) -> privacy_pb2.SubjectRecord:
    data = struct_pb2.Struct()
    data.update(json.loads(json.dumps(models.as_dict(row), default=str)))
    return privacy_pb2.SubjectRecord(kind=kind, id=row.id, data=data)


async def export_subject(
    session: AsyncSession, principal: Principal, contact_id: str
) -> privacy_pb2.ExportSubjectResponse:
    _require_officer(principal)
    region = region_of(contact_id, "contact_id")
    response = privacy_pb2.ExportSubjectResponse(service=SERVICE, region=region)
    for kind, model in KINDS:
        rows = await session.scalars(
            sa.select(model)
            .where(model.tenant_id == principal.tenant_id, model.contact_id == contact_id)
            .order_by(model.id)
        )
        response.records.extend(_record(kind, row) for row in rows)
    return response


async def erase_subject(
    session: AsyncSession, principal: Principal, contact_id: str
) -> privacy_pb2.EraseSubjectResponse:
    _require_officer(principal)
    region = region_of(contact_id, "contact_id")
    response = privacy_pb2.EraseSubjectResponse(service=SERVICE, region=region)
    for kind, model in KINDS:
        result = await session.execute(
            sa.delete(model).where(
                model.tenant_id == principal.tenant_id, model.contact_id == contact_id
            )
        )
        response.erased.append(
            privacy_pb2.ErasedCount(kind=kind, count=result.rowcount)  # type: ignore[attr-defined]
        )
    return response
