"""Campaigns: a templated message to a segment of contacts (the contacts service's list
filters) by email or SMS, only to contacts whose consent for the campaign's purpose is
granted, in each contact's working hours (the tenant's default working hours, else
09:00-18:00 Monday to Friday, in the contact's zone), throttled, each message with a
signed unsubscribe link.

Consent is checked twice: when the segment is expanded (skipped_consent counts those)
and again right before each send, so a contact who unsubscribes or is erased meanwhile
never receives the message. One delivery row per campaign, contact and channel (a unique
key), written in the transaction that advances the segment listing: at most one message
per contact per campaign, also across restarts.

Opt-out: the unsubscribe link, or a reply to an SMS starting with a stop keyword (STOP,
PARAR, СТОП, ...) posted by the region's SMS provider, signed with its secret. A reply
withdraws the consent of the purpose of the latest message that number got from each
tenant. Every withdrawal is audited (action consent.withdraw).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import re
import time
from datetime import timedelta
from typing import Any

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_api.crm.contacts.v1 import contacts_pb2
from crm_api.crm.notifications.v1 import notifications_pb2 as pb
from crm_kit import clock
from crm_kit.audit import append_audit
from crm_kit.context import Principal
from crm_kit.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from crm_kit.ids import new_id
from crm_notifications import models, templates
from crm_notifications.channels import sign
from crm_notifications.lookups import Gone, Lookups
from crm_notifications.planner import message_id
from crm_notifications.quiet import Schedule, WorkingHours
from crm_notifications.recipient import Recipient
from crm_notifications.settings import NotificationsSettings

log = logging.getLogger(__name__)

PURPOSE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
SEGMENT_FIELDS = ("query", "owner_id", "tag", "lifecycle_stage", "source", "country", "company_id")
PAGE = 100
CAMPAIGN_CHANNELS = ("email", "sms")
# First words of an SMS reply that opt out (casefolded), in the shipped languages and the
# carriers' usual English set.
STOP_WORDS = frozenset(
    {
        "stop",
        "stopall",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "parar",
        "pare",
        "sair",
        "cancelar",
        "descadastrar",
        "stopp",
        "abmelden",
        "abbestellen",
        "стоп",
        "отписаться",
        "отписка",
        "रोकें",
        "बंद",
        "બંધ",
        "રોકો",
        "توقف",
        "لغو",
    }
)
# How far the SMS provider's X-Crm-Timestamp may be from our wall clock (replays).
SMS_TOLERANCE_SECONDS = 300


class NoConsent(Exception):
    """The contact's consent for the purpose is not granted (or was withdrawn)."""


# ------------------------------------------------------------------ unsubscribe tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unsubscribe_token(
    secret: str, tenant: str, contact_id: str, purpose: str, campaign: str
) -> str:
    body = _b64(json.dumps([tenant, contact_id, purpose, campaign]).encode())
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()[:18]
    return f"{body}.{_b64(mac)}"


def read_token(secret: str, token: str) -> tuple[str, str, str, str]:
    try:
        body, mac = token.split(".", 1)
        expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()[:18]
        if not secret or not hmac.compare_digest(_unb64(mac), expected):
            raise ValueError("bad signature")
        tenant, contact_id, purpose, campaign = json.loads(_unb64(body))
    except (ValueError, TypeError) as exc:
        raise InvalidArgument.single("token", "not a valid unsubscribe link") from exc
    return str(tenant), str(contact_id), str(purpose), str(campaign)


# ------------------------------------------------------------------ API


