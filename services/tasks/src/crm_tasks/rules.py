"""Automation rules: tenant data saying "on this event, if these conditions hold, do
these actions". A rule is validated in full when saved, so a bad rule is refused with
field-named errors (`trigger.event_type`, `actions[0].due`, ...) instead of failing
silently when its event comes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import grpc
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_api.crm.deals.v1 import deals_pb2, deals_pb2_grpc
from crm_api.crm.events.v1 import envelope_pb2
from crm_api.crm.tasks.v1 import tasks_pb2 as pb
from crm_kit import clock, tenant_cache
from crm_kit.context import Principal
from crm_kit.errors import Conflict, FieldViolation, InvalidArgument, NotFound, PermissionDenied
from crm_kit.errors import Unavailable as UnavailableError
from crm_kit.ids import is_valid_id, new_id
from crm_kit.peers import Peers, system_principal
from crm_kit.tenant_cache import MISSING, TenantCache
from crm_tasks import directory, due, models
from crm_tasks.convert import rule_to_pb
from crm_tasks.tasks import KINDS, MAX_DESCRIPTION, MAX_TITLE, PRIORITIES

log = logging.getLogger(__name__)

DEAL_EVENTS = (
    "deals.deal.created",
    "deals.deal.stage_changed",
    "deals.deal.won",
    "deals.deal.lost",
    "deals.deal.paid_in_full",
)
TASK_EVENTS = ("tasks.task.overdue", "tasks.task.completed")
# Condition keys each trigger understands (values compare as strings, all must hold).
TRIGGERS: dict[str, frozenset[str]] = {
    "deals.deal.created": frozenset({"pipeline_id", "stage_id", "stage_name", "source"}),
    "deals.deal.stage_changed": frozenset(
        {
            "pipeline_id",
            "from_stage_id",
            "from_stage_name",
            "to_stage_id",
            "to_stage_name",
            "to_stage_kind",
        }
    ),
    "deals.deal.won": frozenset({"pipeline_id"}),
    "deals.deal.lost": frozenset({"pipeline_id"}),
    # The payments first covered the deal's amount (once per deal).
    "deals.deal.paid_in_full": frozenset({"pipeline_id"}),
    "contacts.contact.created": frozenset({"source", "lifecycle_stage"}),
    "tasks.task.overdue": frozenset({"priority", "kind", "rule_id"}),
    "tasks.task.completed": frozenset({"priority", "kind", "rule_id", "on_time"}),
}
# Stage-name conditions and the event field holding the stage id they are about.
STAGE_NAME_KEYS = {
    "stage_name": "stage_id",
    "to_stage_name": "to_stage_id",
    "from_stage_name": "from_stage_id",
}
ACTION_TYPES = ("create_task", "set_field", "notify")
# The contacts service's enumerations (contact.created carries them as lower_snake strings).
CONTACT_SOURCES = (
    "manual",
    "web_form",
    "import",
    "call",
    "email",
    "referral",
    "event",
    "other",
)
LIFECYCLE_STAGES = ("lead", "prospect", "customer", "churned")
DEAL_FIELDS = ("title", "description", "source", "expected_close_date")
CONTACT_FIELDS = ("lifecycle_stage", "source", "tags")
RECIPIENTS = ("owner", "owner_manager", "assignee", "assignee_manager")
MAX_ACTIONS = 20
MAX_MESSAGE = 1000

_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_TOKEN = re.compile(r"^\S{1,128}$")
# Fields of an Action and the action types that use them.
_ACTION_FIELDS = {
    "title": ("create_task",),
    "description": ("create_task",),
    "priority": ("create_task",),
    "assignee": ("create_task",),
    "due": ("create_task",),
    "field": ("set_field",),
    "value": ("set_field",),
    "recipients": ("notify",),
    "message": ("notify",),
}


@dataclass
class Checked:
    """A validated rule, ready to store."""

    name: str
    enabled: bool
    event_type: str
    conditions: dict[str, str]
    actions: list[dict[str, Any]] = field(default_factory=list)


def _check_condition(event_type: str, key: str, value: str) -> str | None:
    """What is wrong with one condition value, or None."""
    if not value:
        return "give a value"
    if key == "priority" and value not in PRIORITIES:
        return f"one of {', '.join(PRIORITIES)}"
    if key == "kind" and value not in KINDS:
        return f"one of {', '.join(KINDS)}"
    if key == "on_time" and value not in ("true", "false"):
        return "true or false"
    if key == "to_stage_kind" and value not in ("open", "won", "lost"):
        return "open, won or lost"
    if key == "rule_id" and not is_valid_id(value):
        return "a rule id"
    if (
        key == "source"
        and event_type == "contacts.contact.created"
        and value not in CONTACT_SOURCES
    ):
        return f"one of {', '.join(CONTACT_SOURCES)}"
    if key == "source" and not _SLUG.match(value):
        return "a lower_snake source, e.g. web_form"
    if key == "lifecycle_stage" and value not in LIFECYCLE_STAGES:
        return f"one of {', '.join(LIFECYCLE_STAGES)}"
    if key.endswith("_name") and len(value) > MAX_TITLE:
        return f"at most {MAX_TITLE} characters"
    if key.endswith("_id") and not _TOKEN.match(value):
        return "an id"
    return None


def _is_person(spec: str, allowed: Sequence[str]) -> bool:
    if spec in allowed:
        return True
    kind, _, rest = spec.partition(":")
    if kind == "user":
        return bool(directory.USER_ID.match(rest))
    if kind == "role":
        return bool(directory.JOB_ROLE.match(rest))
    return False


def _check_set_field(
    event_type: str, name: str, value: str, at: str, violations: list[FieldViolation]
) -> None:
    entity, _, attribute = name.partition(".")
    if entity == "deal":
        if event_type not in DEAL_EVENTS + TASK_EVENTS:
            violations.append(FieldViolation(f"{at}.field", f"{event_type} is not about a deal"))
        elif attribute.startswith("custom."):
            if not _KEY.match(attribute.removeprefix("custom.")):
                violations.append(FieldViolation(f"{at}.field", "deal.custom.<key>, a word key"))
        elif attribute not in DEAL_FIELDS:
            violations.append(
                FieldViolation(
                    f"{at}.field",
                    "one of " + ", ".join(f"deal.{f}" for f in DEAL_FIELDS) + ", deal.custom.<key>",
                )
            )
        elif attribute == "expected_close_date":
            try:
                date.fromisoformat(value)
            except ValueError:
                violations.append(FieldViolation(f"{at}.value", "expected YYYY-MM-DD"))
    elif entity == "contact":
        if event_type in ("deals.deal.won", "deals.deal.lost") or attribute not in CONTACT_FIELDS:
            violations.append(
                FieldViolation(
                    f"{at}.field",
                    "one of "
                    + ", ".join(f"contact.{f}" for f in CONTACT_FIELDS)
                    + ", on an event about a contact",
                )
            )
        elif attribute == "lifecycle_stage" and value not in LIFECYCLE_STAGES:
            violations.append(
                FieldViolation(f"{at}.value", f"one of {', '.join(LIFECYCLE_STAGES)}")
            )
        elif attribute == "source" and value not in CONTACT_SOURCES:
            violations.append(FieldViolation(f"{at}.value", f"one of {', '.join(CONTACT_SOURCES)}"))
        elif attribute == "tags" and not all(t.strip() for t in value.split(",")):
            violations.append(FieldViolation(f"{at}.value", "comma-separated tags to add"))
    else:
        violations.append(
            FieldViolation(f"{at}.field", "deal.<field>, deal.custom.<key> or contact.<field>")
        )
    if not value.strip():
        violations.append(FieldViolation(f"{at}.value", "required"))
    elif len(value) > MAX_MESSAGE:
        violations.append(FieldViolation(f"{at}.value", f"at most {MAX_MESSAGE} characters"))


def validate_rule(rule: pb.AutomationRule) -> tuple[Checked, list[FieldViolation], set[str]]:
    """The rule as stored, every violation, and the user ids it names (to look up)."""
    violations: list[FieldViolation] = []
    users: set[str] = set()
    name = rule.name.strip()
    if not name:
        violations.append(FieldViolation("name", "required"))
    elif len(name) > MAX_TITLE:
        violations.append(FieldViolation("name", f"at most {MAX_TITLE} characters"))
    event_type = rule.trigger.event_type.strip()
    allowed_keys = TRIGGERS.get(event_type)
    conditions: dict[str, str] = {}
    if allowed_keys is None:
        violations.append(
            FieldViolation("trigger.event_type", f"one of {', '.join(sorted(TRIGGERS))}")
        )
    else:
        for key, raw in sorted(rule.trigger.conditions.items()):
            value = raw.strip()
            where = f"trigger.conditions.{key}"
            if key not in allowed_keys:
                violations.append(
                    FieldViolation(
                        where, f"{event_type} understands {', '.join(sorted(allowed_keys))}"
                    )
                )
            elif problem := _check_condition(event_type, key, value):
                violations.append(FieldViolation(where, problem))
            conditions[key] = value
    if not rule.actions:
        violations.append(FieldViolation("actions", "at least one action"))
    elif len(rule.actions) > MAX_ACTIONS:
        violations.append(FieldViolation("actions", f"at most {MAX_ACTIONS} actions"))
    actions: list[dict[str, Any]] = []
    has_assignee = event_type in TASK_EVENTS
    for i, action in enumerate(rule.actions):
        at = f"actions[{i}]"
        kind = action.type.strip()
        if kind not in ACTION_TYPES:
            violations.append(FieldViolation(f"{at}.type", f"one of {', '.join(ACTION_TYPES)}"))
            continue
        for name_, types in _ACTION_FIELDS.items():
            value = getattr(action, name_)
            if value and kind not in types:
                violations.append(FieldViolation(f"{at}.{name_}", f"not used by {kind}"))
        stored: dict[str, Any] = {"type": kind}
        if kind == "create_task":
            title = action.title.strip()
            if not title:
                violations.append(FieldViolation(f"{at}.title", "required"))
            elif len(title) > MAX_TITLE:
                violations.append(FieldViolation(f"{at}.title", f"at most {MAX_TITLE} characters"))
            description = action.description.strip()
            if len(description) > MAX_DESCRIPTION:
                violations.append(
                    FieldViolation(f"{at}.description", f"at most {MAX_DESCRIPTION} characters")
                )
            priority = action.priority.strip() or "normal"
            if priority not in PRIORITIES:
                violations.append(
                    FieldViolation(f"{at}.priority", f"one of {', '.join(PRIORITIES)}")
                )
            assignee = action.assignee.strip() or "owner"
            if not _is_person(assignee, ("owner",)):
                violations.append(
                    FieldViolation(f"{at}.assignee", "owner, user:<id> or role:<job role>")
                )
            elif assignee.startswith("user:"):
                users.add(assignee.removeprefix("user:"))
            due_spec = action.due.strip()
            parsed = due.parse_due_spec(due_spec) if due_spec else None
            if due_spec and parsed is None:
                violations.append(
                    FieldViolation(
                        f"{at}.due",
                        '"+15m", "+2h", "+3d" (up to a year), "next working day HH:MM" '
                        'or "field:<deal custom field>"',
                    )
                )
            elif parsed is not None and parsed.field and event_type not in DEAL_EVENTS:
                violations.append(FieldViolation(f"{at}.due", "field:<name> needs a deal event"))
            stored.update(
                title=title,
                description=description,
                priority=priority,
                assignee=assignee,
                due=due_spec,
            )
            has_assignee = True
        elif kind == "set_field":
            value = action.value.strip()
            if allowed_keys is not None:
                _check_set_field(event_type, action.field.strip(), value, at, violations)
            stored.update(field=action.field.strip(), value=value)
        else:
            recipients: list[str] = []
            if not action.recipients:
                violations.append(FieldViolation(f"{at}.recipients", "at least one recipient"))
            for j, raw in enumerate(action.recipients):
                recipient = raw.strip()
                if not _is_person(recipient, RECIPIENTS):
                    violations.append(
                        FieldViolation(
                            f"{at}.recipients[{j}]",
                            "owner, owner_manager, assignee, assignee_manager, user:<id> or "
                            "role:<job role>",
                        )
                    )
                elif recipient.startswith("assignee") and not has_assignee:
                    violations.append(
                        FieldViolation(
                            f"{at}.recipients[{j}]",
                            "no assignee here: use it on task events or after create_task",
                        )
                    )
                elif recipient.startswith("user:"):
                    users.add(recipient.removeprefix("user:"))
                recipients.append(recipient)
            message = action.message.strip()
            if not message:
                violations.append(FieldViolation(f"{at}.message", "required"))
            elif len(message) > MAX_MESSAGE:
                violations.append(
                    FieldViolation(f"{at}.message", f"at most {MAX_MESSAGE} characters")
                )
            stored.update(recipients=recipients, message=message)
        actions.append(stored)
    checked = Checked(
        name=name,
        enabled=rule.enabled,
        event_type=event_type,
        conditions=conditions,
        actions=actions,
    )
    return checked, violations, users


async def _check_users(
    session: AsyncSession, tenant_id: str, rule: Checked, users: set[str]
) -> list[FieldViolation]:
    """Named users must be in the directory (a typo would silently route work nowhere)."""
    if not users:
        return []
    known = set(
        await session.scalars(
            sa.select(models.User.id).where(
                models.User.tenant_id == tenant_id, models.User.id.in_(users)
            )
        )
    )
    violations: list[FieldViolation] = []
    for i, action in enumerate(rule.actions):
        specs = [("assignee", action.get("assignee", ""))] + [
            (f"recipients[{j}]", r) for j, r in enumerate(action.get("recipients", []))
        ]
        for where, spec in specs:
            if spec.startswith("user:") and spec.removeprefix("user:") not in known:
                violations.append(
                    FieldViolation(f"actions[{i}].{where}", "no such user in the directory")
                )
    return violations


async def _check_pipeline(
    peers: Peers, principal: Principal, conditions: dict[str, str]
) -> list[FieldViolation]:
    """With a pipeline_id condition, its stage ids and names must be stages of it.

    Asks the deals service; without one configured (a deployment without deals) the
    conditions are kept as given, and an unreachable deals service is a 503 to retry.
    """
    pipeline_id = conditions.get("pipeline_id")
    stage_keys = [k for k in conditions if k in STAGE_NAME_KEYS or k in STAGE_NAME_KEYS.values()]
    if not pipeline_id:
        return []
    try:
        stub = peers.stub("deals", deals_pb2_grpc.DealsServiceStub)
    except RuntimeError:
        return []
    try:
        pipeline: deals_pb2.Pipeline = await peers.call(
            stub.GetPipeline,
            deals_pb2.GetPipelineRequest(id=pipeline_id),
            system_principal(principal.tenant_id),
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            return [FieldViolation("trigger.conditions.pipeline_id", "no such pipeline")]
        if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise UnavailableError("the deals service is unavailable; try again") from exc
        # Anything else is not the rule's fault: keep it unchecked rather than refuse it.
        log.warning("rules: cannot check pipeline %s: %s", pipeline_id, exc.code().name)
        return []
    ids = {stage.id for stage in pipeline.stages}
    names = {stage.name.casefold() for stage in pipeline.stages}
    violations = []
    for key in stage_keys:
        value = conditions[key]
        known = names if key in STAGE_NAME_KEYS else ids
        if (value.casefold() if key in STAGE_NAME_KEYS else value) not in known:
            violations.append(
                FieldViolation(f"trigger.conditions.{key}", "not a stage of the pipeline")
            )
    return violations


def _require_writer(principal: Principal) -> None:
    if not principal.has_role("admin", "manager"):
        raise PermissionDenied("only admins and managers change automation rules")


async def _checked(
    session: AsyncSession, principal: Principal, peers: Peers, rule: pb.AutomationRule
) -> Checked:
    checked, violations, users = validate_rule(rule)
    violations += await _check_users(session, principal.tenant_id, checked, users)
    if not violations:
        violations += await _check_pipeline(peers, principal, checked.conditions)
    if violations:
        raise InvalidArgument(violations)
    return checked


# Which event types each tenant has enabled rules for, kept per process and dropped by the
# NOTIFY every rule change sends (crm_kit.tenant_cache): the automation consumer acks the
# events of a tenant with no rule for them without a transaction.
RULES = TenantCache()


async def wants_event(
    sessions: async_sessionmaker[AsyncSession], envelope: envelope_pb2.Envelope
) -> bool:
    """False when the tenant has no enabled rule for the event's type; True when it has,
    or when it cannot be told (the cache is not listening)."""
    if not RULES.listening:
        return True
    found = RULES.get(envelope.tenant_id, "event_types")
    if found is MISSING:
        generation = RULES.generation(envelope.tenant_id)
        async with sessions() as session:
            found = frozenset(
                await session.scalars(
                    sa.select(models.AutomationRule.event_type)
                    .where(
                        models.AutomationRule.tenant_id == envelope.tenant_id,
                        models.AutomationRule.enabled.is_(True),
                    )
                    .distinct()
                )
            )
        RULES.put(envelope.tenant_id, "event_types", found, generation)
    return envelope.event_type in found


async def create_rule(
    session: AsyncSession,
    principal: Principal,
    region: str,
    peers: Peers,
    rule: pb.AutomationRule,
) -> pb.AutomationRule:
    _require_writer(principal)
    # The gateway writes a tenant's rules to every region under one id, so that
    # rule_id conditions mean the same everywhere: a given id is kept.
    rule_id = rule.id.strip()
    if rule_id and not is_valid_id(rule_id):
        raise InvalidArgument.single("id", "malformed id: expected '<region>_<ULID>'")
    checked = await _checked(session, principal, peers, rule)
    if rule_id and await session.get(models.AutomationRule, rule_id) is not None:
        raise Conflict(f"rule {rule_id} already exists")
    now = clock.now()
    row = models.AutomationRule(
        id=rule_id or new_id(region),
        tenant_id=principal.tenant_id,
        name=checked.name,
        enabled=checked.enabled,
        event_type=checked.event_type,
        conditions=checked.conditions,
        actions=checked.actions,
        created_by=principal.user_id,
        created_at=now,
        updated_at=now,
        version=1,
    )
    session.add(row)
    await session.flush()
    await tenant_cache.changed(session, principal.tenant_id)
    return rule_to_pb(row)


async def _row(
    session: AsyncSession, principal: Principal, rule_id: str, *, for_update: bool = False
) -> models.AutomationRule:
    stmt = sa.select(models.AutomationRule).where(
        models.AutomationRule.id == rule_id.strip(),
        models.AutomationRule.tenant_id == principal.tenant_id,
    )
    row = await session.scalar(stmt.with_for_update() if for_update else stmt)
    if row is None:
        raise NotFound(f"rule {rule_id} not found")
    return row


async def get_rule(session: AsyncSession, principal: Principal, rule_id: str) -> pb.AutomationRule:
    return rule_to_pb(await _row(session, principal, rule_id))


async def update_rule(
    session: AsyncSession, principal: Principal, peers: Peers, rule: pb.AutomationRule
) -> pb.AutomationRule:
    """Replaces the rule's name, switch, trigger and actions (version-checked if given)."""
    _require_writer(principal)
    if not rule.id.strip():
        raise InvalidArgument.single("id", "required")
    row = await _row(session, principal, rule.id, for_update=True)
    if rule.version and rule.version != row.version:
        raise Conflict(f"rule {row.id} changed meanwhile (version {row.version})")
    checked = await _checked(session, principal, peers, rule)
    row.name = checked.name
    row.enabled = checked.enabled
    row.event_type = checked.event_type
    row.conditions = checked.conditions
    row.actions = checked.actions
    row.version += 1
    row.updated_at = clock.now()
    await session.flush()
    await tenant_cache.changed(session, principal.tenant_id)
    return rule_to_pb(row)


