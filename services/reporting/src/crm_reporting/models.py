"""Read-model tables of the reporting service (one database per region).

Reports read only the aggregate tables (`agg_*`), keyed by day x pipeline x owner x
team x what the report groups by, so a report's cost follows the number of distinct
keys in its period, not the number of deals ever made. `rm_deals` keeps each deal's
last state only to turn the next event into a change of the aggregates (subtract the
old contribution, add the new one); `rm_open_tasks` does the same for "overdue now".
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


# Sums of deal amounts: 18 digits like the deals service, with room for many deals.
SUM = sa.Numeric(30, 4)
# amount x probability / 100: two more decimals than an amount.
WEIGHTED = sa.Numeric(32, 6)


class DealState(Base):
    """A deal's last known state: only what the aggregates are keyed by."""

    __tablename__ = "rm_deals"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    deal_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(sa.Text)
    stage_id: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text)
    owner_id: Mapped[str] = mapped_column(sa.Text)
    owner_team: Mapped[str] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.Text)
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 4))
    currency: Mapped[str] = mapped_column(sa.Text)
    expected_close_date: Mapped[str] = mapped_column(sa.Text)
    win_probability: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Stage ids the deal has entered (the funnel's conversion counts each once per deal).
    reached: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))
    # When the newest change applied to this row happened: an older change arriving
    # later (redelivered) does not move the deal back (see projector.next_state).
    changed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    # Why a lost deal was lost (the tenant's wording), for the lost-reasons report.
    lost_reason: Mapped[str] = mapped_column(sa.Text, default="", server_default="")


def _dims() -> list[sa.Column[str]]:
    return [
        sa.Column("pipeline_id", sa.Text, primary_key=True),
        sa.Column("owner_id", sa.Text, primary_key=True),
        sa.Column("owner_team", sa.Text, primary_key=True),
    ]


# Current stage of deals created on `created_day`: count and amount per currency.
stage_now = sa.Table(
    "agg_stage_now",
    Base.metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("created_day", sa.Date, primary_key=True),
    *_dims(),
    sa.Column("stage_id", sa.Text, primary_key=True),
    sa.Column("currency", sa.Text, primary_key=True),
    sa.Column("deals", sa.BigInteger, nullable=False),
    sa.Column("amount", SUM, nullable=False),
)

# Deals created on `created_day` that ever entered a stage.
stage_reach = sa.Table(
    "agg_stage_reach",
    Base.metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("created_day", sa.Date, primary_key=True),
    *_dims(),
    sa.Column("stage_id", sa.Text, primary_key=True),
    sa.Column("deals", sa.BigInteger, nullable=False),
)

# Deals created on `created_day` per set of stages they have entered (`path`: the stage
# ids sorted and joined by ","). The funnel's conversion from a stage counts a deal that
# reached any later non-lost stage, skipped stages included; stage order is the
# pipeline's (tenant configuration read at query time), so only the set is kept.
stage_paths = sa.Table(
    "agg_stage_paths",
    Base.metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("created_day", sa.Date, primary_key=True),
    *_dims(),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("deals", sa.BigInteger, nullable=False),
)

# Deals created on `created_day` by source and current status (lead sources).
cohort = sa.Table(
    "agg_cohort",
    Base.metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("created_day", sa.Date, primary_key=True),
    *_dims(),
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, primary_key=True),
    sa.Column("deals", sa.BigInteger, nullable=False),
)

# Deals closed (won or lost) on `closed_day`, amount per currency (revenue, win rate).
closed = sa.Table(
    "agg_closed",
    Base.metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("closed_day", sa.Date, primary_key=True),
    *_dims(),
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("outcome", sa.Text, primary_key=True),
    sa.Column("currency", sa.Text, primary_key=True),
    sa.Column("deals", sa.BigInteger, nullable=False),
    sa.Column("amount", SUM, nullable=False),
)

# Deals lost on `closed_day` per reason, amount per currency (the lost-reasons report).
lost = sa.Table(
    "agg_lost",
    Base.metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("closed_day", sa.Date, primary_key=True),
    *_dims(),
    sa.Column("reason", sa.Text, primary_key=True),
    sa.Column("currency", sa.Text, primary_key=True),
    sa.Column("deals", sa.BigInteger, nullable=False),
    sa.Column("amount", SUM, nullable=False),
)

# Sales cycle histogram: deals won on `closed_day` after `days` whole days.
cycles = sa.Table(
    "agg_cycles",
    Base.metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("closed_day", sa.Date, primary_key=True),
    *_dims(),
    sa.Column("days", sa.Integer, primary_key=True),
    sa.Column("deals", sa.BigInteger, nullable=False),
)

# Open deals by expected close date ("" = none): amount and amount x probability.
forecast = sa.Table(
    "agg_forecast",
    Base.metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("close_date", sa.Text, primary_key=True),
    *_dims(),
    sa.Column("currency", sa.Text, primary_key=True),
    sa.Column("deals", sa.BigInteger, nullable=False),
    sa.Column("amount", SUM, nullable=False),
    sa.Column("weighted", WEIGHTED, nullable=False),
)

# Per-user activity per day: kind is call, task_on_time or task_late.
activity = sa.Table(
    "agg_activity",
    Base.metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("owner_id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)

# Payments received on `paid_day` (reversed ones taken back out), amount per currency.
payments = sa.Table(
    "agg_payments",
    Base.metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("paid_day", sa.Date, primary_key=True),
    *_dims(),
    sa.Column("method", sa.Text, primary_key=True),
    sa.Column("currency", sa.Text, primary_key=True),
    sa.Column("payments", sa.BigInteger, nullable=False),
    sa.Column("amount", SUM, nullable=False),
)

AGGREGATES = (
    stage_now,
    stage_reach,
    stage_paths,
    cohort,
    closed,
    lost,
    cycles,
    forecast,
    activity,
    payments,
)


class PaymentState(Base):
    """A counted payment's aggregate key, so its reversal takes out exactly what it added
    (even if the deal changed owner in between)."""

    __tablename__ = "rm_payments"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    payment_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    paid_day: Mapped[date] = mapped_column(sa.Date)
    pipeline_id: Mapped[str] = mapped_column(sa.Text)
    owner_id: Mapped[str] = mapped_column(sa.Text)
    owner_team: Mapped[str] = mapped_column(sa.Text)
    method: Mapped[str] = mapped_column(sa.Text)
    currency: Mapped[str] = mapped_column(sa.Text)
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 4))


class OpenTask(Base):
    """A task not yet completed, and whether it went overdue (for "overdue now")."""

    __tablename__ = "rm_open_tasks"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    task_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    assignee_id: Mapped[str] = mapped_column(sa.Text)
    overdue: Mapped[bool] = mapped_column(sa.Boolean, default=False)

    __table_args__ = (sa.Index("ix_rm_open_tasks_assignee", "tenant_id", "assignee_id"),)


class Member(Base):
    """A user's team as the last deal event showed it (team filters of activity)."""

    __tablename__ = "rm_members"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    team: Mapped[str] = mapped_column(sa.Text)


open_tasks: sa.Table = OpenTask.__table__  # type: ignore[assignment]
members: sa.Table = Member.__table__  # type: ignore[assignment]

# Tables the rebuild recreates and swaps (all of the read model, not the kit's).
READ_MODEL: tuple[str, ...] = (
    "rm_deals",
    *(table.name for table in AGGREGATES),
    "rm_open_tasks",
    "rm_members",
    "rm_payments",
)


def day_of(value: datetime) -> date:
    """Days are UTC days."""
    return value.date()