def _validate(campaign: pb.Campaign, settings: NotificationsSettings) -> dict[str, Any]:
    violations = []
    channel = campaign.channel.strip() or "email"
    if channel not in CAMPAIGN_CHANNELS:
        violations.append(FieldViolation("channel", "email or sms"))
    elif channel == "sms" and "sms" not in settings.notify_providers:
        violations.append(FieldViolation("channel", "no SMS provider is configured in this region"))
    name = campaign.name.strip()
    if not name or len(name) > 200:
        violations.append(FieldViolation("name", "required, at most 200 characters"))
    if not PURPOSE.match(campaign.purpose.strip()):
        violations.append(FieldViolation("purpose", "a consent purpose, e.g. marketing_email"))
    if not templates.CAMPAIGN_KIND.match(campaign.template_kind.strip()):
        violations.append(FieldViolation("template_kind", "campaign.<name>, a saved template"))
    segment = {f: getattr(campaign.segment, f).strip() for f in SEGMENT_FIELDS}
    segment = {k: v for k, v in segment.items() if v}
    if violations:
        raise InvalidArgument(violations)
    return {
        "name": name,
        "purpose": campaign.purpose.strip(),
        "template_kind": campaign.template_kind.strip(),
        "segment": segment,
        "channel": channel,
    }


async def create(
    session: AsyncSession,
    principal: Principal,
    region: str,
    settings: NotificationsSettings,
    campaign: pb.Campaign,
) -> pb.Campaign:
    if not principal.has_role("admin", "manager"):
        raise PermissionDenied("campaigns are for admins and managers")
    if not settings.unsubscribe_secret:
        raise FailedPrecondition(
            "no unsubscribe signing secret is configured (CRM_UNSUBSCRIBE_SECRET)"
        )
    values = _validate(campaign, settings)
    exists = await session.scalar(
        sa.select(sa.func.count())
        .select_from(models.Template)
        .where(
            models.Template.tenant_id == principal.tenant_id,
            models.Template.kind == values["template_kind"],
        )
    )
    if not exists:
        raise InvalidArgument.single("template_kind", "save this template at /v1/templates first")
    row = models.Campaign(
        id=new_id(region),
        tenant_id=principal.tenant_id,
        created_by=principal.user_id,
        status="running",
        created_at=clock.now(),
        **values,
    )
    session.add(row)
    await session.flush()
    return await get(session, principal, row.id)


async def get(session: AsyncSession, principal: Principal, campaign_id: str) -> pb.Campaign:
    row = await session.get(models.Campaign, campaign_id)
    if row is None or row.tenant_id != principal.tenant_id:
        raise NotFound(f"campaign {campaign_id} not found")
    return await to_pb(session, row)


async def list_all(session: AsyncSession, principal: Principal) -> pb.ListCampaignsResponse:
    rows = await session.scalars(
        sa.select(models.Campaign)
        .where(models.Campaign.tenant_id == principal.tenant_id)
        .order_by(models.Campaign.id.desc())
    )
    return pb.ListCampaignsResponse(campaigns=[await to_pb(session, r) for r in rows])


async def to_pb(session: AsyncSession, row: models.Campaign) -> pb.Campaign:
    d = models.Delivery
    counts = {
        (status, reason, error): n
        for status, reason, error, n in (
            await session.execute(
                sa.select(
                    d.status,
                    d.deferred_reason,
                    sa.func.starts_with(d.last_error, "consent"),
                    sa.func.count(),
                )
                .where(d.campaign_id == row.id)
                # By position: the expression has a bind parameter, so it cannot be repeated.
                .group_by(d.status, d.deferred_reason, sa.text("3"))
            )
        ).all()
    }

    def total(status: str, reason: str | None = None, consent: bool | None = None) -> int:
        return sum(
            n
            for (s, r, c), n in counts.items()
            if s == status and (reason is None or r == reason) and (consent is None or c == consent)
        )

    pending = total("pending")
    deferred = total("pending", "quiet_hours")
    status = row.status
    if status == "sending" and pending == 0:
        status = "done"
    message = pb.Campaign(
        id=row.id,
        name=row.name,
        purpose=row.purpose,
        segment=pb.Segment(**row.segment),
        template_kind=row.template_kind,
        channel=row.channel,
        status=status,
        matched=row.matched,
        sent=total("sent"),
        skipped_consent=row.skipped_consent + total("skipped", consent=True),
        deferred=deferred,
        failed=total("dead") + total("skipped", consent=False),
        pending=pending - deferred,
        created_by=row.created_by,
    )
    message.created_at.FromDatetime(row.created_at)
    return message


