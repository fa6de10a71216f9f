"""Tables of the tasks service (one database per region)."""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TEXT_ARRAY = ARRAY(sa.Text)
INT_ARRAY = ARRAY(sa.Integer)


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


class User(Base):
    """An employee of the tenant (directory entry); every region holds the same copy."""

    __tablename__ = "users"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    display_name: Mapped[str] = mapped_column(sa.Text, default="")
    email: Mapped[str] = mapped_column(sa.Text, default="")
    team: Mapped[str] = mapped_column(sa.Text, default="")
    manager_id: Mapped[str] = mapped_column(sa.Text, default="")
    job_roles: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    time_zone: Mapped[str] = mapped_column(sa.Text, default="UTC")
    locale: Mapped[str] = mapped_column(sa.Text, default="en")
    # "HH:MM" in their zone, both or neither. Empty (and days empty) means the user set
    # none, so notifications use the tenant's default hours: no 09:00 is invented here.
    working_hours_start: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    working_hours_end: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    working_days: Mapped[list[int]] = mapped_column(INT_ARRAY, default=list, server_default="{}")
    # E.164; SMS notifications go there.
    phone: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    # Where the user works ("" = not said): role assignment prefers the client's region.
    home_region: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        sa.Index("ix_users_tenant_team", "tenant_id", "team"),
        sa.Index("ix_users_job_roles", "job_roles", postgresql_using="gin"),
    )


class CalendarFeed(Base):
    """A user's iCalendar feed secret (only its SHA-256), one per user."""

    __tablename__ = "calendar_feeds"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    secret_hash: Mapped[str] = mapped_column(sa.Text, unique=True)
    # The roles and team of the token that made it: the feed reads tasks as that user.
    roles: Mapped[list[str]] = mapped_column(TEXT_ARRAY, default=list)
    team: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.Text, default="task")
    title: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    assignee_id: Mapped[str] = mapped_column(sa.Text)
    assignee_team: Mapped[str] = mapped_column(sa.Text, default="")
    deal_id: Mapped[str] = mapped_column(sa.Text, default="")
    contact_id: Mapped[str] = mapped_column(sa.Text, default="")
    priority: Mapped[str] = mapped_column(sa.Text, default="normal")
    status: Mapped[str] = mapped_column(sa.Text, default="open")
    due_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # The zone the due time is shown in (the assignee's, unless given explicitly).
    time_zone: Mapped[str] = mapped_column(sa.Text, default="UTC")
    created_by: Mapped[str] = mapped_column(sa.Text, default="")
    rule_id: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    completed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    completed_on_time: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # Set in the same transaction that emits task.overdue, so it is emitted once.
    overdue_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    version: Mapped[int] = mapped_column(sa.Integer, default=1)

    __table_args__ = (
        sa.Index("ix_tasks_tenant_id_id", "tenant_id", "id"),
        sa.Index("ix_tasks_tenant_assignee_status", "tenant_id", "assignee_id", "status"),
        sa.Index("ix_tasks_tenant_team", "tenant_id", "assignee_team"),
        sa.Index("ix_tasks_tenant_contact", "tenant_id", "contact_id"),
        sa.Index("ix_tasks_tenant_deal", "tenant_id", "deal_id"),
        # What the overdue scheduler scans: only open tasks not yet reported.
        sa.Index(
            "ix_tasks_overdue_scan",
            "due_at",
            postgresql_where=sa.text("status = 'open' AND overdue_at IS NULL"),
        ),
    )


class AutomationRule(Base):
    """Tenant configuration: on `event_type` with `conditions`, run `actions`."""

    __tablename__ = "automation_rules"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    name: Mapped[str] = mapped_column(sa.Text, default="")
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    event_type: Mapped[str] = mapped_column(sa.Text)
    conditions: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    created_by: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    version: Mapped[int] = mapped_column(sa.Integer, default=1)

    __table_args__ = (sa.Index("ix_automation_rules_tenant_event", "tenant_id", "event_type"),)


class ReminderSent(Base):
    """One reminder.due per (contact, date kind, occurrence, days before), across replicas."""

    __tablename__ = "reminders_sent"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    contact_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    # The occurrence the reminder is about (this year's birthday), not the birth date.
    date: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    days_before: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(sa.Text, default="")
    sent_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())

    __table_args__ = (sa.Index("ix_reminders_sent_contact", "contact_id"),)
