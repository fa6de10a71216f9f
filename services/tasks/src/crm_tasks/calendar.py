"""A user's tasks as an iCalendar feed at a secret, revocable URL.

The secret names its region ("cal_<region>_<random>") so the gateway knows whom to ask;
only its SHA-256 is stored. Putting a feed again rotates the secret, deleting it
revokes it: the old URL then finds nothing (404). The feed reads tasks as the user who
made it (their roles and team then), so it shows what they may see and no more.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.directory.v1 import directory_pb2 as pb
from crm_kit import clock
from crm_kit.context import Principal
from crm_kit.errors import NotFound
from crm_tasks import models
from crm_tasks.convert import timestamp

PREFIX = "cal"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def put_feed(session: AsyncSession, principal: Principal, region: str) -> pb.CalendarFeed:
    secret = f"{PREFIX}_{region}_{secrets.token_urlsafe(32)}"
    created = clock.now()
    values = {
        "secret_hash": _digest(secret),
        "roles": list(principal.roles),
        "team": principal.team,
        "created_at": created,
    }
    statement = pg_insert(models.CalendarFeed).values(
        tenant_id=principal.tenant_id, user_id=principal.user_id, **values
    )
    await session.execute(
        statement.on_conflict_do_update(index_elements=["tenant_id", "user_id"], set_=values)
    )
    return pb.CalendarFeed(secret=secret, created_at=timestamp(created))


async def delete_feed(session: AsyncSession, principal: Principal) -> bool:
    result = await session.execute(
        sa.delete(models.CalendarFeed).where(
            models.CalendarFeed.tenant_id == principal.tenant_id,
            models.CalendarFeed.user_id == principal.user_id,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def resolve_feed(session: AsyncSession, secret: str, region: str) -> pb.CalendarFeedOwner:
    digest = _digest(secret)
    row = await session.scalar(
        sa.select(models.CalendarFeed).where(models.CalendarFeed.secret_hash == digest)
    )
    # The lookup is by digest; the comparison repeats it in constant time.
    if row is None or not hmac.compare_digest(row.secret_hash, digest):
        raise NotFound("no such calendar feed")
    return pb.CalendarFeedOwner(
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        roles=list(row.roles),
        team=row.team,
        home_region=region,
    )
