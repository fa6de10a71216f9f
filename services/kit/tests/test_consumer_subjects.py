"""A durable consumer follows the subjects of the release that runs it, and acks what its
filter says no handler wants without a transaction: real PostgreSQL and NATS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import sqlalchemy as sa
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from ulid import ULID

from crm_api.crm.events.v1 import contacts_pb2, envelope_pb2
from crm_cli.cluster import Cluster
from crm_kit.db import inbox_table
from crm_kit.messaging import Consumer, NatsConnection, filter_subjects_of, stream_name

REGION = "t8"
CREATED = "crm.t8.contacts.contact.created"
UPDATED = "crm.t8.contacts.contact.updated"

pytestmark = pytest.mark.usefixtures("clean")

Eventually = Callable[..., Awaitable[None]]


def envelope(event_type: str, tenant: str = "acme") -> envelope_pb2.Envelope:
    event = envelope_pb2.Envelope(
        event_id=str(ULID()),
        event_type=event_type,
        tenant_id=tenant,
        region=REGION,
        actor_id="u_alice",
        schema_version=1,
    )
    event.occurred_at.GetCurrentTime()
    event.payload.Pack(contacts_pb2.ContactCreated(contact_id="t8_c"))
    return event


async def publish(js: JetStreamContext, subject: str, event: envelope_pb2.Envelope) -> None:
    await js.publish(subject, event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id})


@pytest.fixture
async def connection(engines: Cluster) -> AsyncIterator[NatsConnection]:
    conn = NatsConnection(engines.nats.url, REGION, "subjects-test")
    conn.start()
    await asyncio.wait_for(conn.connected(), timeout=10)
    yield conn
    await conn.close()


@pytest.fixture
async def tasks() -> AsyncIterator[list[asyncio.Task[None]]]:
    started: list[asyncio.Task[None]] = []
    yield started
    for task in started:
        task.cancel()
    await asyncio.gather(*started, return_exceptions=True)


async def test_a_new_release_that_listens_to_more_subjects_gets_them_on_a_running_deployment(
    js: JetStreamContext,
    sessions: async_sessionmaker[AsyncSession],
    connection: NatsConnection,
    tasks: list[asyncio.Task[None]],
    eventually: Eventually,
) -> None:
    durable = "reconcile-widen"
    # What the previous release left on the deployment: the durable, on `created` only.
    await js.add_consumer(
        stream_name(REGION),
        config=ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30.0,
            max_deliver=20,
            filter_subjects=[CREATED],
        ),
    )
    handled: list[str] = []

    async def handler(session: AsyncSession, event: envelope_pb2.Envelope, msg: Msg) -> None:
        handled.append(event.event_type)

    consumer = Consumer(
        sessions, connection, durable=durable, subjects=[CREATED, UPDATED], handler=handler
    )
    tasks.append(asyncio.create_task(consumer.run()))
    await eventually(
        lambda: _subjects(js, durable, {CREATED, UPDATED}), what="the durable's new subjects"
    )
    await publish(js, UPDATED, envelope("contacts.contact.updated"))
    await eventually(lambda: handled == ["contacts.contact.updated"], what="the update handled")


async def test_a_release_that_listens_to_fewer_subjects_no_longer_gets_the_others(
    js: JetStreamContext,
    sessions: async_sessionmaker[AsyncSession],
    connection: NatsConnection,
    tasks: list[asyncio.Task[None]],
    eventually: Eventually,
) -> None:
    durable = "reconcile-narrow"
    await js.add_consumer(
        stream_name(REGION),
        config=ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=f"crm.{REGION}.>",
        ),
    )
    handled: list[str] = []

    async def handler(session: AsyncSession, event: envelope_pb2.Envelope, msg: Msg) -> None:
        handled.append(event.event_type)

    consumer = Consumer(sessions, connection, durable=durable, subjects=[CREATED], handler=handler)
    tasks.append(asyncio.create_task(consumer.run()))
    await eventually(lambda: _subjects(js, durable, {CREATED}), what="the durable narrowed")
    await publish(js, UPDATED, envelope("contacts.contact.updated"))
    await publish(js, CREATED, envelope("contacts.contact.created"))
    await eventually(lambda: handled == ["contacts.contact.created"], what="the create handled")
    info = await js.consumer_info(stream_name(REGION), durable)
    assert info.num_pending == 0 and info.num_ack_pending == 0


async def test_events_the_filter_refuses_are_acked_without_a_transaction(
    js: JetStreamContext,
    sessions: async_sessionmaker[AsyncSession],
    connection: NatsConnection,
    tasks: list[asyncio.Task[None]],
    eventually: Eventually,
) -> None:
    durable = "filtered"
    handled: list[str] = []

    async def handler(session: AsyncSession, event: envelope_pb2.Envelope, msg: Msg) -> None:
        handled.append(event.tenant_id)

    async def wants(event: envelope_pb2.Envelope) -> bool:
        return event.tenant_id == "with-rules"

    consumer = Consumer(
        sessions, connection, durable=durable, subjects=[CREATED], handler=handler, wants=wants
    )
    tasks.append(asyncio.create_task(consumer.run()))
    await publish(js, CREATED, envelope("contacts.contact.created", tenant="no-rules"))
    await publish(js, CREATED, envelope("contacts.contact.created", tenant="with-rules"))
    await eventually(lambda: handled == ["with-rules"], what="the wanted event handled")

    async def all_acked() -> bool:
        info = await js.consumer_info(stream_name(REGION), durable)
        return info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(all_acked, what="both events acked")
    async with sessions() as session:
        inbox = await session.scalars(
            sa.select(inbox_table.c.event_id).where(inbox_table.c.consumer == durable)
        )
        assert len(inbox.all()) == 1  # the refused one left no trace in the database


async def _subjects(js: JetStreamContext, durable: str, expected: set[str]) -> bool:
    info = await js.consumer_info(stream_name(REGION), durable)
    return filter_subjects_of(info.config) == expected


async def test_a_lone_event_is_handled_without_waiting_for_the_pull_to_expire(
    js: JetStreamContext,
    sessions: async_sessionmaker[AsyncSession],
    connection: NatsConnection,
    tasks: list[asyncio.Task[None]],
    eventually: Eventually,
) -> None:
    handled: list[str] = []

    async def handler(session: AsyncSession, event: envelope_pb2.Envelope, msg: Msg) -> None:
        handled.append(event.event_id)

    # Pulls that would wait 10 minutes for a batch of 50 to fill: one event must not.
    consumer = Consumer(
        sessions,
        connection,
        durable="lone",
        subjects=[CREATED],
        handler=handler,
        batch=50,
        idle_wait=600,
    )
    tasks.append(asyncio.create_task(consumer.run()))
    await eventually(
        lambda: _pulling(js, "lone"), what="the consumer's pull to be waiting", within=60
    )
    first, second = envelope("contacts.contact.created"), envelope("contacts.contact.created")
    await publish(js, CREATED, first)
    await eventually(lambda: handled == [first.event_id], what="the lone event", within=120)
    await publish(js, CREATED, second)
    await eventually(
        lambda: handled == [first.event_id, second.event_id], what="the next one", within=120
    )


async def _pulling(js: JetStreamContext, durable: str) -> bool:
    info = await js.consumer_info(stream_name(REGION), durable)
    return info.num_waiting > 0
