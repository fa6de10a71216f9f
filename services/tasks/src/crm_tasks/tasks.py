"""Tasks and reminders: validation, assignment, due times, listing and completion.

Every function takes the caller's Principal and scopes its queries to the tenant and
to what the caller may see; a task the caller may not see is NotFound. Business time
(due, overdue, completion) is `crm_kit.clock.now()`, never the wall clock, so tests
and demos can move it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.events.v1 import tasks_pb2 as events
from crm_api.crm.tasks.v1 import tasks_pb2 as pb
from crm_kit import clock
from crm_kit.context import Principal
from crm_kit.errors import (
    Conflict,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from crm_kit.ids import is_valid_id, new_id, region_of
from crm_kit.messaging import Outbox
from crm_kit.ownership import Reassignable
from crm_tasks import directory, due, models
from crm_tasks.convert import from_timestamp, task_to_pb, timestamp
from crm_tasks.links import Links, check_links

KINDS = ("task", "reminder")
PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = ("open", "done", "cancelled")
MAX_TITLE = 200
MAX_DESCRIPTION = 5000
MAX_PAGE = 200
DEFAULT_PAGE = 50

# Fields a client may name in an update mask (JSON names of the Task message).
UPDATABLE = frozenset(
    {
        "kind",
        "title",
        "description",
        "assignee_id",
        "deal_id",
        "contact_id",
        "priority",
        "status",
        "due_at",
        "time_zone",
    }
)


# ---------------------------------------------------------------- visibility


def visible(principal: Principal) -> sa.ColumnElement[bool]:
    """Tenant scope plus ownership: reps see their own, managers their team's."""
    task = models.Task
    scope: sa.ColumnElement[bool] = task.tenant_id == principal.tenant_id
    if principal.sees_whole_tenant:
        return scope
    # A manager without a team sees only their own (else every team-less task).
    if principal.has_role("manager") and principal.team:
        return sa.and_(
            scope,
            sa.or_(task.assignee_team == principal.team, task.assignee_id == principal.user_id),
        )
    return sa.and_(scope, task.assignee_id == principal.user_id)


async def zone_of(session: AsyncSession, tenant_id: str, user_id: str) -> str:
    """The user's zone from the directory; UTC for a user the directory does not know."""
    user = await directory.find(session, tenant_id, user_id)
    return user.time_zone if user is not None else due.DEFAULT_ZONE


async def resolve_assignee(
    session: AsyncSession,
    principal: Principal,
    requested: str,
    violations: list[FieldViolation],
) -> tuple[str, str, models.User | None]:
    """(assignee id, assignee team, directory entry) within what the caller may assign."""
    assignee = requested.strip() or principal.user_id
    if principal.has_role("admin", "integration"):
        user = await directory.find(session, principal.tenant_id, assignee)
        if user is not None and user.team:
            return assignee, user.team, user
        return assignee, principal.team if assignee == principal.user_id else "", user
    if principal.has_role("manager"):
        user = await directory.find(session, principal.tenant_id, assignee)
        if assignee == principal.user_id:
            return assignee, principal.team, user
        if user is not None and user.team and user.team != principal.team:
            violations.append(
                FieldViolation("assignee_id", "a manager assigns tasks only within their team")
            )
        return assignee, (user.team if user is not None and user.team else principal.team), user
    if assignee != principal.user_id:
        violations.append(
            FieldViolation("assignee_id", "a sales rep can only assign tasks to themselves")
        )
    user = await directory.find(session, principal.tenant_id, principal.user_id)
    return principal.user_id, principal.team, user


def _text(value: str, field: str, limit: int, violations: list[FieldViolation]) -> str:
    value = value.strip()
    if len(value) > limit:
        violations.append(FieldViolation(field, f"at most {limit} characters"))
    return value


def _choice(
    value: str, field: str, allowed: tuple[str, ...], violations: list[FieldViolation]
) -> str:
    if value not in allowed:
        violations.append(FieldViolation(field, f"must be one of {', '.join(allowed)}"))
    return value


def _linked_id(value: str, field: str, region: str, violations: list[FieldViolation]) -> str:
    """A deal or contact id: well formed and of this region (tasks live with the record)."""
    value = value.strip()
    if not value:
        return ""
    if not is_valid_id(value):
        violations.append(FieldViolation(field, "malformed id: expected '<region>_<ULID>'"))
    elif region_of(value) != region:
        violations.append(
            FieldViolation(
                field, f"the record lives in region {region_of(value)}; create the task there"
            )
        )
    return value


