"""The scheduler: task.overdue exactly once per task, and reminders before contacts'
important dates. Every replica runs it; the database makes the work happen once.

Overdue: each pass claims due open tasks with `FOR UPDATE SKIP LOCKED`, marks them
`overdue_at` and writes task.overdue to the outbox in the same transaction, so two
replicas never claim the same task and a marked task is never claimed again.

Reminders: for each configured lead time the contacts service lists the important
dates falling that many days ahead (every tenant of the region); a row in
`reminders_sent` (primary key = contact, kind, occurrence, lead time), inserted with
ON CONFLICT DO NOTHING, decides which replica sends reminder.due and creates the
owner's reminder task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import date, time, timedelta
from time import monotonic

import grpc
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_api.crm.contacts.v1 import contacts_pb2, contacts_pb2_grpc
from crm_api.crm.events.v1 import tasks_pb2 as events
from crm_kit import clock
from crm_kit.context import Principal
from crm_kit.db import transaction
from crm_kit.messaging import Outbox
from crm_kit.peers import Peers, system_principal
from crm_tasks import directory, due, models, tasks
from crm_tasks.convert import timestamp

log = logging.getLogger(__name__)

# Asks contacts for the dates of every tenant of the region (tenant "*").
SCHEDULER = Principal(tenant_id="*", user_id="scheduler", roles=("admin",))
REMINDER_AT = time(9, 0)
KIND_LABELS = {
    "birthday": "Birthday",
    "contract_end": "Contract end",
    "anniversary": "Anniversary",
}


def reminder_title(kind: str, days_before: int) -> str:
    label = KIND_LABELS.get(kind, "Important date")
    if days_before == 0:
        return f"{label} today"
    return f"{label} in {days_before} day{'s' if days_before != 1 else ''}"


class Scheduler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        peers: Peers,
        region: str,
        *,
        interval: float = 5.0,
        reminder_interval: float = 300.0,
        reminder_days_before: Sequence[int] = (7, 1),
        batch_size: int = 200,
    ) -> None:
        self.sessions = sessions
        self.outbox = outbox
        self.peers = peers
        self.region = region
        self.interval = interval
        self.reminder_interval = reminder_interval
        self.reminder_days_before = tuple(reminder_days_before)
        self.batch_size = batch_size
        # (business date, monotonic time) of the last complete reminder check.
        self._reminders_checked: tuple[date, float] | None = None
        # How many task.overdue this instance emitted (tests and logs).
        self.overdue_emitted = 0

    async def run(self) -> None:
        """Runs passes forever; a failing pass is logged and retried, never fatal."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler pass failed; retrying next pass")
            await asyncio.sleep(self.interval)

    async def run_once(self) -> None:
        while await self.mark_overdue() >= self.batch_size:
            pass  # a full batch: more may be waiting
        today = clock.now().date()
        if self._reminders_due(today) and await self.send_reminders(today):
            self._reminders_checked = (today, monotonic())

    # ------------------------------------------------------------ overdue

    async def mark_overdue(self) -> int:
        """Claims one batch of newly overdue tasks and emits task.overdue for each."""
        now = clock.now()
        task = models.Task
        async with transaction(self.sessions) as session:
            rows = (
                await session.execute(
                    sa.select(
                        task.id,
                        task.tenant_id,
                        task.assignee_id,
                        task.due_at,
                        task.deal_id,
                        task.contact_id,
                        task.priority,
                    )
                    .where(task.status == "open", task.due_at < now, task.overdue_at.is_(None))
                    .order_by(task.due_at)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            await session.execute(
                sa.update(task).where(task.id.in_([row.id for row in rows])).values(overdue_at=now)
            )
            for row in rows:
                await self.outbox.add(
                    session,
                    system_principal(row.tenant_id),
                    "task",
                    "overdue",
                    events.TaskOverdue(
                        task_id=row.id,
                        assignee_id=row.assignee_id,
                        due_at=timestamp(row.due_at),
                        deal_id=row.deal_id,
                        contact_id=row.contact_id,
                        priority=row.priority,
                    ),
                )
        self.overdue_emitted += len(rows)
        log.info("scheduler: %d task(s) overdue", len(rows))
        return len(rows)

    # ------------------------------------------------------------ reminders

    def _reminders_due(self, today: date) -> bool:
        if not self.reminder_days_before:
            return False
        if self._reminders_checked is None:
            return True
        checked_on, checked_at = self._reminders_checked
        return checked_on != today or monotonic() - checked_at >= self.reminder_interval

    async def send_reminders(self, today: date) -> bool:
        """One check of every lead time; False if contacts could not be asked (retry)."""
        try:
            stub = self.peers.stub("contacts", contacts_pb2_grpc.ContactsServiceStub)
        except RuntimeError:
            log.warning("scheduler: no contacts service configured; no reminders")
            return False
        for days_before in self.reminder_days_before:
            on_date = today + timedelta(days=days_before)
            try:
                reply: contacts_pb2.ListUpcomingDatesResponse = await self.peers.call(
                    stub.ListUpcomingDates,
                    contacts_pb2.ListUpcomingDatesRequest(on_date=on_date.isoformat()),
                    SCHEDULER,
                )
            except grpc.aio.AioRpcError as exc:
                log.warning(
                    "scheduler: contacts unavailable (%s); reminders retried next pass",
                    exc.code().name,
                )
                return False
            for item in reply.dates:
                async with transaction(self.sessions) as session:
                    await self._remind(session, item, on_date, days_before)
        return True

    async def _remind(
        self,
        session: AsyncSession,
        item: contacts_pb2.UpcomingDate,
        on_date: date,
        days_before: int,
    ) -> None:
        claimed = await session.execute(
            pg_insert(models.ReminderSent)
            .values(
                tenant_id=item.tenant_id,
                contact_id=item.contact_id,
                kind=item.kind,
                date=on_date,
                days_before=days_before,
            )
            .on_conflict_do_nothing()
            .returning(models.ReminderSent.contact_id)
        )
        if claimed.first() is None:
            return  # another pass or replica sent it
        principal = system_principal(item.tenant_id)
        # The date itself is personal data: the event says only which kind, how soon.
        await self.outbox.add(
            session,
            principal,
            "reminder",
            "due",
            events.ReminderDue(
                contact_id=item.contact_id,
                owner_id=item.owner_id,
                kind=item.kind,
                days_before=days_before,
            ),
        )
        owner = await directory.find(session, item.tenant_id, item.owner_id)
        zone_name = owner.time_zone if owner is not None else due.DEFAULT_ZONE
        task = await tasks.insert_task(
            session,
            principal,
            self.outbox,
            self.region,
            tasks.NewTask(
                kind="reminder",
                title=reminder_title(item.kind, days_before),
                assignee_id=item.owner_id,
                assignee_team=owner.team if owner is not None else "",
                time_zone=zone_name,
                due_at=due.wall_time(on_date, REMINDER_AT, zone_name),
                contact_id=item.contact_id,
            ),
        )
        await session.execute(
            sa.update(models.ReminderSent)
            .where(
                models.ReminderSent.tenant_id == item.tenant_id,
                models.ReminderSent.contact_id == item.contact_id,
                models.ReminderSent.kind == item.kind,
                models.ReminderSent.date == on_date,
                models.ReminderSent.days_before == days_before,
            )
            .values(task_id=task.id)
        )
