"""Idempotent durable pull consumers (inbox table), against real PostgreSQL and NATS."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import sqlalchemy as sa
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from ulid import ULID

from crm_api.crm.events.v1 import contacts_pb2, envelope_pb2
from crm_cli.cluster import Cluster
from crm_kit.db import inbox_table
from crm_kit.messaging import Consumer, EventHandler, NatsConnection, stream_name

REGION = "t2"
SUBJECT = "crm.t2.contacts.contact.created"

pytestmark = pytest.mark.usefixtures("clean")

Eventually = Callable[..., Awaitable[None]]


def envelope(contact_id: str = "t2_c") -> envelope_pb2.Envelope:
    event = envelope_pb2.Envelope(
        event_id=str(ULID()),
        event_type="contacts.contact.created",
        tenant_id="acme",
        region=REGION,
        actor_id="u_alice",
        schema_version=1,
    )
    event.occurred_at.GetCurrentTime()
    event.payload.Pack(contacts_pb2.ContactCreated(contact_id=contact_id))
    return event


async def publish(js: JetStreamContext, event: envelope_pb2.Envelope, msg_id: str) -> int:
    ack = await js.publish(SUBJECT, event.SerializeToString(), headers={"Nats-Msg-Id": msg_id})
    assert not ack.duplicate
    return int(ack.seq)


def consumed(durable: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "crm_events_consumed_total", {"consumer": durable, "outcome": outcome}
    )
    return value or 0.0


@pytest.fixture
async def connection(engines: Cluster) -> AsyncIterator[NatsConnection]:
    conn = NatsConnection(engines.nats.url, REGION, "consumer-test")
    conn.start()
    await asyncio.wait_for(conn.connected(), timeout=10)
    yield conn
    await conn.close()


class Running:
    """Consumer tasks started by a test; all cancelled at its end."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], connection: NatsConnection
    ) -> None:
        self.sessions = sessions
        self.connection = connection
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, durable: str, handler: EventHandler) -> asyncio.Task[None]:
        consumer = Consumer(
            self.sessions, self.connection, durable=durable, subjects=[SUBJECT], handler=handler
        )
        task = asyncio.create_task(consumer.run(), name=durable)
        self.tasks.append(task)
        return task

    async def stop(self, task: asyncio.Task[None]) -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()  # it was still running: it did not die on its own


@pytest.fixture
async def running(
    sessions: async_sessionmaker[AsyncSession], connection: NatsConnection
) -> AsyncIterator[Running]:
    consumers = Running(sessions, connection)
    yield consumers
    for task in consumers.tasks:
        task.cancel()
    await asyncio.gather(*consumers.tasks, return_exceptions=True)


def recording_handler(
    rows: sa.Table, durable: str, handled: list[tuple[str, int]], *, fail_first: bool = False
) -> EventHandler:
    """Inserts one row per handled event (in the consumer's transaction) and records
    (event id, delivery count); with fail_first it raises after the insert on the first
    delivery of each event, so that insert must be rolled back."""

    async def handle(session: AsyncSession, event: envelope_pb2.Envelope, msg: Msg) -> None:
        payload = contacts_pb2.ContactCreated()
        assert event.payload.Unpack(payload)
        await session.execute(
            sa.insert(rows).values(
                source=durable, event_id=event.event_id, value=payload.contact_id
            )
        )
        handled.append((event.event_id, msg.metadata.num_delivered))
        if fail_first and msg.metadata.num_delivered == 1:
            raise RuntimeError("transient failure")

    return handle


async def counts(
    sessions: async_sessionmaker[AsyncSession], rows: sa.Table, durable: str
) -> tuple[Counter[str], Counter[str]]:
    """Side-effect rows and inbox rows per event id, for one consumer."""
    async with sessions() as session:
        side_effects = (
            await session.execute(sa.select(rows.c.event_id).where(rows.c.source == durable))
        ).scalars()
        inbox = (
            await session.execute(
                sa.select(inbox_table.c.event_id).where(inbox_table.c.consumer == durable)
            )
        ).scalars()
        return Counter(side_effects), Counter(inbox)


