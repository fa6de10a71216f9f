"""JetStream: one stream per region, the transactional outbox and its relay, and
idempotent durable pull consumers with an inbox table.

A service writes its state change and its events in one database transaction
(`Outbox.add`). The relay in every replica claims unpublished rows with
`FOR UPDATE SKIP LOCKED` (so replicas never double-send) and publishes each with
`Nats-Msg-Id` = event id (so JetStream drops a re-publish after a crash). While NATS
is down rows simply wait in the table: accepted writes are never lost.

The relay is woken when a transaction that wrote to the outbox commits (woken earlier it
would find nothing yet and sleep); it polls only as a fallback, for rows another replica
left behind when it crashed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import sqlalchemy as sa
from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from prometheus_client import Counter, Gauge
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from ulid import ULID

from crm_api.crm.events.v1 import envelope_pb2
from crm_kit.context import Principal
from crm_kit.db import inbox_table, outbox_table

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

EVENTS_PUBLISHED = Counter(
    "crm_events_published_total", "Events published from the outbox", ["subject"]
)
OUTBOX_BACKLOG = Gauge("crm_outbox_backlog", "Unpublished outbox rows seen by the last relay pass")
EVENTS_CONSUMED = Counter("crm_events_consumed_total", "Events handled", ["consumer", "outcome"])

SCHEMA_VERSION = 1


def stream_name(region: str) -> str:
    return f"CRM_{region.upper()}"


def subject_for(region: str, service: str, entity: str, verb: str) -> str:
    return f"crm.{region}.{service}.{entity}.{verb}"


async def ensure_stream(js: JetStreamContext, region: str) -> None:
    """Creates (or keeps) the region's stream: every subject crm.<region>.>."""
    config = StreamConfig(
        name=stream_name(region),
        subjects=[f"crm.{region}.>"],
        duplicate_window=timedelta(minutes=10).total_seconds(),
    )
    try:
        await js.stream_info(config.name or "")
    except nats.js.errors.NotFoundError:
        await js.add_stream(config)


class NatsConnection:
    """A NATS connection that is made in the background and survives outages.

    A service must start and accept writes while NATS is down; publishers and
    consumers wait for `connected()`.
    """

    def __init__(self, url: str, region: str, name: str) -> None:
        self.url = url
        self.region = region
        self.name = name
        self._client: NatsClient | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect(), name=f"nats-connect-{self.name}")

    async def _connect(self) -> None:
        async def on_error(exc: Exception) -> None:
            log.warning("nats: %s", exc)

        self._client = await nats.connect(
            self.url,
            name=self.name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=2,
            error_cb=on_error,
        )
        while True:
            try:
                await ensure_stream(self._client.jetstream(), self.region)
                break
            except Exception as exc:
                log.warning("nats: stream setup failed, retrying: %s", exc)
                await asyncio.sleep(1)
        self._ready.set()
        log.info("nats connected", extra={"url": self.url})

    async def connected(self) -> NatsClient:
        await self._ready.wait()
        assert self._client is not None
        return self._client

    @property
    def is_connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._client is not None and not self._client.is_closed:
            await self._client.drain()


class Outbox:
    """Writes events into the outbox inside the caller's transaction."""

    def __init__(self, service: str, region: str) -> None:
        self.service = service
        self.region = region
        self.written = asyncio.Event()
        # One bound method, so the listener is registered once per session.
        self._wake_relay = self._committed

    def _committed(self, _session: Any) -> None:
        self.written.set()

    async def add(
        self,
        session: AsyncSession,
        principal: Principal,
        entity: str,
        verb: str,
        payload: Message,
    ) -> str:
        event_id = str(ULID())
        occurred_at = timestamp_pb2.Timestamp()
        occurred_at.FromDatetime(datetime.now(UTC))
        packed = any_pb2.Any()
        packed.Pack(payload)
        envelope = envelope_pb2.Envelope(
            event_id=event_id,
            event_type=f"{self.service}.{entity}.{verb}",
            tenant_id=principal.tenant_id,
            region=self.region,
            occurred_at=occurred_at,
            actor_id=principal.user_id,
            schema_version=SCHEMA_VERSION,
            payload=packed,
        )
        headers: dict[str, str] = {}
        propagate.inject(headers)  # W3C trace context rides with the event
        await session.execute(
            sa.insert(outbox_table).values(
                event_id=event_id,
                subject=subject_for(self.region, self.service, entity, verb),
                payload=envelope.SerializeToString(),
                headers=headers,
            )
        )
        # Wake the relay after the commit, when the row is visible to it.
        sync_session = session.sync_session
        if not sa.event.contains(sync_session, "after_commit", self._wake_relay):
            sa.event.listen(sync_session, "after_commit", self._wake_relay, once=True)
        return event_id


