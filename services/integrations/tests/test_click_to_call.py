"""Click-to-call: a rep presses "call" on a contact; the tenant's telephony provider (a real
local HTTP server this test starts) is asked, in a signed request, to connect the rep's
phone with the contact's; the provider's callback then logs the call on the contact's
timeline, credited to the rep. A provider that is down gives 503 and logs nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Pbx:
    """A telephony provider's click-to-call endpoint: records requests, answers a call id
    (or 503 while `down`)."""

    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/calls"


@pytest.fixture
def pbx() -> Iterator[Pbx]:
    state = Pbx()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append({"headers": dict(self.headers), "body": body})
            if state.down:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            answer = json.dumps({"call_id": f"pbx-{len(state.requests)}"}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()


async def test_a_rep_calls_a_contact_through_the_provider_and_the_call_is_logged_for_them(
    h: Any,
    api: httpx.AsyncClient,
    admin: dict[str, str],
    token_for: Any,
    tenant: str,
    pbx: Pbx,
    db: Any,
) -> None:
    # The PBX runs on this machine: refused like a webhook target until the tenant allows it.
    refused = await api.post(
        "/v1/integrations/providers",
        json={"kind": "telephony", "name": "PBX", "call_url": pbx.url},
        headers=admin,
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "call_url"
    await h.ok(
        api.put(
            "/v1/integrations/settings",
            json={"allow_private_webhook_targets": True},
            headers=admin,
        )
    )
    provider = await h.ok(
        api.post(
            "/v1/integrations/providers",
            json={
                "kind": "telephony",
                "name": "PBX",
                "default_country": "DE",
                "call_url": pbx.url,
            },
            headers=admin,
        ),
        201,
    )
    assert provider["call_secret"].startswith("whsec_")

    await h.ok(
        api.put(
            "/v1/users/rita", json={"display_name": "Rita", "phone": "+49301112223"}, headers=admin
        )
    )
    await h.ok(api.put("/v1/users/noel", json={"display_name": "Noel"}, headers=admin))
    rita = token_for("rita", "sales_rep", "eu", tenant=tenant)
    noel = token_for("noel", "sales_rep", "eu", tenant=tenant)
    client = await h.ok(
        api.post(
            "/v1/contacts",
            json={
                "first_name": "Jonas",
                "last_name": "Weber",
                "phones": ["+49 151 23456789", "+49 30 98765432"],
                "address": {"country": "DE"},
                "owner_id": "rita",
            },
            headers=admin,
        ),
        201,
    )
    silent = await h.ok(
        api.post(
            "/v1/contacts",
            json={
                "first_name": "No",
                "last_name": "Phone",
                "address": {"country": "DE"},
                "owner_id": "rita",
            },
            headers=admin,
        ),
        201,
    )

    # What cannot be called says why, by field, and nothing reaches the provider.
    no_number = await api.post(f"/v1/contacts/{silent['id']}/call", json={}, headers=rita)
    assert no_number.status_code == 422, no_number.text
    assert [e["field"] for e in no_number.json()["errors"]] == ["contact.phones"]
    no_own_phone = await api.post(f"/v1/contacts/{client['id']}/call", json={}, headers=noel)
    # Noel does not own Jonas: not his to call.
    assert no_own_phone.status_code == 404
    own = await h.ok(
        api.post(
            "/v1/contacts",
            json={
                "first_name": "Ana",
                "phones": ["+49 151 99988877"],
                "address": {"country": "DE"},
                "owner_id": "noel",
            },
            headers=admin,
        ),
        201,
    )
    no_own_phone = await api.post(f"/v1/contacts/{own['id']}/call", json={}, headers=noel)
    assert no_own_phone.status_code == 422, no_own_phone.text
    assert [e["field"] for e in no_own_phone.json()["errors"]] == ["user.phone"]
    stranger = await api.post(
        f"/v1/contacts/{client['id']}/call", json={"phone": "+49 40 5555555"}, headers=rita
    )
    assert stranger.status_code == 422
    assert [e["field"] for e in stranger.json()["errors"]] == ["phone"]
    assert pbx.requests == []

    # Rita calls Jonas's landline (written as he gave it).
    started = await h.ok(
        api.post(f"/v1/contacts/{client['id']}/call", json={"phone": "030 98765432"}, headers=rita)
    )
    assert started["call_id"] == "pbx-1" and started["provider_id"] == provider["id"]
    assert (started["from_number"], started["to_number"]) == ("+49301112223", "+493098765432")
    [asked] = pbx.requests
    # Signed like our webhooks (Standard Webhooks) with the provider's call secret.
    payload = Webhook(provider["call_secret"]).verify(
        asked["body"].decode(), {k.lower(): v for k, v in asked["headers"].items()}
    )
    assert payload["from"] == "+49301112223" and payload["to"] == "+493098765432"
    assert payload["contact_id"] == client["id"] and payload["user_id"] == "rita"

    # The provider's callback for that call: on Jonas's timeline, credited to Rita.
    secret = {"X-Integration-Secret": provider["secret"]}
    logged = await h.ok(
        api.post(
            provider["webhook_url"],
            json={
                "call_id": started["call_id"],
                "direction": "outbound",
                "from": "+49301112223",
                "to": "+493098765432",
                "duration": 240,
            },
            headers=secret,
        )
    )
    assert logged["contact_id"] == client["id"] and logged["new_lead"] is False
    timeline = await h.ok(api.get(f"/v1/contacts/{client['id']}/notes", headers=rita))
    [entry] = timeline["data"]
    assert (entry["kind"], entry["direction"], entry["author_id"]) == ("call", "outbound", "rita")
    assert entry["duration_seconds"] == 240

    # The click is on the audit trail: who had the contact's number sent to the provider.
    officer = token_for("olga", "compliance_officer", "eu", tenant=tenant)
    audit = await h.ok(api.get("/v1/compliance/audit?kind=contact&actor=rita", headers=officer))
    assert [(r["action"], r["record_id"]) for r in audit["data"]] == [("call.start", client["id"])]

    # The provider is down: 503 with Retry-After, and no call is recorded or logged.
    pbx.down = True
    down = await api.post(f"/v1/contacts/{client['id']}/call", json={}, headers=rita)
    assert down.status_code == 503 and int(down.headers["Retry-After"]) > 0
    assert len(pbx.requests) == 2
    requests = await db(
        "integrations",
        "eu",
        "SELECT external_id FROM call_requests WHERE contact_id=$1",
        client["id"],
    )
    assert [r["external_id"] for r in requests] == ["pbx-1"]
    timeline = await h.ok(api.get(f"/v1/contacts/{client['id']}/notes", headers=rita))
    assert len(timeline["data"]) == 1
