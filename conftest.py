"""Session fixtures shared by every test folder: the real engines and the whole system.

The test session starts embedded PostgreSQL and NATS JetStream itself (no mocks), and
the `system` fixture runs every service in every region plus the gateway, exactly as
`crm up` does, on free ports in a temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_cli.cluster import Cluster, ClusterConfig
from crm_kit.auth import mint_token

REGIONS = ["eu", "br", "us"]


@pytest.fixture(scope="session")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """PostgreSQL and NATS only (for kit tests); `system` adds the services."""
    # A short path: PostgreSQL's socket lives in its data folder (107-byte limit).
    state = Path(os.environ.get("CRM_TEST_STATE", str(tmp_path_factory.mktemp("crm"))))
    cluster = Cluster(
        ClusterConfig(
            state_dir=state,
            regions=REGIONS,
            gateway_port=0,
            nats_port=0,
            grpc_base=0,
            smtp_port=0,
        )
    )
    cluster.start_engines()
    # The test process reads the same movable clock as the services it starts.
    os.environ["CRM_CLOCK_FILE"] = str(cluster.clock_file)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def system(engines: Cluster) -> Iterator[Cluster]:
    """The whole system: every service once per region and the gateway."""
    # Schedulers look for overdue work often, so a moved clock shows quickly.
    os.environ["CRM_SCHEDULER_INTERVAL"] = "0.5"
    engines.migrate()
    engines.start_services()
    yield engines


@pytest.fixture(scope="session")
def token_for(system: Cluster):  # type: ignore[no-untyped-def]
    """token_for(user, role, region, tenant=..., team=...) -> 'Bearer ...' header dict."""

    def make(
        user: str, role: str = "admin", region: str = "eu", *, tenant: str = "acme", team: str = ""
    ) -> dict[str, str]:
        token = mint_token(
            system.jwt_secret, tenant=tenant, user=user, roles=[role], home_region=region, team=team
        )
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
async def api(system: Cluster):  # type: ignore[no-untyped-def]
    import httpx

    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def db(system: Cluster):  # type: ignore[no-untyped-def]
    """db(service, region, sql, *args) -> rows, straight from that region's database."""
    import asyncpg

    async def query(service: str, region: str, sql: str, *args: object) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(system.postgres.dsn(system.database(service, region)))
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    return query


@pytest.fixture(scope="session")
def stream_events(system: Cluster):  # type: ignore[no-untyped-def]
    """stream_events(region, subject_filter) -> every Envelope in the region's stream."""
    import nats
    from nats.js.api import ConsumerConfig, DeliverPolicy

    from crm_kit.messaging import stream_name, unpack_envelope

    async def read(region: str, subject: str = ">") -> list[object]:
        service = subject.split(".")[0]
        await system.events_published(region, (service,) if service != ">" else ())
        client = await nats.connect(system.nats.url)
        try:
            js = client.jetstream()
            info = await js.stream_info(stream_name(region))
            total = info.state.messages
            subscription = await js.pull_subscribe(
                f"crm.{region}.{subject}" if subject != ">" else f"crm.{region}.>",
                stream=stream_name(region),
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
            )
            envelopes = []
            while total > 0:
                try:
                    batch = await subscription.fetch(500, timeout=1)
                except (nats.errors.TimeoutError, TimeoutError):
                    break
                for message in batch:
                    envelopes.append(unpack_envelope(message.data))
                    await message.ack()
                total -= len(batch)
            await subscription.unsubscribe()
            return envelopes
        finally:
            await client.close()

    return read
