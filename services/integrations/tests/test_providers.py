"""Telephony and inbound email: provider secrets, unknown callers become leads, missed
calls become call-back tasks, emails land on the sender's timeline; API keys."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crm_api.crm.events.v1 import integrations_pb2 as events

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_an_unknown_caller_becomes_a_lead_and_a_missed_call_a_task(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str], tenant: str, stream_events: Any
) -> None:
    provider = await h.ok(
        api.post(
            "/v1/integrations/providers",
            json={"kind": "telephony", "name": "PBX", "default_country": "DE"},
            headers=admin,
        ),
        201,
    )
    assert provider["secret"].startswith("psk_") and provider["id"].startswith("eu_")
    url = provider["webhook_url"]
    secret = {"X-Integration-Secret": provider["secret"]}
    call = {
        "call_id": "c-1",
        "direction": "inbound",
        "from": "0151 98765432",
        "to": "+49 30 1234567",
        "duration": 95,
        "recording_url": "https://pbx.example/rec/c-1.mp3",
    }
    wrong = await api.post(url, json=call, headers={"X-Integration-Secret": "psk_wrong"})
    assert wrong.status_code == 401
    assert (await api.post(url, json=call)).status_code == 401

    first = await h.ok(api.post(url, json=call, headers=secret))
    assert first["new_lead"] is True and first["missed"] is False and first["task_id"] == ""
    lead = await h.ok(api.get(f"/v1/contacts/{first['contact_id']}", headers=admin))
    assert lead["phones"] == ["+4915198765432"]
    assert lead["lifecycle_stage"] == "lead" and lead["source"] == "call"
    assert lead["owner_id"] == "boss"
    timeline = await h.ok(api.get(f"/v1/contacts/{lead['id']}/notes", headers=admin))
    entry = timeline["data"][0]
    assert entry["kind"] == "call" and entry["direction"] == "inbound"
    assert entry["duration_seconds"] == 95 and "c-1.mp3" in entry["body"]

    # The provider retries the same event: logged once.
    again = await h.ok(api.post(url, json=call, headers=secret))
    assert again["duplicate"] is True and again["id"] == first["id"]

    # A missed call from the same person (written differently): a call-back task.
    missed = await h.ok(
        api.post(
            url,
            json={**call, "call_id": "c-2", "from": "+49 151 98765432", "duration": 0},
            headers=secret,
        )
    )
    assert missed["new_lead"] is False and missed["contact_id"] == lead["id"]
    assert missed["missed"] is True
    task = await h.ok(api.get(f"/v1/tasks/{missed['task_id']}", headers=admin))
    assert task["assignee_id"] == "boss" and task["contact_id"] == lead["id"]
    assert task["title"] == "Call back +4915198765432" and task["priority"] == "high"

    async def logged() -> Any:
        found = [
            e
            for e in await stream_events("eu", "integrations.call.logged")
            if e.tenant_id == tenant
        ]
        return found if len(found) == 2 else None

    envelopes = await h.eventually(logged, "integrations.call.logged events")
    payloads = []
    for envelope in envelopes:
        payload = events.CallLogged()
        envelope.payload.Unpack(payload)
        payloads.append((payload.new_lead, payload.missed, payload.owner_id))
    assert payloads == [(True, False, "boss"), (False, True, "boss")]

    bad = await api.post(url, json={**call, "call_id": "c-3", "from": "12"}, headers=secret)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "from"


async def test_an_inbound_email_is_logged_on_the_senders_timeline(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    contact = await h.ok(
        api.post(
            "/v1/contacts",
            json={
                "first_name": "Mara",
                "emails": ["mara@example.de"],
                "address": {"country": "DE"},
            },
            headers=admin,
        ),
        201,
    )
    provider = await h.ok(
        api.post("/v1/integrations/providers", json={"kind": "email"}, headers=admin), 201
    )
    headers = {"Authorization": f"Bearer {provider['secret']}"}
    mail = {
        "message_id": "<m1@example.de>",
        "from": "Mara@Example.de",
        "to": "sales@acme.example",
        "subject": "Offer",
        "body": "Please send the offer.",
    }
    logged = await h.ok(api.post(provider["webhook_url"], json=mail, headers=headers))
    assert logged["matched"] is True and logged["contact_id"] == contact["id"]
    timeline = await h.ok(api.get(f"/v1/contacts/{contact['id']}/notes", headers=admin))
    assert [(e["kind"], e["subject"]) for e in timeline["data"]] == [("email", "Offer")]
    stranger = await h.ok(
        api.post(
            provider["webhook_url"],
            json={**mail, "message_id": "<m2@x>", "from": "who@nowhere.example"},
            headers=headers,
        )
    )
    assert stranger["matched"] is False
    # A telephony secret does not open the email endpoint.
    phone = await h.ok(
        api.post("/v1/integrations/providers", json={"kind": "telephony"}, headers=admin), 201
    )
    crossed = await api.post(
        f"/public/email/{phone['id']}", json=mail, headers={"X-Integration-Secret": phone["secret"]}
    )
    assert crossed.status_code == 401


async def test_api_keys_authenticate_the_integration_role_with_scopes(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str], token_for: Any, tenant: str
) -> None:
    rep = token_for("rep", "sales_rep", "eu", tenant=tenant)
    assert (
        await api.post("/v1/api-keys", json={"name": "x", "scopes": ["*"]}, headers=rep)
    ).status_code == 403
    bad = await api.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["everything"]}, headers=admin
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "scopes[0]"
    key = await h.ok(
        api.post(
            "/v1/api-keys",
            json={"name": "Zapier", "scopes": ["contacts:read", "contacts:write"]},
            headers=admin,
        ),
        201,
    )
    secret = key["secret"]
    assert secret.startswith("atk_eu_") and key["prefix"] == secret[:12]
    listed = await h.ok(api.get("/v1/api-keys", headers=admin))
    assert [k["id"] for k in listed["data"]] == [key["id"]]
    assert "secret" not in listed["data"][0] or not listed["data"][0].get("secret")

    bearer = {"Authorization": f"Bearer {secret}"}
    created = await h.ok(
        api.post(
            "/v1/contacts",
            json={"first_name": "Via", "last_name": "Key", "address": {"country": "DE"}},
            headers=bearer,
        ),
        201,
    )
    assert created["owner_id"] == f"apikey-{key['id']}"
    seen = await h.ok(api.get("/v1/contacts", headers={"X-API-Key": secret}))
    assert created["id"] in [c["id"] for c in seen["data"]]
    # No deals scope: refused.
    assert (await api.get("/v1/deals", headers=bearer)).status_code == 403
    assert (await api.get("/v1/contacts", headers={"X-API-Key": "atk_eu_nope"})).status_code == 401
    assert (await api.get("/v1/contacts", headers={"X-API-Key": "atk_zz_nope"})).status_code == 401

    await h.ok(api.delete(f"/v1/api-keys/{key['id']}", headers=admin))

    async def refused() -> bool:
        return (await api.get("/v1/contacts", headers=bearer)).status_code == 401

    # The gateway caches a verified key for a few seconds.
    await h.eventually(refused, "the revoked key to be refused", within=20)
