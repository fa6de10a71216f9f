"""POST /v1/users/{id}/reassign: a leaving user's open contacts, deals and tasks go to
another user, or in turn to a team's members, in every region the admin may access.

Each service of each region moves its records in one transaction and audits it
(crm_kit.ownership). A region that cannot be reached fails the request (503) after the
others have moved theirs; sending it again moves what is left (nothing moves twice).
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from fastapi import APIRouter, Depends
from pydantic import Field

from crm_api.crm.directory.v1 import directory_pb2
from crm_api.crm.ownership.v1 import ownership_pb2 as pb
from crm_gateway import answers, schemas
from crm_gateway.access import Caller, caller, require_role
from crm_gateway.problems import invalid

router = APIRouter(tags=["users"])

KINDS = ("contacts", "deals", "tasks")


class ReassignIn(schemas.Strict):
    to_user: str = Field("", max_length=128, description="the user who takes everything")
    to_team: str = Field("", max_length=200, description="or a team, its members in turn")


async def _targets(who: Caller, user_id: str, body: ReassignIn) -> list[str]:
    if bool(body.to_user.strip()) == bool(body.to_team.strip()):
        raise invalid("to_user", "give to_user or to_team, one of them")
    directory = who.stub("tasks", "directory", who.principal.home_region)
    metadata = who.principal.to_metadata()
    if body.to_user.strip():
        target = body.to_user.strip()
        if target == user_id:
            raise invalid("to_user", "another user than the one who leaves")
        try:
            await directory.GetUser(
                directory_pb2.GetUserRequest(id=target), metadata=metadata, timeout=who.timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise invalid("to_user", f"no user {target!r} in the directory") from error
            raise
        return [target]
    reply = await directory.ListUsers(
        directory_pb2.ListUsersRequest(team=body.to_team.strip()),
        metadata=metadata,
        timeout=who.timeout,
    )
    members = sorted(u.id for u in reply.users if u.id != user_id)
    if not members:
        raise invalid("to_team", f"nobody else is in team {body.to_team.strip()!r}")
    return members


@router.post(
    "/v1/users/{user_id}/reassign",
    summary="Hand a user's open contacts, deals and tasks to another user or a team (admins)",
    **answers.ok(answers.Reassigned),
)
async def reassign(user_id: str, body: ReassignIn, who: Caller = Depends(caller)) -> Any:
    require_role(who, "admin")
    targets = await _targets(who, user_id, body)
    request = pb.ReassignOwnerRequest(from_user_id=user_id, to_user_ids=targets)
    regions = await who.accessible_regions()

    async def in_region(region: str) -> dict[str, Any]:
        metadata = await who.metadata(region)
        replies = await asyncio.gather(
            *(
                who.stub(service, "ownership", region).ReassignOwner(
                    request, metadata=metadata, timeout=max(who.timeout, 30)
                )
                for service in KINDS
            )
        )
        counts = {kind: 0 for kind in KINDS}
        for reply in replies:
            for moved in reply.moved:
                counts[moved.kind] = counts.get(moved.kind, 0) + moved.count
        return {"region": region, **counts}

    moved = list(await asyncio.gather(*(in_region(r) for r in regions)))
    return {
        "from_user": user_id,
        "to_users": targets,
        "moved": moved,
        "total": {kind: sum(m[kind] for m in moved) for kind in KINDS},
    }
