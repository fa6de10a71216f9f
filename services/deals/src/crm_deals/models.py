"""Tables of the deals service (one database per region)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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


# Money: up to 14 integer digits and the 4 decimals the most precise ISO 4217
# currencies need; the currency's own precision is enforced when a value comes in.
MONEY = sa.Numeric(18, 4)


class Pipeline(Base):
    """Tenant configuration, not personal data. Ids are (tenant, id): the gateway gives
    the same ids to the copy it writes into every region."""

    __tablename__ = "pipelines"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    is_default: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        # At most one default pipeline per tenant, even under concurrent first use.
        sa.Index(
            "uq_pipelines_default",
            "tenant_id",
            unique=True,
            postgresql_where=sa.text("is_default"),
        ),
    )


class Stage(Base):
    __tablename__ = "stages"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(sa.Text)
    name: Mapped[str] = mapped_column(sa.Text)
    position: Mapped[int] = mapped_column(sa.Integer)
    win_probability: Mapped[int] = mapped_column(sa.Integer)
    time_limit_hours: Mapped[int] = mapped_column(sa.Integer, default=0)
    kind: Mapped[str] = mapped_column(sa.Text)
    document_template_key: Mapped[str] = mapped_column(sa.Text, default="")
    # Deal custom fields a deal must carry to enter this stage.
    required_fields: Mapped[list[str]] = mapped_column(
        ARRAY(sa.Text), default=list, server_default="{}"
    )

    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "pipeline_id"],
            ["pipelines.tenant_id", "pipelines.id"],
            ondelete="CASCADE",
        ),
        sa.Index("ix_stages_pipeline", "tenant_id", "pipeline_id", "position"),
    )


class Deal(Base):
    __tablename__ = "deals"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    title: Mapped[str] = mapped_column(sa.Text)
    # "" when none (and after the contact's erasure).
    contact_id: Mapped[str] = mapped_column(sa.Text, default="")
    company_id: Mapped[str] = mapped_column(sa.Text, default="")
    owner_id: Mapped[str] = mapped_column(sa.Text)
    owner_team: Mapped[str] = mapped_column(sa.Text, default="")
    source: Mapped[str] = mapped_column(sa.Text, default="manual")
    pipeline_id: Mapped[str] = mapped_column(sa.Text)
    stage_id: Mapped[str] = mapped_column(sa.Text)
    # The kind of the current stage (open, won, lost), kept here for filters and the board.
    status: Mapped[str] = mapped_column(sa.Text, default="open")
    amount: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(sa.Text, default="")
    expected_close_date: Mapped[date | None] = mapped_column(sa.Date)
    lost_reason: Mapped[str] = mapped_column(sa.Text, default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    stage_entered_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # When the payments first covered the amount (deals.deal.paid_in_full is sent once).
    paid_in_full_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "pipeline_id"], ["pipelines.tenant_id", "pipelines.id"]
        ),
        sa.ForeignKeyConstraint(["tenant_id", "stage_id"], ["stages.tenant_id", "stages.id"]),
        sa.Index("ix_deals_tenant_id_id", "tenant_id", "id"),
        sa.Index("ix_deals_tenant_owner", "tenant_id", "owner_id"),
        sa.Index("ix_deals_tenant_contact", "tenant_id", "contact_id"),
        sa.Index("ix_deals_tenant_stage", "tenant_id", "pipeline_id", "stage_id"),
    )


class StageChange(Base):
    """One committed move: who moved the deal, from where, to where and when."""

    __tablename__ = "stage_changes"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    deal_id: Mapped[str] = mapped_column(sa.ForeignKey("deals.id", ondelete="CASCADE"))
    from_stage_id: Mapped[str] = mapped_column(sa.Text)
    to_stage_id: Mapped[str] = mapped_column(sa.Text)
    moved_by: Mapped[str] = mapped_column(sa.Text)
    moved_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (sa.Index("ix_stage_changes_deal", "deal_id", "id"),)


class Payment(Base):
    """Money received against a deal, in the deal's currency. A mistaken entry is
    reversed (marked, kept) rather than deleted: what was recorded, undone, by whom and
    why stays visible, and the events reports follow only ever add up."""

    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    deal_id: Mapped[str] = mapped_column(sa.ForeignKey("deals.id", ondelete="CASCADE"))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(sa.Text)
    paid_on: Mapped[date] = mapped_column(sa.Date)
    method: Mapped[str] = mapped_column(sa.Text)
    # Free text: may describe the person, so it goes with the contact's erasure.
    note: Mapped[str] = mapped_column(sa.Text, default="")
    recorded_by: Mapped[str] = mapped_column(sa.Text)
    recorded_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    reversed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    reversed_by: Mapped[str] = mapped_column(sa.Text, default="")
    reversal_reason: Mapped[str] = mapped_column(sa.Text, default="")

    __table_args__ = (sa.Index("ix_payments_deal", "deal_id", "id"),)


class DealSettings(Base):
    __tablename__ = "deal_settings"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    reporting_currency: Mapped[str] = mapped_column(sa.Text)
    # Lost-reason categories (lower case): what events and reports may carry.
    lost_reasons: Mapped[list[str]] = mapped_column(
        ARRAY(sa.Text), default=list, server_default="{}"
    )
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())


class ExchangeRate(Base):
    """1 `currency` = `rate` `quote_currency`, from `valid_on` until a later rate."""

    __tablename__ = "exchange_rates"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    currency: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    quote_currency: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    valid_on: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    rate: Mapped[Decimal] = mapped_column(sa.Numeric(24, 10))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())


class DocumentTemplate(Base):
    __tablename__ = "document_templates"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    key: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    body: Mapped[str] = mapped_column(sa.Text)
    variables: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    locale: Mapped[str] = mapped_column(sa.Text, default="en")
    updated_by: Mapped[str] = mapped_column(sa.Text, default="")
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())


class Document(Base):
    """A rendered document. It holds the person's name and address, so it lives in the
    deal's region and goes when the person is erased."""

    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    deal_id: Mapped[str] = mapped_column(sa.ForeignKey("deals.id", ondelete="CASCADE"))
    template_key: Mapped[str] = mapped_column(sa.Text)
    title: Mapped[str] = mapped_column(sa.Text)
    html: Mapped[bytes] = mapped_column(sa.LargeBinary)
    pdf: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_by: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (sa.Index("ix_documents_deal", "deal_id", "id"),)


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
