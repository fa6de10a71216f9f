"""Saved views of the contacts list: a rep saves her filters and sort, shares a view with
her team or keeps it to herself; another team never sees a private view of hers, nor can
anyone but her change or delete it. Kept server-side, in the owner's home region."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROBLEM = "application/problem+json"


async def ok(call: Any, status: int = 200) -> Any:
    reply = await call
    assert reply.status_code == status, (reply.request.url, reply.status_code, reply.text)
    return reply.json() if reply.content else None


def refused(reply: httpx.Response, status: int = 422) -> set[str]:
    assert reply.status_code == status, (reply.status_code, reply.text)
    assert reply.headers["content-type"] == PROBLEM
    return {e["field"] for e in reply.json().get("errors", [])}


def names(listing: dict[str, Any]) -> list[str]:
    return [v["name"] for v in listing["data"]]


async def test_a_rep_saves_views_private_or_shared_with_her_team(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"views-{uuid.uuid4().hex[:8]}"
    rita = token_for("rita", "sales_rep", "eu", tenant=tenant, team="north")
    nina = token_for("nina", "sales_rep", "us", tenant=tenant, team="north")
    otto = token_for("otto", "sales_rep", "eu", tenant=tenant, team="south")

    hot = await ok(
        api.post(
            "/v1/contacts/views",
            json={
                "name": "Hot leads DE",
                "filters": {"stage": "lead", "country": "DE"},
                "sort": "-created_at",
            },
            headers=rita,
        ),
        201,
    )
    assert hot["id"].startswith("eu_")
    assert hot["owner_id"] == "rita" and hot["team"] == "north" and hot["shared"] is False
    assert hot["filters"] == {"stage": "lead", "country": "DE"}
    mine = await ok(
        api.post(
            "/v1/contacts/views",
            json={"name": "my VIPs", "filters": {"tag": "vip", "mine": "1"}},
            headers=rita,
        ),
        201,
    )

    # Private views are hers alone: not her teammate's, not another team's.
    assert names(await ok(api.get("/v1/contacts/views", headers=rita))) == [
        "Hot leads DE",
        "my VIPs",
    ]
    assert names(await ok(api.get("/v1/contacts/views", headers=nina))) == []
    assert names(await ok(api.get("/v1/contacts/views", headers=otto))) == []

    # Shared: her team sees it, wherever they live (nina's home is us); otto does not.
    shared = await ok(
        api.patch(f"/v1/contacts/views/{hot['id']}", json={"shared": True}, headers=rita)
    )
    assert (
        shared["shared"] is True
        and shared["filters"] == hot["filters"]
        and shared["sort"] == "-created_at"
    )
    assert names(await ok(api.get("/v1/contacts/views", headers=nina))) == ["Hot leads DE"]
    assert names(await ok(api.get("/v1/contacts/views", headers=otto))) == []

    # Nobody else changes or deletes her views; a view one may not see does not exist.
    assert (
        refused(
            await api.patch(
                f"/v1/contacts/views/{hot['id']}", json={"name": "mine now"}, headers=nina
            ),
            403,
        )
        == set()
    )
    assert refused(await api.delete(f"/v1/contacts/views/{hot['id']}", headers=nina), 403) == set()
    assert (
        refused(
            await api.patch(f"/v1/contacts/views/{mine['id']}", json={"name": "x"}, headers=otto),
            404,
        )
        == set()
    )
    assert refused(await api.delete(f"/v1/contacts/views/{mine['id']}", headers=otto), 404) == set()

    # She renames, changes the filters and deletes her own.
    renamed = await ok(
        api.patch(
            f"/v1/contacts/views/{mine['id']}",
            json={"name": "VIPs", "filters": {"tag": "vip"}, "sort": "name"},
            headers=rita,
        )
    )
    assert (
        renamed["name"] == "VIPs"
        and renamed["filters"] == {"tag": "vip"}
        and renamed["sort"] == "name"
    )
    await ok(api.delete(f"/v1/contacts/views/{mine['id']}", headers=rita), 204)
    assert names(await ok(api.get("/v1/contacts/views", headers=rita))) == ["Hot leads DE"]

    # Unsharing takes it from the team again.
    await ok(api.patch(f"/v1/contacts/views/{hot['id']}", json={"shared": False}, headers=rita))
    assert names(await ok(api.get("/v1/contacts/views", headers=nina))) == []


async def test_a_bad_view_is_refused_naming_the_field_and_nothing_is_saved(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"views-{uuid.uuid4().hex[:8]}"
    rita = token_for("rita", "sales_rep", "eu", tenant=tenant, team="north")
    fields = refused(
        await api.post(
            "/v1/contacts/views",
            json={"name": " ", "filters": {"colour": "red"}, "sort": "phone"},
            headers=rita,
        )
    )
    assert fields == {"name", "filters.colour", "sort"}
    assert (await ok(api.get("/v1/contacts/views", headers=rita)))["data"] == []
    view = await ok(
        api.post(
            "/v1/contacts/views", json={"name": "Leads", "filters": {"stage": "lead"}}, headers=rita
        ),
        201,
    )
    assert refused(
        await api.patch(f"/v1/contacts/views/{view['id']}", json={"sort": "-phone"}, headers=rita)
    ) == {"sort"}
    listing = await ok(api.get("/v1/contacts/views", headers=rita))
    assert listing["data"][0]["sort"] == "" and listing["data"][0]["filters"] == {"stage": "lead"}
    assert refused(
        await api.patch("/v1/contacts/views/nonsense", json={"name": "x"}, headers=rita)
    ) == {"id"}
