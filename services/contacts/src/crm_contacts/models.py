"""Tables of the contacts service (one database per region)."""

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


class Contact(Base):
    __tablename__ = "contacts"
    # The INSERT returns the server-set timestamps (RETURNING): no second read of the row.
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    first_name: Mapped[str] = mapped_column(sa.Text, default="")
    last_name: Mapped[str] = mapped_column(sa.Text, default="")
    emails: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    phones: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    address: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    country: Mapped[str] = mapped_column(sa.Text, default="")
    time_zone: Mapped[str] = mapped_column(sa.Text, default="")
    language: Mapped[str] = mapped_column(sa.Text, default="")
    owner_id: Mapped[str] = mapped_column(sa.Text)
    owner_team: Mapped[str] = mapped_column(sa.Text, default="")
    source: Mapped[str] = mapped_column(sa.Text, default="manual")
    lifecycle_stage: Mapped[str] = mapped_column(sa.Text, default="lead")
    tags: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    important_dates: Mapped[list[dict[str, str]]] = mapped_column(JSONB, default=list)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Folded names, emails, phone digits and company names, indexed with pg_trgm.
    search_text: Mapped[str] = mapped_column(sa.Text, default="")
    merged_into_id: Mapped[str | None] = mapped_column(sa.Text)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        sa.Index("ix_contacts_tenant_id_id", "tenant_id", "id"),
        sa.Index("ix_contacts_tenant_owner", "tenant_id", "owner_id"),
        sa.Index("ix_contacts_emails", "emails", postgresql_using="gin"),
        sa.Index("ix_contacts_phones", "phones", postgresql_using="gin"),
        sa.Index("ix_contacts_tags", "tags", postgresql_using="gin"),
        sa.Index(
            "ix_contacts_search_text",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
    )


class SearchTerm(Base):
    """The distinct words of a tenant's contacts' `search_text` (folded names, emails,
    phone digits, company names): the small trigram dictionary a typo is looked up in
    before any contact is touched. Kept by the `contacts_search_terms` trigger
    (migration 0006), in the transaction of the contact's write."""

    __tablename__ = "search_terms"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    term: Mapped[str] = mapped_column(sa.Text, primary_key=True)

    __table_args__ = (
        sa.Index(
            "ix_search_terms_term",
            "term",
            postgresql_using="gin",
            postgresql_ops={"term": "gin_trgm_ops"},
        ),
    )


class ContactTerm(Base):
    """Which contact holds which term; walked in id order, newest first, per term."""

    __tablename__ = "contact_terms"

    contact_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    term: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)

    __table_args__ = (
        # A key-share lock on the dictionary row while a contact takes the term, so that
        # a concurrent removal of the "last" holder cannot drop a term still in use.
        sa.ForeignKeyConstraint(
            ["tenant_id", "term"],
            ["search_terms.tenant_id", "search_terms.term"],
            name="fk_contact_terms_tenant_id_search_terms",
        ),
        sa.Index("ix_contact_terms_tenant_id_term_contact_id", "tenant_id", "term", "contact_id"),
    )


class Company(Base):
    __tablename__ = "companies"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    name: Mapped[str] = mapped_column(sa.Text)
    domain: Mapped[str] = mapped_column(sa.Text, default="")
    industry: Mapped[str] = mapped_column(sa.Text, default="")
    address: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    country: Mapped[str] = mapped_column(sa.Text, default="")
    phones: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    owner_id: Mapped[str] = mapped_column(sa.Text)
    owner_team: Mapped[str] = mapped_column(sa.Text, default="")
    tags: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    search_text: Mapped[str] = mapped_column(sa.Text, default="")
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        sa.Index("ix_companies_tenant_id_id", "tenant_id", "id"),
        sa.Index(
            "ix_companies_search_text",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
    )


class CompanyMember(Base):
    """A person's link to a company, with their role there."""

    __tablename__ = "company_members"

    company_id: Mapped[str] = mapped_column(
        sa.ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[str] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    role: Mapped[str] = mapped_column(sa.Text, default="")

    __table_args__ = (sa.Index("ix_company_members_contact", "contact_id"),)


class TimelineEntry(Base):
    __tablename__ = "timeline_entries"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    contact_id: Mapped[str] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.Text)
    body: Mapped[str] = mapped_column(sa.Text, default="")
    direction: Mapped[str] = mapped_column(sa.Text, default="")
    subject: Mapped[str] = mapped_column(sa.Text, default="")
    duration_seconds: Mapped[int] = mapped_column(sa.Integer, default=0)
    occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    author_id: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    # kind "attachment": the file added.
    attachment_id: Mapped[str] = mapped_column(sa.Text, default="", server_default="")

    __table_args__ = (sa.Index("ix_timeline_contact_time", "contact_id", "occurred_at", "id"),)


class Attachment(Base):
    """A file on a contact (or on one of its deals): personal data, kept with the contact."""

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    contact_id: Mapped[str] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    deal_id: Mapped[str] = mapped_column(sa.Text, default="")
    filename: Mapped[str] = mapped_column(sa.Text)
    media_type: Mapped[str] = mapped_column(sa.Text)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.Text)
    uploaded_by: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())

    __table_args__ = (sa.Index("ix_attachments_contact", "contact_id", "created_at"),)


