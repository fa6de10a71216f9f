"""The team of a record's owner, for services that keep records per owner (contacts,
deals): a manager sees the records of their team's members.

The directory (the tasks service) is the one place that says who is in which team; it
emits `tasks.user.team_changed` whenever a user's team is set or changes. Each such
service keeps a copy of user -> team (`team_of` reads it when a record gets an owner,
whoever sets it: a web form, telephony, an import, an admin) and re-stamps the owner's
records on every change. A record written before its owner's event arrived is fixed by
the same re-stamp, so the team is eventually the owner's current one in every case.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from nats.aio.msg import Msg
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.events.v1 import envelope_pb2
from crm_api.crm.events.v1 import tasks_pb2 as task_events
from crm_kit.messaging import Consumer, subject_for

log = logging.getLogger(__name__)

TEAM_CHANGED = "tasks.user.team_changed"


@dataclass(frozen=True)
class OwnedBy:
    """A table of records with an owner and the owner's team."""

    model: Any
    owner_column: str = "owner_id"
    team_column: str = "owner_team"


async def team_of(session: AsyncSession, teams: Any, tenant_id: str, user_id: str) -> str:
    """The user's team as the directory last said ('' if none or not heard of yet)."""
    if not user_id:
        return ""
    team = await session.scalar(
        sa.select(teams.team).where(teams.tenant_id == tenant_id, teams.user_id == user_id)
    )
    return str(team or "")


async def apply_team_change(
    session: AsyncSession,
    teams: Any,
    owned: Sequence[OwnedBy],
    tenant_id: str,
    user_id: str,
    team: str,
) -> None:
    await session.execute(
        pg_insert(teams)
        .values(tenant_id=tenant_id, user_id=user_id, team=team)
        .on_conflict_do_update(index_elements=["tenant_id", "user_id"], set_={"team": team})
    )
    for table in owned:
        model = table.model
        await session.execute(
            sa.update(model)
            .where(model.tenant_id == tenant_id, getattr(model, table.owner_column) == user_id)
            .values({table.team_column: team})
        )


def team_consumer(runtime: Any, durable: str, teams: Any, owned: Sequence[OwnedBy]) -> Consumer:
    async def handle(session: AsyncSession, envelope: envelope_pb2.Envelope, _: Msg) -> None:
        if envelope.event_type != TEAM_CHANGED:
            return
        changed = task_events.UserTeamChanged()
        if envelope.payload.Unpack(changed):
            await apply_team_change(
                session, teams, owned, envelope.tenant_id, changed.user_id, changed.team
            )

    return Consumer(
        runtime.sessions,
        runtime.nats,
        durable=durable,
        subjects=[subject_for(runtime.region, "tasks", "user", "team_changed")],
        handler=handle,
    )
