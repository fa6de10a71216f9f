"""Tables of the notifications service (one database per region)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TEXT_ARRAY = ARRAY(sa.Text)


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def _now() -> sa.ColumnElement[datetime]:
    return sa.func.now()


class Delivery(Base):
    """One message to send: one event, one recipient, one channel (unique together)."""

    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    event_id: Mapped[str] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.Text)
    # "user" (directory) or "contact" (campaigns).
    recipient_type: Mapped[str] = mapped_column(sa.Text, default="user")
    recipient_id: Mapped[str] = mapped_column(sa.Text)
    channel: Mapped[str] = mapped_column(sa.Text)
    # pending, sent, dead, skipped
    status: Mapped[str] = mapped_column(sa.Text, default="pending")
    urgent: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # Ids and amounts the message is rendered from (never names or addresses).
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    # A claimed delivery belongs to one replica until then.
    lease_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Committed just before a provider (SMTP, SMS, chat) is asked to send, cleared with
    # the outcome: a claimed row that still has it belonged to a replica that died
    # mid-send, when whether the provider accepted the message cannot be known.
    sending_since: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    deferred_reason: Mapped[str] = mapped_column(sa.Text, default="")
    # Stable per delivery (the email's Message-ID, the providers' Idempotency-Key).
    message_id: Mapped[str] = mapped_column(sa.Text, default="")
    # The address last used (email, phone); personal data, covered by privacy.
    address: Mapped[str] = mapped_column(sa.Text, default="")
    last_error: Mapped[str] = mapped_column(sa.Text, default="")
    campaign_id: Mapped[str] = mapped_column(sa.Text, default="")
    # The contact the message is about or addressed to (privacy lookups).
    contact_id: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    sent_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.UniqueConstraint("event_id", "recipient_id", "channel"),
        sa.Index(
            "ix_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index("ix_deliveries_tenant_recipient", "tenant_id", "recipient_id"),
        sa.Index("ix_deliveries_tenant_contact", "tenant_id", "contact_id"),
        sa.Index("ix_deliveries_campaign", "campaign_id"),
    )


class DeliveryAttempt(Base):
    """The delivery log: every attempt and its outcome."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(sa.Text)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    attempt: Mapped[int] = mapped_column(sa.Integer)
    # sent, failed, deferred, dead, skipped
    outcome: Mapped[str] = mapped_column(sa.Text)
    detail: Mapped[str] = mapped_column(sa.Text, default="")
    address: Mapped[str] = mapped_column(sa.Text, default="")
    contact_id: Mapped[str] = mapped_column(sa.Text, default="")
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.Index("ix_delivery_attempts_delivery", "delivery_id"),
        sa.Index("ix_delivery_attempts_tenant_contact", "tenant_id", "contact_id"),
    )


class InboxItem(Base):
    """A user's in-app notification (the in_app channel's delivery)."""

    __tablename__ = "user_notifications"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    user_id: Mapped[str] = mapped_column(sa.Text)
    # One inbox entry per delivery, even if the dispatcher retries.
    delivery_id: Mapped[str] = mapped_column(sa.Text, unique=True)
    kind: Mapped[str] = mapped_column(sa.Text)
    title: Mapped[str] = mapped_column(sa.Text)
    body: Mapped[str] = mapped_column(sa.Text, default="")
    locale: Mapped[str] = mapped_column(sa.Text, default="en")
    task_id: Mapped[str] = mapped_column(sa.Text, default="")
    deal_id: Mapped[str] = mapped_column(sa.Text, default="")
    contact_id: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.Index("ix_user_notifications_tenant_user_id", "tenant_id", "user_id", "id"),
        sa.Index("ix_user_notifications_tenant_contact", "tenant_id", "contact_id"),
    )


class Preference(Base):
    __tablename__ = "preferences"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    channels: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)


class Template(Base):
    __tablename__ = "templates"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    locale: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    subject: Mapped[str] = mapped_column(sa.Text)
    body_text: Mapped[str] = mapped_column(sa.Text)
    body_html: Mapped[str] = mapped_column(sa.Text, default="")
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    name: Mapped[str] = mapped_column(sa.Text)
    purpose: Mapped[str] = mapped_column(sa.Text)
    segment: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    template_kind: Mapped[str] = mapped_column(sa.Text)
    # email or sms
    channel: Mapped[str] = mapped_column(sa.Text, default="email", server_default="email")
    # running (segment being expanded), sending, done
    status: Mapped[str] = mapped_column(sa.Text, default="running")
    # The contacts listing resumes here after a restart.
    page_token: Mapped[str] = mapped_column(sa.Text, default="")
    matched: Mapped[int] = mapped_column(sa.Integer, default=0)
    skipped_consent: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_by: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())

    __table_args__ = (sa.Index("ix_campaigns_tenant", "tenant_id"),)


class WorkingHoursDefault(Base):
    """A tenant's default working hours (no row: the built-in 09:00-18:00 Monday-Friday).

    Tenant configuration, not personal data: the gateway writes every region's copy.
    """

    __tablename__ = "working_hours_defaults"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    # "HH:MM" in each person's own zone.
    start: Mapped[str] = mapped_column(sa.Text)
    end: Mapped[str] = mapped_column(sa.Text)
    # ISO weekdays, 1 = Monday.
    days: Mapped[list[int]] = mapped_column(ARRAY(sa.Integer))
    updated_by: Mapped[str] = mapped_column(sa.Text, default="")
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())


class GreetingRule(Base):
    """A tenant's greeting rule (kind "birthday"): tenant configuration, no personal data;
    the gateway writes every region's copy."""

    __tablename__ = "greeting_rules"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    channel: Mapped[str] = mapped_column(sa.Text, default="email")
    purpose: Mapped[str] = mapped_column(sa.Text)
    local_time: Mapped[str] = mapped_column(sa.Text, default="10:00")
    updated_by: Mapped[str] = mapped_column(sa.Text, default="")
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
