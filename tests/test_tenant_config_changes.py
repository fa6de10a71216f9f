"""A tenant's configuration change applies to the very next request, although every
contacts service keeps the residency policy and custom field definitions in memory
(crm_kit.tenant_cache): through the gateway, with every service up on real engines."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")


def person(country: str, **extra: Any) -> dict[str, Any]:
    tag = f"p{uuid.uuid4().hex[:10]}"
    return {
        "first_name": "Cache",
        "last_name": tag,
        "emails": [f"{tag}@example.org"],
        "address": {"country": country},
        **extra,
    }


async def test_a_new_residency_override_places_the_next_contact_at_once(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"cfg{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    # Both regions' contacts services read (and keep) the policy without an override.
    for region, country in (("eu", "DE"), ("us", "CH")):
        created = await api.post(
            "/v1/contacts",
            json=person(country),
            headers=token_for("boss", "admin", region, tenant=tenant),
        )
        assert created.status_code == 201, created.text
        assert created.json()["region"] == region

    changed = await api.put(
        "/v1/compliance/policies",
        json={"default_region": "us", "residency_overrides": {"CH": "eu"}},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text

    swiss = await api.post("/v1/contacts", json=person("CH"), headers=admin)
    assert swiss.status_code == 201, swiss.text
    assert swiss.json()["region"] == "eu"


async def test_a_new_custom_field_is_accepted_on_the_next_contact(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"cfg{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    refused = await api.post(
        "/v1/contacts", json=person("DE", custom_fields={"shoe_size": 44}), headers=admin
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "custom_fields.shoe_size"

    defined = await api.post(
        "/v1/custom-fields",
        json={"entity": "contact", "key": "shoe_size", "label": "Shoe size", "type": "integer"},
        headers=admin,
    )
    assert defined.status_code == 201, defined.text

    accepted = await api.post(
        "/v1/contacts", json=person("DE", custom_fields={"shoe_size": 44}), headers=admin
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["custom_fields"] == {"shoe_size": 44}
