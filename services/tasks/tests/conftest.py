"""Fixtures of the tasks tests: a cluster of their own (contacts and tasks in three
regions, real PostgreSQL and NATS JetStream), gRPC channels, event helpers.

Tests take the cluster through the `cluster` fixture only, so they can move to the
shared `system` fixture by changing that one fixture.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import nats
import pytest
from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message
from ulid import ULID

from crm_api.crm.events.v1 import envelope_pb2
from crm_cli.cluster import Cluster
from crm_kit.context import Principal
from crm_kit.messaging import stream_name, unpack_envelope

REGIONS = ["eu", "br", "us"]


@pytest.fixture(scope="session")
def cluster(system: Cluster) -> Cluster:
    """The shared whole system (root conftest.py), with the movable clock and a fast scheduler."""
    return system


@pytest.fixture
async def channel(cluster: Cluster) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(cluster.endpoints["tasks"]["eu"]) as ch:
        yield ch


@pytest.fixture
async def contacts_channel(cluster: Cluster) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(cluster.endpoints["contacts"]["eu"]) as ch:
        yield ch


def _caller(
    tenant: str, role: str = "admin", user: str = "u-admin", team: str = "", key: str = ""
) -> list[tuple[str, str]]:
    return Principal(
        tenant_id=tenant,
        user_id=user,
        roles=(role,),
        team=team,
        home_region="eu",
        idempotency_key=key,
    ).to_metadata()


@pytest.fixture
def caller() -> Callable[..., list[tuple[str, str]]]:
    """caller(tenant, role="admin", user="u-admin", team="", key="") -> gRPC metadata."""
    return _caller


@pytest.fixture
def tenant() -> str:
    """A fresh tenant per test, so tests never see each other's data."""
    return f"tasks-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    """`await eventually(predicate, within=20, what="...")`: polls until truthy."""

    async def wait(predicate: Callable[[], Any], *, within: float = 60.0, what: str = "") -> Any:
        deadline = time.monotonic() + within
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            if time.monotonic() >= deadline:
                pytest.fail(f"timed out after {within:.0f}s waiting for {what}")
            await asyncio.sleep(0.1)

    return wait


def make_envelope(
    tenant: str, event_type: str, payload: Message, region: str = "eu"
) -> envelope_pb2.Envelope:
    """A correct Envelope as a service's outbox writes it."""
    packed = any_pb2.Any()
    packed.Pack(payload)
    occurred = timestamp_pb2.Timestamp()
    occurred.FromDatetime(datetime.now(UTC))
    return envelope_pb2.Envelope(
        event_id=str(ULID()),
        event_type=event_type,
        tenant_id=tenant,
        region=region,
        occurred_at=occurred,
        actor_id="tests",
        schema_version=1,
        payload=packed,
    )


@pytest.fixture
def envelope() -> Callable[..., envelope_pb2.Envelope]:
    """envelope(tenant, event_type, payload, region="eu")."""
    return make_envelope


@pytest.fixture
def publish(cluster: Cluster) -> Callable[..., Awaitable[None]]:
    """publish(envelope, msg_id=None): onto crm.<region>.<event_type> via JetStream."""

    async def send(event: envelope_pb2.Envelope, msg_id: str | None = None) -> None:
        client = await nats.connect(cluster.nats.url)
        try:
            js = client.jetstream(timeout=5)
            await js.publish(
                f"crm.{event.region}.{event.event_type}",
                event.SerializeToString(),
                headers={"Nats-Msg-Id": msg_id or event.event_id},
            )
        finally:
            await client.close()

    return send


@pytest.fixture
def events(cluster: Cluster) -> Callable[..., Awaitable[list[envelope_pb2.Envelope]]]:
    """events(tenant, event_type, region="eu") -> the tenant's envelopes in the stream."""

    async def read(tenant: str, event_type: str, region: str = "eu") -> list[envelope_pb2.Envelope]:
        await cluster.events_published(region, (event_type.split(".")[0],))
        client = await nats.connect(cluster.nats.url)
        try:
            js = client.jetstream(timeout=5)
            name = stream_name(region)
            info = await js.stream_info(name)
            if info.state.messages == 0:
                return []
            subscription = await js.pull_subscribe(
                f"crm.{region}.{event_type}", stream=name, config=None
            )
            found: list[envelope_pb2.Envelope] = []
            while True:
                try:
                    batch = await subscription.fetch(500, timeout=0.5)
                except TimeoutError:  # nats-py raises its own or asyncio's: both are these
                    break
                for message in batch:
                    await message.ack()
                    item = unpack_envelope(message.data)
                    if item.tenant_id == tenant:
                        found.append(item)
            await subscription.unsubscribe()
            return found
        finally:
            await client.close()

    return read
