"""Rows to protobuf messages; the only place that knows both shapes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from google.protobuf import timestamp_pb2

from crm_api.crm.directory.v1 import directory_pb2
from crm_api.crm.tasks.v1 import tasks_pb2 as pb
from crm_tasks import due, models


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def from_timestamp(value: timestamp_pb2.Timestamp) -> datetime:
    return value.ToDatetime(tzinfo=UTC)


def task_to_pb(row: models.Task) -> pb.Task:
    return pb.Task(
        id=row.id,
        region=row.id.split("_", 1)[0],
        kind=row.kind,
        title=row.title,
        description=row.description,
        assignee_id=row.assignee_id,
        assignee_team=row.assignee_team,
        deal_id=row.deal_id,
        contact_id=row.contact_id,
        priority=row.priority,
        status=row.status,
        due_at=timestamp(row.due_at),
        time_zone=row.time_zone,
        due_local=due.to_local(row.due_at, row.time_zone) if row.due_at else "",
        created_by=row.created_by,
        rule_id=row.rule_id,
        created_at=timestamp(row.created_at),
        completed_at=timestamp(row.completed_at),
        completed_on_time=row.completed_on_time,
        overdue_at=timestamp(row.overdue_at),
        version=row.version,
    )


def user_to_pb(row: models.User) -> directory_pb2.User:
    return directory_pb2.User(
        id=row.id,
        display_name=row.display_name,
        email=row.email,
        team=row.team,
        manager_id=row.manager_id,
        job_roles=row.job_roles,
        time_zone=row.time_zone,
        locale=row.locale,
        working_hours_start=row.working_hours_start,
        working_hours_end=row.working_hours_end,
        working_days=row.working_days,
        phone=row.phone,
        home_region=row.home_region,
    )


def rule_to_pb(row: models.AutomationRule) -> pb.AutomationRule:
    return pb.AutomationRule(
        id=row.id,
        name=row.name,
        enabled=row.enabled,
        trigger=pb.Trigger(event_type=row.event_type, conditions=row.conditions),
        actions=[pb.Action(**action) for action in row.actions],
        created_at=timestamp(row.created_at),
        updated_at=timestamp(row.updated_at),
        version=row.version,
    )


def row_to_dict(row: Any) -> dict[str, Any]:
    """Every column of an ORM row as JSON-ready data (for privacy exports)."""
    data: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        data[column.key] = value.isoformat() if isinstance(value, (datetime, date)) else value
    return data
