"""Tables of the integrations service (one database per region).

Forms, webhooks, settings and API keys are tenant configuration; submissions, calls,
emails and import files hold personal data and live in the region they belong to.
"""

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


TS = sa.DateTime(timezone=True)


class Form(Base):
    __tablename__ = "forms"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    key: Mapped[str] = mapped_column(sa.Text, unique=True)
    name: Mapped[str] = mapped_column(sa.Text)
    field_mapping: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    pipeline_id: Mapped[str] = mapped_column(sa.Text)
    stage_id: Mapped[str] = mapped_column(sa.Text)
    owner: Mapped[str] = mapped_column(sa.Text)
    honeypot_field: Mapped[str] = mapped_column(sa.Text, default="")
    deal_title: Mapped[str] = mapped_column(sa.Text, default="")
    source: Mapped[str] = mapped_column(sa.Text, default="web_form")
    default_country: Mapped[str] = mapped_column(sa.Text, default="")
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    rate_limit_per_key: Mapped[int] = mapped_column(sa.Integer, default=60)
    rate_limit_per_ip: Mapped[int] = mapped_column(sa.Integer, default=10)
    # Next index into the team for round-robin owner assignment.
    round_robin: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(TS, server_default=_now())
    # Set when an admin deletes the form: it no longer answers (get, list, its public
    # key), but the row stays so submissions already received still complete.
    deleted_at: Mapped[datetime | None] = mapped_column(TS)

    __table_args__ = (sa.Index("ix_forms_tenant", "tenant_id"),)


class RateCounter(Base):
    """Fixed-window counters of public submissions, shared by every replica."""

    __tablename__ = "rate_counters"

    bucket: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    count: Mapped[int] = mapped_column(sa.Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(TS)


class Submission(Base):
    """A form submission, stored before anything else happens (the job row)."""

    __tablename__ = "submissions"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    form_id: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text, default="pending")
    fields: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    utm: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    source: Mapped[str] = mapped_column(sa.Text, default="")
    client_ip: Mapped[str] = mapped_column(sa.Text, default="")
    user_agent: Mapped[str] = mapped_column(sa.Text, default="")
    referrer: Mapped[str] = mapped_column(sa.Text, default="")
    owner_id: Mapped[str] = mapped_column(sa.Text, default="")
    contact_id: Mapped[str] = mapped_column(sa.Text, default="")
    deal_id: Mapped[str] = mapped_column(sa.Text, default="")
    merged_contact_ids: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_error: Mapped[str] = mapped_column(sa.Text, default="")
    next_attempt_at: Mapped[datetime | None] = mapped_column(TS)
    created_at: Mapped[datetime] = mapped_column(TS, server_default=_now())
    completed_at: Mapped[datetime | None] = mapped_column(TS)

    __table_args__ = (
        sa.Index("ix_submissions_tenant_contact", "tenant_id", "contact_id"),
        sa.Index(
            "ix_submissions_pending",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
        ),
    )


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    name: Mapped[str] = mapped_column(sa.Text)
    scopes: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    secret_hash: Mapped[str] = mapped_column(sa.Text, unique=True)
    prefix: Mapped[str] = mapped_column(sa.Text)
    created_by: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(TS, server_default=_now())
    revoked_at: Mapped[datetime | None] = mapped_column(TS)
    last_used_at: Mapped[datetime | None] = mapped_column(TS)

    __table_args__ = (sa.Index("ix_api_keys_tenant", "tenant_id"),)


class Provider(Base):
    """A telephony or inbound-email provider connection with its shared secret."""

    __tablename__ = "providers"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.Text)
    name: Mapped[str] = mapped_column(sa.Text, default="")
    secret_hash: Mapped[str] = mapped_column(sa.Text)
    default_owner_id: Mapped[str] = mapped_column(sa.Text, default="")
    default_country: Mapped[str] = mapped_column(sa.Text, default="")
    # Telephony: click-to-call requests go here, signed with call_secret.
    call_url: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    call_secret: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(TS, server_default=_now())


class CallRequest(Base):
    """A click-to-call the provider accepted: its call id links the provider's callbacks
    to the contact and to the user who clicked."""

    __tablename__ = "call_requests"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    provider_id: Mapped[str] = mapped_column(sa.Text)
    external_id: Mapped[str] = mapped_column(sa.Text)
    user_id: Mapped[str] = mapped_column(sa.Text)
    contact_id: Mapped[str] = mapped_column(sa.Text)
    from_number: Mapped[str] = mapped_column(sa.Text)
    to_number: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(TS, server_default=_now())

    __table_args__ = (
        sa.UniqueConstraint("provider_id", "external_id"),
        sa.Index("ix_call_requests_tenant_contact", "tenant_id", "contact_id"),
    )