class AttachmentChunk(Base):
    """An attachment's bytes in pieces, so no message or row has to hold a whole file."""

    __tablename__ = "attachment_chunks"

    attachment_id: Mapped[str] = mapped_column(
        sa.ForeignKey("attachments.id", ondelete="CASCADE"), primary_key=True
    )
    sequence: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class Consent(Base):
    """One consent record; the latest per (contact, purpose) is the current state."""

    __tablename__ = "consents"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    contact_id: Mapped[str] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(sa.Text)
    lawful_basis: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.Text, default="")
    recorded_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    recorded_by: Mapped[str] = mapped_column(sa.Text)

    __table_args__ = (sa.Index("ix_consents_contact_purpose", "contact_id", "purpose", "id"),)


class CustomFieldDefinition(Base):
    __tablename__ = "custom_field_definitions"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    entity: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    key: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    label: Mapped[str] = mapped_column(sa.Text)
    type: Mapped[str] = mapped_column(sa.Text)
    options: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    required: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class TenantPolicy(Base):
    """Residency and access policy; holds no personal data, so every region has a copy."""

    __tablename__ = "tenant_policies"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    default_region: Mapped[str] = mapped_column(sa.Text)
    residency_overrides: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    access_grants: Mapped[list[dict[str, str]]] = mapped_column(JSONB, default=list)
    # [{"rule": "delete_inactive_leads", "after_months": 24}, ...]
    retention_rules: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    updated_by: Mapped[str] = mapped_column(sa.Text, default="")
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())


class TenantPolicyVersion(Base):
    """Every version of the tenant's policy: who changed what, and when."""

    __tablename__ = "tenant_policy_versions"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSONB)
    changes: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    changed_by: Mapped[str] = mapped_column(sa.Text)
    changed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class PrivacyRequest(Base):
    """A data-subject request (export, erasure, rectification) and its progress."""

    __tablename__ = "privacy_requests"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.Text)
    contact_id: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text, default="received")
    law: Mapped[str] = mapped_column(sa.Text)
    due_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    reminder_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    reminder_sent_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(sa.Text)
    # Rectification only, cleared once applied (it is personal data).
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    rectified_fields: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    error: Mapped[str] = mapped_column(sa.Text, default="")
    receipt: Mapped[str] = mapped_column(sa.Text, default="")
    receipt_signature: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.Index("ix_privacy_requests_tenant_created", "tenant_id", "created_at"),
        sa.Index(
            "ix_privacy_requests_reminder",
            "reminder_at",
            postgresql_where=sa.text("reminder_sent_at IS NULL AND status <> 'completed'"),
        ),
    )


class LegalHold(Base):
    """A contact whose data must be kept (litigation, investigation): blocks erasure."""

    __tablename__ = "legal_holds"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    contact_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    reason: Mapped[str] = mapped_column(sa.Text)
    set_by: Mapped[str] = mapped_column(sa.Text)
    set_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class TenantKey(Base):
    """The tenant's Ed25519 key in this region: signs erasure receipts."""

    __tablename__ = "tenant_keys"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    private_key: Mapped[bytes] = mapped_column(sa.LargeBinary)
    public_key: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())


class ContactAlias(Base):
    """The old id of a relocated contact, so that old links still resolve (ids only)."""

    __tablename__ = "contact_aliases"

    old_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    new_id: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())


class RetentionRun(Base):
    """What one application of a retention rule did (visible to compliance officers)."""

    __tablename__ = "retention_runs"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    rule: Mapped[str] = mapped_column(sa.Text)
    ran_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    affected: Mapped[int] = mapped_column(sa.Integer, default=0)
    record_ids: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)

    __table_args__ = (sa.Index("ix_retention_runs_tenant_ran", "tenant_id", "ran_at"),)


class UserTeam(Base):
    """Each user's team as the directory last announced it (crm_kit.teams): the team a
    record gets when it gets an owner, re-stamped on the owner's records on a change."""

    __tablename__ = "user_teams"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    team: Mapped[str] = mapped_column(sa.Text, default="")


class TaskGrant(Base):
    """An open task's assignee and what it links to: they may read that contact and
    deal while the task is theirs and open (crm_kit.task_access)."""

    __tablename__ = "task_grants"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    task_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    assignee_id: Mapped[str] = mapped_column(sa.Text)
    deal_id: Mapped[str] = mapped_column(sa.Text, default="")
    contact_id: Mapped[str] = mapped_column(sa.Text, default="")


class ContactView(Base):
    """A saved view of the contacts list: its filters and sort, private to its owner or
    shared with the owner's team. Kept in the owner's home region."""

    __tablename__ = "contact_views"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    owner_id: Mapped[str] = mapped_column(sa.Text)
    team: Mapped[str] = mapped_column(sa.Text, default="")
    name: Mapped[str] = mapped_column(sa.Text)
    shared: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    filters: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    sort: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        sa.Index("ix_contact_views_owner", "tenant_id", "owner_id"),
        sa.Index("ix_contact_views_team", "tenant_id", "team", postgresql_where=sa.text("shared")),
    )
