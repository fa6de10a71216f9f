"""The compliance scheduler of a region: reminders of data-subject requests close to
their legal due date, and the tenants' retention rules. Every replica runs it.

Reminders: `FOR UPDATE SKIP LOCKED` plus marking `reminder_sent_at` in the same
transaction as the event and the audit record: one replica claims a request and no
pass claims it again (the same approach as the tasks scheduler).

Retention: once a day per tenant and rule, claimed by inserting the day's
`retention_runs` row (ON CONFLICT DO NOTHING, like the tasks reminders): the replica
whose insert wins applies the rule and records what it did in that row.
  - delete_inactive_leads: contacts in stage lead, neither changed nor with a timeline
    entry for N months and not under legal hold, are erased in every service (the same
    erasure, verification included, as a data-subject request);
  - anonymize_lost_deals: asks deals (RetentionService) to anonymize lost deals closed
    more than N months ago.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
from datetime import datetime

import grpc
import sqlalchemy as sa
from google.protobuf import timestamp_pb2
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm_api.crm.compliance.v1 import compliance_pb2, compliance_pb2_grpc
from crm_api.crm.events.v1 import contacts_pb2 as events
from crm_api.crm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from crm_contacts import models
from crm_contacts.privacy_requests import PrivacyRequests, StepFailed
from crm_kit import clock
from crm_kit.audit import append_audit
from crm_kit.context import Principal
from crm_kit.db import transaction
from crm_kit.errors import CrmError
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
        self.requests = PrivacyRequests(runtime)

    async def run(self) -> None:
        while True:
            try:
                await self.remind_once()
                await self.retention_once()
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
        for row in rows:
            await self._task_for_officer(row)
        if rows:
            log.info("compliance scheduler: %d reminder(s) sent", len(rows))
        return len(rows)

    async def _task_for_officer(self, row: models.PrivacyRequest) -> None:
        """A high-priority task for the officer who took the request, due on its due date.
        The Idempotency-Key makes a repeated call create it once."""
        try:
            stub = self.runtime.peers.stub("tasks", tasks_pb2_grpc.TasksServiceStub)
        except RuntimeError:
            return
        due = timestamp_pb2.Timestamp()
        due.FromDatetime(row.due_at)
        principal = system_principal(row.tenant_id).with_changes(
            idempotency_key=f"privacy-request-reminder:{row.id}"
        )
        try:
            await self.runtime.peers.call(
                stub.CreateTask,
                tasks_pb2.CreateTaskRequest(
                    task=tasks_pb2.Task(
                        kind="reminder",
                        title=f"{row.law} {row.kind} request {row.id} is due soon",
                        description=f"Due {row.due_at.date().isoformat()}; status {row.status}.",
                        assignee_id=row.requested_by,
                        priority="high",
                        due_at=due,
                    )
                ),
                principal,
            )
        except grpc.aio.AioRpcError as exc:
            # The event and the audit record are written; the task is a convenience.
            log.warning("no reminder task for %s (%s)", row.id, exc.code().name)

    # ---------------------------------------------------------------- retention

    async def retention_once(self) -> int:
        now = clock.now()
        async with transaction(self.runtime.sessions) as session:
            policies = (
                await session.execute(
                    sa.select(models.TenantPolicy.tenant_id, models.TenantPolicy.retention_rules)
                )
            ).all()
        applied = 0
        for tenant_id, rules in policies:
            for rule in rules or []:
                run_id = f"{tenant_id}:{rule['rule']}:{now.date().isoformat()}"
                async with transaction(self.runtime.sessions) as session:
                    claimed = await session.execute(
                        pg_insert(models.RetentionRun)
                        .values(
                            id=run_id,
                            tenant_id=tenant_id,
                            rule=rule["rule"],
                            ran_at=now,
                            affected=0,
                            record_ids=[],
                        )
                        .on_conflict_do_nothing()
                        .returning(models.RetentionRun.id)
                    )
                    if claimed.first() is None:
                        continue  # another replica or pass ran it today
                cutoff = months_before(now, int(rule["after_months"]))
                principal = Principal(
                    tenant_id=tenant_id,
                    user_id="retention",
                    roles=("compliance_officer",),
                    home_region=self.runtime.region,
                )
                if rule["rule"] == "delete_inactive_leads":
                    ids = await self._delete_inactive_leads(principal, cutoff)
                else:
                    ids = await self._anonymize_lost_deals(principal, cutoff)
                async with transaction(self.runtime.sessions) as session:
                    run = await session.get(models.RetentionRun, run_id)
                    assert run is not None
                    run.affected, run.record_ids, run.ran_at = len(ids), ids, clock.now()
                    await append_audit(
                        session,
                        tenant_id=tenant_id,
                        actor_id="retention",
                        region=self.runtime.region,
                        action=f"retention.{rule['rule']}",
                        record_id=run_id,
                    )
                applied += 1
        return applied

    async def _delete_inactive_leads(self, principal: Principal, cutoff: datetime) -> list[str]:
        contact, entry, hold = models.Contact, models.TimelineEntry, models.LegalHold
        async with transaction(self.runtime.sessions) as session:
            ids = list(
                await session.scalars(
                    sa.select(contact.id)
                    .where(
                        contact.tenant_id == principal.tenant_id,
                        contact.lifecycle_stage == "lead",
                        contact.merged_into_id.is_(None),
                        contact.updated_at < cutoff,
                        ~sa.exists().where(
                            entry.contact_id == contact.id, entry.occurred_at >= cutoff
                        ),
                        ~sa.exists().where(
                            hold.tenant_id == contact.tenant_id, hold.contact_id == contact.id
                        ),
                    )
                    .order_by(contact.id)
                    .limit(500)
                )
            )
        erased = []
        for contact_id in ids:
            try:
                results, _ = await self.requests.erase_everywhere(principal, contact_id)
            except (StepFailed, CrmError) as exc:
                log.warning("retention: %s not erased (%s); next run retries", contact_id, exc)
                continue
            left = [r.service for r in results if not r.empty]
            if left:
                log.warning("retention: copies of %s remain in %s", contact_id, ", ".join(left))
            erased.append(contact_id)
        return erased

    async def _anonymize_lost_deals(self, principal: Principal, cutoff: datetime) -> list[str]:
        try:
            stub = self.runtime.peers.stub("deals", compliance_pb2_grpc.RetentionServiceStub)
        except RuntimeError:
            return []
        before = timestamp_pb2.Timestamp()
        before.FromDatetime(cutoff)
        reply = await self.runtime.peers.call(
            stub.ApplyRetention,
            compliance_pb2.ApplyRetentionRequest(rule="anonymize_lost_deals", before=before),
            principal,
        )
        return list(reply.record_ids)


def months_before(at: datetime, months: int) -> datetime:
    year, month = divmod(at.year * 12 + at.month - 1 - months, 12)
    day = min(at.day, calendar.monthrange(year, month + 1)[1])
    return at.replace(year=year, month=month + 1, day=day)
