"""The contacts list in the order a user clicks: by name either way, oldest or newest
first, paged with one cursor over several regions without loss or repeats; an order the
API does not know is a 422 naming `sort`."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def all_pages(
    api: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        reply = await api.get("/v1/contacts", params=query, headers=headers)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        seen += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            return seen


def name(contact: dict[str, Any]) -> str:
    return f"{contact['first_name']} {contact['last_name']}"


async def test_the_list_sorts_by_name_or_age_over_regions_with_one_cursor(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"sort-{uuid.uuid4().hex[:8]}"
    admin = token_for("admin", "admin", "eu", tenant=tenant)
    admin_br = token_for("admin-br", "admin", "br", tenant=tenant)
    policy = {
        "default_region": "eu",
        "access_grants": [
            {"from_region": "eu", "to_region": "br", "legal_basis": "standard contractual clauses"}
        ],
    }
    assert (await api.put("/v1/compliance/policies", json=policy, headers=admin)).status_code == 200
    people = [
        ("Zoë", "Adler", "DE", admin),
        ("ana", "Souza", "BR", admin_br),
        ("Émile", "Roux", "AT", admin),
        ("Bruno", "Costa", "BR", admin_br),
        ("Carla", "Meyer", "DE", admin),
        ("Ana", "Silva", "BR", admin_br),
    ]
    created = []
    for first, last, country, who in people:
        reply = await api.post(
            "/v1/contacts",
            json={"first_name": first, "last_name": last, "address": {"country": country}},
            headers=who,
        )
        assert reply.status_code == 201, reply.text
        created.append(reply.json())
    regions = {"region": "eu,br"}

    by_name = await all_pages(api, admin, sort="name", **regions)
    # Case-insensitive ("ana" among the A's), across both regions.
    assert [name(c) for c in by_name] == [
        "Ana Silva",
        "ana Souza",
        "Bruno Costa",
        "Carla Meyer",
        "Zoë Adler",
        "Émile Roux",
    ]
    assert {c["region"] for c in by_name} == {"eu", "br"}
    reverse = await all_pages(api, admin, sort="-name", **regions)
    assert [c["id"] for c in reverse] == [c["id"] for c in reversed(by_name)]

    oldest = await all_pages(api, admin, sort="created_at", **regions)
    assert [c["id"] for c in oldest] == [c["id"] for c in created]
    newest = await all_pages(api, admin, sort="-created_at", **regions)
    assert [c["id"] for c in newest] == [c["id"] for c in reversed(created)]

    # Filters and search still apply in any order.
    brazil = await all_pages(api, admin, sort="name", country="BR", region="br")
    assert [name(c) for c in brazil] == ["Ana Silva", "ana Souza", "Bruno Costa"]
    found = [name(c) for c in await all_pages(api, admin, sort="-name", q="ana", **regions)]
    assert found.index("ana Souza") < found.index("Ana Silva")


async def test_an_unknown_order_or_a_cursor_of_another_order_is_refused(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"sort-{uuid.uuid4().hex[:8]}"
    admin = token_for("admin", "admin", "eu", tenant=tenant)
    for first in ("Ida", "Jan", "Kim"):
        reply = await api.post(
            "/v1/contacts", json={"first_name": first, "address": {"country": "DE"}}, headers=admin
        )
        assert reply.status_code == 201
    bad = await api.get("/v1/contacts", params={"sort": "phone"}, headers=admin)
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in bad.json()["errors"]] == ["sort"]

    page = (
        await api.get("/v1/contacts", params={"sort": "name", "limit": 1}, headers=admin)
    ).json()
    assert [c["first_name"] for c in page["data"]] == ["Ida"]
    other = await api.get(
        "/v1/contacts",
        params={"sort": "-name", "limit": 1, "cursor": page["next_cursor"]},
        headers=admin,
    )
    assert other.status_code == 422
    unsorted = await api.get(
        "/v1/contacts", params={"limit": 1, "cursor": page["next_cursor"]}, headers=admin
    )
    assert unsorted.status_code == 422
    resumed = (
        await api.get(
            "/v1/contacts",
            params={"sort": "name", "limit": 5, "cursor": page["next_cursor"]},
            headers=admin,
        )
    ).json()
    assert [c["first_name"] for c in resumed["data"]] == ["Jan", "Kim"]
