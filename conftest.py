"""Session fixtures shared by every test folder: the real engines and the whole system.

The test session starts embedded PostgreSQL and NATS JetStream itself (no mocks), and
the `system` fixture runs every service in every region plus the gateway, exactly as
`crm up` does, on free ports in a temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crm_cli.cluster import Cluster, ClusterConfig, use_port_band
from crm_kit import clock
from crm_kit.auth import mint_token

REGIONS = ["eu", "br", "us"]

# `make test` runs test files in parallel processes (pytest-xdist), each with a system of
# its own: worker gwN takes its ports from 20000 + 2000*N on, below the ephemeral range, so
# two workers starting at once never pick the same port.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER.startswith("gw"):
    _BAND_START = 20000 + 2000 * int(_WORKER[2:])
    use_port_band(range(_BAND_START, _BAND_START + 2000))


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
    # CRM_TEST_NOW=2026-12-08T23:50:00Z starts the session's clock at that instant, to
    # show that time-sensitive tests pass at any hour (see TestClock).
    start = os.environ.get("CRM_TEST_NOW")
    if start:
        at = datetime.fromisoformat(start.replace("Z", "+00:00"))
        clock.set_offset(cluster.clock_file, at.astimezone(UTC) - datetime.now(UTC))
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


class TestClock:
    """The shared movable clock as a test sees it.

    A time-sensitive test never depends on the hour at which it runs: it moves the clock
    forward to the instant its story needs (`to(next_local(...))`), and the fixture
    puts the clock back when the test ends, so no test depends on what ran before it.
    """

    __test__ = False  # not a test class, whatever its name

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = clock.offset(path)

    def __call__(self, by: timedelta) -> None:
        """Moves the clock forward by `by` ("16 minutes later")."""
        assert by >= timedelta(0), f"the clock only moves forward, not by {by}"
        clock.advance(self.path, by)

    def to(self, when: datetime) -> None:
        """Moves the clock forward to `when`."""
        self(when - clock.now())

    @staticmethod
    def next_local(
        zone: str, at: str, *, weekdays: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    ) -> datetime:
        """The next instant (after a minute from now) at which the wall clock in `zone`
        reads `at` (HH:MM) on one of the ISO `weekdays`, in UTC."""
        tz, wall = ZoneInfo(zone), time.fromisoformat(at)
        earliest = clock.now() + timedelta(minutes=1)
        day = earliest.astimezone(tz).date()
        for ahead in range(0, 15):
            local = datetime.combine(day + timedelta(days=ahead), wall, tzinfo=tz)
            instant = local.astimezone(UTC)
            # A wall time skipped by a DST change is not a time anybody's day has.
            real = instant.astimezone(tz).time() == wall
            if local.isoweekday() in weekdays and instant >= earliest and real:
                return instant
        raise AssertionError(f"no {at} in {zone} on days {weekdays} in two weeks")

    def restore(self) -> None:
        clock.set_offset(self.path, self.start)


@pytest.fixture
def move_clock(engines: Cluster) -> Iterator[TestClock]:
    """move_clock(timedelta(minutes=16)) or move_clock.to(instant): every service (and
    this process) sees it; the clock goes back to where it was when the test ends."""
    moved = TestClock(engines.clock_file)
    try:
        yield moved
    finally:
        moved.restore()


# Files that take minutes each (their own systems, a browser, a fault campaign). Under
# pytest-xdist each worker takes whole files in collection order, so these go first and
# run beside the many short files instead of at the end, one after another.
SLOW_FILES_FIRST = (
    "tools/chaos/test_short_campaign.py",
    "tests/test_web_e2e.py",
    "cli/tests/test_cli.py",
    "tests/test_residency_random.py",
    "tests/test_schemathesis.py",
    "services/integrations/tests/test_imports.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return SLOW_FILES_FIRST.index(path) if path in SLOW_FILES_FIRST else len(SLOW_FILES_FIRST)

    items.sort(key=rank)  # stable: every other test keeps its place
