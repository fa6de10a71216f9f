"""Rule validation names the offending field (no database needed for these checks)."""

from __future__ import annotations

from crm_api.crm.tasks.v1 import tasks_pb2 as pb
from crm_tasks.rules import validate_rule


def fields(rule: pb.AutomationRule) -> set[str]:
    return {v.field for v in validate_rule(rule)[1]}


def test_a_good_rule_has_no_violations_and_keeps_its_named_users() -> None:
    rule = pb.AutomationRule(
        name="Measurement",
        enabled=True,
        trigger=pb.Trigger(
            event_type="deals.deal.stage_changed",
            conditions={"pipeline_id": "p1", "to_stage_name": "Measurement"},
        ),
        actions=[
            pb.Action(type="create_task", title="Measure", assignee="role:measurer", due="+2h"),
            pb.Action(type="create_task", title="Visit", assignee="user:bob", due="field:at"),
            pb.Action(type="notify", recipients=["assignee", "owner_manager"], message="New"),
            pb.Action(type="set_field", field="deal.custom.measured", value="yes"),
        ],
    )
    checked, violations, users = validate_rule(rule)
    assert violations == []
    assert users == {"bob"}
    assert checked.actions[0]["priority"] == "normal"


def test_each_mistake_is_reported_by_field() -> None:
    rule = pb.AutomationRule(
        name="",
        trigger=pb.Trigger(event_type="contacts.contact.created", conditions={"stage": "x"}),
        actions=[
            pb.Action(type="create_task", title="", due="in a bit", field="deal.title"),
            pb.Action(type="create_task", title="T", assignee="boss", due="field:when"),
            pb.Action(type="notify", recipients=["assignee", "everyone"]),
            pb.Action(type="set_field", field="deal.title", value="x"),
            pb.Action(type="set_field", field="contact.lifecycle_stage", value="vip"),
            pb.Action(type="email"),
        ],
    )
    assert fields(rule) == {
        "name",
        "trigger.conditions.stage",
        "actions[0].title",
        "actions[0].due",
        "actions[0].field",
        "actions[1].assignee",
        "actions[1].due",
        "actions[2].recipients[1]",
        "actions[2].message",
        "actions[3].field",
        "actions[4].value",
        "actions[5].type",
    }


def test_unknown_event_type_and_no_actions() -> None:
    rule = pb.AutomationRule(name="x", trigger=pb.Trigger(event_type="deals.deal.moved"))
    assert fields(rule) == {"trigger.event_type", "actions"}


def test_assignee_recipients_need_an_assignee() -> None:
    rule = pb.AutomationRule(
        name="x",
        trigger=pb.Trigger(event_type="deals.deal.won"),
        actions=[pb.Action(type="notify", recipients=["assignee_manager"], message="m")],
    )
    assert fields(rule) == {"actions[0].recipients[0]"}
    overdue = pb.AutomationRule(
        name="x",
        trigger=pb.Trigger(event_type="tasks.task.overdue", conditions={"priority": "high"}),
        actions=[pb.Action(type="notify", recipients=["assignee_manager"], message="m")],
    )
    assert fields(overdue) == set()


def test_condition_values_are_checked() -> None:
    rule = pb.AutomationRule(
        name="x",
        trigger=pb.Trigger(
            event_type="tasks.task.completed",
            conditions={"priority": "asap", "rule_id": "r1", "on_time": "yes"},
        ),
        actions=[pb.Action(type="notify", recipients=["owner"], message="m")],
    )
    assert fields(rule) == {
        "trigger.conditions.priority",
        "trigger.conditions.rule_id",
        "trigger.conditions.on_time",
    }
