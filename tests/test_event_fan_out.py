"""Events a tenant's rules and webhooks do not want are acked without a transaction, and a
rule or webhook added afterwards gets the very next event: through the gateway, with
every service up on real engines."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import nats
import pytest

from crm_cli.cluster import Cluster
from crm_kit.messaging import stream_name

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def eventually(check: Callable[[], Awaitable[Any]], what: str, within: float = 60) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def ok(reply: Awaitable[httpx.Response], status: int = 200) -> Any:
    response = await reply
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


async def consumed(system: Cluster, durable: str) -> None:
    """Waits until every event so far has left the outboxes and `durable` in eu has
    acked all it was given (whether it handled or skipped them)."""
    await system.events_published("eu")
    client = await nats.connect(system.nats.url)
    try:
        js = client.jetstream(timeout=10)

        async def idle() -> bool:
            info = await js.consumer_info(stream_name("eu"), durable)
            return info.num_pending == 0 and info.num_ack_pending == 0

        await eventually(idle, f"{durable} to catch up")
    finally:
        await client.close()


async def skipped(system: Cluster, service: str, durable: str) -> float:
    """How many events the service's consumer in eu acked untouched (its metrics)."""
    async with httpx.AsyncClient() as client:
        scraped = await client.get(f"http://{system.metrics_endpoints[f'{service}-eu']}/metrics")
    for line in scraped.text.splitlines():
        wanted = line.startswith("crm_events_consumed_total{") and 'outcome="skipped"' in line
        if wanted and f'consumer="{durable}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(self.rfile.read(int(self.headers["content-length"])))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()


async def test_a_webhook_added_after_unwanted_events_gets_the_next_one(
    system: Cluster, api: httpx.AsyncClient, token_for: Any, receiver: Receiver
) -> None:
    admin = token_for("boss", "admin", "eu", tenant=f"fan-{uuid.uuid4().hex[:8]}")
    await ok(
        api.put(
            "/v1/integrations/settings",
            json={"allow_private_webhook_targets": True},
            headers=admin,
        )
    )
    before = await skipped(system, "integrations", "integrations-webhooks")
    # No webhook yet: the dispatcher acks this contact's event without a transaction.
    await ok(
        api.post(
            "/v1/contacts",
            json={"first_name": "Early", "address": {"country": "DE"}},
            headers=admin,
        ),
        201,
    )
    await consumed(system, "integrations-webhooks")
    assert await skipped(system, "integrations", "integrations-webhooks") > before

    await ok(
        api.post(
            "/v1/webhooks",
            json={"url": receiver.url, "event_types": ["contacts.contact.created"]},
            headers=admin,
        ),
        201,
    )
    late = await ok(
        api.post(
            "/v1/contacts", json={"first_name": "Late", "address": {"country": "DE"}}, headers=admin
        ),
        201,
    )

    async def delivered() -> bool:
        return any(late["id"].encode() in body for body in receiver.bodies)

    await eventually(delivered, "the new contact's event at the new webhook")


async def test_a_rule_added_after_unwanted_events_fires_on_the_next_one(
    system: Cluster, api: httpx.AsyncClient, token_for: Any
) -> None:
    admin = token_for("boss", "admin", "eu", tenant=f"fan-{uuid.uuid4().hex[:8]}")
    pipeline = await ok(
        api.post(
            "/v1/pipelines",
            json={
                "name": "Fan-out",
                "stages": [
                    {"name": "New", "win_probability": 10},
                    {"name": "Measurement", "win_probability": 30},
                    {"name": "Won", "win_probability": 100, "kind": "won"},
                    {"name": "Lost", "kind": "lost"},
                ],
            },
            headers=admin,
        ),
        201,
    )
    stage = {s["name"]: s["id"] for s in pipeline["stages"]}
    contact = await ok(
        api.post(
            "/v1/contacts", json={"first_name": "Rule", "address": {"country": "DE"}}, headers=admin
        ),
        201,
    )

    async def deal(title: str) -> str:
        created = await ok(
            api.post(
                "/v1/deals",
                json={
                    "title": title,
                    "contact_id": contact["id"],
                    "pipeline_id": pipeline["id"],
                    "stage_id": stage["New"],
                    "amount": {"amount": "100.00", "currency": "EUR"},
                },
                headers=admin,
            ),
            201,
        )
        return str(created["id"])

    early, late = await deal("Early"), await deal("Late")
    before = await skipped(system, "tasks", "tasks-automation")
    # No rule yet: the automation consumer acks these events without a transaction.
    await ok(
        api.post(f"/v1/deals/{early}/stage", json={"stage_id": stage["Measurement"]}, headers=admin)
    )
    await consumed(system, "tasks-automation")
    assert await skipped(system, "tasks", "tasks-automation") > before

    await ok(
        api.post(
            "/v1/automations",
            json={
                "name": "Measure",
                "trigger": {
                    "event_type": "deals.deal.stage_changed",
                    "conditions": {"to_stage_id": stage["Measurement"]},
                },
                "actions": [
                    {"type": "create_task", "title": "Measure", "assignee": "owner", "due": "+1d"}
                ],
            },
            headers=admin,
        ),
        201,
    )
    await ok(
        api.post(f"/v1/deals/{late}/stage", json={"stage_id": stage["Measurement"]}, headers=admin)
    )

    async def task_for_late() -> bool:
        found = await ok(api.get("/v1/tasks", params={"deal_id": late}, headers=admin))
        return any(t["title"] == "Measure" for t in found["data"])

    await eventually(task_for_late, "the new rule's task for the deal moved after it")
    early_tasks = await ok(api.get("/v1/tasks", params={"deal_id": early}, headers=admin))
    assert not [t for t in early_tasks["data"] if t["title"] == "Measure"]
