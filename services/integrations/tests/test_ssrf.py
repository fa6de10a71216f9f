"""Server-side request forgery through webhooks and telephony providers: a target on this
machine, the cloud's metadata address or a private network is refused however it is
written (an IPv6 form that carries the IPv4 address, a decimal or octal address, a name
that resolves to one), when subscribing, when changing, and again before each delivery;
a target that redirects is not followed."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")


def loopback_names() -> list[str]:
    """Every name /etc/hosts maps to a loopback address (localhost, the host's own…)."""
    names = {"localhost"}
    for line in Path("/etc/hosts").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2:
            try:
                if ipaddress.ip_address(fields[0].split("%")[0]).is_loopback:
                    names.update(fields[1:])
            except ValueError:
                continue
    return sorted(names)


async def answer(
    api: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    """The answer, after retrying a 503 (a loaded machine) as a client would."""
    for _ in range(4):
        reply = await api.request(method, path, json=body, headers=headers)
        if reply.status_code != 503:
            break
        await asyncio.sleep(float(reply.headers.get("Retry-After", "1")))
    return reply


PRIVATE_TARGETS = [
    "http://127.0.0.1:9/x",
    "http://127.1/",
    "http://2130706433/",  # 127.0.0.1 written as one number
    "http://0177.0.0.1/",  # … and in octal
    "http://0.0.0.0/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/",
    "http://172.16.3.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[2002:7f00:1::]/",  # 6to4: reaches 127.0.0.1 through its relay
    "http://[2002:a9fe:a9fe::1]/",  # 6to4 around 169.254.169.254
    "http://[fd00:ec2::254]/",  # a cloud's IPv6 metadata address (unique local)
    "http://[fe80::1]/",
    *(f"http://{name}:8080/hook" for name in loopback_names()),
]


async def test_private_targets_are_refused_for_webhooks_and_providers_and_nothing_is_kept(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # A public address (nothing is ever delivered: it subscribes to an event that never comes).
    hook = await h.ok(
        answer(
            api,
            "POST",
            "/v1/webhooks",
            {"url": "http://8.8.8.8/hooks", "event_types": ["integrations.never.happens"]},
            admin,
        ),
        201,
    )
    refused = []
    for url in PRIVATE_TARGETS:
        created = await answer(
            api, "POST", "/v1/webhooks", {"url": url, "event_types": ["*"]}, admin
        )
        changed = await answer(
            api,
            "PUT",
            f"/v1/webhooks/{hook['id']}",
            {"url": url, "event_types": ["integrations.never.happens"]},
            admin,
        )
        provider = await answer(
            api,
            "POST",
            "/v1/integrations/providers",
            {"kind": "telephony", "name": "PBX", "call_url": url},
            admin,
        )
        for reply, field in ((created, "url"), (changed, "url"), (provider, "call_url")):
            names = [e["field"] for e in reply.json().get("errors", [])]
            if reply.status_code != 422 or names != [field]:
                refused.append(f"{url} -> {reply.status_code} {reply.text[:200]}")
    assert not refused, "\n".join(refused)
    hooks = await h.ok(api.get("/v1/webhooks", headers=admin))
    assert [(x["id"], x["url"]) for x in hooks["data"]] == [(hook["id"], "http://8.8.8.8/hooks")]


class Server:
    """A real HTTP server on 127.0.0.1 answering every POST with `status` (and
    `location`), recording what it was sent."""

    def __init__(self, status: int = 204, location: str = "") -> None:
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                server.requests.append(self.path)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture
def metadata() -> Iterator[Server]:
    """Stands in for what a redirect must never reach (the metadata service)."""
    server = Server(200)
    yield server
    server.http.shutdown()


async def _delivery_tried(h: Any, api: Any, admin: dict[str, str], hook_id: str) -> Any:
    async def tried() -> Any:
        log = await h.ok(api.get(f"/v1/webhooks/{hook_id}/deliveries", headers=admin))
        return next((d for d in log["data"] if d["attempts"] >= 1), None)

    return await h.eventually(tried, "a delivery attempt")


async def _subscribe(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str], url: str
) -> dict[str, Any]:
    hook: dict[str, Any] = await h.ok(
        api.post(
            "/v1/webhooks",
            json={"url": url, "event_types": ["contacts.contact.created"]},
            headers=admin,
        ),
        201,
    )
    return hook


async def test_a_target_that_redirects_is_not_followed(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str], metadata: Server
) -> None:
    # The tenant allows its own network (its receiver runs here), yet a redirect from
    # that receiver to anywhere else is not followed: the delivery fails with the 302.
    await h.ok(
        api.put(
            "/v1/integrations/settings",
            json={"allow_private_webhook_targets": True},
            headers=admin,
        )
    )
    redirector = Server(302, f"{metadata.url}/latest/meta-data/iam/security-credentials/")
    try:
        hook = await _subscribe(h, api, admin, f"{redirector.url}/hooks")
        await h.ok(
            api.post(
                "/v1/contacts",
                json={"first_name": "Greta", "address": {"country": "DE"}},
                headers=admin,
            ),
            201,
        )
        delivery = await _delivery_tried(h, api, admin, hook["id"])
    finally:
        redirector.http.shutdown()
    assert redirector.requests == ["/hooks"]
    assert delivery["status"] != "delivered" and delivery["last_status_code"] == 302
    assert metadata.requests == []


async def test_a_target_is_checked_again_before_each_delivery(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str], metadata: Server
) -> None:
    """A target that was allowed when subscribing (or a name that resolved elsewhere
    then) is refused at delivery once it is private and the tenant no longer allows it."""
    await h.ok(
        api.put(
            "/v1/integrations/settings",
            json={"allow_private_webhook_targets": True},
            headers=admin,
        )
    )
    hook = await _subscribe(h, api, admin, f"{metadata.url}/hooks")
    await h.ok(
        api.put(
            "/v1/integrations/settings",
            json={"allow_private_webhook_targets": False},
            headers=admin,
        )
    )
    await h.ok(
        api.post(
            "/v1/contacts",
            json={"first_name": "Greta", "address": {"country": "DE"}},
            headers=admin,
        ),
        201,
    )
    delivery = await _delivery_tried(h, api, admin, hook["id"])
    assert delivery["status"] != "delivered" and delivery["last_status_code"] == 0
    assert "private, loopback or link-local" in delivery["last_error"]
    assert metadata.requests == []
