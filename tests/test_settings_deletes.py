"""An admin deletes a custom field, a web form and a webhook (and what becomes of the data
they had): through the gateway, with every region up on real engines.

- a custom field: its definition goes in every region; the values records hold stay
  stored (still returned, no longer validated) and may be cleared, not set;
- a web form: its public URL answers 404 and it leaves the list; the leads it brought in
  stay;
- a webhook: nothing more is delivered to it, and its delivery log goes.
"""

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


def fields_of(reply: httpx.Response) -> list[str]:
    return [e["field"] for e in reply.json()["errors"]]


async def test_a_deleted_custom_field_keeps_its_values_but_no_longer_takes_new_ones(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"del{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    await ok(
        api.post(
            "/v1/custom-fields",
            json={"key": "shoe_size", "label": "Shoe size", "type": "number"},
            headers=admin,
        ),
        201,
    )
    contact = await ok(
        api.post(
            "/v1/contacts",
            json={
                "first_name": "Ada",
                "address": {"country": "DE"},
                "custom_fields": {"shoe_size": 44},
            },
            headers=admin,
        ),
        201,
    )

    for who in (
        token_for("rita", "sales_rep", "eu", tenant=tenant),
        token_for("boss", "admin", "eu", tenant=f"del{uuid.uuid4().hex[:8]}"),
    ):
        refused = await api.delete("/v1/custom-fields/shoe_size", headers=who)
        assert refused.status_code == 404, refused.text
    await ok(api.delete("/v1/custom-fields/shoe_size", headers=admin), 204)
    assert (await api.delete("/v1/custom-fields/shoe_size", headers=admin)).status_code == 404

    # Gone in every region.
    for region in ("eu", "br", "us"):
        listed = await ok(
            api.get("/v1/custom-fields", headers=token_for("boss", "admin", region, tenant=tenant))
        )
        assert listed["data"] == []
    # The value stays on the record...
    again = await ok(api.get(f"/v1/contacts/{contact['id']}", headers=admin))
    assert again["custom_fields"] == {"shoe_size": "44"}
    # ... but no new one is taken,
    refused = await api.post(
        "/v1/contacts",
        json={
            "first_name": "Bea",
            "address": {"country": "DE"},
            "custom_fields": {"shoe_size": 40},
        },
        headers=admin,
    )
    assert refused.status_code == 422, refused.text
    assert fields_of(refused) == ["custom_fields.shoe_size"]
    # ... while the record's other changes go through, and the old value may be cleared.
    edited = await ok(
        api.patch(
            f"/v1/contacts/{contact['id']}",
            json={"last_name": "Lovelace", "custom_fields": {"shoe_size": None}},
            headers=admin,
        )
    )
    assert edited["last_name"] == "Lovelace"
    assert edited["custom_fields"] == {}


async def test_a_deleted_form_answers_404_and_its_leads_stay(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"del{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    pipeline = (await ok(api.get("/v1/pipelines", headers=admin)))["data"][0]
    form = await ok(
        api.post(
            "/v1/forms",
            json={
                "name": "Quote",
                "field_mapping": {"name": "name", "email": "email"},
                "pipeline_id": pipeline["id"],
                "stage_id": pipeline["stages"][0]["id"],
                "owner": "user:boss",
                "default_country": "DE",
            },
            headers=admin,
        ),
        201,
    )
    email = f"lea-{uuid.uuid4().hex[:6]}@example.org"
    reply = await api.post(f"/public/forms/{form['key']}", json={"name": "Lea Web", "email": email})
    # 201 when it completed at once, 202 when the retry worker finishes it.
    assert reply.status_code in (201, 202), reply.text
    submitted = reply.json()

    rep = token_for("rita", "sales_rep", "eu", tenant=tenant)
    assert (await api.delete(f"/v1/forms/{form['id']}", headers=rep)).status_code == 403
    other = token_for("boss", "admin", "eu", tenant=f"del{uuid.uuid4().hex[:8]}")
    assert (await api.delete(f"/v1/forms/{form['id']}", headers=other)).status_code == 404
    await ok(api.delete(f"/v1/forms/{form['id']}", headers=admin), 204)

    gone = await api.post(f"/public/forms/{form['key']}", json={"name": "Max", "email": email})
    assert gone.status_code == 404, gone.text
    assert (await api.get(f"/v1/forms/{form['id']}", headers=admin)).status_code == 404
    assert (await ok(api.get("/v1/forms", headers=admin)))["data"] == []
    assert (await api.delete(f"/v1/forms/{form['id']}", headers=admin)).status_code == 404
    replaced = await api.put(
        f"/v1/forms/{form['id']}",
        json={
            "name": "Back",
            "field_mapping": {"email": "email"},
            "pipeline_id": pipeline["id"],
            "stage_id": pipeline["stages"][0]["id"],
            "owner": "user:boss",
        },
        headers=admin,
    )
    assert replaced.status_code == 404, replaced.text

    # The lead received before the deletion still became its contact.
    async def completed() -> Any:
        reply = await ok(api.get(f"/v1/forms/submissions/{submitted['id']}", headers=admin))
        return reply if reply["status"] == "completed" else None

    done = await eventually(completed, "the earlier submission to complete")
    lead = await ok(api.get(f"/v1/contacts/{done['contact_id']}", headers=admin))
    assert email in lead["emails"]


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


async def consumed(system: Cluster, durable: str) -> None:
    """Every event so far has left the outboxes and `durable` in eu has acked them all."""
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


async def test_a_deleted_webhook_gets_nothing_more_and_its_log_goes(
    system: Cluster, api: httpx.AsyncClient, token_for: Any, receiver: Receiver, db: Any
) -> None:
    tenant = f"del{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    await ok(
        api.put(
            "/v1/integrations/settings", json={"allow_private_webhook_targets": True}, headers=admin
        )
    )
    hook = await ok(
        api.post(
            "/v1/webhooks",
            json={"url": receiver.url, "event_types": ["contacts.contact.created"]},
            headers=admin,
        ),
        201,
    )

    async def contact(name: str) -> str:
        created = await ok(
            api.post(
                "/v1/contacts",
                json={"first_name": name, "address": {"country": "DE"}},
                headers=admin,
            ),
            201,
        )
        return str(created["id"])

    before = await contact("Before")

    async def delivered() -> bool:
        return any(before.encode() in body for body in receiver.bodies)

    await eventually(delivered, "the first contact's event at the webhook")
    log = await ok(api.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=admin))
    assert len(log["data"]) == 1

    other = token_for("boss", "admin", "eu", tenant=f"del{uuid.uuid4().hex[:8]}")
    assert (await api.delete(f"/v1/webhooks/{hook['id']}", headers=other)).status_code == 404
    await ok(api.delete(f"/v1/webhooks/{hook['id']}", headers=admin), 204)
    assert (await ok(api.get("/v1/webhooks", headers=admin)))["data"] == []
    gone = await api.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=admin)
    assert gone.status_code == 404, gone.text

    after = await contact("After")
    await consumed(system, "integrations-webhooks")
    # The event was handled, and made no delivery: nothing is left to send.
    rows = await db(
        "integrations", "eu", "SELECT id FROM deliveries WHERE webhook_id = $1", hook["id"]
    )
    assert rows == []
    assert not any(after.encode() in body for body in receiver.bodies)