async def list_rules(session: AsyncSession, principal: Principal) -> pb.ListAutomationRulesResponse:
    rows = await session.scalars(
        sa.select(models.AutomationRule)
        .where(models.AutomationRule.tenant_id == principal.tenant_id)
        .order_by(models.AutomationRule.created_at, models.AutomationRule.id)
    )
    return pb.ListAutomationRulesResponse(rules=[rule_to_pb(row) for row in rows])


async def delete_rule(
    session: AsyncSession, principal: Principal, rule_id: str
) -> pb.DeleteAutomationRuleResponse:
    _require_writer(principal)
    row = await _row(session, principal, rule_id, for_update=True)
    await session.delete(row)
    await session.flush()
    await tenant_cache.changed(session, principal.tenant_id)
    return pb.DeleteAutomationRuleResponse()


async def rules_for(
    session: AsyncSession, tenant_id: str, event_type: str
) -> Sequence[models.AutomationRule]:
    return list(
        await session.scalars(
            sa.select(models.AutomationRule)
            .where(
                models.AutomationRule.tenant_id == tenant_id,
                models.AutomationRule.event_type == event_type,
                models.AutomationRule.enabled.is_(True),
            )
            .order_by(models.AutomationRule.created_at, models.AutomationRule.id)
        )
    )