class Call(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    provider_id: Mapped[str] = mapped_column(sa.Text)
    external_id: Mapped[str] = mapped_column(sa.Text)
    direction: Mapped[str] = mapped_column(sa.Text)
    from_number: Mapped[str] = mapped_column(sa.Text)
    to_number: Mapped[str] = mapped_column(sa.Text)
    duration_seconds: Mapped[int] = mapped_column(sa.Integer, default=0)
    recording_url: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[str] = mapped_column(sa.Text)
    missed: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    contact_id: Mapped[str] = mapped_column(sa.Text)
    new_lead: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    task_id: Mapped[str] = mapped_column(sa.Text, default="")
    timeline_entry_id: Mapped[str] = mapped_column(sa.Text, default="")
    started_at: Mapped[datetime] = mapped_column(TS)
    created_at: Mapped[datetime] = mapped_column(TS, server_default=_now())

    __table_args__ = (
        sa.UniqueConstraint("provider_id", "external_id"),
        sa.Index("ix_calls_tenant_contact", "tenant_id", "contact_id"),
    )


class InboundEmail(Base):
    __tablename__ = "inbound_emails"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    provider_id: Mapped[str] = mapped_column(sa.Text)
    message_id: Mapped[str] = mapped_column(sa.Text)
    from_address: Mapped[str] = mapped_column(sa.Text)
    to_address: Mapped[str] = mapped_column(sa.Text, default="")
    subject: Mapped[str] = mapped_column(sa.Text, default="")
    contact_id: Mapped[str] = mapped_column(sa.Text, default="")
    timeline_entry_id: Mapped[str] = mapped_column(sa.Text, default="")
    received_at: Mapped[datetime] = mapped_column(TS, server_default=_now())

    __table_args__ = (
        sa.UniqueConstraint("provider_id", "message_id"),
        sa.Index("ix_inbound_emails_tenant_contact", "tenant_id", "contact_id"),
    )


class ImportJob(Base):
    __tablename__ = "imports"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    # Who imports: the job runs with their rights (ownership, policy).
    user_id: Mapped[str] = mapped_column(sa.Text)
    roles: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    team: Mapped[str] = mapped_column(sa.Text, default="")
    file_name: Mapped[str] = mapped_column(sa.Text, default="")
    format: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text, default="uploading")
    headers: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    mapping: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    duplicate_policy: Mapped[str] = mapped_column(sa.Text, default="skip")
    default_country: Mapped[str] = mapped_column(sa.Text, default="")
    encoding: Mapped[str] = mapped_column(sa.Text, default="")
    delimiter: Mapped[str] = mapped_column(sa.Text, default="")
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    chunks: Mapped[int] = mapped_column(sa.Integer, default=0)
    counts: Mapped[dict[str, int]] = mapped_column(JSONB, default=dict)
    cancel_requested: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # Rows already handled: a restarted worker resumes after them.
    resume_after: Mapped[int] = mapped_column(sa.Integer, default=0)
    claimed_until: Mapped[datetime | None] = mapped_column(TS)
    error: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(TS, server_default=_now())
    finished_at: Mapped[datetime | None] = mapped_column(TS)
    # Last upload, preview or configuration (the kit's clock): abandoned jobs expire.
    touched_at: Mapped[datetime | None] = mapped_column(TS)
    # Rows of a file uploaded in another region that belong here come as their own job.
    parent_id: Mapped[str] = mapped_column(sa.Text, default="")
    child_ids: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    home_region: Mapped[str] = mapped_column(sa.Text, default="")
    cross_region_basis: Mapped[str] = mapped_column(sa.Text, default="")

    __table_args__ = (sa.Index("ix_imports_tenant", "tenant_id"),)


class ImportChunk(Base):
    """The uploaded file in pieces, so neither the gateway nor a worker holds it whole."""

    __tablename__ = "import_chunks"

    import_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    sequence: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class ImportRowError(Base):
    __tablename__ = "import_errors"

    import_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    row: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    column: Mapped[str] = mapped_column(sa.Text, default="")
    value: Mapped[str] = mapped_column(sa.Text, default="")
    error: Mapped[str] = mapped_column(sa.Text)


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    url: Mapped[str] = mapped_column(sa.Text)
    event_types: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    secret: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    disabled_reason: Mapped[str] = mapped_column(sa.Text, default="")
    owner_id: Mapped[str] = mapped_column(sa.Text, default="")
    consecutive_failures: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(TS, server_default=_now())

    __table_args__ = (sa.Index("ix_webhooks_tenant", "tenant_id"),)


class Delivery(Base):
    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    webhook_id: Mapped[str] = mapped_column(sa.Text)
    event_id: Mapped[str] = mapped_column(sa.Text)
    event_type: Mapped[str] = mapped_column(sa.Text)
    payload: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text, default="pending")
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_status_code: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_error: Mapped[str] = mapped_column(sa.Text, default="")
    next_attempt_at: Mapped[datetime | None] = mapped_column(TS)
    delivered_at: Mapped[datetime | None] = mapped_column(TS)
    created_at: Mapped[datetime] = mapped_column(TS, server_default=_now())

    __table_args__ = (
        sa.UniqueConstraint("webhook_id", "event_id"),
        sa.Index("ix_deliveries_webhook", "webhook_id", "created_at"),
        sa.Index(
            "ix_deliveries_due", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")
        ),
    )


class TenantSettings(Base):
    __tablename__ = "tenant_settings"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    allow_private_webhook_targets: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # Exports of contacts and deals are refused to the sales_rep role (the gateway asks).
    forbid_sales_rep_exports: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false()
    )


def as_dict(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in sa.inspect(row).mapper.column_attrs}
