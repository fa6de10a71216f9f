"""Retention for deals: lost deals older than the tenant's limit lose everything that
ties them to a person (contact link, title, description, custom fields, documents);
amounts, stages and dates stay for the statistics."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.compliance.v1 import compliance_pb2 as pb
from crm_api.crm.compliance.v1 import compliance_pb2_grpc
from crm_deals import models
from crm_kit import clock
from crm_kit.audit import append_audit
from crm_kit.context import Principal
from crm_kit.db import transaction
from crm_kit.errors import InvalidArgument, PermissionDenied
from crm_kit.runtime import Runtime
from crm_kit.servicer import caller

ANONYMIZED_TITLE = "Anonymized deal"


async def anonymize_lost_deals(
    session: AsyncSession, principal: Principal, region: str, before: datetime
) -> list[str]:
    deal = models.Deal
    ids = list(
        await session.scalars(
            sa.select(deal.id)
            .where(
                deal.tenant_id == principal.tenant_id,
                deal.status == "lost",
                deal.closed_at < before,
                sa.or_(deal.contact_id != "", deal.title != ANONYMIZED_TITLE),
            )
            .order_by(deal.id)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    await session.execute(
        sa.update(deal)
        .where(deal.id.in_(ids))
        .values(
            contact_id="",
            company_id="",
            title=ANONYMIZED_TITLE,
            description="",
            custom_fields={},
            updated_at=clock.now(),
        )
    )
    await session.execute(sa.delete(models.Document).where(models.Document.deal_id.in_(ids)))
    for deal_id in ids:
        await append_audit(
            session,
            tenant_id=principal.tenant_id,
            actor_id=principal.user_id,
            region=region,
            action="retention.anonymize_lost_deals",
            record_id=deal_id,
        )
    return ids


class RetentionServicer(compliance_pb2_grpc.RetentionServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def ApplyRetention(
        self, request: pb.ApplyRetentionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ApplyRetentionResponse:
        principal = caller()
        if not principal.has_role("admin", "compliance_officer"):
            raise PermissionDenied("retention is applied by the system")
        if request.rule != "anonymize_lost_deals":
            raise InvalidArgument.single("rule", "deals applies anonymize_lost_deals only")
        async with transaction(self.runtime.sessions) as session:
            ids = await anonymize_lost_deals(
                session, principal, self.runtime.region, request.before.ToDatetime(UTC)
            )
        return pb.ApplyRetentionResponse(record_ids=ids)