async def unsubscribe(
    sessions: async_sessionmaker[AsyncSession],
    lookups: Lookups,
    settings: NotificationsSettings,
    region: str,
    token: str,
) -> pb.UnsubscribeResponse:
    tenant, contact_id, purpose, _ = read_token(settings.unsubscribe_secret, token)
    await withdraw(
        sessions, lookups, region, tenant, contact_id, purpose, "unsubscribe_link", "public:link"
    )
    return pb.UnsubscribeResponse(purpose=purpose)


async def withdraw(
    sessions: async_sessionmaker[AsyncSession],
    lookups: Lookups,
    region: str,
    tenant: str,
    contact_id: str,
    purpose: str,
    source: str,
    actor: str,
) -> None:
    """Withdraws the contact's consent for `purpose` (in contacts) and drops the messages
    of that purpose still waiting for them; audited."""
    # An erased contact has nothing left to withdraw.
    with contextlib.suppress(Gone):
        await lookups.withdraw_consent(tenant, contact_id, purpose, source)
    async with sessions() as session, session.begin():
        await session.execute(
            sa.update(models.Delivery)
            .where(
                models.Delivery.tenant_id == tenant,
                models.Delivery.recipient_id == contact_id,
                models.Delivery.recipient_type == "contact",
                models.Delivery.status == "pending",
                models.Delivery.context["purpose"].astext == purpose,
            )
            .values(status="skipped", last_error=f"consent: withdrawn ({source})")
        )
        await append_audit(
            session,
            tenant_id=tenant,
            actor_id=actor,
            region=region,
            action="consent.withdraw",
            record_id=contact_id,
            legal_basis=f"the contact's own request ({source}, purpose {purpose})",
        )


def is_opt_out(text: str) -> bool:
    words = text.split()
    return bool(words) and words[0].strip(".!¡?¿,;:'\"").casefold() in STOP_WORDS


