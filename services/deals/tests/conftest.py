"""Fixtures of the deals service tests, on the shared running system (root conftest.py).

Tests reach the services over gRPC, as the gateway and other services do.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from crm_api.crm.contacts.v1 import contacts_pb2, contacts_pb2_grpc
from crm_api.crm.deals.v1 import deals_pb2 as pb
from crm_api.crm.deals.v1 import deals_pb2_grpc
from crm_api.crm.privacy.v1 import privacy_pb2_grpc
from crm_cli.cluster import Cluster
from crm_kit.context import Principal
from crm_kit.grpc_server import field_violations, parse_status_details

REGIONS = ["eu", "br", "us"]


@pytest.fixture(scope="session")
def deals_system(system: Cluster) -> Cluster:
    """The shared whole system (root conftest.py): contacts and deals in every region."""
    return system


def metadata(
    tenant: str, role: str = "admin", user: str = "u-admin", team: str = ""
) -> list[tuple[str, str]]:
    return Principal(
        tenant_id=tenant, user_id=user, roles=(role,), team=team, home_region="eu"
    ).to_metadata()


@dataclass
class Client:
    """gRPC stubs of one region for one fresh tenant, and shortcuts the tests share."""

    tenant: str
    deals: deals_pb2_grpc.DealsServiceStub
    privacy: privacy_pb2_grpc.PrivacyServiceStub
    contacts: contacts_pb2_grpc.ContactsServiceStub
    contacts_privacy: privacy_pb2_grpc.PrivacyServiceStub

    def as_(self, role: str = "admin", user: str = "u-admin", team: str = "") -> Any:
        return metadata(self.tenant, role, user, team)

    @property
    def admin(self) -> Any:
        return self.as_()

    async def contact(self, meta: Any = None, **fields: Any) -> contacts_pb2.Contact:
        values: dict[str, Any] = {
            "first_name": "Erika",
            "last_name": f"Muster{uuid.uuid4().hex[:6]}",
            "address": contacts_pb2.Address(
                street="Hauptstraße 5", city="Berlin", postal_code="10115", country="DE"
            ),
            **fields,
        }
        return await self.contacts.CreateContact(
            contacts_pb2.CreateContactRequest(contact=contacts_pb2.Contact(**values)),
            metadata=meta or self.admin,
            timeout=10,
        )

    async def deal(self, contact_id: str, meta: Any = None, **fields: Any) -> pb.Deal:
        values: dict[str, Any] = {"title": "Windows for the house", **fields}
        return await self.deals.CreateDeal(
            pb.CreateDealRequest(deal=pb.Deal(contact_id=contact_id, **values)),
            metadata=meta or self.admin,
            timeout=10,
        )

    async def move(self, deal_id: str, stage_id: str, meta: Any = None, **fields: Any) -> pb.Deal:
        return await self.deals.MoveDeal(
            pb.MoveDealRequest(id=deal_id, stage_id=stage_id, **fields),
            metadata=meta or self.admin,
            timeout=30,
        )

    async def pipeline(self, *stages: pb.Stage, name: str = "Windows") -> pb.Pipeline:
        return await self.deals.CreatePipeline(
            pb.CreatePipelineRequest(pipeline=pb.Pipeline(name=name, stages=list(stages))),
            metadata=self.admin,
            timeout=10,
        )


@pytest.fixture
async def client(deals_system: Cluster) -> Any:
    deals = grpc.aio.insecure_channel(deals_system.endpoints["deals"]["eu"])
    contacts = grpc.aio.insecure_channel(deals_system.endpoints["contacts"]["eu"])
    try:
        yield Client(
            tenant=f"deals-{uuid.uuid4().hex[:8]}",
            deals=deals_pb2_grpc.DealsServiceStub(deals),
            privacy=privacy_pb2_grpc.PrivacyServiceStub(deals),
            contacts=contacts_pb2_grpc.ContactsServiceStub(contacts),
            contacts_privacy=privacy_pb2_grpc.PrivacyServiceStub(contacts),
        )
    finally:
        await deals.close()
        await contacts.close()


async def _refused(call: Awaitable[Any], code: grpc.StatusCode) -> set[str]:
    """Awaits a call that must fail with `code`; returns the fields it names."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    status = parse_status_details(caught.value.trailing_metadata())
    return {v.field for v in field_violations(status)}


@pytest.fixture
def refused() -> Callable[[Awaitable[Any], grpc.StatusCode], Awaitable[set[str]]]:
    """`fields = await refused(stub.Call(...), grpc.StatusCode.INVALID_ARGUMENT)`."""
    return _refused


async def _eventually(predicate: Callable[[], Any], *, within: float = 60.0, what: str = "") -> Any:
    """Polls `predicate` (sync or async) until it returns something truthy."""
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


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    """`await eventually(predicate, within=20, what="...")`: bounded polling."""
    return _eventually


@pytest.fixture(scope="session")
def deals_events(deals_system: Cluster) -> Callable[[str, str], Awaitable[list[Any]]]:
    """deals_events(region, subject_filter) -> every Envelope in the region's stream."""
    import nats
    from nats.js.api import ConsumerConfig, DeliverPolicy

    from crm_kit.messaging import stream_name, unpack_envelope

    async def read(region: str, subject: str = ">") -> list[Any]:
        service = subject.split(".")[0]
        await deals_system.events_published(region, (service,) if service != ">" else ())
        client = await nats.connect(deals_system.nats.url)
        try:
            js = client.jetstream()
            total = (await js.stream_info(stream_name(region))).state.messages
            subscription = await js.pull_subscribe(
                f"crm.{region}.{subject}",
                stream=stream_name(region),
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
            )
            envelopes = []
            while total > 0:
                try:
                    batch = await subscription.fetch(500, timeout=1)
                except (nats.errors.TimeoutError, TimeoutError):  # nats-py raises either
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