def _zone(value: str, violations: list[FieldViolation]) -> str:
    value = value.strip()
    if value and not due.is_zone(value):
        violations.append(FieldViolation("time_zone", "an IANA zone, e.g. Europe/Berlin"))
    return value


def _due(
    msg: pb.Task, due_local: str, zone_name: str, violations: list[FieldViolation]
) -> datetime | None:
    if due_local.strip() and msg.HasField("due_at"):
        violations.append(FieldViolation("due_local", "give either due_at or due_local, not both"))
        return None
    if due_local.strip():
        try:
            return due.local_to_utc(due_local, zone_name, "due_local")
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            return None
    if msg.HasField("due_at"):
        return from_timestamp(msg.due_at)
    return None


# ---------------------------------------------------------------- create


@dataclass
class NewTask:
    """A task to insert, already validated and resolved."""

    title: str
    assignee_id: str
    assignee_team: str = ""
    time_zone: str = due.DEFAULT_ZONE
    due_at: datetime | None = None
    kind: str = "task"
    description: str = ""
    deal_id: str = ""
    contact_id: str = ""
    priority: str = "normal"
    rule_id: str = ""


async def insert_task(
    session: AsyncSession, principal: Principal, outbox: Outbox, region: str, new: NewTask
) -> models.Task:
    """Stores a task and emits task.created in the same transaction (no permission check:
    callers are the API after its checks, automation and the scheduler)."""
    now = clock.now()
    row = models.Task(
        id=new_id(region),
        tenant_id=principal.tenant_id,
        kind=new.kind,
        title=new.title,
        description=new.description,
        assignee_id=new.assignee_id,
        assignee_team=new.assignee_team,
        deal_id=new.deal_id,
        contact_id=new.contact_id,
        priority=new.priority,
        status="open",
        due_at=new.due_at,
        time_zone=new.time_zone or due.DEFAULT_ZONE,
        created_by=principal.user_id,
        rule_id=new.rule_id,
        created_at=now,
        updated_at=now,
        completed_on_time=False,
        version=1,
    )
    session.add(row)
    await session.flush()
    await outbox.add(
        session,
        principal,
        "task",
        "created",
        events.TaskCreated(
            task_id=row.id,
            assignee_id=row.assignee_id,
            deal_id=row.deal_id,
            contact_id=row.contact_id,
            due_at=timestamp(row.due_at),
            priority=row.priority,
            rule_id=row.rule_id,
        ),
    )
    return row


async def create_task(
    session: AsyncSession,
    principal: Principal,
    region: str,
    outbox: Outbox,
    links: Links,
    request: pb.CreateTaskRequest,
) -> pb.Task:
    msg = request.task
    violations: list[FieldViolation] = []
    title = _text(msg.title, "title", MAX_TITLE, violations)
    if not title:
        violations.append(FieldViolation("title", "required"))
    description = _text(msg.description, "description", MAX_DESCRIPTION, violations)
    kind = _choice(msg.kind or "task", "kind", KINDS, violations)
    priority = _choice(msg.priority or "normal", "priority", PRIORITIES, violations)
    if msg.status not in ("", "open"):
        violations.append(FieldViolation("status", "a new task is open"))
    deal_id = _linked_id(msg.deal_id, "deal_id", region, violations)
    contact_id = _linked_id(msg.contact_id, "contact_id", region, violations)
    assignee, team, user = await resolve_assignee(session, principal, msg.assignee_id, violations)
    zone_name = _zone(msg.time_zone, violations) or (
        user.time_zone if user is not None else due.DEFAULT_ZONE
    )
    due_at = _due(msg, request.due_local, zone_name, violations)
    await check_links(links, principal, {"deal_id": deal_id, "contact_id": contact_id}, violations)
    if violations:
        raise InvalidArgument(violations)
    row = await insert_task(
        session,
        principal,
        outbox,
        region,
        NewTask(
            title=title,
            description=description,
            kind=kind,
            priority=priority,
            assignee_id=assignee,
            assignee_team=team,
            time_zone=zone_name,
            due_at=due_at,
            deal_id=deal_id,
            contact_id=contact_id,
        ),
    )
    return task_to_pb(row)


# ---------------------------------------------------------------- read and update


async def get_row(
    session: AsyncSession, principal: Principal, task_id: str, *, for_update: bool = False
) -> models.Task:
    region_of(task_id)
    stmt = sa.select(models.Task).where(models.Task.id == task_id, visible(principal))
    if for_update:
        stmt = stmt.with_for_update()
    row = await session.scalar(stmt)
    if row is None:
        raise NotFound(f"task {task_id} not found")
    return row


