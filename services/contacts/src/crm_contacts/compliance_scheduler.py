"""Reminders of data-subject requests close to their legal due date, exactly once.

Every replica runs the pass; `FOR UPDATE SKIP LOCKED` plus marking `reminder_sent_at`
in the same transaction as the event and the audit record means one replica claims a
request and no pass claims it again (the same approach as the tasks scheduler).
"""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm_api.crm.events.v1 import contacts_pb2 as events
from crm_contacts import models
from crm_kit import clock
from crm_kit.audit import append_audit
from crm_kit.db import transaction
from crm_kit.peers import system_principal
from crm_kit.runtime import Runtime

log = logging.getLogger(__name__)


class SchedulerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    # Seconds between passes; the tests run every scheduler at 0.5.
    scheduler_interval: float = Field(default=5.0, gt=0)


class ComplianceScheduler:
    def __init__(self, runtime: Runtime, interval: float | None = None) -> None:
        self.runtime = runtime
        self.interval = interval or SchedulerSettings().scheduler_interval

    async def run(self) -> None:
        while True:
            try:
                await self.remind_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("compliance scheduler pass failed; retrying next pass")
            await asyncio.sleep(self.interval)

    async def remind_once(self) -> int:
        request = models.PrivacyRequest
        now = clock.now()
        async with transaction(self.runtime.sessions) as session:
            rows = (
                await session.scalars(
                    sa.select(request)
                    .where(
                        request.reminder_sent_at.is_(None),
                        request.status != "completed",
                        request.reminder_at <= now,
                    )
                    .order_by(request.reminder_at)
                    .limit(100)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                row.reminder_sent_at = now
                await self.runtime.outbox.add(
                    session,
                    system_principal(row.tenant_id),
                    "privacy_request",
                    "due_soon",
                    events.PrivacyRequestDueSoon(
                        request_id=row.id,
                        kind=row.kind,
                        officer_id=row.requested_by,
                        due_at_unix=int(row.due_at.timestamp()),
                    ),
                )
                await append_audit(
                    session,
                    tenant_id=row.tenant_id,
                    actor_id="system",
                    region=self.runtime.region,
                    action="privacy_request.reminder",
                    record_id=row.id,
                )
        if rows:
            log.info("compliance scheduler: %d reminder(s) sent", len(rows))
        return len(rows)
