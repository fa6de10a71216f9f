"""Rebuilding a tenant's read model from the region's JetStream history.

The region's stream holds every event (subjects crm.<region>.>). A rebuild replays it
with an ephemeral consumer (DeliverPolicy.ALL, the read model's filter subjects, no
acks, one reader, so in stream order) into fresh tables in a schema of its own, then
replaces the tenant's rows of the live tables with the rebuilt ones, all in one
transaction.

While it runs, the rebuild holds the tenant's advisory lock, which the live consumer
takes for each event of the tenant (projector.tenant_lock_sql): the tenant's live
consumption waits (the events wait in JetStream, nothing is lost). The replay applies
exactly the events the live consumer had committed (their inbox rows), so an event
that the live consumer holds but has not committed yet is applied by it afterwards, on
the swapped tables, and never twice.
"""

from __future__ import annotations

import logging
import time

import nats
import sqlalchemy as sa
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from ulid import ULID

from crm_kit.db import inbox_table
from crm_kit.messaging import NatsConnection, stream_name, unpack_envelope
from crm_reporting import models, projector

# Table and schema names below come from models.READ_MODEL and a generated ULID, never
# from input.

log = logging.getLogger(__name__)

BATCH = 500


async def rebuild(
    sessions: async_sessionmaker[AsyncSession], connection: NatsConnection, tenant_id: str
) -> tuple[int, int]:
    """Returns (events replayed, events applied) for the tenant."""
    client = await connection.connected()
    js = client.jetstream(timeout=10)
    region = connection.region
    schema = f"rebuild_{str(ULID()).lower()}"
    replayed = applied = 0
    started = time.monotonic()
    async with sessions() as session, session.begin():
        await session.execute(projector.tenant_lock_sql(tenant_id))
        await session.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        for table in models.READ_MODEL:
            await session.execute(
                sa.text(f'CREATE TABLE "{schema}"."{table}" (LIKE public."{table}" INCLUDING ALL)')
            )
        # Unqualified names (the projector's) now mean the fresh tables; the kit's inbox
        # exists only in public.
        await session.execute(sa.text(f'SET LOCAL search_path TO "{schema}", public'))
        info = await js.stream_info(stream_name(region))
        last = info.state.last_seq
        if info.state.messages:
            subscription = await js.pull_subscribe(
                "",
                stream=stream_name(region),
                config=ConsumerConfig(
                    deliver_policy=DeliverPolicy.ALL,
                    ack_policy=AckPolicy.NONE,
                    filter_subjects=projector.subjects(region),
                    inactive_threshold=60,
                ),
            )
            try:
                done = False
                while not done:
                    try:
                        batch = await subscription.fetch(BATCH, timeout=1)
                    except (nats.errors.TimeoutError, TimeoutError):
                        # A slow server is not the end of the stream: stop only when
                        # nothing matching is left to deliver.
                        if (await subscription.consumer_info()).num_pending == 0:
                            break
                        continue
                    envelopes = []
                    for message in batch:
                        if message.metadata.sequence.stream > last:
                            done = True
                            break
                        envelope = unpack_envelope(message.data)
                        replayed += 1
                        if envelope.tenant_id == tenant_id:
                            envelopes.append(envelope)
                        # The last stored event may not match the filter: the last matching
                        # one says so by having nothing pending behind it.
                        if (
                            message.metadata.sequence.stream == last
                            or message.metadata.num_pending == 0
                        ):
                            done = True
                    committed = await _committed(session, [e.event_id for e in envelopes])
                    for envelope in envelopes:
                        if envelope.event_id in committed and await projector.apply(
                            session, envelope
                        ):
                            applied += 1
            finally:
                await subscription.unsubscribe()
        await session.execute(sa.text("SET LOCAL search_path TO public"))
        for table in models.READ_MODEL:
            await session.execute(
                sa.text(f'DELETE FROM public."{table}" WHERE tenant_id = :tenant'),  # noqa: S608
                {"tenant": tenant_id},
            )
            await session.execute(
                sa.text(
                    f'INSERT INTO public."{table}" SELECT * FROM "{schema}"."{table}"'  # noqa: S608
                )
            )
        await session.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    log.info(
        "read model rebuilt",
        extra={
            "tenant": tenant_id,
            "replayed": replayed,
            "applied": applied,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return replayed, applied


async def _committed(session: AsyncSession, event_ids: list[str]) -> set[str]:
    if not event_ids:
        return set()
    rows = await session.scalars(
        sa.select(inbox_table.c.event_id).where(
            inbox_table.c.consumer == projector.DURABLE, inbox_table.c.event_id.in_(event_ids)
        )
    )
    return set(rows)
