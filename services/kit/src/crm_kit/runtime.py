"""What every service process does: `python -m crm_<name> serve | migrate`.

`serve` wires settings, telemetry, the regional database, NATS, the outbox relay and
the service's consumers around one gRPC server; `migrate` runs alembic to head.
Every service's `__main__` is a call to `run_service`, so all services look alike.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_kit import db, telemetry
from crm_kit.audit import ResidencyCounter, SubjectTable, register_compliance
from crm_kit.grpc_server import serve
from crm_kit.messaging import NatsConnection, Outbox, OutboxRelay
from crm_kit.peers import Peers
from crm_kit.relocation import CopyInHook, OwnedTable, RemoveHook, register_relocation
from crm_kit.settings import ServiceSettings
from crm_kit.subject_copies import CopyRules

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The shared parts a service's servicers and handlers use."""

    settings: ServiceSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    nats: NatsConnection
    peers: Peers
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    # Residency counts (crm_kit.audit.ComplianceServicer): tables of rows per contact,
    # and/or a service's own counter (contacts counts its people by country).
    subject_tables: list[SubjectTable] = field(default_factory=list)
    residency_counter: ResidencyCounter | None = None
    # Relocation (crm_kit.relocation): the tables holding a subject's rows, parents
    # first, and a service's own steps on copy-in and removal.
    owned_tables: list[OwnedTable] = field(default_factory=list)
    relocation_copy_in: CopyInHook | None = None
    relocation_remove: RemoveHook | None = None
    # Erasure (crm_kit.subject_copies): how copies of a subject's identifiers in this
    # service's tables are treated beyond the generic rule.
    copy_rules: CopyRules = field(default_factory=CopyRules)

    @classmethod
    def create(cls, settings: ServiceSettings) -> Runtime:
        engine = db.create_engine(settings.database_url, pool_size=settings.database_pool_size)
        return cls(
            settings=settings,
            engine=engine,
            sessions=db.session_factory(engine),
            outbox=Outbox(settings.service_name, settings.region),
            nats=NatsConnection(
                settings.nats_url, settings.region, f"{settings.service_name}-{settings.region}"
            ),
            peers=Peers(settings.peer_endpoints, settings.peer_timeout),
        )

    @property
    def region(self) -> str:
        return self.settings.region


Register = Callable[[grpc.aio.Server, Runtime], Sequence[str]]


def migrations_dir(package: ModuleType) -> Path:
    """A service's alembic folder: inside the wheel, or beside src/ in the source tree."""
    package_dir = Path(package.__file__ or "").parent
    for candidate in (package_dir / "migrations", package_dir.parents[1] / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError(f"no migrations folder for {package.__name__}")


def migrate(package: ModuleType, database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir(package)))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, "head")


async def run_server(
    runtime: Runtime,
    register: Register,
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    host: str = "0.0.0.0",
) -> None:
    settings = runtime.settings
    runtime.nats.start()
    relay = OutboxRelay(
        runtime.sessions,
        runtime.nats,
        runtime.outbox,
        batch_size=settings.outbox_batch_size,
        poll_interval=settings.outbox_poll_interval,
    )

    async def close() -> None:
        await runtime.peers.close()
        await runtime.nats.close()
        await runtime.engine.dispose()

    await serve(
        port=settings.grpc_port,
        # Every service serves its audit trail and residency counts (crm_kit.audit).
        register=lambda server: [
            *register(server, runtime),
            *register_compliance(server, runtime),
            *register_relocation(server, runtime),
        ],
        # A callable, so that tasks `register` adds (consumers, schedulers) are included.
        background=lambda: [relay.run, *runtime.background],
        on_stop=close,
        grace=settings.shutdown_grace,
        host=host,
        ready=ready,
        stop=stop,
    )


def run_service(service_name: str, package: ModuleType, register: Register) -> None:
    """Command line of every service process."""
    parser = argparse.ArgumentParser(prog=f"python -m {package.__name__}")
    parser.add_argument("command", choices=["serve", "migrate"], nargs="?", default="serve")
    args = parser.parse_args()
    settings = ServiceSettings(service_name=service_name)
    telemetry.setup(
        service_name,
        region=settings.region,
        log_level=settings.log_level,
        metrics_port=settings.metrics_port if args.command == "serve" else 0,
    )
    if args.command == "migrate" or settings.migrate_on_start:
        migrate(package, settings.database_url)
        log.info("migrated", extra={"database": settings.database_url.rsplit("/", 1)[-1]})
        if args.command == "migrate":
            return
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is in the lock; keep stdlib as fallback
        pass
    asyncio.run(run_server(Runtime.create(settings), register))


def run_alembic_env(target_metadata: sa.MetaData | Sequence[sa.MetaData]) -> None:
    """The body of every service's migrations/env.py (async engine, online mode)."""
    from alembic import context
    from sqlalchemy import Connection, pool
    from sqlalchemy.ext.asyncio import async_engine_from_config

    config = context.config

    def do_run(connection: Connection) -> None:
        # Replicas starting together (init containers) take turns: one migrates, the
        # others wait and then find nothing to do. The lock ends with the session.
        connection.execute(sa.text("SELECT pg_advisory_lock(7262001)"))
        connection.commit()
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()

    async def online() -> None:
        engine = async_engine_from_config(
            config.get_section(config.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(online())