class OutboxRelay:
    """Publishes outbox rows to JetStream; safe to run in every replica at once."""

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        connection: NatsConnection,
        outbox: Outbox,
        *,
        batch_size: int = 200,
        poll_interval: float = 0.5,
        idle_poll_interval: float = 10.0,
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self.factory = factory
        self.connection = connection
        self.outbox = outbox
        self.batch_size = batch_size
        # The first retry after a failure; doubled up to 5 s while failures go on.
        self.poll_interval = poll_interval
        # The fallback poll while idle (commits wake the relay at once).
        self.idle_poll_interval = idle_poll_interval
        self.retention = retention

    async def run(self) -> None:
        client = await self.connection.connected()
        js = client.jetstream(timeout=5)
        backoff = self.poll_interval
        passes = 0
        while True:
            # Cleared before the pass: a commit during the pass wakes the next one.
            self.outbox.written.clear()
            try:
                published = await self.publish_batch(js)
                backoff = self.poll_interval
                wait = self.idle_poll_interval
                passes += 1
                if passes % 1000 == 0:
                    await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay: publish failed, will retry: %s", exc)
                published = 0
                wait = backoff
                backoff = min(backoff * 2, 5.0)
            if published < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.outbox.written.wait(), timeout=wait)

    async def publish_batch(self, js: JetStreamContext) -> int:
        """Claims and publishes one batch; returns how many were published."""
        published: list[int] = []
        failure: Exception | None = None
        async with self.factory() as session, session.begin():
            rows = (
                await session.execute(
                    sa.select(
                        outbox_table.c.id,
                        outbox_table.c.event_id,
                        outbox_table.c.subject,
                        outbox_table.c.payload,
                        outbox_table.c.headers,
                    )
                    .where(outbox_table.c.published_at.is_(None))
                    .order_by(outbox_table.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            OUTBOX_BACKLOG.set(len(rows))
            for row in rows:
                headers = {**(row.headers or {}), "Nats-Msg-Id": row.event_id}
                try:
                    await js.publish(row.subject, row.payload, headers=headers)
                except Exception as exc:
                    failure = exc
                    break
                published.append(row.id)
                EVENTS_PUBLISHED.labels(subject=row.subject).inc()
            # Mark (and commit) what did go out even when a later publish failed, so a
            # NATS outage mid-batch re-sends only the rest (and duplicates are dropped
            # by JetStream anyway, by Nats-Msg-Id). The error is raised only after the
            # commit: raised inside the transaction it would roll the marks back.
            if published:
                await session.execute(
                    sa.update(outbox_table)
                    .where(outbox_table.c.id.in_(published))
                    .values(published_at=sa.func.now())
                )
        if failure is not None:
            raise failure
        return len(published)

    async def prune(self) -> None:
        async with self.factory() as session, session.begin():
            await session.execute(
                sa.delete(outbox_table).where(
                    outbox_table.c.published_at < datetime.now(UTC) - self.retention
                )
            )


def unpack_envelope(data: bytes) -> envelope_pb2.Envelope:
    envelope = envelope_pb2.Envelope()
    envelope.ParseFromString(data)
    return envelope


EventHandler = Callable[[AsyncSession, envelope_pb2.Envelope, Msg], Awaitable[None]]
# A consumer with nothing to do waits this long in one pull for the next message (the
# server answers as soon as one is stored), then asks again: idle, a pull per 5 s.
IDLE_WAIT = 5.0
# With messages coming, how long a pull for a batch may wait to fill: the most a message
# can wait behind others that are not there.
DRAIN_WAIT = 0.02

# Whether the handler could do anything with an event, decided without the database
# (e.g. from in-process knowledge of which tenants have rules); False acks it untouched.
EventFilter = Callable[[envelope_pb2.Envelope], Awaitable[bool]]


def filter_subjects_of(config: ConsumerConfig) -> set[str]:
    if config.filter_subjects:
        return set(config.filter_subjects)
    return {config.filter_subject} if config.filter_subject else set()


class Consumer:
    """A durable pull consumer whose handler runs exactly once per event.

    The inbox row (consumer, event id) is written in the same transaction as the
    handler's side effects; a redelivered event finds its row and is only acked.
    """

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        connection: NatsConnection,
        *,
        durable: str,
        subjects: list[str],
        handler: EventHandler,
        wants: EventFilter | None = None,
        batch: int = 50,
        ack_wait: float = 30.0,
        max_deliver: int = 20,
        idle_wait: float = IDLE_WAIT,
    ) -> None:
        self.factory = factory
        self.wants = wants
        self.idle_wait = idle_wait
        self.connection = connection
        self.durable = durable
        self.subjects = subjects
        self.handler = handler
        self.batch = batch
        self.ack_wait = ack_wait
        self.max_deliver = max_deliver

    async def run(self) -> None:
        client = await self.connection.connected()
        js = client.jetstream()
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            max_deliver=self.max_deliver,
            filter_subjects=self.subjects,
        )
        await self.reconcile(js, config)
        subscription = await js.pull_subscribe(
            "", durable=self.durable, stream=stream_name(self.connection.region), config=config
        )
        try:
            while True:
                # Waiting, ask for one message: a pull for a batch is answered only when
                # the batch is full or the pull expires, so a lone event would wait for
                # the expiry. Once one came, take what else is already there (a backlog)
                # in batches, waiting at most DRAIN_WAIT for a batch to fill.
                messages = await self._fetch(subscription, 1, self.idle_wait)
                while messages:
                    for msg in messages:
                        await self.handle(msg)
                    messages = await self._fetch(subscription, self.batch, DRAIN_WAIT)
        finally:
            # Without this, draining the connection at shutdown waits for the status
            # replies of our expired pull requests, which nobody reads: the full drain
            # timeout (30 s).
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _fetch(self, subscription: Any, batch: int, wait: float) -> list[Msg]:
        try:
            messages: list[Msg] = await subscription.fetch(batch, timeout=wait)
            return messages
        except (nats.errors.TimeoutError, TimeoutError):
            # nats-py raises either, depending on where the wait ended.
            return []
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("consumer %s: fetch failed: %s", self.durable, exc)
            await asyncio.sleep(1)
            return []

    async def reconcile(self, js: JetStreamContext, config: ConsumerConfig) -> None:
        """Brings an existing durable consumer's subjects and limits to this code's.

        `pull_subscribe` binds to a durable that exists as it is: without this, a new
        release that narrows or widens what a consumer listens to would keep the first
        release's subjects on every running deployment (JetStream keeps durables)."""
        stream = stream_name(self.connection.region)
        try:
            current = (await js.consumer_info(stream, self.durable)).config
        except nats.js.errors.NotFoundError:
            return  # pull_subscribe creates it with this config
        if (
            filter_subjects_of(current) == set(self.subjects)
            and current.ack_wait == config.ack_wait
            and current.max_deliver == config.max_deliver
        ):
            return
        log.info(
            "consumer %s: updating its subjects %s -> %s",
            self.durable,
            sorted(filter_subjects_of(current)),
            sorted(self.subjects),
        )
        # The create request of an existing durable updates what may change (JetStream
        # 2.10+); everything else is sent as it is, so the request is an update.
        await js.add_consumer(
            stream,
            config=ConsumerConfig(
                durable_name=self.durable,
                ack_policy=current.ack_policy,
                deliver_policy=current.deliver_policy,
                opt_start_seq=current.opt_start_seq,
                opt_start_time=current.opt_start_time,
                ack_wait=config.ack_wait,
                max_deliver=config.max_deliver,
                filter_subjects=self.subjects,
            ),
        )

    async def handle(self, msg: Msg) -> None:
        try:
            envelope = unpack_envelope(msg.data)
        except DecodeError:
            # Not an Envelope: it can never be handled, and raising here would end the
            # consumer's task. Drop it for good (a redelivery would only fail again).
            log.error("consumer %s: dropping a malformed message on %s", self.durable, msg.subject)
            EVENTS_CONSUMED.labels(self.durable, "malformed").inc()
            await msg.term()
            return
        if self.wants is not None:
            try:
                wanted = await self.wants(envelope)
            except Exception:  # cannot tell: handle it as before
                log.exception("consumer %s: filter failed for %s", self.durable, envelope.event_id)
                wanted = True
            if not wanted:
                EVENTS_CONSUMED.labels(self.durable, "skipped").inc()
                await msg.ack()
                return
        carrier: dict[str, Any] = dict(msg.headers or {})
        token = otel_context.attach(propagate.extract(carrier))
        try:
            with _tracer.start_as_current_span(
                f"consume {envelope.event_type}", kind=trace.SpanKind.CONSUMER
            ):
                async with self.factory() as session, session.begin():
                    inserted = await session.execute(
                        pg_insert(inbox_table)
                        .values(consumer=self.durable, event_id=envelope.event_id)
                        .on_conflict_do_nothing()
                        .returning(inbox_table.c.event_id)
                    )
                    if inserted.first() is None:
                        EVENTS_CONSUMED.labels(self.durable, "duplicate").inc()
                    else:
                        await self.handler(session, envelope, msg)
                        EVENTS_CONSUMED.labels(self.durable, "handled").inc()
            await msg.ack()
        except Exception:
            log.exception("consumer %s: handler failed for %s", self.durable, envelope.event_id)
            EVENTS_CONSUMED.labels(self.durable, "failed").inc()
            await msg.nak(delay=2)
        finally:
            otel_context.detach(token)
