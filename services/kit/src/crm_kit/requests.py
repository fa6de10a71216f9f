"""Per-request bookkeeping a service does in the same transaction as the change:
idempotency keys (a retried POST returns the first answer, nothing is written twice)
and the audit record of every cross-region access.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_kit.audit import CROSS_REGION, append_audit
from crm_kit.context import Principal
from crm_kit.db import idempotency_table, transaction
from crm_kit.errors import Conflict

M = TypeVar("M", bound=Message)


def _request_hash(method: str, request: Message) -> str:
    return hashlib.sha256(
        method.encode() + request.SerializeToString(deterministic=True)
    ).hexdigest()


async def _stored(
    session: AsyncSession,
    principal: Principal,
    method: str,
    request: Message,
    response_type: type[M],
) -> M | None:
    row = (
        await session.execute(
            sa.select(
                idempotency_table.c.method,
                idempotency_table.c.request_hash,
                idempotency_table.c.response,
            ).where(
                idempotency_table.c.tenant_id == principal.tenant_id,
                idempotency_table.c.key == principal.idempotency_key,
            )
        )
    ).first()
    if row is None:
        return None
    if row.method != method or row.request_hash != _request_hash(method, request):
        raise Conflict("Idempotency-Key was already used for a different request")
    return response_type.FromString(row.response)


async def idempotent(
    factory: async_sessionmaker[AsyncSession],
    principal: Principal,
    method: str,
    request: Message,
    response_type: type[M],
    work: Callable[[AsyncSession], Awaitable[M]],
) -> M:
    """Runs `work` in one transaction, at most once per (tenant, Idempotency-Key)."""
    if not principal.idempotency_key:
        async with transaction(factory) as session:
            return await work(session)
    try:
        async with transaction(factory) as session:
            previous = await _stored(session, principal, method, request, response_type)
            if previous is not None:
                return previous
            response = await work(session)
            await session.execute(
                sa.insert(idempotency_table).values(
                    tenant_id=principal.tenant_id,
                    key=principal.idempotency_key,
                    method=method,
                    request_hash=_request_hash(method, request),
                    response=response.SerializeToString(),
                )
            )
            return response
    except IntegrityError:
        # A concurrent request with the same key committed first; ours rolled back whole.
        async with transaction(factory) as session:
            previous = await _stored(session, principal, method, request, response_type)
        if previous is None:
            raise
        return previous


async def audit_cross_region(
    session: AsyncSession, principal: Principal, region: str, action: str, record_id: str
) -> None:
    """Writes an audit row when the caller's home region differs from this region."""
    if not principal.home_region or principal.home_region == region:
        return
    await append_audit(
        session,
        tenant_id=principal.tenant_id,
        actor_id=principal.user_id,
        actor_home_region=principal.home_region,
        region=region,
        action=action,
        record_id=record_id,
        legal_basis=principal.cross_region_basis or "unspecified",
        kind=CROSS_REGION,
    )
