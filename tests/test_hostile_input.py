"""What a hostile client sends to the front door: every answer is a 4xx problem+json
naming the field, never a 5xx, and nothing is written."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROBLEM = "application/problem+json"
MIB = 1_048_576


def tenant() -> str:
    return f"hostile-{uuid.uuid4().hex[:8]}"


def refused(reply: httpx.Response, status: int = 422) -> set[str]:
    """The fields a problem+json answer names (asserting the status and media type)."""
    assert reply.status_code == status, (reply.request.url, reply.status_code, reply.text)
    assert reply.headers["content-type"] == PROBLEM, reply.headers
    return {error["field"] for error in reply.json().get("errors", [])}


QUERIES = [
    ("/v1/contacts", "tag"),
    ("/v1/contacts", "q"),
    ("/v1/contacts", "owner_id"),
    ("/v1/users", "team"),
    ("/v1/users", "job_role"),
    ("/v1/tasks", "status"),
    ("/v1/tasks", "assignee_id"),
    ("/v1/deals", "owner_id"),
    ("/v1/deals", "pipeline_id"),
    ("/v1/compliance/audit", "actor"),
]


@pytest.mark.parametrize(("path", "name"), QUERIES)
async def test_a_nul_byte_in_a_query_parameter_is_refused_naming_it(
    api: httpx.AsyncClient, token_for: Any, path: str, name: str
) -> None:
    admin = token_for("boss", "admin", "eu", tenant=tenant())
    reply = await api.get(f"{path}?{name}=a%00b", headers=admin)
    assert refused(reply) == {name}
    assert "NUL" in reply.json()["detail"]


async def test_a_nul_byte_in_a_path_is_refused(api: httpx.AsyncClient, token_for: Any) -> None:
    admin = token_for("boss", "admin", "eu", tenant=tenant())
    assert refused(await api.get("/v1/contacts/eu_01%00", headers=admin)) == {"path"}


# (method, path, a valid body, where to put the bad text, the field named)
BODIES: list[tuple[str, str, dict[str, Any], tuple[str | int, ...], str]] = [
    (
        "POST",
        "/v1/contacts",
        {"first_name": "A", "address": {"country": "DE"}},
        ("first_name",),
        "first_name",
    ),
    ("POST", "/v1/contacts", {"first_name": "A", "tags": ["ok", "x"]}, ("tags", 1), "tags[1]"),
    (
        "POST",
        "/v1/contacts",
        {"first_name": "A", "custom_fields": {"c": "x"}},
        ("custom_fields", "c"),
        "custom_fields.c",
    ),
    ("POST", "/v1/companies", {"name": "x"}, ("name",), "name"),
    ("POST", "/v1/tasks", {"title": "x"}, ("title",), "title"),
    (
        "POST",
        "/v1/pipelines",
        {"name": "p", "stages": [{"name": "a"}, {"name": "b"}]},
        ("stages", 1, "name"),
        "stages[1].name",
    ),
    (
        "POST",
        "/v1/pipelines",
        {"name": "x", "stages": [{"name": "a"}, {"name": "b"}]},
        ("name",),
        "name",
    ),
    ("PUT", "/v1/users/x1", {"display_name": "x"}, ("display_name",), "display_name"),
    ("PUT", "/v1/document-templates/offer", {"body": "x"}, ("body",), "body"),
    (
        "PUT",
        "/v1/templates/task.created/en",
        {"subject": "s", "body_text": "x"},
        ("body_text",),
        "body_text",
    ),
]


def with_text(body: dict[str, Any], where: tuple[str | int, ...], text: str) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    target: Any = changed
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = text
    return changed


@pytest.mark.parametrize("bad", ["x\x00y", "p\ud800"], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize(("method", "path", "body", "where", "field"), BODIES)
async def test_text_that_cannot_be_stored_is_refused_naming_the_field(
    api: httpx.AsyncClient,
    token_for: Any,
    db: Any,
    bad: str,
    method: str,
    path: str,
    body: dict[str, Any],
    where: tuple[str | int, ...],
    field: str,
) -> None:
    name = tenant()
    admin = token_for("boss", "admin", "eu", tenant=name)
    # json.dumps escapes both as \u0000 and \ud800, as a client library would send them.
    content = json.dumps(with_text(body, where, bad)).encode()
    reply = await api.request(
        method, path, content=content, headers={**admin, "Content-Type": "application/json"}
    )
    assert refused(reply) == {field}
    rows = await db("contacts", "eu", "SELECT count(*) FROM contacts WHERE tenant_id = $1", name)
    assert rows[0][0] == 0


async def test_a_bad_key_of_a_json_object_is_named(api: httpx.AsyncClient, token_for: Any) -> None:
    admin = token_for("boss", "admin", "eu", tenant=tenant())
    reply = await api.post(
        "/v1/contacts",
        content=b'{"first_name": "A", "custom_fields": {"k\\u0000": "v"}}',
        headers={**admin, "Content-Type": "application/json"},
    )
    assert refused(reply) == {"custom_fields.k\x00"}


async def test_nul_in_a_form_encoded_public_submission_is_refused(api: httpx.AsyncClient) -> None:
    reply = await api.post("/public/forms/eu-0000", data={"email": "a\x00@b.de"})
    assert refused(reply) == {"email"}
    # Multipart too (the parts are read by the route, not the guard).
    reply = await api.post(
        "/public/forms/eu-0000",
        content=b'--b\r\nContent-Disposition: form-data; name="email"\r\n\r\n'
        b"a\x00@b.de\r\n--b--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert refused(reply) == {"email"}


OUT_OF_RANGE: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "POST",
        "/v1/pipelines",
        {"name": "p", "stages": [{"name": "a", "time_limit_hours": 5584272523960}, {"name": "b"}]},
        "stages[0].time_limit_hours",
    ),
    (
        "POST",
        "/v1/pipelines",
        {"name": "p", "stages": [{"name": "a", "win_probability": 2**40}, {"name": "b"}]},
        "stages[0].win_probability",
    ),
    ("PUT", "/v1/users/x1", {"working_days": [-30164535588131776]}, "working_days[0]"),
    (
        "PUT",
        "/v1/notifications/working-hours",
        {"start": "08:00", "end": "16:00", "days": [2**40]},
        "days[0]",
    ),
    (
        "POST",
        "/v1/deals/eu_01JD000000000000000000000/stage",
        {"stage_id": "s", "expected_version": 2**64},
        "expected_version",
    ),
    (
        "POST",
        "/v1/contacts/eu_01JD000000000000000000000/notes",
        {"body": "x", "duration_seconds": 2**40},
        "duration_seconds",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), OUT_OF_RANGE)
async def test_an_integer_out_of_range_is_refused_naming_the_field(
    api: httpx.AsyncClient, token_for: Any, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    admin = token_for("boss", "admin", "eu", tenant=tenant())
    reply = await api.request(method, path, json=body, headers=admin)
    assert refused(reply) == {field}


async def test_an_if_match_version_out_of_range_is_refused(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    admin = token_for("boss", "admin", "eu", tenant=tenant())
    created = await api.post(
        "/v1/contacts", json={"first_name": "A", "address": {"country": "DE"}}, headers=admin
    )
    assert created.status_code == 201, created.text
    reply = await api.patch(
        f"/v1/contacts/{created.json()['id']}",
        json={"first_name": "B"},
        headers={**admin, "If-Match": str(2**64)},
    )
    assert refused(reply) == {"If-Match"}


async def chunks(total: int, piece: bytes, first: bytes = b"") -> AsyncIterator[bytes]:
    """A body sent chunked, without Content-Length."""
    yield first
    sent = len(first)
    while sent < total:
        yield piece
        sent += len(piece)


@pytest.mark.parametrize(
    ("path", "content_type", "first", "piece"),
    [
        ("/public/forms/eu-0000", "application/json", b"", b" " * 65536),
        ("/public/forms/eu-0000", "application/x-www-form-urlencoded", b"a=", b"a" * 65536),
        (
            "/public/forms/eu-0000",
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n',
            b"a" * 65536,
        ),
        ("/v1/contacts", "application/json", b"", b" " * 65536),
        ("/v1/contacts", "text/plain", b"", b"a" * 65536),
        ("/v1/tasks", "application/json", b"", b" " * 65536),
    ],
)
async def test_a_chunked_body_over_the_limit_is_413_whatever_the_route(
    api: httpx.AsyncClient,
    token_for: Any,
    path: str,
    content_type: str,
    first: bytes,
    piece: bytes,
) -> None:
    admin = token_for("boss", "admin", "eu", tenant=tenant())
    reply = await api.post(
        path,
        content=chunks(2 * MIB, piece, first),
        headers={**admin, "Content-Type": content_type},
    )
    assert "content-length" not in reply.request.headers
    refused(reply, 413)
    assert "1048576" in reply.json()["detail"]


async def test_a_chunked_body_under_the_limit_is_served(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    admin = token_for("boss", "admin", "eu", tenant=tenant())

    async def body() -> AsyncIterator[bytes]:
        yield b'{"first_name": "Chunked", '
        yield b'"address": {"country": "DE"}}'

    reply = await api.post(
        "/v1/contacts", content=body(), headers={**admin, "Content-Type": "application/json"}
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["first_name"] == "Chunked"


async def test_a_task_links_only_to_a_deal_or_contact_the_caller_may_see(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    name = tenant()
    ana = token_for("rep-ana", "sales_rep", "eu", tenant=name)
    ben = token_for("rep-ben", "sales_rep", "eu", tenant=name)
    stranger = token_for("boss", "admin", "eu", tenant=tenant())

    async def contact_and_deal(headers: dict[str, str]) -> tuple[str, str]:
        contact = await api.post(
            "/v1/contacts", json={"first_name": "P", "address": {"country": "DE"}}, headers=headers
        )
        assert contact.status_code == 201, contact.text
        deal = await api.post(
            "/v1/deals",
            json={"title": "Windows", "contact_id": contact.json()["id"]},
            headers=headers,
        )
        assert deal.status_code == 201, deal.text
        return contact.json()["id"], deal.json()["id"]

    ana_contact, ana_deal = await contact_and_deal(ana)
    ben_contact, ben_deal = await contact_and_deal(ben)
    other_contact, other_deal = await contact_and_deal(stranger)
    missing = "eu_01JD0000000000000000000000"
    for field, value in (
        ("deal_id", ben_deal),
        ("contact_id", ben_contact),
        ("deal_id", other_deal),
        ("contact_id", other_contact),
        ("deal_id", missing),
        ("contact_id", missing),
    ):
        reply = await api.post("/v1/tasks", json={"title": "Sneak", field: value}, headers=ana)
        assert refused(reply) == {field}, (field, value)
    rows = await db("tasks", "eu", "SELECT count(*) FROM tasks WHERE tenant_id = $1", name)
    assert rows[0][0] == 0
    listed = await api.get("/v1/tasks", params={"deal_id": ben_deal}, headers=ana)
    assert listed.status_code == 200 and listed.json()["data"] == []

    # Her own deal and contact are fine; changing the link to Ben's deal is refused.
    own = await api.post(
        "/v1/tasks",
        json={"title": "Call", "deal_id": ana_deal, "contact_id": ana_contact},
        headers=ana,
    )
    assert own.status_code == 201, own.text
    moved = await api.patch(
        f"/v1/tasks/{own.json()['id']}", json={"deal_id": ben_deal}, headers=ana
    )
    assert refused(moved) == {"deal_id"}
    kept = await api.get(f"/v1/tasks/{own.json()['id']}", headers=ana)
    assert kept.json()["deal_id"] == ana_deal
    # Changing another field keeps the link without asking again.
    renamed = await api.patch(
        f"/v1/tasks/{own.json()['id']}", json={"title": "Call back"}, headers=ana
    )
    assert renamed.status_code == 200, renamed.text


async def web_form(api: httpx.AsyncClient, admin: dict[str, str], per_ip: int) -> dict[str, Any]:
    pipeline = await api.post(
        "/v1/pipelines",
        json={
            "name": "Web",
            "stages": [
                {"name": "New"},
                {"name": "Won", "kind": "won"},
                {"name": "Lost", "kind": "lost"},
            ],
        },
        headers=admin,
    )
    assert pipeline.status_code == 201, pipeline.text
    form = await api.post(
        "/v1/forms",
        json={
            "name": "Quote",
            "field_mapping": {"email": "email", "country": "country"},
            "pipeline_id": pipeline.json()["id"],
            "stage_id": pipeline.json()["stages"][0]["id"],
            "owner": "user:boss",
            "rate_limit_per_ip": per_ip,
        },
        headers=admin,
    )
    assert form.status_code == 201, form.text
    return dict(form.json())


async def submitted_from(db: Any, form_id: str) -> list[str]:
    rows = await db(
        "integrations", "eu", "SELECT client_ip FROM submissions WHERE form_id = $1", form_id
    )
    return sorted(row[0] for row in rows)


async def test_a_made_up_forwarded_for_does_not_escape_the_per_address_limit(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    admin = token_for("boss", "admin", "eu", tenant=tenant())
    form = await web_form(api, admin, per_ip=2)
    answers = []
    for i in range(4):
        reply = await api.post(
            form["submit_url"],
            json={"email": f"lead{i}@example.org", "country": "DE"},
            headers={"X-Forwarded-For": f"198.51.100.{i + 1}"},
        )
        answers.append(reply.status_code)
    # No proxy is configured (CRM_TRUSTED_PROXIES is empty): the peer is the client.
    assert answers[:2] == [201, 201] and answers[2:] == [429, 429], answers
    assert await submitted_from(db, form["id"]) == ["127.0.0.1", "127.0.0.1"]


async def test_forwarded_for_is_believed_only_from_a_configured_proxy(
    api: httpx.AsyncClient, token_for: Any, db: Any, system: Any
) -> None:
    from crm_gateway.app import create_app
    from crm_gateway.settings import GatewaySettings

    admin = token_for("boss", "admin", "eu", tenant=tenant())
    form = await web_form(api, admin, per_ip=10)
    app = create_app(
        GatewaySettings(
            jwt_secret=system.jwt_secret,
            service_endpoints=system.endpoints,
            trusted_proxies="10.0.0.0/8",
        )
    )
    try:
        for peer, lead in (("10.1.2.3", "via-proxy"), ("192.0.2.55", "direct")):
            transport = httpx.ASGITransport(app=app, client=(peer, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                reply = await client.post(
                    form["submit_url"],
                    json={"email": f"{lead}@example.org", "country": "DE"},
                    headers={"X-Forwarded-For": "203.0.113.9"},
                )
                assert reply.status_code == 201, reply.text
    finally:
        await app.state.gateway.clients.close()
    # Through the proxy: the address it forwarded; straight from elsewhere: the peer.
    assert await submitted_from(db, form["id"]) == ["192.0.2.55", "203.0.113.9"]


async def test_a_flood_from_one_address_is_limited_across_two_gateway_replicas(
    api: httpx.AsyncClient, token_for: Any, db: Any, system: Any
) -> None:
    """The per-address limit is counted in the integrations database, not in a gateway:
    a flood spread over two replicas gets exactly the limit through, however it is
    interleaved."""
    import asyncio
    from datetime import UTC, datetime

    from crm_gateway.app import create_app
    from crm_gateway.settings import GatewaySettings

    admin = token_for("boss", "admin", "eu", tenant=tenant())
    form = await web_form(api, admin, per_ip=3)
    second = create_app(
        GatewaySettings(jwt_secret=system.jwt_secret, service_endpoints=system.endpoints)
    )
    # The limit counts per minute: start well inside one, so the flood is in one window.
    second_of_minute = datetime.now(UTC).second
    if second_of_minute >= 45:
        await asyncio.sleep(61 - second_of_minute)
    try:
        transport = httpx.ASGITransport(app=second, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw2") as replica:
            answers = await asyncio.gather(
                *(
                    (api if i % 2 else replica).post(
                        form["submit_url"], json={"email": f"flood{i}@example.org", "country": "DE"}
                    )
                    for i in range(16)
                )
            )
    finally:
        await second.state.gateway.clients.close()
    codes = sorted(reply.status_code for reply in answers)
    assert codes == [201] * 3 + [429] * 13, codes
    for reply in answers:
        if reply.status_code == 429:
            assert reply.headers["content-type"] == PROBLEM and "Retry-After" in reply.headers
    assert await submitted_from(db, form["id"]) == ["127.0.0.1"] * 3
