"""What every service's gRPC servicers share: who is calling, and reads and writes
that audit cross-region access and honour Idempotency-Key in the same transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kit.context import Principal, current_principal
from crm_kit.db import transaction
from crm_kit.errors import InvalidArgument
from crm_kit.requests import audit_cross_region, idempotent
from crm_kit.runtime import Runtime

M = TypeVar("M", bound=Message)


def caller() -> Principal:
    """The principal of the current call (set by the server interceptor)."""
    principal = current_principal()
    if principal is None or not principal.tenant_id:
        raise InvalidArgument.single("metadata", "x-crm-tenant and x-crm-user are required")
    return principal


class ServicerBase:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.region = runtime.region
        self.regions = runtime.settings.regions

    async def read(
        self, action: str, record_id: str, work: Callable[[AsyncSession], Awaitable[M]]
    ) -> M:
        """One read transaction; audited when the caller's home region is another."""
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            result = await work(session)
            await audit_cross_region(session, principal, self.region, action, record_id)
            return result

    async def write(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        action: str,
        record_id: Callable[[M], str],
        work: Callable[[AsyncSession], Awaitable[M]],
    ) -> M:
        """One write transaction, at most once per Idempotency-Key, audited across regions."""
        principal = caller()

        async def audited(session: AsyncSession) -> M:
            result = await work(session)
            await audit_cross_region(session, principal, self.region, action, record_id(result))
            return result

        return await idempotent(
            self.runtime.sessions, principal, method, request, response_type, audited
        )

    async def configure(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        work: Callable[[AsyncSession], Awaitable[M]],
    ) -> M:
        """Tenant configuration (no personal data, written to every region by the gateway):
        idempotent, but not audited as a transfer."""
        return await idempotent(
            self.runtime.sessions, caller(), method, request, response_type, work
        )
