"""The dispatcher: claims due deliveries, renders them for the recipient and sends them.
Every replica runs it; the database decides who sends what.

A pass claims due rows with `FOR UPDATE SKIP LOCKED` and sets a lease, then sends
outside the transaction and records the outcome (and the attempt in the delivery log).
A replica that dies before sending leaves a lease that expires; another replica then
sends. In-app messages are exact: the inbox row and the "sent" mark are written in one
transaction. For email and HTTP providers a message is sent at most once: the row is
marked (`sending_since`, committed) before the provider is asked, and cleared with the
outcome, so a replica that dies between the provider accepting the message and our
commit leaves the mark, and the row is dead-lettered with that reason instead of being
sent a second time (found by the fault campaign: a SIGKILL mid-send gave a second copy).
A database outage after the send does not lose the outcome: recording it waits for the
database while the lease holds (`record_sent`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from babel.languages import get_official_languages
from jinja2 import TemplateError
from prometheus_client import Counter
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_api.crm.contacts.v1 import contacts_pb2
from crm_api.crm.events.v1 import notifications_pb2 as events
from crm_kit import clock
from crm_kit.db import is_unavailable
from crm_kit.errors import Unavailable
from crm_kit.ids import new_id
from crm_kit.messaging import Outbox
from crm_kit.peers import system_principal
from crm_notifications import campaigns, models, templates, working_hours
from crm_notifications.channels import Channels, Outgoing, PermanentError, SendError
from crm_notifications.lookups import Gone, Lookups
from crm_notifications.quiet import Schedule, WorkingHours
from crm_notifications.recipient import Recipient
from crm_notifications.settings import NotificationsSettings

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "crm_notifications_deliveries_total", "Delivery outcomes", ["channel", "outcome"]
)

CRASHED_MID_SEND = (
    "not sent again: the sender stopped while the provider had the message, so it may "
    "have been delivered already"
)


async def find_template(
    session: AsyncSession, tenant: str, kind: str, locale: str
) -> templates.TemplateText | None:
    """The tenant's template for the nearest locale, else the shipped default."""
    chain = templates.locale_chain(locale)
    rows = {
        row.locale: row
        for row in await session.scalars(
            sa.select(models.Template).where(
                models.Template.tenant_id == tenant,
                models.Template.kind == kind,
                models.Template.locale.in_(chain),
            )
        )
    }
    for candidate in chain:
        row = rows.get(candidate)
        if row is not None:
            return templates.TemplateText(
                row.kind, row.locale, row.subject, row.body_text, row.body_html
            )
        shipped = templates.builtin(kind, candidate)
        if shipped is not None:
            return shipped
    return None