async def get_task(session: AsyncSession, principal: Principal, task_id: str) -> pb.Task:
    return task_to_pb(await get_row(session, principal, task_id))


async def update_task(
    session: AsyncSession,
    principal: Principal,
    region: str,
    outbox: Outbox,
    links: Links,
    request: pb.UpdateTaskRequest,
) -> pb.Task:
    msg = request.task
    mask = set(request.update_mask.paths)
    unknown = sorted(path for path in mask if path not in UPDATABLE)
    if unknown:
        raise InvalidArgument(
            [FieldViolation(path, "unknown or read-only field") for path in unknown]
        )
    if request.due_local.strip():
        mask.add("due_at")
    if not mask:
        raise InvalidArgument.single("update_mask", "name at least one field to change")
    row = await get_row(session, principal, msg.id, for_update=True)
    if msg.version and msg.version != row.version:
        raise Conflict(f"task {row.id} changed meanwhile (version {row.version})")
    violations: list[FieldViolation] = []
    values: dict[str, object] = {}
    if "title" in mask:
        values["title"] = _text(msg.title, "title", MAX_TITLE, violations)
        if not values["title"]:
            violations.append(FieldViolation("title", "required"))
    if "description" in mask:
        values["description"] = _text(msg.description, "description", MAX_DESCRIPTION, violations)
    if "kind" in mask:
        values["kind"] = _choice(msg.kind, "kind", KINDS, violations)
    if "priority" in mask:
        values["priority"] = _choice(msg.priority, "priority", PRIORITIES, violations)
    if "status" in mask:
        if msg.status == "done":
            violations.append(FieldViolation("status", "complete a task with CompleteTask"))
        else:
            values["status"] = _choice(msg.status, "status", ("open", "cancelled"), violations)
    for name in ("deal_id", "contact_id"):
        if name in mask:
            values[name] = _linked_id(getattr(msg, name), name, region, violations)
    zone_name = row.time_zone
    if "assignee_id" in mask:
        assignee, team, user = await resolve_assignee(
            session, principal, msg.assignee_id, violations
        )
        values["assignee_id"], values["assignee_team"] = assignee, team
        # Shown in the new assignee's zone unless the request names one.
        zone_name = user.time_zone if user is not None else due.DEFAULT_ZONE
    if "time_zone" in mask:
        zone_name = _zone(msg.time_zone, violations) or await zone_of(
            session, principal.tenant_id, str(values.get("assignee_id", row.assignee_id))
        )
    values["time_zone"] = zone_name
    if "due_at" in mask:
        values["due_at"] = _due(msg, request.due_local, zone_name, violations)
    changed_links: dict[str, str] = {
        name: str(values[name])
        for name in ("deal_id", "contact_id")
        if name in values and values[name] != getattr(row, name)
    }
    await check_links(links, principal, changed_links, violations)
    if violations:
        raise InvalidArgument(violations)
    if values.get("status") == "open" and row.status == "done":
        values["completed_at"], values["completed_on_time"] = None, False
    if "due_at" in values and values["due_at"] != row.due_at:
        # A rescheduled task is a new promise: it may go overdue (once) again.
        values["overdue_at"] = None
    changed = {name: value for name, value in values.items() if getattr(row, name) != value}
    if not changed:
        return task_to_pb(row)
    for name, value in changed.items():
        setattr(row, name, value)
    row.version += 1
    row.updated_at = clock.now()
    await session.flush()
    if changed.keys() & {"assignee_id", "deal_id", "contact_id", "status"}:
        # Who may read the task's contact and deal changes with it (crm_kit.task_access).
        await outbox.add(
            session,
            principal,
            "task",
            "changed",
            events.TaskChanged(
                task_id=row.id,
                assignee_id=row.assignee_id,
                deal_id=row.deal_id,
                contact_id=row.contact_id,
                status=row.status,
            ),
        )
    return task_to_pb(row)


# ---------------------------------------------------------------- list


