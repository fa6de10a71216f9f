"""Outbound webhooks against a real local receiver: Standard Webhooks signatures, retries
with backoff, disabling after sustained failure (the owner gets a task), the delivery
log and replay; SSRF targets are refused."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook as Verifier

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Receiver:
    """A real HTTP server on 127.0.0.1 that records requests and answers `status`."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/crm"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()


async def test_ssrf_targets_are_refused(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for url in (
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "http://user:pw@example.com/",
    ):
        reply = await api.post(
            "/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=admin
        )
        assert reply.status_code == 422, (url, reply.text)
        assert reply.json()["errors"][0]["field"] == "url"
    settings = await h.ok(api.get("/v1/integrations/settings", headers=admin))
    assert settings == {"allow_private_webhook_targets": False, "forbid_sales_rep_exports": False}


async def test_signed_deliveries_retries_disabling_and_replay(
    h: Any,
    api: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    move_clock: Any,
) -> None:
    await h.ok(
        api.put(
            "/v1/integrations/settings",
            json={"allow_private_webhook_targets": True},
            headers=admin,
        )
    )
    hook = await h.ok(
        api.post(
            "/v1/webhooks",
            json={"url": receiver.url, "event_types": ["contacts.contact.created"]},
            headers=admin,
        ),
        201,
    )
    assert hook["secret"].startswith("whsec_") and hook["active"] is True

    async def new_contact(name: str) -> str:
        created = await h.ok(
            api.post(
                "/v1/contacts",
                json={"first_name": name, "address": {"country": "DE"}},
                headers=admin,
            ),
            201,
        )
        return str(created["id"])

    contact_id = await new_contact("Greta")
    await h.eventually(lambda: _async(len(receiver.requests) == 1), "the first delivery")
    headers, body = receiver.requests[0]
    payload = Verifier(hook["secret"]).verify(body, headers)  # raises if the signature is wrong
    assert payload["event_type"] == "contacts.contact.created"
    assert payload["payload"]["contact_id"] == contact_id
    assert b"Greta" not in body  # events carry no personal data
    assert headers["webhook-signature"].startswith("v1,")
    tampered = {**headers, "webhook-signature": "v1," + "A" * 43 + "="}
    with pytest.raises(Exception, match="signature"):
        Verifier(hook["secret"]).verify(body, tampered)

    # The receiver breaks: each delivery is retried with backoff, then fails.
    receiver.status = 500
    failed_ids = [await new_contact(f"Fail {i}") for i in range(3)]

    async def disabled() -> Any:
        hooks = await h.ok(api.get("/v1/webhooks", headers=admin))
        current = next(x for x in hooks["data"] if x["id"] == hook["id"])
        return current if not current["active"] else None

    current = await h.eventually(
        disabled,
        "the endpoint to be disabled",
        within=120,
        between=lambda: move_clock(timedelta(minutes=15)),
    )
    assert "3 deliveries in a row failed" in current["disabled_reason"]
    log = await h.ok(api.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=admin))
    failed = [d for d in log["data"] if d["status"] == "failed"]
    assert len(failed) == 3 and {d["attempts"] for d in failed} == {5}
    assert {d["last_status_code"] for d in failed} == {500}
    assert len(receiver.requests) == 1 + 3 * 5

    # The owner's task is created just after the endpoint is disabled.
    async def owner_task() -> Any:
        tasks = await h.ok(api.get("/v1/tasks?assignee_id=boss", headers=admin))
        return "Webhook endpoint disabled" in [t["title"] for t in tasks["data"]]

    await h.eventually(owner_task, "the owner's task")

    # Events while disabled are not queued; after the fix, re-enable and replay.
    receiver.status = 204
    await h.ok(
        api.put(
            f"/v1/webhooks/{hook['id']}",
            json={"url": receiver.url, "event_types": ["contacts.contact.created"]},
            headers=admin,
        )
    )
    before = len(receiver.requests)
    replayed = await h.ok(
        api.post(f"/v1/webhooks/deliveries/{failed[0]['id']}/replay", headers=admin)
    )
    assert replayed["status"] == "pending"

    async def delivered() -> Any:
        log = await h.ok(api.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=admin))
        found = next(d for d in log["data"] if d["id"] == failed[0]["id"])
        return found if found["status"] == "delivered" else None

    await h.eventually(delivered, "the replayed delivery")
    headers, body = receiver.requests[before]
    assert headers["webhook-id"] == failed[0]["id"]
    assert json.loads(body)["payload"]["contact_id"] in failed_ids


async def _async(value: Any) -> Any:
    return value
