"""/v1/tasks, /v1/automations and /v1/users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Response
from google.protobuf import field_mask_pb2

from crm_api.crm.directory.v1 import directory_pb2
from crm_api.crm.tasks.v1 import tasks_pb2 as pb
from crm_gateway import answers, schemas
from crm_gateway.access import (
    Caller,
    caller,
    idempotency_key,
    in_every_region,
    region_of_id,
    require_role,
)
from crm_gateway.pagination import Hit, merged_page
from crm_gateway.problems import invalid
from crm_kit.ids import new_id

router = APIRouter()


def _stub(who: Caller, region: str) -> Any:
    return who.stub("tasks", "tasks", region)


def _task_message(body: schemas.TaskIn, *, only_set: bool) -> tuple[pb.Task, list[str], str]:
    data = body.model_dump(exclude_unset=only_set, exclude_none=True)
    due_local = data.pop("due_local", "")
    due_at = data.pop("due_at", None)
    task = pb.Task(**data)
    if due_at:
        try:
            task.due_at.FromJsonString(due_at)
        except ValueError as exc:
            raise invalid("due_at", "expected an RFC 3339 timestamp with offset") from exc
        data["due_at"] = due_at
    return task, sorted(data), due_local


@router.post(
    "/v1/tasks",
    status_code=201,
    tags=["tasks"],
    summary="Create a task, stored with its deal or contact",
    **answers.ok(answers.Task, 201),
)
async def create_task(
    body: schemas.TaskIn,
    response: Response,
    who: Caller = Depends(caller),
    key: str | None = Header(None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    if body.deal_id:
        region = region_of_id(body.deal_id, "deal_id")
    elif body.contact_id:
        region = region_of_id(body.contact_id, "contact_id")
    else:
        region = who.principal.home_region
    task, _, due_local = _task_message(body, only_set=False)
    created = await _stub(who, region).CreateTask(
        pb.CreateTaskRequest(task=task, due_local=due_local),
        metadata=await who.metadata(region, idempotency_key(key)),
        timeout=who.timeout,
    )
    response.headers["Location"] = f"/v1/tasks/{created.id}"
    return schemas.to_json(created)


@router.get(
    "/v1/tasks",
    tags=["tasks"],
    summary="List tasks in one or more regions",
    **answers.ok(answers.TaskPage),
)
async def list_tasks(
    who: Caller = Depends(caller),
    assignee_id: str = "",
    status: str = "",
    deal_id: str = "",
    contact_id: str = "",
    overdue_only: bool = False,
    due: str = Query(
        "",
        pattern="^(|today|this_week|overdue)$",
        description="today, this_week (Monday to Sunday) or overdue, in your time zone",
    ),
    region: str | None = None,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
) -> dict[str, Any]:
    regions = who.regions_param(region, deal_id=deal_id, contact_id=contact_id)
    metadata = {r: await who.metadata(r) for r in regions}

    async def fetch(r: str, token: str) -> tuple[list[Hit], bool]:
        reply = await _stub(who, r).ListTasks(
            pb.ListTasksRequest(
                assignee_id=assignee_id,
                status=status,
                deal_id=deal_id,
                contact_id=contact_id,
                overdue_only=overdue_only,
                due=due,
                page_size=limit,
                page_token=token,
            ),
            metadata=metadata[r],
            timeout=who.timeout,
        )
        return [Hit(r, 0.0, t.id, t.id, t) for t in reply.tasks], bool(reply.next_page_token)

    items, next_cursor = await merged_page(regions, cursor, limit, fetch)
    return {
        "data": [schemas.to_json(t) for t in items],
        "next_cursor": next_cursor,
        "regions": regions,
    }


@router.get("/v1/tasks/{task_id}", tags=["tasks"], summary="One task", **answers.ok(answers.Task))
async def get_task(task_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    region = region_of_id(task_id)
    task = await _stub(who, region).GetTask(
        pb.GetTaskRequest(id=task_id), metadata=await who.metadata(region), timeout=who.timeout
    )
    return schemas.to_json(task)


@router.patch(
    "/v1/tasks/{task_id}",
    tags=["tasks"],
    summary="Change the fields sent",
    **answers.ok(answers.Task),
)
async def update_task(
    task_id: str, body: schemas.TaskIn, who: Caller = Depends(caller)
) -> dict[str, Any]:
    region = region_of_id(task_id)
    task, fields, due_local = _task_message(body, only_set=True)
    task.id = task_id
    if due_local:
        fields.append("due_at")
    if not fields:
        raise invalid("body", "send at least one field to change")
    updated = await _stub(who, region).UpdateTask(
        pb.UpdateTaskRequest(
            task=task, update_mask=field_mask_pb2.FieldMask(paths=fields), due_local=due_local
        ),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return schemas.to_json(updated)


@router.post(
    "/v1/tasks/{task_id}/complete",
    tags=["tasks"],
    summary="Mark the task done",
    **answers.ok(answers.Task),
)
async def complete_task(task_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    region = region_of_id(task_id)
    task = await _stub(who, region).CompleteTask(
        pb.CompleteTaskRequest(id=task_id), metadata=await who.metadata(region), timeout=who.timeout
    )
    return schemas.to_json(task)


# ---------------------------------------------------------------- automation rules (tenant config)


def _rule(body: schemas.AutomationRuleIn, rule_id: str) -> pb.AutomationRule:
    rule = pb.AutomationRule(id=rule_id)
    schemas.message_from(body, rule)
    return rule


@router.post(
    "/v1/automations",
    status_code=201,
    tags=["automations"],
    summary="Create an automation rule",
    **answers.ok(answers.AutomationRule, 201),
)
async def create_rule(
    body: schemas.AutomationRuleIn, who: Caller = Depends(caller)
) -> dict[str, Any]:
    require_role(who, "admin", "manager")
    # One id in every region: the rule is tenant configuration that every cell applies.
    # (Written with the author's region as prefix; the rule itself applies everywhere.)
    rule = _rule(body, new_id(who.principal.home_region))

    async def create(region: str, metadata: Any) -> Any:
        return await _stub(who, region).CreateAutomationRule(
            pb.CreateAutomationRuleRequest(rule=rule), metadata=metadata, timeout=who.timeout
        )

    return schemas.to_json((await in_every_region(who, create))[0])


@router.get(
    "/v1/automations",
    tags=["automations"],
    summary="Automation rules",
    **answers.ok(answers.AutomationRules),
)
async def list_rules(who: Caller = Depends(caller)) -> dict[str, Any]:
    reply = await _stub(who, who.principal.home_region).ListAutomationRules(
        pb.ListAutomationRulesRequest(), metadata=who.principal.to_metadata(), timeout=who.timeout
    )
    return {"data": [schemas.to_json(r) for r in reply.rules]}


@router.get(
    "/v1/automations/{rule_id}",
    tags=["automations"],
    summary="One automation rule",
    **answers.ok(answers.AutomationRule),
)
async def get_rule(rule_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    rule = await _stub(who, who.principal.home_region).GetAutomationRule(
        pb.GetAutomationRuleRequest(id=rule_id),
        metadata=who.principal.to_metadata(),
        timeout=who.timeout,
    )
    return schemas.to_json(rule)


@router.put(
    "/v1/automations/{rule_id}",
    tags=["automations"],
    summary="Replace an automation rule",
    **answers.ok(answers.AutomationRule),
)
async def update_rule(
    rule_id: str, body: schemas.AutomationRuleIn, who: Caller = Depends(caller)
) -> dict[str, Any]:
    require_role(who, "admin", "manager")
    rule = _rule(body, rule_id)

    async def update(region: str, metadata: Any) -> Any:
        return await _stub(who, region).UpdateAutomationRule(
            pb.UpdateAutomationRuleRequest(rule=rule), metadata=metadata, timeout=who.timeout
        )

    return schemas.to_json((await in_every_region(who, update))[0])


@router.delete(
    "/v1/automations/{rule_id}", status_code=204, tags=["automations"], summary="Delete a rule"
)
async def delete_rule(rule_id: str, who: Caller = Depends(caller)) -> Response:
    require_role(who, "admin", "manager")

    async def delete(region: str, metadata: Any) -> Any:
        return await _stub(who, region).DeleteAutomationRule(
            pb.DeleteAutomationRuleRequest(id=rule_id), metadata=metadata, timeout=who.timeout
        )

    await in_every_region(who, delete)
    return Response(status_code=204)


# ---------------------------------------------------------------- users (the directory)


def _directory(who: Caller, region: str) -> Any:
    return who.stub("tasks", "directory", region)


@router.put(
    "/v1/users/{user_id}",
    tags=["users"],
    summary="Create or replace a user of the tenant",
    **answers.ok(answers.User),
)
async def put_user(
    user_id: str, body: schemas.UserIn, who: Caller = Depends(caller)
) -> dict[str, Any]:
    require_role(who, "admin")
    if body.home_region and body.home_region not in who.gateway.regions:
        raise invalid("home_region", f"one of {', '.join(who.gateway.regions)}")
    user = directory_pb2.User(id=user_id)
    schemas.message_from(body, user)

    async def put(region: str, metadata: Any) -> Any:
        return await _directory(who, region).PutUser(
            directory_pb2.PutUserRequest(user=user), metadata=metadata, timeout=who.timeout
        )

    return schemas.to_json((await in_every_region(who, put))[0])


@router.get(
    "/v1/users", tags=["users"], summary="Users, by job role or team", **answers.ok(answers.Users)
)
async def list_users(
    who: Caller = Depends(caller), job_role: str = "", team: str = ""
) -> dict[str, Any]:
    reply = await _directory(who, who.principal.home_region).ListUsers(
        directory_pb2.ListUsersRequest(job_role=job_role, team=team),
        metadata=who.principal.to_metadata(),
        timeout=who.timeout,
    )
    return {"data": [schemas.to_json(u) for u in reply.users]}
