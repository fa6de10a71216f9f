"""Fixtures of the reporting tests: the shared whole system (root conftest.py), a fresh
tenant per test, and helpers to set a tenant up through the gateway."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import nats
import pytest
from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message
from ulid import ULID

from crm_api.crm.events.v1 import envelope_pb2
from crm_cli.cluster import Cluster

REGIONS = ["eu", "br", "us"]

# A country per region, so the contacts service places a contact there.
COUNTRY = {"eu": "DE", "br": "BR", "us": "US"}


@pytest.fixture(scope="session")
def cluster(system: Cluster) -> Cluster:
    return system


@pytest.fixture
def tenant() -> str:
    return f"rep-{uuid.uuid4().hex[:8]}"


async def ok(call: Awaitable[httpx.Response], status: int = 200) -> Any:
    response = await call
    assert response.status_code == status, response.text
    return response.json() if response.headers.get("content-type", "").endswith("json") else None


async def eventually(predicate: Callable[[], Any], *, within: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.2)


def envelope(
    tenant: str, event_type: str, payload: Message, region: str = "eu"
) -> envelope_pb2.Envelope:
    """An Envelope exactly as a service's outbox writes it."""
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
def caught_up(cluster: Cluster) -> Callable[[], Awaitable[None]]:
    """caught_up() waits until every region's read model has handled every event committed
    so far: the outboxes are published and the live consumer has nothing pending or
    unacknowledged (it acks after its transaction commits)."""
    from crm_kit.messaging import stream_name
    from crm_reporting.projector import DURABLE

    async def wait() -> None:
        client = await nats.connect(cluster.nats.url)
        try:
            js = client.jetstream(timeout=5)
            for region in REGIONS:
                await cluster.events_published(region)

                async def idle(region: str = region) -> bool:
                    info = await js.consumer_info(stream_name(region), DURABLE)
                    return info.num_pending == 0 and info.num_ack_pending == 0

                await eventually(idle, what=f"the {region} read model to catch up")
        finally:
            await client.close()

    return wait


@pytest.fixture
def publish(cluster: Cluster) -> Callable[..., Awaitable[None]]:
    """publish(envelope, msg_id=None) onto crm.<region>.<event_type> through JetStream.

    The integrations service (which publishes integrations.call.logged) is built
    separately; the tests publish that contract's events themselves."""

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


class Tenant:
    """A tenant set up through the gateway: admins per region, a pipeline, contacts."""

    def __init__(self, api: httpx.AsyncClient, token_for: Any, name: str) -> None:
        self.api = api
        self.token_for = token_for
        self.name = name
        self.admin = {r: token_for("boss", "admin", r, tenant=name) for r in REGIONS}
        self.contacts: dict[str, str] = {}
        self.pipeline: dict[str, Any] = {}
        self.stage: dict[str, str] = {}

    def user(self, user: str, role: str, region: str = "eu", team: str = "") -> dict[str, str]:
        headers: dict[str, str] = self.token_for(user, role, region, tenant=self.name, team=team)
        return headers

    async def setup(self, reporting_currency: str = "EUR") -> None:
        await ok(
            self.api.put(
                "/v1/deal-settings",
                json={"reporting_currency": reporting_currency},
                headers=self.admin["eu"],
            )
        )
        self.pipeline = await ok(
            self.api.post(
                "/v1/pipelines",
                json={
                    "name": "Sales",
                    "stages": [
                        {"name": "Lead", "win_probability": 10},
                        {"name": "Qualified", "win_probability": 30},
                        {"name": "Proposal", "win_probability": 60},
                        {"name": "Won", "win_probability": 100, "kind": "won"},
                        {"name": "Lost", "win_probability": 0, "kind": "lost"},
                    ],
                },
                headers=self.admin["eu"],
            ),
            201,
        )
        self.stage = {s["name"]: s["id"] for s in self.pipeline["stages"]}
        for region in REGIONS:
            contact = await ok(
                self.api.post(
                    "/v1/contacts",
                    json={"first_name": "Kai", "address": {"country": COUNTRY[region]}},
                    headers=self.admin[region],
                ),
                201,
            )
            self.contacts[region] = contact["id"]

    async def rate(self, currency: str, rate: str, valid_on: str) -> None:
        await ok(
            self.api.put(
                "/v1/exchange-rates",
                json={"currency": currency, "rate": rate, "valid_on": valid_on},
                headers=self.admin["eu"],
            )
        )

    async def deal(
        self,
        region: str,
        *,
        owner: str = "rep-a",
        team: str = "north",
        amount: str = "100.00",
        currency: str = "EUR",
        source: str = "manual",
        close: str = "",
        stage: str = "",
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "title": "Deal",
            "contact_id": self.contacts[region],
            "owner_id": owner,
            "owner_team": team,
            "source": source,
            "pipeline_id": self.pipeline["id"],
            "amount": {"amount": amount, "currency": currency},
        }
        if close:
            body["expected_close_date"] = close
        if stage:
            body["stage_id"] = self.stage[stage]
        created: dict[str, Any] = await ok(
            self.api.post("/v1/deals", json=body, headers=self.admin[region]), 201
        )
        return created

    async def move(self, deal: dict[str, Any], stage: str) -> dict[str, Any]:
        region = deal["id"].split("_", 1)[0]
        body: dict[str, Any] = {"stage_id": self.stage[stage]}
        if stage == "Lost":
            body["lost_reason"] = "price"
        moved: dict[str, Any] = await ok(
            self.api.post(f"/v1/deals/{deal['id']}/stage", json=body, headers=self.admin[region])
        )
        return moved

    async def report(
        self, name: str, headers: dict[str, str] | None = None, **params: str
    ) -> dict[str, Any]:
        result: dict[str, Any] = await ok(
            self.api.get(f"/v1/reports/{name}", params=params, headers=headers or self.admin["eu"])
        )
        return result


@pytest.fixture
async def crm(api: httpx.AsyncClient, token_for: Any, tenant: str) -> Tenant:
    made = Tenant(api, token_for, tenant)
    await made.setup()
    return made
