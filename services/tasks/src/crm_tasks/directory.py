"""The tenant's users (employees): teams, managers, job roles, zones and working hours.

The gateway writes the same user to every region; this is the region's copy, read by
task assignment, due-time calculation and automation (round robin, managers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

import phonenumbers
import sqlalchemy as sa
from babel import Locale, UnknownLocaleError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.directory.v1 import directory_pb2 as pb
from crm_api.crm.events.v1 import tasks_pb2 as task_events
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied
from crm_kit.messaging import Outbox
from crm_tasks import due, models
from crm_tasks.convert import user_to_pb

JOB_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")
MAX_TEXT = 200
REGION = re.compile(r"^[a-z][a-z0-9-]{0,19}$")


def canonical_locale(tag: str) -> str | None:
    """A BCP 47 tag Babel knows, in canonical form ("pt-br" -> "pt-BR"); None if unknown."""
    try:
        locale = Locale.parse(tag.strip(), sep="-")
    except (ValueError, TypeError, UnknownLocaleError):
        return None
    return "-".join(
        p for p in (locale.language, locale.script, locale.territory, locale.variant) if p
    )


def validate_user(user: pb.User) -> dict[str, object]:
    """The stored values of a user, defaults applied; InvalidArgument naming every bad field."""
    violations: list[FieldViolation] = []
    user_id = user.id.strip()
    if not USER_ID.match(user_id):
        violations.append(FieldViolation("id", "required: the user's id (the token's sub)"))
    values: dict[str, object] = {"id": user_id}
    for name in ("display_name", "team"):
        text = getattr(user, name).strip()
        if len(text) > MAX_TEXT:
            violations.append(FieldViolation(name, f"at most {MAX_TEXT} characters"))
        values[name] = text
    email = user.email.strip()
    if email:
        try:
            email = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            violations.append(FieldViolation("email", str(exc)))
    values["email"] = email
    manager = user.manager_id.strip()
    if manager and (manager == user_id or not USER_ID.match(manager)):
        violations.append(FieldViolation("manager_id", "another user's id"))
    values["manager_id"] = manager
    roles: list[str] = []
    for i, role in enumerate(user.job_roles):
        role = role.strip().lower()
        if not JOB_ROLE.match(role):
            violations.append(
                FieldViolation(f"job_roles[{i}]", "a lower-case word, e.g. measurer or installer")
            )
        elif role not in roles:
            roles.append(role)
    values["job_roles"] = roles
    zone = user.time_zone.strip() or due.DEFAULT_ZONE
    if not due.is_zone(zone):
        violations.append(FieldViolation("time_zone", "an IANA zone, e.g. Europe/Berlin"))
    values["time_zone"] = zone
    locale = canonical_locale(user.locale or "en")
    if locale is None:
        violations.append(FieldViolation("locale", "a BCP 47 language tag, e.g. pt-BR"))
    values["locale"] = locale or "en"
    # Hours and days left empty stay empty: the tenant's default applies to them (in the
    # notifications service), and readers here fall back to due.DEFAULT_WORKING_DAYS.
    start, end = user.working_hours_start.strip(), user.working_hours_end.strip()
    start_at, end_at = due.parse_hhmm(start), due.parse_hhmm(end, end=True)
    if start and start_at is None:
        violations.append(FieldViolation("working_hours_start", "expected HH:MM, 00:00 to 23:59"))
    if end and end_at is None:
        violations.append(FieldViolation("working_hours_end", "expected HH:MM, 00:01 to 24:00"))
    if bool(start) != bool(end):
        # Half a pair combined with the tenant's other half could be no window at all.
        missing = "working_hours_end" if start else "working_hours_start"
        violations.append(
            FieldViolation(missing, "give the start and the end together, or neither")
        )
    if start_at is not None and end_at is not None and start_at >= end_at:
        violations.append(FieldViolation("working_hours_end", "must be after the start"))
    values["working_hours_start"], values["working_hours_end"] = start, end
    days: list[int] = []
    for i, day in enumerate(user.working_days):
        if not 1 <= day <= 7:
            violations.append(FieldViolation(f"working_days[{i}]", "1 (Monday) to 7 (Sunday)"))
        elif day not in days:
            days.append(day)
    values["working_days"] = sorted(days)
    phone = user.phone.strip()
    if phone:
        try:
            parsed = phonenumbers.parse(phone, None)
        except phonenumbers.NumberParseException:
            parsed = None
        if parsed is None or not phonenumbers.is_valid_number(parsed):
            violations.append(FieldViolation("phone", "an E.164 number, e.g. +4915112345678"))
        else:
            phone = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    values["phone"] = phone
    home_region = user.home_region.strip()
    if home_region and not REGION.match(home_region):
        violations.append(FieldViolation("home_region", "a region name, e.g. eu"))
    values["home_region"] = home_region
    if violations:
        raise InvalidArgument(violations)
    return values


async def put_user(
    session: AsyncSession, principal: Principal, outbox: Outbox, user: pb.User
) -> pb.User:
    if not principal.has_role("admin"):
        raise PermissionDenied("only admins change the directory")
    values = validate_user(user)
    before = await find(session, principal.tenant_id, str(values["id"]))
    previous_team = before.team if before is not None else ""
    values["updated_at"] = datetime.now(UTC)
    statement = pg_insert(models.User).values(tenant_id=principal.tenant_id, **values)
    statement = statement.on_conflict_do_update(
        index_elements=[models.User.tenant_id, models.User.id],
        set_={name: statement.excluded[name] for name in values if name != "id"},
    )
    await session.execute(statement)
    row = await find(session, principal.tenant_id, str(values["id"]))
    assert row is not None
    if row.team != previous_team or before is None:
        # Records follow their owner: this service's tasks at once, contacts' and deals'
        # records on the event (crm_kit.teams), so managers see their current members'.
        await session.execute(
            sa.update(models.Task)
            .where(models.Task.tenant_id == principal.tenant_id, models.Task.assignee_id == row.id)
            .values(assignee_team=row.team)
        )
        await outbox.add(
            session,
            principal,
            "user",
            "team_changed",
            task_events.UserTeamChanged(user_id=row.id, team=row.team),
        )
    return user_to_pb(row)


async def find(session: AsyncSession, tenant_id: str, user_id: str) -> models.User | None:
    if not user_id:
        return None
    return await session.get(models.User, (tenant_id, user_id), populate_existing=True)


async def get_user(session: AsyncSession, principal: Principal, user_id: str) -> pb.User:
    row = await find(session, principal.tenant_id, user_id.strip())
    if row is None:
        raise NotFound(f"user {user_id} not found")
    return user_to_pb(row)


async def list_users(
    session: AsyncSession, principal: Principal, request: pb.ListUsersRequest
) -> pb.ListUsersResponse:
    stmt = sa.select(models.User).where(models.User.tenant_id == principal.tenant_id)
    if request.job_role:
        stmt = stmt.where(models.User.job_roles.contains([request.job_role.strip().lower()]))
    if request.team:
        stmt = stmt.where(models.User.team == request.team.strip())
    rows = await session.scalars(stmt.order_by(models.User.id))
    return pb.ListUsersResponse(users=[user_to_pb(row) for row in rows])


async def users_with_role(session: AsyncSession, tenant_id: str, role: str) -> Sequence[str]:
    rows = await session.scalars(
        sa.select(models.User.id)
        .where(models.User.tenant_id == tenant_id, models.User.job_roles.contains([role]))
        .order_by(models.User.id)
    )
    return list(rows)


async def least_busy_with_role(
    session: AsyncSession, tenant_id: str, role: str, region: str = ""
) -> str | None:
    """Round robin by load: the user with `role` who has the fewest open tasks (ties by id).

    With `region` (the client's), the users whose home region it is come first, then
    those who gave no home region, and only then those of other regions: a measurer in
    São Paulo is not sent to Berlin while one in Berlin is free, but a tenant that has
    the role only elsewhere still gets the task done.
    """
    open_tasks = (
        sa.select(sa.func.count())
        .where(
            models.Task.tenant_id == tenant_id,
            models.Task.assignee_id == models.User.id,
            models.Task.status == "open",
        )
        .correlate(models.User)
        .scalar_subquery()
    )
    return await session.scalar(
        sa.select(models.User.id)
        .where(models.User.tenant_id == tenant_id, models.User.job_roles.contains([role]))
        .order_by(
            sa.case(
                (models.User.home_region == region, 0), (models.User.home_region == "", 1), else_=2
            ),
            open_tasks,
            models.User.id,
        )
        .limit(1)
    )
