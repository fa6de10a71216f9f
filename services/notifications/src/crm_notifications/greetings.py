"""Greeting rules: a tenant setting that greets contacts on their birthday (the contacts
service's important date of kind "birthday") by email or SMS, in the contact's language,
at the rule's local time (10:00 by default) in the contact's zone, only with consent for
the rule's purpose, once per year.

A rule is tenant configuration like the default working hours, and the messages are
campaign-like deliveries to a contact: the runner only queues a delivery per contact and
year, and the dispatcher sends it like a campaign message (consent checked again right
before sending, the shipped or the tenant's `greeting.birthday` template in the contact's
language, an unsubscribe link that withdraws the consent). The delivery's event id is
`greeting:birthday:<contact>:<year>` under the deliveries' unique key, so replicas,
restarts and repeated passes never greet anybody twice in a year.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_api.crm.notifications.v1 import notifications_pb2 as pb
from crm_kit import clock
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, InvalidArgument, PermissionDenied
from crm_kit.ids import new_id
from crm_notifications import models
from crm_notifications.campaigns import PURPOSE
from crm_notifications.lookups import Gone, Lookups
from crm_notifications.planner import message_id
from crm_notifications.settings import NotificationsSettings

log = logging.getLogger(__name__)

RULE_KINDS = ("birthday",)
CHANNELS = ("email", "sms")
DEFAULT_TIME = "10:00"
# After this local hour a greeting not sent yet (the service was down) is dropped: a
# birthday wish at midnight is worse than none.
LATEST = time(21, 0)


def _local_time(text: str) -> time | None:
    try:
        value = time.fromisoformat(text)
    except ValueError:
        return None
    return value if len(text) == 5 and value < LATEST else None


def to_pb(row: models.GreetingRule) -> pb.GreetingRule:
    return pb.GreetingRule(
        kind=row.kind,
        enabled=row.enabled,
        channel=row.channel,
        purpose=row.purpose,
        local_time=row.local_time,
        updated_by=row.updated_by,
    )


async def put_rule(
    session: AsyncSession,
    principal: Principal,
    settings: NotificationsSettings,
    rule: pb.GreetingRule,
) -> pb.GreetingRule:
    if not principal.has_role("admin"):
        raise PermissionDenied("greeting rules are for admins")
    violations: list[FieldViolation] = []
    kind = rule.kind.strip()
    if kind not in RULE_KINDS:
        violations.append(FieldViolation("kind", f"one of {', '.join(RULE_KINDS)}"))
    channel = rule.channel.strip() or "email"
    # Not checked against this region's SMS provider: the rule is the same in every
    # region, and a region without one records its greetings as skipped.
    if channel not in CHANNELS:
        violations.append(FieldViolation("channel", "email or sms"))
    purpose = rule.purpose.strip()
    if not PURPOSE.match(purpose):
        violations.append(FieldViolation("purpose", "a consent purpose, e.g. greetings"))
    local = rule.local_time.strip() or DEFAULT_TIME
    if _local_time(local) is None:
        violations.append(
            FieldViolation("local_time", f"HH:MM before {LATEST:%H:%M}, e.g. {DEFAULT_TIME}")
        )
    if violations:
        raise InvalidArgument(violations)
    values = {
        "enabled": rule.enabled,
        "channel": channel,
        "purpose": purpose,
        "local_time": local,
        "updated_by": principal.user_id,
        "updated_at": clock.now(),
    }
    await session.execute(
        pg_insert(models.GreetingRule)
        .values(tenant_id=principal.tenant_id, kind=kind, **values)
        .on_conflict_do_update(index_elements=["tenant_id", "kind"], set_=values)
    )
    row = await session.get(
        models.GreetingRule, (principal.tenant_id, kind), populate_existing=True
    )
    assert row is not None
    return to_pb(row)


async def list_rules(session: AsyncSession, principal: Principal) -> pb.ListGreetingRulesResponse:
    rows = await session.scalars(
        sa.select(models.GreetingRule)
        .where(models.GreetingRule.tenant_id == principal.tenant_id)
        .order_by(models.GreetingRule.kind)
    )
    return pb.ListGreetingRulesResponse(rules=[to_pb(r) for r in rows])


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


class GreetingRunner:
    """Queues today's birthday greetings (any replica; the unique key decides)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        lookups: Lookups,
        region: str,
        interval: float,
    ) -> None:
        self.sessions = sessions
        self.lookups = lookups
        self.region = region
        self.interval = interval

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("greeting pass failed; retrying")
            await asyncio.sleep(self.interval)

    async def run_once(self) -> int:
        async with self.sessions() as session:
            rules = {
                row.tenant_id: row
                for row in await session.scalars(
                    sa.select(models.GreetingRule).where(
                        models.GreetingRule.kind == "birthday",
                        models.GreetingRule.enabled.is_(True),
                    )
                )
            }
        if not rules:
            return 0
        queued = 0
        today = clock.now().date()
        # Somewhere on earth it is yesterday or tomorrow: each contact's own date decides.
        for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
            for item in await self.lookups.upcoming_dates(day.isoformat()):
                rule = rules.get(item.tenant_id)
                if rule is None or item.kind != "birthday":
                    continue
                queued += await self.queue(rule, item.contact_id, day)
        return queued

    async def queue(self, rule: models.GreetingRule, contact_id: str, day: date) -> int:
        """One greeting for the contact's birthday on `day` (their local date), if due."""
        tenant = rule.tenant_id
        event_id = f"greeting:birthday:{contact_id}:{day.year}"
        async with self.sessions() as session:
            done = await session.scalar(
                sa.select(sa.func.count())
                .select_from(models.Delivery)
                .where(
                    models.Delivery.event_id == event_id,
                    models.Delivery.recipient_id == contact_id,
                )
            )
        if done:
            return 0
        try:
            contact = await self.lookups.contact(tenant, contact_id)
            consent = await self.lookups.consent_status(tenant, contact_id, rule.purpose)
        except Gone:
            return 0
        if consent != "granted":
            return 0
        zone = _zone(contact.time_zone)
        now = clock.now()
        if now.astimezone(zone).date() != day:
            return 0  # not (or no longer) their birthday where they live
        at = _local_time(rule.local_time) or time(10, 0)
        send_at = datetime.combine(day, at, tzinfo=zone)
        if now >= datetime.combine(day, LATEST, tzinfo=zone):
            return 0
        delivery_id = new_id(self.region)
        values: dict[str, Any] = {
            "id": delivery_id,
            "tenant_id": tenant,
            "event_id": event_id,
            "kind": "greeting.birthday",
            "recipient_type": "contact",
            "recipient_id": contact_id,
            "channel": rule.channel,
            "status": "pending",
            # Sent at the chosen local hour, also on a weekend: not held to working hours.
            "urgent": True,
            "context": {"purpose": rule.purpose},
            "next_attempt_at": max(send_at, now),
            "message_id": message_id(delivery_id, self.region),
            "contact_id": contact_id,
        }
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                pg_insert(models.Delivery)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["event_id", "recipient_id", "channel"])
            )
        return int(result.rowcount)  # type: ignore[attr-defined]