def all_acked(js: JetStreamContext, durable: str, last_seq: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        info = await js.consumer_info(stream_name(REGION), durable)
        return (
            info.delivered is not None
            and info.delivered.stream_seq >= last_seq
            and info.num_pending == 0
            and info.num_ack_pending == 0
        )

    return check


async def test_same_event_delivered_twice_is_handled_once(
    js: JetStreamContext,
    sessions: async_sessionmaker[AsyncSession],
    rows: sa.Table,
    running: Running,
    eventually: Eventually,
) -> None:
    durable = "kit-test-duplicate"
    event = envelope()
    # Two messages, one event: e.g. re-sent after the de-duplication window.
    await publish(js, event, f"{event.event_id}-a")
    last = await publish(js, event, f"{event.event_id}-b")
    assert (await js.stream_info(stream_name(REGION))).state.messages == 2

    handled: list[tuple[str, int]] = []
    running.start(durable, recording_handler(rows, durable, handled))
    await eventually(all_acked(js, durable, last), what="both messages to be acked")

    side_effects, inbox = await counts(sessions, rows, durable)
    assert side_effects == {event.event_id: 1}
    assert inbox == {event.event_id: 1}
    assert handled == [(event.event_id, 1)]
    assert consumed(durable, "handled") == 1
    assert consumed(durable, "duplicate") == 1


async def test_a_failing_handler_is_retried_and_its_effect_lands_once(
    js: JetStreamContext,
    sessions: async_sessionmaker[AsyncSession],
    rows: sa.Table,
    running: Running,
    eventually: Eventually,
) -> None:
    durable = "kit-test-retry"
    event = envelope()
    last = await publish(js, event, event.event_id)

    handled: list[tuple[str, int]] = []
    running.start(durable, recording_handler(rows, durable, handled, fail_first=True))
    await eventually(all_acked(js, durable, last), what="the retried message to be acked")

    # First delivery failed (nak) and its insert was rolled back with the inbox row;
    # JetStream redelivered it and the second attempt committed.
    assert handled == [(event.event_id, 1), (event.event_id, 2)]
    side_effects, inbox = await counts(sessions, rows, durable)
    assert side_effects == {event.event_id: 1}
    assert inbox == {event.event_id: 1}
    assert consumed(durable, "failed") == 1
    assert consumed(durable, "handled") == 1


async def test_restarted_consumer_does_not_handle_acked_events_again(
    js: JetStreamContext,
    sessions: async_sessionmaker[AsyncSession],
    rows: sa.Table,
    running: Running,
    eventually: Eventually,
) -> None:
    durable = "kit-test-restart"
    before = [envelope(f"t2_{i}") for i in range(3)]
    for event in before:
        last = await publish(js, event, event.event_id)

    handled_first: list[tuple[str, int]] = []
    first = running.start(durable, recording_handler(rows, durable, handled_first))
    await eventually(all_acked(js, durable, last), what="the first consumer to ack everything")
    await running.stop(first)
    assert [event_id for event_id, _ in handled_first] == [e.event_id for e in before]

    # Let the stopped consumer's outstanding pull request expire, so the next event is
    # not handed to a subscription nobody reads any more.
    async def no_waiting_pulls() -> bool:
        return (await js.consumer_info(stream_name(REGION), durable)).num_waiting == 0

    await eventually(no_waiting_pulls, what="the old pull request to expire")

    handled_second: list[tuple[str, int]] = []
    running.start(durable, recording_handler(rows, durable, handled_second))
    after = envelope("t2_new")
    last = await publish(js, after, after.event_id)
    await eventually(all_acked(js, durable, last), what="the new consumer to ack the new event")

    assert handled_second == [(after.event_id, 1)]  # nothing acked came back
    assert consumed(durable, "duplicate") == 0  # not even as a redelivery the inbox dropped
    side_effects, inbox = await counts(sessions, rows, durable)
    expected = {e.event_id: 1 for e in [*before, after]}
    assert side_effects == expected
    assert inbox == expected


async def test_a_malformed_message_does_not_stop_the_consumer(
    js: JetStreamContext,
    sessions: async_sessionmaker[AsyncSession],
    rows: sa.Table,
    running: Running,
    eventually: Eventually,
) -> None:
    durable = "kit-test-malformed"
    ack = await js.publish(SUBJECT, b"not an envelope", headers={"Nats-Msg-Id": str(ULID())})
    event = envelope()
    last = await publish(js, event, event.event_id)
    assert last == ack.seq + 1

    handled: list[tuple[str, int]] = []
    task = running.start(durable, recording_handler(rows, durable, handled))
    await eventually(all_acked(js, durable, last), what="both messages to be settled")

    assert not task.done()
    assert handled == [(event.event_id, 1)]
    side_effects, inbox = await counts(sessions, rows, durable)
    assert side_effects == {event.event_id: 1}
    assert inbox == {event.event_id: 1}


async def test_closing_the_connection_after_a_consumer_stopped_is_prompt(
    js: JetStreamContext, connection: NatsConnection, running: Running, eventually: Eventually
) -> None:
    """Shutdown cancels the consumers, then drains the connection: that must not hang."""
    durable = "kit-test-shutdown"
    task = running.start(durable, recording_handler(sa.table("unused"), durable, []))

    async def pulling() -> bool:
        return bool((await js.consumer_info(stream_name(REGION), durable)).num_waiting)

    await eventually(pulling, what="the consumer to wait on a pull request")
    await running.stop(task)
    await asyncio.wait_for(connection.close(), timeout=5)
