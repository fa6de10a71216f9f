"""Tenant configuration cached in-process, dropped when any replica changes it.

A residency policy, custom field definitions or a pipeline is read on every write
but changes rarely. Reading it per request costs a round trip per table; caching it
per process would serve a stale copy after another replica changed it. So the
transaction that changes a tenant's configuration also sends
`NOTIFY crm_tenant_config, '<tenant>'` (`changed`), which PostgreSQL delivers at commit to
every connection listening on the service's regional database — every replica — and each
drops what it holds for that tenant.

The cache answers only while its listening connection is up: before it connects, after
it loses the database and until it is back, every read goes to the database (and on
reconnecting it forgets everything, since notifications sent meanwhile are lost). A read
that races a change cannot put a stale value back: `put` is refused when the tenant was
invalidated after the reader took its `generation`.

    cache = TenantCache()
    runtime.background.append(partial(cache.listen, settings.database_url))
    ...
    found = cache.get(tenant, key)
    if found is MISSING:
        generation = cache.generation(tenant)
        found = await read(session)
        cache.put(tenant, key, found, generation)
    ...
    await tenant_cache.changed(session, tenant)   # in the transaction that writes it
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from typing import Any, Final

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

CHANNEL: Final = "crm_tenant_config"
MISSING: Final = object()


async def changed(session: AsyncSession, tenant_id: str) -> None:
    """Tells every replica (at commit, not before) that `tenant_id`'s configuration changed."""
    await session.execute(sa.select(sa.func.pg_notify(CHANNEL, tenant_id)))


def asyncpg_dsn(database_url: str) -> str:
    """A SQLAlchemy URL (`postgresql+asyncpg://…`) as asyncpg's own DSN."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class TenantCache:
    def __init__(self, max_tenants: int = 10_000) -> None:
        self._values: dict[str, dict[Hashable, Any]] = {}
        self._generations: dict[str, int] = {}
        self._listening = False
        self._max_tenants = max_tenants

    @property
    def listening(self) -> bool:
        return self._listening

    def get(self, tenant_id: str, key: Hashable) -> Any:
        if not self._listening:
            return MISSING
        return self._values.get(tenant_id, {}).get(key, MISSING)

    def generation(self, tenant_id: str) -> int:
        return self._generations.get(tenant_id, 0)

    def put(self, tenant_id: str, key: Hashable, value: Any, generation: int) -> None:
        if not self._listening or self.generation(tenant_id) != generation:
            return  # changed while it was being read: the next reader reads it again
        if tenant_id not in self._values and len(self._values) >= self._max_tenants:
            self._values.clear()  # bounded memory; a miss is only a read
        self._values.setdefault(tenant_id, {})[key] = value

    def invalidate(self, tenant_id: str | None = None) -> None:
        """Forgets one tenant (a notification) or everyone (the listener reconnected)."""
        if tenant_id is None:
            self._values.clear()
            for tenant in self._generations:
                self._generations[tenant] += 1
            return
        self._values.pop(tenant_id, None)
        self._generations[tenant_id] = self._generations.get(tenant_id, 0) + 1

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self.invalidate(payload)

    def _stop_serving(self) -> None:
        self._listening = False
        self.invalidate()

    async def listen(self, database_url: str, retry_seconds: float = 1.0) -> None:
        """Background task: keeps a connection listening; runs until cancelled."""
        dsn = asyncpg_dsn(database_url)
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(dsn, timeout=5)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._notified)
                # Whatever was cached before may have changed unseen.
                self.invalidate()
                self._listening = True
                await lost.wait()
                log.warning("tenant configuration cache: listening connection lost")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down or restarting: read through
                log.warning("tenant configuration cache: cannot listen: %s", exc)
            finally:
                self._stop_serving()
                if connection is not None and not connection.is_closed():
                    connection.terminate()
            await asyncio.sleep(retry_seconds)
