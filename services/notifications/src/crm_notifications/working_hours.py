"""The tenant's default working hours (API side, and what the dispatcher reads).

Messages wait for the recipient's working hours in their own zone. A user's directory
entry may set their own; whatever it leaves unset, and every campaign contact (who has
no directory entry), follows this default. With none stored the built-in 09:00-18:00
Monday to Friday applies.
"""

from __future__ import annotations

from google.protobuf import timestamp_pb2
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.notifications.v1 import notifications_pb2 as pb
from crm_kit import clock
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, InvalidArgument, PermissionDenied
from crm_notifications import models
from crm_notifications.quiet import (
    BUILTIN,
    END_OF_DAY,
    Schedule,
    format_hhmm,
    parse_hhmm,
    weekdays,
)

_hhmm = format_hhmm


def validate(hours: pb.WorkingHours) -> Schedule:
    """The schedule `hours` describes; InvalidArgument naming every bad field."""
    violations: list[FieldViolation] = []
    start, end = parse_hhmm(hours.start.strip()), parse_hhmm(hours.end.strip())
    if start is None or start == END_OF_DAY:
        start = None
        violations.append(FieldViolation("start", "expected HH:MM from 00:00 to 23:59"))
    if end is None:
        violations.append(FieldViolation("end", "expected HH:MM from 00:01 to 24:00"))
    if start is not None and end is not None and start >= end:
        violations.append(FieldViolation("end", "must be after the start"))
    for i, day in enumerate(hours.days):
        if not 1 <= day <= 7:
            violations.append(FieldViolation(f"days[{i}]", "1 (Monday) to 7 (Sunday)"))
    if not hours.days:
        # No working day at all would hold every non-urgent message forever.
        violations.append(FieldViolation("days", "at least one day, 1 (Monday) to 7 (Sunday)"))
    if violations or start is None or end is None:
        raise InvalidArgument(violations)
    return Schedule(start, end, weekdays(hours.days))


async def _row(session: AsyncSession, tenant: str) -> models.WorkingHoursDefault | None:
    return await session.get(models.WorkingHoursDefault, tenant, populate_existing=True)


async def tenant_schedule(session: AsyncSession, tenant: str) -> Schedule:
    """The default the dispatcher applies for `tenant` (the built-in one if none is set)."""
    row = await _row(session, tenant)
    if row is None:
        return BUILTIN
    start, end = parse_hhmm(row.start), parse_hhmm(row.end)
    if start is None or end is None:  # never stored that way (validated on write)
        return BUILTIN
    return Schedule(start, end, weekdays(row.days) or BUILTIN.days)


def _to_pb(row: models.WorkingHoursDefault | None) -> pb.WorkingHours:
    if row is None:
        return pb.WorkingHours(
            start=_hhmm(BUILTIN.start),
            end=_hhmm(BUILTIN.end),
            days=list(BUILTIN.days),
            configured=False,
        )
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(row.updated_at)
    return pb.WorkingHours(
        start=row.start,
        end=row.end,
        days=list(row.days),
        configured=True,
        updated_at=stamp,
        updated_by=row.updated_by,
    )


async def get(session: AsyncSession, principal: Principal) -> pb.WorkingHours:
    return _to_pb(await _row(session, principal.tenant_id))


async def put(
    session: AsyncSession, principal: Principal, hours: pb.WorkingHours
) -> pb.WorkingHours:
    if not principal.has_role("admin"):
        raise PermissionDenied("only admins set the tenant's working hours")
    schedule = validate(hours)
    values = {
        "start": _hhmm(schedule.start),
        "end": _hhmm(schedule.end),
        "days": list(schedule.days),
        "updated_by": principal.user_id,
        "updated_at": clock.now(),
    }
    statement = pg_insert(models.WorkingHoursDefault).values(
        tenant_id=principal.tenant_id, **values
    )
    await session.execute(
        statement.on_conflict_do_update(index_elements=["tenant_id"], set_=values)
    )
    return _to_pb(await _row(session, principal.tenant_id))
