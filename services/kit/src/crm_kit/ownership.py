"""Handing a user's open records to others in one operation (a rep who leaves).

Services that keep records per owner (contacts, deals, tasks) register an
`OwnershipServicer` with their tables; the gateway calls it in every region the admin
may access. Each record gets the new owner and the new owner's team (the same rule as
any other owner change, crm_kit.teams), the service announces the change as its usual
event (reports and access follow it), and one audit record per service and region
says who moved whose records to whom and how many.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.ownership.v1 import ownership_pb2 as pb
from crm_api.crm.ownership.v1 import ownership_pb2_grpc
from crm_kit import clock
from crm_kit.audit import REASSIGNMENT, append_audit
from crm_kit.context import Principal
from crm_kit.db import transaction
from crm_kit.errors import FieldViolation, InvalidArgument, PermissionDenied
from crm_kit.runtime import Runtime
from crm_kit.servicer import ServicerBase, caller

USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")
MAX_TARGETS = 500

TeamOf = Callable[[AsyncSession, str, str], Awaitable[str]]
Announce = Callable[[AsyncSession, Principal, Any], Awaitable[None]]


@dataclass(frozen=True)
class Reassignable:
    """One kind of record a service reassigns: which rows are open, how to announce."""

    kind: str
    model: Any
    is_open: Callable[[Any], sa.ColumnElement[bool]]
    team_of: TeamOf
    announce: Announce
    owner_column: str = "owner_id"
    team_column: str = "owner_team"


def _targets(request: pb.ReassignOwnerRequest) -> tuple[str, list[str]]:
    violations: list[FieldViolation] = []
    source = request.from_user_id.strip()
    if not USER_ID.match(source):
        violations.append(FieldViolation("from_user_id", "a user id"))
    targets = list(dict.fromkeys(t.strip() for t in request.to_user_ids))
    if not targets or len(targets) > MAX_TARGETS:
        violations.append(FieldViolation("to_user_ids", f"1 to {MAX_TARGETS} user ids"))
    for index, target in enumerate(targets):
        if not USER_ID.match(target):
            violations.append(FieldViolation(f"to_user_ids[{index}]", "a user id"))
        elif target == source:
            violations.append(FieldViolation(f"to_user_ids[{index}]", "not the user they leave"))
    if violations:
        raise InvalidArgument(violations)
    return source, targets


async def reassign(
    session: AsyncSession,
    principal: Principal,
    kinds: Sequence[Reassignable],
    source: str,
    targets: Sequence[str],
) -> list[tuple[str, int]]:
    """Moves every open record of `source` to `targets` in turn; counts per kind."""
    counts: list[tuple[str, int]] = []
    teams: dict[str, str] = {}
    for kind in kinds:
        model = kind.model
        rows = (
            await session.scalars(
                sa.select(model)
                .where(
                    model.tenant_id == principal.tenant_id,
                    getattr(model, kind.owner_column) == source,
                    kind.is_open(model),
                )
                .order_by(model.id)
                .with_for_update()
            )
        ).all()
        for index, row in enumerate(rows):
            target = targets[index % len(targets)]
            if target not in teams:
                teams[target] = await kind.team_of(session, principal.tenant_id, target)
            setattr(row, kind.owner_column, target)
            setattr(row, kind.team_column, teams[target])
            if hasattr(row, "version"):
                row.version += 1  # an If-Match read before the move must not overwrite it
            if hasattr(row, "updated_at"):
                row.updated_at = clock.now()
        await session.flush()
        for row in rows:
            await kind.announce(session, principal, row)
        counts.append((kind.kind, len(rows)))
    return counts


class OwnershipServicer(ServicerBase, ownership_pb2_grpc.OwnershipServiceServicer):
    def __init__(self, runtime: Runtime, kinds: Sequence[Reassignable]) -> None:
        super().__init__(runtime)
        self.kinds = list(kinds)

    async def ReassignOwner(
        self, request: pb.ReassignOwnerRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReassignOwnerResponse:
        principal = caller()
        if not principal.has_role("admin"):
            raise PermissionDenied("only admins reassign another user's records")
        source, targets = _targets(request)
        async with transaction(self.runtime.sessions) as session:
            counts = await reassign(session, principal, self.kinds, source, targets)
            moved = ", ".join(f"{kind} {count}" for kind, count in counts)
            await append_audit(
                session,
                tenant_id=principal.tenant_id,
                actor_id=principal.user_id,
                actor_home_region=principal.home_region or self.region,
                region=self.region,
                action="reassign.owner",
                record_id=f"{source} -> {', '.join(targets)}",
                legal_basis=f"moved: {moved}",
                kind=REASSIGNMENT,
            )
        return pb.ReassignOwnerResponse(
            service=self.runtime.settings.service_name,
            region=self.region,
            moved=[pb.KindCount(kind=kind, count=count) for kind, count in counts],
        )


def register_ownership(
    server: grpc.aio.Server, runtime: Runtime, kinds: Sequence[Reassignable]
) -> str:
    ownership_pb2_grpc.add_OwnershipServiceServicer_to_server(
        OwnershipServicer(runtime, kinds), server
    )
    return pb.DESCRIPTOR.services_by_name["OwnershipService"].full_name