def _encode_cursor(due_at: datetime | None, task_id: str) -> str:
    raw = json.dumps({"d": due_at.isoformat() if due_at else None, "i": task_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[datetime | None, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        due_at = datetime.fromisoformat(data["d"]) if data["d"] is not None else None
        return due_at, str(data["i"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument.single("page_token", "malformed page token") from exc


async def list_tasks(
    session: AsyncSession, principal: Principal, request: pb.ListTasksRequest
) -> pb.ListTasksResponse:
    """Tasks by due time (undated last), then id; keyset pagination on (due_at, id)."""
    page_size = request.page_size or DEFAULT_PAGE
    if not 1 <= page_size <= MAX_PAGE:
        raise InvalidArgument.single("page_size", f"between 1 and {MAX_PAGE}")
    task = models.Task
    conditions: list[sa.ColumnElement[bool]] = [visible(principal)]
    violations: list[FieldViolation] = []
    if request.assignee_id:
        conditions.append(task.assignee_id == request.assignee_id)
    if request.status:
        conditions.append(task.status == _choice(request.status, "status", STATUSES, violations))
    for name in ("deal_id", "contact_id"):
        value = getattr(request, name)
        if value:
            if not is_valid_id(value):
                violations.append(FieldViolation(name, "malformed id"))
            conditions.append(getattr(task, name) == value)
    if request.overdue_only:
        conditions += [task.status == "open", task.due_at < clock.now()]
    if request.HasField("due_before"):
        conditions.append(task.due_at < from_timestamp(request.due_before))
    if request.due:
        if request.due not in due.DUE_FILTERS:
            violations.append(FieldViolation("due", f"one of {', '.join(due.DUE_FILTERS)}"))
        else:
            me = await directory.find(session, principal.tenant_id, principal.user_id)
            start, end = due.due_window(
                request.due, clock.now(), me.time_zone if me is not None else due.DEFAULT_ZONE
            )
            conditions.append(task.due_at < end)
            if start is None:
                conditions.append(task.status == "open")
            else:
                conditions.append(task.due_at >= start)
    if violations:
        raise InvalidArgument(violations)
    if request.page_token:
        after_due, after_id = _decode_cursor(request.page_token)
        if after_due is None:
            conditions.append(sa.and_(task.due_at.is_(None), task.id > after_id))
        else:
            conditions.append(
                sa.or_(
                    task.due_at > after_due,
                    sa.and_(task.due_at == after_due, task.id > after_id),
                    task.due_at.is_(None),
                )
            )
    rows = list(
        await session.scalars(
            sa.select(task)
            .where(*conditions)
            .order_by(task.due_at.asc().nulls_last(), task.id)
            .limit(page_size + 1)
        )
    )
    more = len(rows) > page_size
    rows = rows[:page_size]
    return pb.ListTasksResponse(
        tasks=[task_to_pb(row) for row in rows],
        next_page_token=_encode_cursor(rows[-1].due_at, rows[-1].id) if more else "",
    )


# ---------------------------------------------------------------- complete


async def complete_task(
    session: AsyncSession, principal: Principal, outbox: Outbox, task_id: str
) -> pb.Task:
    row = await get_row(session, principal, task_id, for_update=True)
    if row.status == "done":
        raise FailedPrecondition(f"task {row.id} is already completed")
    if row.status != "open":
        raise FailedPrecondition(f"task {row.id} is {row.status}; reopen it first")
    now = clock.now()
    row.status = "done"
    row.completed_at = now
    row.completed_on_time = row.due_at is None or now <= row.due_at
    row.version += 1
    row.updated_at = now
    await session.flush()
    await outbox.add(
        session,
        principal,
        "task",
        "completed",
        events.TaskCompleted(
            task_id=row.id,
            assignee_id=row.assignee_id,
            on_time=row.completed_on_time,
            completed_at=timestamp(now),
            deal_id=row.deal_id,
            contact_id=row.contact_id,
        ),
    )
    return task_to_pb(row)


def reassignable(outbox: Outbox) -> Reassignable:
    """A leaving user's open tasks for crm_kit.ownership, each announced as
    task.changed (who may read its contact and deal follows the assignee)."""

    async def team_of(session: AsyncSession, tenant_id: str, user_id: str) -> str:
        user = await directory.find(session, tenant_id, user_id)
        return user.team if user is not None else ""

    async def announce(session: AsyncSession, principal: Principal, row: Any) -> None:
        await outbox.add(
            session,
            principal,
            "task",
            "changed",
            events.TaskChanged(
                task_id=row.id,
                assignee_id=row.assignee_id,
                deal_id=row.deal_id,
                contact_id=row.contact_id,
                status=row.status,
            ),
        )

    return Reassignable(
        kind="tasks",
        model=models.Task,
        is_open=lambda model: model.status == "open",
        team_of=team_of,
        announce=announce,
        owner_column="assignee_id",
        team_column="assignee_team",
    )
