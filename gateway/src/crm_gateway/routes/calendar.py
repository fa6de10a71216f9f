"""The rep's tasks in their own calendar: an iCalendar feed at a secret, revocable URL.

`POST /v1/me/calendar-feed` makes (or rotates) the caller's secret URL, `DELETE` revokes
it; `GET /public/calendar/<secret>.ics` serves the open tasks assigned to them that have
a due time, without a token (calendar apps cannot send one). Each event carries the
task's title, due time and a link to the task, and nothing else: no description, no
contact's name, phone or address beyond what the title itself says.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from fastapi import APIRouter, Depends, Request, Response
from icalendar import Calendar, Event

from crm_api.crm.directory.v1 import directory_pb2
from crm_api.crm.tasks.v1 import tasks_pb2
from crm_gateway import answers
from crm_gateway.access import Caller, Gateway, caller, current_gateway
from crm_gateway.problems import Problem
from crm_kit.context import Principal

router = APIRouter(tags=["tasks"])
public = APIRouter(tags=["public"])

SECRET = re.compile(r"^cal_([a-z][a-z0-9-]{0,19})_[A-Za-z0-9_-]{20,100}$")
# A task is a moment, not a meeting: shown as a short event at its due time.
EVENT_LENGTH = timedelta(minutes=30)
MAX_TASKS_PER_REGION = 1000
PAGE = 200


@router.post(
    "/v1/me/calendar-feed",
    status_code=201,
    summary="Make (or rotate) the secret iCalendar URL of your tasks",
    **answers.ok(answers.CalendarFeedCreated, 201),
)
async def create_feed(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    region = who.principal.home_region
    reply = await who.stub("tasks", "directory", region).PutCalendarFeed(
        directory_pb2.PutCalendarFeedRequest(),
        metadata=who.principal.to_metadata(),
        timeout=who.timeout,
    )
    path = f"/public/calendar/{reply.secret}.ics"
    return {
        "url": str(request.base_url).rstrip("/") + path,
        "path": path,
        "created_at": reply.created_at.ToJsonString(),
    }


@router.delete(
    "/v1/me/calendar-feed",
    summary="Revoke your iCalendar URL (it answers 404 from now on)",
    **answers.ok(answers.CalendarFeedRevoked),
)
async def revoke_feed(who: Caller = Depends(caller)) -> dict[str, Any]:
    reply = await who.stub("tasks", "directory", who.principal.home_region).DeleteCalendarFeed(
        directory_pb2.DeleteCalendarFeedRequest(),
        metadata=who.principal.to_metadata(),
        timeout=who.timeout,
    )
    return {"revoked": reply.revoked}


async def _owner(gateway: Gateway, secret: str) -> Principal:
    match = SECRET.match(secret)
    if match is None or match.group(1) not in gateway.regions:
        raise Problem(404, "Not found", "no such calendar")
    region = match.group(1)
    try:
        owner = await gateway.clients.stub("tasks", "directory", region).ResolveCalendarFeed(
            directory_pb2.ResolveCalendarFeedRequest(secret=secret), timeout=gateway.timeout
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            raise Problem(404, "Not found", "no such calendar") from error
        raise
    return Principal(
        tenant_id=owner.tenant_id,
        user_id=owner.user_id,
        roles=tuple(owner.roles),
        team=owner.team,
        home_region=owner.home_region,
    )


async def _tasks(who: Caller, region: str) -> list[tasks_pb2.Task]:
    metadata = await who.metadata(region)
    found: list[tasks_pb2.Task] = []
    token = ""
    while len(found) < MAX_TASKS_PER_REGION:
        reply = await who.stub("tasks", "tasks", region).ListTasks(
            tasks_pb2.ListTasksRequest(
                assignee_id=who.principal.user_id,
                status="open",
                page_size=PAGE,
                page_token=token,
            ),
            metadata=metadata,
            timeout=who.timeout,
        )
        found += [t for t in reply.tasks if t.HasField("due_at")]
        token = reply.next_page_token
        if not token:
            break
    return found


def ics(tasks: list[tasks_pb2.Task], base_url: str) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//Atlas CRM//tasks//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "Atlas CRM tasks")
    stamp = datetime.now(UTC)
    for task in tasks:
        due = task.due_at.ToDatetime(tzinfo=UTC)
        event = Event()
        event.add("uid", f"{task.id}@atlas-crm")
        event.add("dtstamp", stamp)
        event.add("dtstart", due)
        event.add("dtend", due + EVENT_LENGTH)
        event.add("summary", task.title)
        event.add("url", f"{base_url}/v1/tasks/{task.id}")
        event.add("sequence", task.version)
        calendar.add_component(event)
    return bytes(calendar.to_ical())


@public.get(
    "/public/calendar/{secret}.ics",
    summary="A user's open tasks as iCalendar (the secret URL is the credential)",
    **answers.file(200, "text/calendar"),
)
async def feed(
    secret: str, request: Request, gateway: Gateway = Depends(current_gateway)
) -> Response:
    who = Caller(principal=await _owner(gateway, secret), gateway=gateway)
    tasks: list[tasks_pb2.Task] = []
    for region in await who.accessible_regions():
        tasks += await _tasks(who, region)
    tasks.sort(key=lambda t: (t.due_at.ToDatetime(), t.id))
    body = ics(tasks, str(request.base_url).rstrip("/"))
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Cache-Control": "private, max-age=300"},
    )