def client_locale(contact: contacts_pb2.Contact) -> str:
    """The contact's language, else their country's first official language (pt-BR for
    Brazil, de-DE for Germany), else English."""
    if contact.language and (locale := templates.canonical_locale(contact.language)):
        return locale
    country = contact.address.country.strip().upper()
    languages = get_official_languages(country, de_facto=True) if country else ()
    if languages:
        return templates.canonical_locale(f"{languages[0]}-{country}") or "en"
    return "en"


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        lookups: Lookups,
        channels: Channels,
        settings: NotificationsSettings,
        region: str,
        outbox: Outbox,
    ) -> None:
        self.outbox = outbox
        self.sessions = sessions
        self.lookups = lookups
        self.channels = channels
        self.settings = settings
        self.region = region
        self.wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                claimed = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatcher pass failed; retrying")
                claimed = 0
            if claimed < self.settings.notify_batch_size:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.wake.wait(), timeout=self.settings.notify_dispatch_interval
                    )

    async def run_once(self) -> int:
        rows = await self.claim()
        if rows:
            await asyncio.gather(*(self.deliver(row) for row in rows))
        return len(rows)

    async def claim(self) -> list[models.Delivery]:
        now = clock.now()
        delivery = models.Delivery
        async with self.sessions() as session, session.begin():
            rows = list(
                await session.scalars(
                    sa.select(delivery)
                    .where(
                        delivery.status == "pending",
                        delivery.next_attempt_at <= now,
                        sa.or_(delivery.lease_until.is_(None), delivery.lease_until < now),
                    )
                    .order_by(delivery.next_attempt_at)
                    .limit(self.settings.notify_batch_size)
                    .with_for_update(skip_locked=True)
                )
            )
            if rows:
                await session.execute(
                    sa.update(delivery)
                    .where(delivery.id.in_([r.id for r in rows]))
                    .values(lease_until=now + timedelta(seconds=self.settings.notify_lease_seconds))
                )
        return rows

    # ------------------------------------------------------------------ one delivery

    async def deliver(self, row: models.Delivery) -> None:
        try:
            await self._deliver(row)
        except Unavailable as exc:
            # A peer is down: not the recipient's fault, but bounded like any failure.
            await self.failed(row, f"dependency unavailable: {exc}")
        except Exception as exc:
            log.exception("delivery %s failed unexpectedly", row.id)
            await self.failed(row, f"{exc.__class__.__name__}: {exc}")

    async def _deliver(self, row: models.Delivery) -> None:
        if row.sending_since is not None:
            # The replica that claimed it died mid-send: the provider may have the
            # message, and a second copy is worse than a dead letter an admin can see.
            await self.finish(row, "dead", CRASHED_MID_SEND)
            return
        now = clock.now()
        tenant = row.tenant_id
        # Read at each send, like the directory, so a changed default applies to messages
        # already waiting.
        async with self.sessions() as session:
            default = await working_hours.tenant_schedule(session, tenant)
        attachments: tuple[tuple[str, str, bytes], ...] = ()
        try:
            if row.kind in templates.CLIENT_KINDS:
                recipient, context, attachments = await self.client_recipient(row, default)
            elif row.recipient_type == "contact":
                recipient, context = await campaigns.contact_recipient(
                    self.lookups, row, self.settings, default
                )
            else:
                recipient, context = await self.user_recipient(row, default)
        except Gone as exc:
            await self.finish(row, "skipped", str(exc))
            return
        except campaigns.NoConsent as exc:
            await self.finish(row, "skipped", f"consent: {exc}")
            return
        if row.channel != "in_app" and not row.urgent and not recipient.hours.is_open(now):
            await self.defer(row, recipient.hours.next_open(now))
            return
        async with self.sessions() as session:
            template = await find_template(session, tenant, row.kind, recipient.locale)
        if template is None:
            await self.finish(row, "dead", f"no template for {row.kind}")
            return
        unsubscribe = context.pop("_unsubscribe_url", "")
        try:
            rendered = templates.render(
                template, context, zone=recipient.hours.zone, unsubscribe_url=unsubscribe
            )
        except TemplateError as exc:
            await self.finish(row, "dead", f"template: {exc}")
            return
        if row.channel == "in_app":
            await self.to_inbox(row, rendered)
            return
        address = recipient.address if row.channel == "email" else ""
        if row.channel in ("sms", "chat"):
            address = context.get("_phone" if row.channel == "sms" else "_chat", "")
        outgoing = Outgoing(
            delivery_id=row.id,
            message_id=row.message_id,
            channel=row.channel,
            address=address,
            recipient_name=recipient.name,
            kind=row.kind,
            tenant_id=tenant,
            rendered=rendered,
            list_unsubscribe=unsubscribe,
            attachments=attachments,
        )
        await self.mark_sending(row)
        try:
            detail = await self.channels.send(outgoing)
        except PermanentError as exc:
            await self.finish(row, "skipped", str(exc), address=address)
            return
        except SendError as exc:
            await self.failed(row, str(exc), address=address)
            return
        if row.kind in templates.CLIENT_KINDS:
            # On the client's timeline before the delivery counts as done: if the contacts
            # service is down, the delivery is retried, and a resent email carries the
            # same Message-ID (at least once, recognisable), so no sent email goes unlogged.
            names = ", ".join(name for name, _, _ in attachments)
            await self.lookups.log_email(
                tenant,
                row.recipient_id,
                rendered.subject,
                f"Sent by email to {address}" + (f", attached: {names}" if names else ""),
            )
        await self.record_sent(row, detail, address)

    async def mark_sending(self, row: models.Delivery) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                sa.update(models.Delivery)
                .where(models.Delivery.id == row.id)
                .values(sending_since=clock.now())
            )

    async def record_sent(self, row: models.Delivery, detail: str, address: str) -> None:
        """Records a message the provider accepted, waiting out a database outage (a
        restart, a failover) while the lease holds: given up at once, the lease would run
        out and the message be sent a second time."""
        give_up = time.monotonic() + self.settings.notify_lease_seconds * 0.8
        delay = 0.5
        while True:
            try:
                await self.finish(row, "sent", detail, address=address)
                return
            except Exception as exc:
                if not is_unavailable(exc) or time.monotonic() + delay > give_up:
                    raise
                log.warning("delivery %s sent; recording it waits for the database", row.id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def client_recipient(
        self, row: models.Delivery, default: Schedule
    ) -> tuple[Recipient, dict[str, Any], tuple[tuple[str, str, bytes], ...]]:
        """A message to a client about their deal (not a campaign: it needs no marketing
        consent), in the contact's language, with the document attached."""
        tenant, ctx = row.tenant_id, row.context
        contact = await self.lookups.contact(tenant, row.recipient_id)
        locale = client_locale(contact)
        hours = WorkingHours.of(contact.time_zone or "UTC", default=default)
        name = Lookups.contact_name(contact)
        emails = [email for email in contact.emails if email.strip()]
        recipient = Recipient(name, locale, hours, emails[0] if emails else "")
        deal = await self.lookups.deal(tenant, ctx["deal_id"])
        document = await self.lookups.document_pdf(tenant, ctx["document_id"])
        title = document.title or document.filename.rsplit(".", 1)[0]
        context: dict[str, Any] = {
            "kind": row.kind,
            "recipient": {"id": contact.id, "name": name},
            "contact": {
                "id": contact.id,
                "name": name,
                "first_name": contact.first_name,
                "last_name": contact.last_name,
            },
            "deal": {
                "id": deal.id,
                "title": deal.title,
                "amount": deal.amount.amount or "0",
                "currency": deal.amount.currency,
                "stage": deal.stage_name,
            },
            "document": {"id": document.id, "title": title},
            "assignee": None,
            "owner": None,
            "task": None,
            "reminder": None,
            "message": "",
        }
        attachment = (document.filename, document.media_type, bytes(document.content))
        return recipient, context, (attachment,)

    async def user_recipient(
        self, row: models.Delivery, default: Schedule
    ) -> tuple[Recipient, dict[str, Any]]:
        tenant, ctx = row.tenant_id, row.context
        user = await self.lookups.user(tenant, row.recipient_id)
        locale = templates.canonical_locale(user.locale) or "en"
        # The directory leaves hours or days empty when the user set none: the tenant's.
        hours = WorkingHours.of(
            user.time_zone,
            user.working_hours_start,
            user.working_hours_end,
            user.working_days,
            default,
        )
        recipient = Recipient(user.display_name or user.id, locale, hours, user.email)
        context: dict[str, Any] = {
            "kind": row.kind,
            "recipient": {"id": user.id, "name": recipient.name},
            "assignee": None,
            "owner": None,
            "task": None,
            "deal": None,
            "contact": None,
            "reminder": None,
            "message": ctx.get("message", ""),
            # The chat channel addresses the user by email; sms their directory phone.
            "_chat": user.email,
            "_phone": user.phone,
        }
        if ctx.get("task_id"):
            task = await self.lookups.task(tenant, ctx["task_id"])
            context["task"] = {
                "id": task.id,
                "title": task.title,
                "priority": task.priority,
                "due_at": task.due_at.ToDatetime(tzinfo=clock.now().tzinfo)
                if task.HasField("due_at")
                else None,
            }
        if ctx.get("deal_id"):
            deal = await self.lookups.deal(tenant, ctx["deal_id"])
            context["deal"] = {
                "id": deal.id,
                "title": deal.title,
                "amount": deal.amount.amount or ctx.get("amount", ""),
                "currency": deal.amount.currency or ctx.get("currency", ""),
                "stage": deal.stage_name,
            }
        if ctx.get("contact_id"):
            contact = await self.lookups.contact(tenant, ctx["contact_id"])
            context["contact"] = {
                "id": contact.id,
                "name": Lookups.contact_name(contact),
                "first_name": contact.first_name,
                "last_name": contact.last_name,
            }
        for role, key in (("assignee", "assignee_id"), ("owner", "owner_id")):
            if ctx.get(key):
                person = await self.lookups.user_or_none(tenant, ctx[key])
                name = (person.display_name or person.id) if person else ctx[key]
                context[role] = {"id": ctx[key], "name": name}
        if row.kind == "reminder.due":
            context["reminder"] = {
                "kind": ctx.get("reminder_kind", ""),
                "label": templates.reminder_label(ctx.get("reminder_kind", ""), locale),
                "days_before": ctx.get("days_before", 0),
            }
        return recipient, context

    # ------------------------------------------------------------------ outcomes

    async def _log(
        self,
        session: AsyncSession,
        row: models.Delivery,
        attempt: int,
        outcome: str,
        detail: str,
        address: str = "",
    ) -> None:
        session.add(
            models.DeliveryAttempt(
                delivery_id=row.id,
                tenant_id=row.tenant_id,
                attempt=attempt,
                outcome=outcome,
                detail=detail[:2000],
                address=address,
                contact_id=row.contact_id,
                at=clock.now(),
            )
        )
        DELIVERIES.labels(row.channel, outcome).inc()

    async def _announce(
        self, session: AsyncSession, row: models.Delivery, verb: str, attempts: int
    ) -> None:
        """notification.sent / notification.failed, in the outcome's transaction."""
        fields: dict[str, Any] = {
            "delivery_id": row.id,
            "cause_event_id": row.event_id,
            "kind": row.kind,
            "channel": row.channel,
            "recipient_id": row.recipient_id,
            "campaign_id": row.campaign_id,
            "attempts": attempts,
        }
        payload = (
            events.NotificationSent(**fields)
            if verb == "sent"
            else events.NotificationFailed(**fields)
        )
        await self.outbox.add(
            session, system_principal(row.tenant_id), "notification", verb, payload
        )

    async def finish(
        self, row: models.Delivery, status: str, detail: str, address: str = ""
    ) -> None:
        attempt = row.attempts + (1 if status in ("sent", "dead") else 0)
        async with self.sessions() as session, session.begin():
            await session.execute(
                sa.update(models.Delivery)
                .where(models.Delivery.id == row.id)
                .values(
                    status=status,
                    attempts=attempt,
                    lease_until=None,
                    sending_since=None,
                    deferred_reason="",
                    sent_at=clock.now() if status == "sent" else None,
                    address=address or row.address,
                    last_error="" if status == "sent" else detail[:2000],
                )
            )
            await self._log(session, row, attempt, status, detail, address)
            if status in ("sent", "dead"):
                await self._announce(
                    session, row, "sent" if status == "sent" else "failed", attempt
                )

    async def failed(self, row: models.Delivery, detail: str, address: str = "") -> None:
        attempt = row.attempts + 1
        if attempt >= self.settings.notify_max_attempts:
            row_dead = f"dead letter after {attempt} attempts: {detail}"
            async with self.sessions() as session, session.begin():
                await session.execute(
                    sa.update(models.Delivery)
                    .where(models.Delivery.id == row.id)
                    .values(
                        status="dead",
                        attempts=attempt,
                        lease_until=None,
                        sending_since=None,
                        last_error=detail,
                    )
                )
                await self._log(session, row, attempt, "failed", detail, address)
                await self._log(session, row, attempt, "dead", row_dead, address)
                await self._announce(session, row, "failed", attempt)
            log.warning("delivery %s dead-lettered: %s", row.id, detail)
            return
        delay = min(
            self.settings.notify_backoff_seconds * 2 ** (attempt - 1),
            self.settings.notify_backoff_max_seconds,
        )
        retry_at = clock.now() + timedelta(seconds=delay)
        async with self.sessions() as session, session.begin():
            await session.execute(
                sa.update(models.Delivery)
                .where(models.Delivery.id == row.id)
                .values(
                    attempts=attempt,
                    lease_until=None,
                    sending_since=None,
                    next_attempt_at=retry_at,
                    last_error=detail[:2000],
                    address=address or row.address,
                )
            )
            await self._log(
                session,
                row,
                attempt,
                "failed",
                f"{detail}; retry at {retry_at:%Y-%m-%dT%H:%M:%SZ}",
                address,
            )

    async def defer(self, row: models.Delivery, until: datetime) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                sa.update(models.Delivery)
                .where(models.Delivery.id == row.id)
                .values(next_attempt_at=until, lease_until=None, deferred_reason="quiet_hours")
            )
            await self._log(
                session,
                row,
                row.attempts,
                "deferred",
                f"quiet hours: held until {until:%Y-%m-%dT%H:%M:%SZ}",
            )

    async def to_inbox(self, row: models.Delivery, rendered: templates.Rendered) -> None:
        """The inbox row and the sent mark in one transaction: exactly once."""
        ctx = row.context
        async with self.sessions() as session, session.begin():
            await session.execute(
                pg_insert(models.InboxItem)
                .values(
                    id=new_id(self.region),
                    tenant_id=row.tenant_id,
                    user_id=row.recipient_id,
                    delivery_id=row.id,
                    kind=row.kind,
                    title=rendered.subject,
                    body=rendered.text,
                    locale=rendered.locale,
                    task_id=ctx.get("task_id", ""),
                    deal_id=ctx.get("deal_id", ""),
                    contact_id=ctx.get("contact_id", ""),
                    created_at=clock.now(),
                )
                .on_conflict_do_nothing(index_elements=["delivery_id"])
            )
            attempt = row.attempts + 1
            await session.execute(
                sa.update(models.Delivery)
                .where(models.Delivery.id == row.id)
                .values(status="sent", attempts=attempt, lease_until=None, sent_at=clock.now())
            )
            await self._log(session, row, attempt, "sent", "inbox")
            await self._announce(session, row, "sent", attempt)
