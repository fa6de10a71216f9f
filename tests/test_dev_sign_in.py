"""The development sign-in through the whole system: the directory's users are listed
for the sign-in page, and the token minted for one of them works on the API."""

from __future__ import annotations

from typing import Any

import httpx

from crm_kit.auth import mint_token


async def test_dev_sign_in_lists_the_directory_and_mints_a_working_token(
    api: httpx.AsyncClient, system: Any
) -> None:
    tenant = "devsignin"
    admin = mint_token(
        system.jwt_secret, tenant=tenant, user="ada", roles=["admin"], home_region="eu"
    )
    header = {"Authorization": f"Bearer {admin}"}
    for user, name in (("zoe", "Zoë Weber"), ("ana", "Ana Souza")):
        reply = await api.put(
            f"/v1/users/{user}",
            headers=header,
            json={"display_name": name, "team": "north", "time_zone": "Europe/Berlin"},
        )
        assert reply.status_code == 200, reply.text

    directory = (await api.get("/v1/dev/users", params={"tenant": tenant})).json()
    assert [(u["id"], u["display_name"], u["team"]) for u in directory["data"]] == [
        ("ana", "Ana Souza", "north"),
        ("zoe", "Zoë Weber", "north"),
    ]
    assert set(directory["roles"]) >= {"admin", "manager", "sales_rep", "compliance_officer"}
    assert directory["regions"] == ["eu", "br", "us"]
    # Another tenant's directory is its own.
    other = (await api.get("/v1/dev/users", params={"tenant": "devsignin-other"})).json()
    assert other["data"] == []

    minted = await api.post(
        "/v1/dev/token",
        json={
            "tenant": tenant,
            "user": "zoe",
            "role": "sales_rep",
            "region": "eu",
            "team": "north",
        },
    )
    assert minted.status_code == 200, minted.text
    token = minted.json()["token"]
    contact = await api.post(
        "/v1/contacts",
        headers={"Authorization": f"Bearer {token}"},
        json={"first_name": "Greta", "last_name": "Lind", "address": {"country": "DE"}},
    )
    assert contact.status_code == 201, contact.text
    # The token carries the chosen user: the rep owns what she creates.
    assert contact.json()["owner_id"] == "zoe"
