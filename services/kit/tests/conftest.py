"""Fixtures for the kit tests: a fresh database and a fresh JetStream stream per module.

Each test module that talks to the engines sets a module constant `REGION` (e.g. "t1").
The module then gets its own database `kit_<region>` (kit tables plus a test table),
its own stream `CRM_<REGION>` (subjects `crm.<region>.>`), and so does not collide with
any other test sharing the session's PostgreSQL and NATS. Everything is real: the
session's embedded PostgreSQL and nats-server with JetStream (root conftest `engines`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
import pytest
import sqlalchemy as sa
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_cli.cluster import Cluster
from crm_kit.db import create_engine, kit_metadata, session_factory
from crm_kit.messaging import ensure_stream, stream_name

# A table the tests' handlers and units of work write their side effects into.
# Deliberately no unique constraint: a side effect done twice shows up as two rows.
test_metadata = sa.MetaData()
rows_table = sa.Table(
    "kit_test_rows",
    test_metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("value", sa.Text, nullable=False, server_default=""),
)

Predicate = Callable[[], Any]


@pytest.fixture(scope="module")
def region(request: pytest.FixtureRequest) -> str:
    """The module's private region name (module constant REGION)."""
    value = getattr(request.module, "REGION", None)
    assert value, f"{request.module.__name__} must define REGION to use the engine fixtures"
    return str(value)


@pytest.fixture(scope="module")
def database(engines: Cluster, region: str) -> str:
    """A freshly created database for the module."""
    name = f"kit_{region}"
    engines.postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engines.postgres.ensure_database(name)
    return name


@pytest.fixture(scope="module")
async def kit_engine(engines: Cluster, database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(engines.postgres.url(database), pool_size=5)
    async with engine.begin() as connection:
        await connection.run_sync(kit_metadata.create_all)
        await connection.run_sync(test_metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
def sessions(kit_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(kit_engine)


@pytest.fixture(scope="module")
def rows() -> sa.Table:
    return rows_table


@pytest.fixture(scope="module")
async def nats_client(engines: Cluster) -> AsyncIterator[NatsClient]:
    """A plain client for the tests' own publishing and inspection; survives outages."""
    client = await nats.connect(
        engines.nats.url,
        name="kit-tests",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
        connect_timeout=2,
    )
    yield client
    await client.close()


@pytest.fixture(scope="module")
async def js(nats_client: NatsClient, region: str) -> JetStreamContext:
    """JetStream with the module's stream created fresh (no messages, no consumers)."""
    context = nats_client.jetstream(timeout=5)
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await context.delete_stream(stream_name(region))
    await ensure_stream(context, region)
    return context


@pytest.fixture
async def clean_db(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Empty tables before the test."""
    async with sessions() as session, session.begin():
        await session.execute(
            sa.text("TRUNCATE outbox, inbox, idempotency_keys, audit_log, kit_test_rows")
        )


@pytest.fixture
async def clean(clean_db: None, js: JetStreamContext, region: str) -> None:
    """Empty tables and an empty stream before the test (durable consumers are kept)."""
    await js.purge_stream(stream_name(region))


@pytest.fixture
def stream_messages(
    js: JetStreamContext, region: str
) -> Callable[[], Awaitable[list[RawStreamMsg]]]:
    """Reads every message currently stored in the module's stream, in order."""

    async def read() -> list[RawStreamMsg]:
        name = stream_name(region)
        state = (await js.stream_info(name)).state
        if state.messages == 0:
            return []
        return [await js.get_msg(name, seq) for seq in range(state.first_seq, state.last_seq + 1)]

    return read


async def _eventually(predicate: Predicate, *, within: float = 60.0, what: str = "") -> None:
    """Polls `predicate` (sync or async) until it is truthy; fails after `within` seconds."""
    deadline = time.monotonic() + within
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            last_error = None
        except Exception as exc:  # e.g. NATS still reconnecting
            last_error = exc
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {within:.0f}s waiting for {what}: {last_error!r}")
        await asyncio.sleep(0.05)


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    """`await eventually(predicate, within=20, what="...")`: bounded polling."""
    return _eventually
