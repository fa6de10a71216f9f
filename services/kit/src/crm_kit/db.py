"""The service's regional PostgreSQL database: async engine, sessions, migrations.

Each service has its own database in each region; `database_url` names it. The
tables every service needs for messaging and auditing (outbox, inbox, idempotency
keys, audit log) are defined here once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from crm_kit.errors import Unavailable

_ASYNCPG_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
)


# Pooled connections are replaced after this long, so none outlives a failover or a
# proxy's idle timeout by much.
POOL_RECYCLE_SECONDS = 1800


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: it is a round trip before every transaction. A connection the server
        # closed (a restart, a failover) is known to asyncpg without asking and is replaced
        # at checkout (`_discard_closed`); one that dies otherwise fails its transaction
        # with 503 and is discarded by SQLAlchemy, and the next one is fresh.
        pool_pre_ping=False,
        pool_recycle=POOL_RECYCLE_SECONDS,
        # A dead database must fail fast (503), not hang the request.
        pool_timeout=5,
        connect_args={"timeout": 5, "command_timeout": 30},
    )
    event.listen(engine.sync_engine, "checkout", _discard_closed)
    return engine


def _discard_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """At checkout, without a round trip: a connection whose socket the server closed is
    thrown away and the pool tries another (SQLAlchemy retries a DisconnectionError)."""
    raw = getattr(dbapi_connection, "_connection", None)
    if raw is not None and raw.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def is_unavailable(exc: BaseException) -> bool:
    """True when the error means the database is unreachable rather than a bad query."""
    if isinstance(exc, (ConnectionError, OSError, TimeoutError)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        # asyncpg's own connection failures (refused, shut down, lost mid-query).
        cause = exc.orig.__cause__ if exc.orig is not None else None
        return isinstance(cause, (*_ASYNCPG_CONNECTION_ERRORS, OSError, TimeoutError))
    return False


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on error, Unavailable if the DB is down."""
    try:
        async with factory() as session, session.begin():
            yield session
    except Exception as exc:
        if is_unavailable(exc):
            raise Unavailable("database unavailable") from exc
        raise


# Tables shared by every service; each service's migrations include them (alembic
# autogenerate sees them through env.py's target metadata).
kit_metadata = sa.MetaData()

outbox_table = sa.Table(
    "outbox",
    kit_metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False, unique=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("headers", pg.JSONB, nullable=False, server_default="{}"),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("published_at", sa.DateTime(timezone=True)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Index("outbox_unpublished", "id", postgresql_where=sa.text("published_at IS NULL")),
)

inbox_table = sa.Table(
    "inbox",
    kit_metadata,
    sa.Column("consumer", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column(
        "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

idempotency_table = sa.Table(
    "idempotency_keys",
    kit_metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("response", sa.LargeBinary, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

audit_table = sa.Table(
    "audit_log",
    kit_metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("actor_id", sa.Text, nullable=False),
    sa.Column("actor_home_region", sa.Text, nullable=False),
    sa.Column("region", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("record_id", sa.Text, nullable=False),
    sa.Column("legal_basis", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # Tamper evidence (crm_kit.audit): what kind of event, and the hash chain per tenant.
    sa.Column("kind", sa.Text, nullable=False, server_default="cross_region_access"),
    sa.Column("prev_hash", sa.Text, nullable=False, server_default=""),
    sa.Column("hash", sa.Text, nullable=False, server_default=""),
    sa.Index("audit_log_tenant_at", "tenant_id", "at"),
    sa.Index("audit_log_tenant_id", "tenant_id", "id"),
)
