"""Tenant configuration cached per process, dropped when another replica changes it, and
pooled connections without a pre-ping: against the real PostgreSQL of the session."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
import sqlalchemy as sa

from crm_cli.cluster import Cluster
from crm_kit import tenant_cache
from crm_kit.db import create_engine, session_factory, transaction
from crm_kit.tenant_cache import MISSING, TenantCache

REGION = "t9"

Eventually = Callable[..., Awaitable[None]]


@pytest.fixture
async def cache(engines: Cluster, database: str) -> AsyncIterator[TenantCache]:
    cache = TenantCache()
    task = asyncio.create_task(cache.listen(engines.postgres.url(database), retry_seconds=0.1))
    deadline = asyncio.get_running_loop().time() + 60
    while not cache.listening:
        assert asyncio.get_running_loop().time() < deadline, "the cache never listened"
        await asyncio.sleep(0.05)
    yield cache
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_change_committed_by_another_replica_drops_that_tenant_only(
    engines: Cluster, database: str, cache: TenantCache, eventually: Eventually
) -> None:
    cache.put("acme", "policy", "old", cache.generation("acme"))
    cache.put("globex", "policy", "theirs", cache.generation("globex"))
    assert cache.get("acme", "policy") == "old"

    # Another replica of the service: its own engine on the same regional database.
    other = create_engine(engines.postgres.url(database), pool_size=1)
    try:
        async with transaction(session_factory(other)) as session:
            await tenant_cache.changed(session, "acme")
            await asyncio.sleep(0.3)
            # Not before the change is committed: readers may still see the old rows.
            assert cache.get("acme", "policy") == "old"
    finally:
        await other.dispose()

    await eventually(lambda: cache.get("acme", "policy") is MISSING, what="acme dropped")
    assert cache.get("globex", "policy") == "theirs"


async def test_a_value_read_before_a_change_is_not_cached_after_it(cache: TenantCache) -> None:
    generation = cache.generation("acme")  # a reader starts reading the old rows ...
    cache.invalidate("acme")  # ... a change is notified meanwhile ...
    cache.put("acme", "policy", "stale", generation)  # ... its result is not kept
    assert cache.get("acme", "policy") is MISSING


async def test_nothing_is_served_while_the_cache_cannot_listen(
    engines: Cluster, database: str, cache: TenantCache, eventually: Eventually
) -> None:
    cache.put("acme", "policy", "old", cache.generation("acme"))
    # The listening connection is cut (a database restart, a failover): notifications
    # sent meanwhile are lost, so the cache reads through until it listens again.
    connection = await asyncpg.connect(engines.postgres.dsn(database))
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND query LIKE 'LISTEN%'",
            database,
        )
    finally:
        await connection.close()
    await eventually(lambda: cache.get("acme", "policy") is MISSING, what="the cache to stop")
    await eventually(lambda: cache.listening, what="the cache to listen again")
    assert cache.get("acme", "policy") is MISSING


async def _gone(connection: asyncpg.Connection, pid: int) -> bool:
    return not await connection.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid
    )


async def test_a_pooled_connection_the_server_closed_is_replaced_without_an_error(
    engines: Cluster, database: str, eventually: Eventually
) -> None:
    # No pre-ping on checkout: a connection the server ended must still not fail a request.
    engine = create_engine(engines.postgres.url(database), pool_size=1)
    sessions = session_factory(engine)
    try:
        async with transaction(sessions) as session:
            first = await session.scalar(sa.select(sa.func.pg_backend_pid()))
        connection = await asyncpg.connect(engines.postgres.dsn(database))
        try:
            await connection.execute("SELECT pg_terminate_backend($1)", first)
            await eventually(
                lambda: _gone(connection, first), what="the pooled connection's backend to end"
            )
        finally:
            await connection.close()
        await asyncio.sleep(0.2)  # the loop reads the closed socket of the pooled connection
        async with transaction(sessions) as session:
            second = await session.scalar(sa.select(sa.func.pg_backend_pid()))
        assert second != first
    finally:
        await engine.dispose()