def _e164(number: str) -> str:
    try:
        parsed = phonenumbers.parse(number.strip(), None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidArgument.single("from", "an international number, +<country>...") from exc
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


async def receive_sms(
    sessions: async_sessionmaker[AsyncSession],
    lookups: Lookups,
    settings: NotificationsSettings,
    region: str,
    request: pb.ReceiveSmsRequest,
) -> pb.ReceiveSmsResponse:
    """An inbound SMS posted by the region's SMS provider: a stop keyword opts out."""
    provider = settings.notify_providers.get("sms")
    if provider is None or not provider.secret:
        raise PermissionDenied("no SMS provider with a signing secret is configured here")
    expected = sign(provider.secret, request.timestamp, request.body)
    if not hmac.compare_digest(expected, request.signature):
        raise PermissionDenied("the signature does not match")
    try:
        stale = abs(time.time() - int(request.timestamp)) > SMS_TOLERANCE_SECONDS
    except ValueError:
        stale = True
    if stale:
        raise PermissionDenied("the timestamp is missing or too far from now")
    try:
        data = json.loads(request.body)
        sender, text = str(data["from"]), str(data.get("text", ""))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument.single("body", 'JSON with "from" and "text"') from exc
    phone = _e164(sender)
    if not is_opt_out(text):
        return pb.ReceiveSmsResponse(opt_out=False)
    d = models.Delivery
    async with sessions() as session:
        latest = (
            await session.execute(
                sa.select(d.tenant_id, d.recipient_id, d.context["purpose"].astext)
                .where(
                    d.channel == "sms",
                    d.address == phone,
                    d.recipient_type == "contact",
                    d.status == "sent",
                )
                .order_by(d.tenant_id, d.recipient_id, d.sent_at.desc())
                .distinct(d.tenant_id, d.recipient_id)
            )
        ).all()
    withdrawn = 0
    for tenant, contact_id, purpose in latest:
        if purpose:
            await withdraw(
                sessions, lookups, region, tenant, contact_id, purpose, "sms_reply", "public:sms"
            )
            withdrawn += 1
    return pb.ReceiveSmsResponse(opt_out=True, withdrawn=withdrawn)


# ------------------------------------------------------------------ sending


async def contact_recipient(
    lookups: Lookups, row: models.Delivery, settings: NotificationsSettings, default: Schedule
) -> tuple[Recipient, dict[str, Any]]:
    tenant = row.tenant_id
    purpose = row.context.get("purpose", "")
    contact = await lookups.contact(tenant, row.recipient_id)
    status = await lookups.consent_status(tenant, row.recipient_id, purpose)
    if status != "granted":
        raise NoConsent(status or "never given")
    locale = templates.canonical_locale(contact.language or "en") or "en"
    # A contact has no hours of their own: the tenant's default, in the contact's zone.
    hours = WorkingHours.of(contact.time_zone or "UTC", default=default)
    name = Lookups.contact_name(contact)
    recipient = Recipient(name, locale, hours, contact.emails[0] if contact.emails else "")
    token = unsubscribe_token(
        settings.unsubscribe_secret, tenant, contact.id, purpose, row.campaign_id
    )
    context: dict[str, Any] = {
        "kind": row.kind,
        "recipient": {"id": contact.id, "name": name},
        "contact": {
            "id": contact.id,
            "name": name,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
        },
        "assignee": None,
        "owner": None,
        "task": None,
        "deal": None,
        "reminder": None,
        "message": "",
        "_unsubscribe_url": f"{settings.public_base_url.rstrip('/')}/public/unsubscribe/{token}",
        "_phone": contact.phones[0] if contact.phones else "",
        "_chat": "",
    }
    return recipient, context


class CampaignRunner:
    """Expands running campaigns' segments into throttled deliveries (any replica)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        lookups: Lookups,
        settings: NotificationsSettings,
        region: str,
        interval: float,
    ) -> None:
        self.sessions = sessions
        self.lookups = lookups
        self.settings = settings
        self.region = region
        self.interval = interval

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("campaign pass failed; retrying")
            await asyncio.sleep(self.interval)

    async def run_once(self) -> None:
        while await self.expand_page():
            pass

    async def expand_page(self) -> bool:
        """One page of one running campaign; False when none is left to expand."""
        async with self.sessions() as session, session.begin():
            campaign = await session.scalar(
                sa.select(models.Campaign)
                .where(models.Campaign.status == "running")
                .order_by(models.Campaign.created_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if campaign is None:
                return False
            request = contacts_pb2.ListContactsRequest(
                page_size=PAGE, page_token=campaign.page_token
            )
            for name, value in campaign.segment.items():
                setattr(request, name, value)
            reply = await self.lookups.list_contacts(campaign.tenant_id, request)
            spacing = 1.0 / self.settings.campaign_rate
            queued = campaign.matched - campaign.skipped_consent
            start = max(clock.now(), campaign.created_at + timedelta(seconds=spacing * queued))
            rows: list[dict[str, Any]] = []
            for hit in reply.hits:
                contact = hit.contact
                status = await self.lookups.consent_status(
                    campaign.tenant_id, contact.id, campaign.purpose
                )
                campaign.matched += 1
                if status != "granted":
                    campaign.skipped_consent += 1
                    continue
                delivery_id = new_id(self.region)
                rows.append(
                    {
                        "id": delivery_id,
                        "tenant_id": campaign.tenant_id,
                        "event_id": campaign.id,
                        "kind": campaign.template_kind,
                        "recipient_type": "contact",
                        "recipient_id": contact.id,
                        "channel": campaign.channel,
                        "status": "pending",
                        "urgent": False,
                        "context": {"purpose": campaign.purpose},
                        # Throttle: messages are spread at the configured rate.
                        "next_attempt_at": start + timedelta(seconds=spacing * len(rows)),
                        "message_id": message_id(delivery_id, self.region),
                        "campaign_id": campaign.id,
                        "contact_id": contact.id,
                    }
                )
            if rows:
                await session.execute(
                    pg_insert(models.Delivery)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=["event_id", "recipient_id", "channel"])
                )
            campaign.page_token = reply.next_page_token
            if not reply.next_page_token:
                campaign.status = "sending"
        return True
