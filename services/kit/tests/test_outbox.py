"""The transactional outbox and its relay, against real PostgreSQL and NATS JetStream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import nats
import pytest
import sqlalchemy as sa
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_api.crm.events.v1 import contacts_pb2, envelope_pb2
from crm_cli.cluster import Cluster
from crm_kit.context import Principal
from crm_kit.db import outbox_table, transaction
from crm_kit.messaging import (
    SCHEMA_VERSION,
    NatsConnection,
    Outbox,
    OutboxRelay,
    stream_name,
)

REGION = "t1"
SERVICE = "contacts"

pytestmark = pytest.mark.usefixtures("clean")

ALICE = Principal(tenant_id="acme", user_id="u_alice", roles=("sales_rep",), home_region=REGION)

ReadStream = Callable[[], Awaitable[list[RawStreamMsg]]]
Eventually = Callable[..., Awaitable[None]]


def envelope_of(msg: RawStreamMsg) -> envelope_pb2.Envelope:
    assert msg.data is not None
    return envelope_pb2.Envelope.FromString(msg.data)


async def unpublished(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(
            (
                await session.execute(
                    sa.select(sa.func.count())
                    .select_from(outbox_table)
                    .where(outbox_table.c.published_at.is_(None))
                )
            ).scalar_one()
        )


def _is_zero(count: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await count() == 0

    return check


async def drain(relay: OutboxRelay, js: JetStreamContext) -> int:
    """Runs relay passes until one finds nothing to claim; returns how many it published."""
    total = 0
    while (published := await relay.publish_batch(js)) > 0:
        total += published
    return total


async def test_committed_events_are_published_in_order_and_rolled_back_ones_never(
    sessions: async_sessionmaker[AsyncSession],
    js: JetStreamContext,
    stream_messages: ReadStream,
) -> None:
    outbox = Outbox(SERVICE, REGION)
    relay = OutboxRelay(sessions, NatsConnection("nats://unused", REGION, "unused"), outbox)

    with pytest.raises(RuntimeError, match="abort"):
        async with transaction(sessions) as session:
            rolled_back = await outbox.add(
                session, ALICE, "contact", "created", contacts_pb2.ContactCreated(contact_id="x")
            )
            raise RuntimeError("abort the unit of work")

    payloads = [
        ("contact", "created", contacts_pb2.ContactCreated(contact_id="t1_a", source="web_form")),
        ("contact", "updated", contacts_pb2.ContactUpdated(contact_id="t1_a", owner_id="u_bob")),
        ("company", "created", contacts_pb2.ContactCreated(contact_id="t1_b")),
    ]
    async with transaction(sessions) as session:
        event_ids = [
            await outbox.add(session, ALICE, entity, verb, payload)
            for entity, verb, payload in payloads
        ]
    assert rolled_back not in event_ids
    assert await unpublished(sessions) == 3  # the rolled-back event never reached the table

    assert await drain(relay, js) == 3
    assert await unpublished(sessions) == 0
    assert await relay.publish_batch(js) == 0  # nothing is published twice

    messages = await stream_messages()
    assert [m.headers["Nats-Msg-Id"] for m in messages] == event_ids  # in commit order
    assert [m.subject for m in messages] == [
        "crm.t1.contacts.contact.created",
        "crm.t1.contacts.contact.updated",
        "crm.t1.contacts.company.created",
    ]
    assert rolled_back not in {envelope_of(m).event_id for m in messages}
    for message, event_id, (entity, verb, payload) in zip(
        messages, event_ids, payloads, strict=True
    ):
        envelope = envelope_of(message)
        assert envelope.event_id == event_id
        assert envelope.event_type == f"{SERVICE}.{entity}.{verb}"
        assert envelope.tenant_id == "acme"
        assert envelope.region == REGION
        assert envelope.actor_id == "u_alice"
        assert envelope.schema_version == SCHEMA_VERSION == 1
        assert envelope.occurred_at.seconds > 0
        unpacked = type(payload)()
        assert envelope.payload.Unpack(unpacked)
        assert unpacked == payload


async def test_two_concurrent_relays_publish_each_row_exactly_once(
    sessions: async_sessionmaker[AsyncSession],
    js: JetStreamContext,
    stream_messages: ReadStream,
) -> None:
    outbox = Outbox(SERVICE, REGION)
    async with transaction(sessions) as session:
        event_ids = [
            await outbox.add(
                session, ALICE, "contact", "created", contacts_pb2.ContactCreated(contact_id=str(i))
            )
            for i in range(500)
        ]

    unused = NatsConnection("nats://unused", REGION, "unused")
    relays = [OutboxRelay(sessions, unused, outbox, batch_size=25) for _ in range(2)]
    counts = await asyncio.gather(*(drain(relay, js) for relay in relays))

    assert sum(counts) == 500
    assert all(count > 0 for count in counts), counts  # both replicas did take part
    assert await unpublished(sessions) == 0
    info = await js.stream_info(stream_name(REGION))
    assert info.state.messages == 500
    messages = await stream_messages()
    published_ids = [envelope_of(m).event_id for m in messages]
    assert len(set(published_ids)) == 500
    assert set(published_ids) == set(event_ids)
    assert all(m.headers["Nats-Msg-Id"] == envelope_of(m).event_id for m in messages)


async def test_republish_after_a_crash_is_deduplicated_by_jetstream(
    sessions: async_sessionmaker[AsyncSession],
    js: JetStreamContext,
    stream_messages: ReadStream,
) -> None:
    outbox = Outbox(SERVICE, REGION)
    async with transaction(sessions) as session:
        event_id = await outbox.add(
            session, ALICE, "contact", "created", contacts_pb2.ContactCreated(contact_id="c")
        )
    # A relay published the row and crashed before it could mark it as published.
    async with sessions() as session:
        row = (
            await session.execute(
                sa.select(outbox_table).where(outbox_table.c.event_id == event_id)
            )
        ).one()
    first = await js.publish(
        row.subject, row.payload, headers={**row.headers, "Nats-Msg-Id": row.event_id}
    )
    assert not first.duplicate

    relay = OutboxRelay(sessions, NatsConnection("nats://unused", REGION, "unused"), outbox)
    assert await relay.publish_batch(js) == 1
    assert await unpublished(sessions) == 0

    messages = await stream_messages()
    assert len(messages) == 1
    assert messages[0].seq == first.seq
    assert messages[0].headers["Nats-Msg-Id"] == event_id
    assert envelope_of(messages[0]).event_id == event_id


async def test_a_failed_publish_mid_batch_keeps_what_already_went_out(
    sessions: async_sessionmaker[AsyncSession],
    js: JetStreamContext,
    stream_messages: ReadStream,
) -> None:
    """A publish error part-way through a batch must not un-mark the rows already sent."""
    outbox = Outbox(SERVICE, REGION)
    async with transaction(sessions) as session:
        sent = [
            await outbox.add(session, ALICE, "contact", "created", contacts_pb2.ContactCreated())
            for _ in range(2)
        ]
        # A row no stream listens to: JetStream refuses it (no responders).
        await session.execute(
            sa.insert(outbox_table).values(
                event_id="poison", subject="crm-no-stream.x", payload=b"", headers={}
            )
        )
        after = await outbox.add(
            session, ALICE, "contact", "created", contacts_pb2.ContactCreated()
        )

    relay = OutboxRelay(sessions, NatsConnection("nats://unused", REGION, "unused"), outbox)
    try:
        with pytest.raises(nats.js.errors.NoStreamResponseError):
            await relay.publish_batch(js)
        async with sessions() as session:
            state = dict(
                (
                    await session.execute(
                        sa.select(outbox_table.c.event_id, outbox_table.c.published_at.is_not(None))
                    )
                ).all()
            )
        assert state == {sent[0]: True, sent[1]: True, "poison": False, after: False}
        assert [m.headers["Nats-Msg-Id"] for m in await stream_messages()] == sent
    finally:
        async with transaction(sessions) as session:
            await session.execute(
                sa.delete(outbox_table).where(outbox_table.c.event_id == "poison")
            )


async def test_nats_outage_loses_nothing_and_duplicates_nothing(
    engines: Cluster,
    sessions: async_sessionmaker[AsyncSession],
    js: JetStreamContext,
    stream_messages: ReadStream,
    eventually: Eventually,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="crm_kit.messaging")
    outbox = Outbox(SERVICE, REGION)
    connection = NatsConnection(engines.nats.url, REGION, "relay-outage-test")
    connection.start()
    await asyncio.wait_for(connection.connected(), timeout=10)
    relay = OutboxRelay(sessions, connection, outbox, poll_interval=0.2)
    task = asyncio.create_task(relay.run())
    try:
        # Warm up: the running relay publishes promptly while NATS is up.
        async with transaction(sessions) as session:
            warm = await outbox.add(
                session, ALICE, "contact", "created", contacts_pb2.ContactCreated()
            )
        await eventually(
            _is_zero(lambda: unpublished(sessions)), what="the warm-up event to be published"
        )

        await asyncio.to_thread(engines.nats.stop)
        try:
            await eventually(lambda: not connection.is_connected, what="the relay to see NATS down")
            event_ids: list[str] = []
            for i in range(5):  # five separate units of work, all accepted while NATS is down
                async with transaction(sessions) as session:
                    event_ids.append(
                        await outbox.add(
                            session,
                            ALICE,
                            "contact",
                            "created",
                            contacts_pb2.ContactCreated(contact_id=str(i)),
                        )
                    )
            assert await unpublished(sessions) == 5
            # The relay tries, fails, and keeps the rows for later.
            await eventually(
                lambda: "publish failed, will retry" in caplog.text,
                what="the relay to fail a publish during the outage",
            )
            assert await unpublished(sessions) == 5
            assert not task.done()
        finally:
            await asyncio.to_thread(engines.nats.start, engines.log_dir / "nats.log")

        await eventually(
            _is_zero(lambda: unpublished(sessions)),
            what="the relay to publish the backlog after NATS came back",
        )

        async def all_in_stream() -> bool:
            return len(await stream_messages()) >= 6

        await eventually(all_in_stream, what="the stream to hold every event")
        messages = await stream_messages()
        ids = [m.headers["Nats-Msg-Id"] for m in messages]
        assert sorted(ids) == sorted([warm, *event_ids])  # each exactly once
        assert ids[0] == warm
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await connection.close()


async def test_a_commit_wakes_the_idle_relay_and_it_does_not_poll_meanwhile(
    engines: Cluster,
    sessions: async_sessionmaker[AsyncSession],
    eventually: Eventually,
) -> None:
    # An hour between fallback polls: only the commit itself can get the event out.
    outbox = Outbox(SERVICE, REGION)
    connection = NatsConnection(engines.nats.url, REGION, "relay-wake-test")
    connection.start()
    await asyncio.wait_for(connection.connected(), timeout=10)
    relay = OutboxRelay(sessions, connection, outbox, idle_poll_interval=3600)
    passes = 0
    publish_batch = relay.publish_batch

    async def counted(js: JetStreamContext) -> int:
        nonlocal passes
        passes += 1
        return await publish_batch(js)

    relay.publish_batch = counted  # type: ignore[method-assign]
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: passes >= 1, what="the relay's first pass")
        for i in range(3):
            async with transaction(sessions) as session:
                await outbox.add(
                    session,
                    ALICE,
                    "contact",
                    "created",
                    contacts_pb2.ContactCreated(contact_id=f"wake-{i}"),
                )
                # Inside the transaction the row is not visible: no wake-up yet.
                await asyncio.sleep(0.05)
            await eventually(
                _is_zero(lambda: unpublished(sessions)), what=f"event {i} to be published"
            )
        # A rolled-back write wakes nobody.
        before = passes
        with pytest.raises(RuntimeError):
            async with transaction(sessions) as session:
                await outbox.add(
                    session, ALICE, "contact", "created", contacts_pb2.ContactCreated()
                )
                raise RuntimeError("abort")
        await asyncio.sleep(0.5)
        assert passes == before
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await connection.close()


async def test_trace_context_rides_with_the_event(
    sessions: async_sessionmaker[AsyncSession],
    js: JetStreamContext,
    stream_messages: ReadStream,
) -> None:
    tracer = TracerProvider().get_tracer("kit-tests")
    outbox = Outbox(SERVICE, REGION)
    with tracer.start_as_current_span("CreateContact") as span:
        async with transaction(sessions) as session:
            traced = await outbox.add(
                session, ALICE, "contact", "created", contacts_pb2.ContactCreated()
            )
    async with transaction(sessions) as session:  # no active span
        untraced = await outbox.add(
            session, ALICE, "contact", "created", contacts_pb2.ContactCreated()
        )

    relay = OutboxRelay(sessions, NatsConnection("nats://unused", REGION, "unused"), outbox)
    assert await drain(relay, js) == 2

    by_id = {m.headers["Nats-Msg-Id"]: m.headers for m in await stream_messages()}
    span_context = span.get_span_context()
    version, trace_id, parent_id, _flags = by_id[traced]["traceparent"].split("-")
    assert version == "00"
    assert trace_id == format(span_context.trace_id, "032x")
    assert parent_id == format(span_context.span_id, "016x")
    assert "traceparent" not in by_id[untraced]
