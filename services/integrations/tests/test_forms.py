"""Web forms: a public submission through the whole chain, de-duplication with merge,
abuse answers, and a submission accepted while the deals service is down."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from crm_api.crm.events.v1 import integrations_pb2 as events

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def make_form(
    ok: Any, api: httpx.AsyncClient, admin: dict[str, str], target: dict[str, str], **extra: Any
) -> dict[str, Any]:
    body = {
        "name": "Quote request",
        "field_mapping": {
            "your_name": "name",
            "email": "email",
            "phone": "phone",
            "country": "country",
            "message": "note",
        },
        **target,
        "owner": "user:boss",
        "honeypot_field": "website",
        "default_country": "DE",
        "rate_limit_per_ip": 1000,
        **extra,
    }
    return dict(await ok(api.post("/v1/forms", json=body, headers=admin), 201))


async def test_a_submission_becomes_a_contact_a_deal_and_its_first_task(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str], tenant: str, stream_events: Any
) -> None:
    for user in ("rep-ana", "rep-ben"):
        await h.ok(api.put(f"/v1/users/{user}", json={"team": "web"}, headers=admin))
    target = await h.pipeline_with_rule(api, admin)
    form = await make_form(h.ok, api, admin, target, owner="team:web")
    assert form["submit_url"] == f"/public/forms/{form['key']}"

    reply = await h.ok(
        api.post(
            form["submit_url"],
            json={
                "your_name": "Lena Vogel",
                "email": "Lena.Vogel@Example.org",
                "phone": "0151 23456789",
                "country": "Germany",
                "message": "Three windows, please",
                "utm_source": "google",
                "utm_medium": "cpc",
                "utm_campaign": "spring",
            },
        ),
        201,
    )
    assert reply["status"] == "completed" and set(reply) == {"id", "status"}
    submission = await h.ok(api.get(f"/v1/forms/submissions/{reply['id']}", headers=admin))
    assert submission["utm"] == {
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "spring",
    }
    assert submission["source"] == "google"

    contact = await h.ok(api.get(f"/v1/contacts/{submission['contact_id']}", headers=admin))
    assert contact["region"] == "eu"
    assert contact["emails"] == ["lena.vogel@example.org"]
    assert contact["phones"] == ["+4915123456789"]
    assert (contact["first_name"], contact["last_name"]) == ("Lena", "Vogel")
    assert contact["source"] == "web_form" and contact["lifecycle_stage"] == "lead"
    notes = await h.ok(api.get(f"/v1/contacts/{contact['id']}/notes", headers=admin))
    assert [n["body"] for n in notes["data"]] == ["Three windows, please"]

    deal = await h.ok(api.get(f"/v1/deals/{submission['deal_id']}", headers=admin))
    assert deal["stage_id"] == target["stage_id"] and deal["source"] == "web_form"
    assert deal["contact_id"] == contact["id"]
    first_owner = deal["owner_id"]
    assert first_owner in ("rep-ana", "rep-ben")

    async def task() -> Any:
        found = await h.ok(api.get(f"/v1/tasks?deal_id={deal['id']}", headers=admin))
        return found["data"]

    tasks = await h.eventually(task, "the automation's call-back task")
    assert tasks[0]["assignee_id"] == first_owner
    assert tasks[0]["title"] == "Call the web lead back"

    # Form-encoded works too; round-robin gives the next lead to the other rep.
    second = await h.ok(
        api.post(
            form["submit_url"],
            data={"your_name": "Tom Berg", "email": "tom@example.org", "country": "AT"},
        ),
        201,
    )
    other = await h.ok(api.get(f"/v1/forms/submissions/{second['id']}", headers=admin))
    other_deal = await h.ok(api.get(f"/v1/deals/{other['deal_id']}", headers=admin))
    assert {first_owner, other_deal["owner_id"]} == {"rep-ana", "rep-ben"}

    async def submitted() -> Any:
        found = [
            e
            for e in await stream_events("eu", "integrations.form.submitted")
            if e.tenant_id == tenant
        ]
        return found if len(found) == 2 else None

    envelopes = await h.eventually(submitted, "integrations.form.submitted events")
    payload = events.FormSubmitted()
    envelopes[0].payload.Unpack(payload)
    assert payload.deal_id == deal["id"] and payload.source == "google"
    assert payload.utm_campaign == "spring"


async def test_duplicates_are_found_by_email_or_phone_and_merged(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    target = await h.pipeline_with_rule(api, admin)
    form = await make_form(h.ok, api, admin, target)
    by_email = await h.ok(
        api.post(
            "/v1/contacts",
            json={
                "first_name": "Ines",
                "emails": ["ines@example.pt"],
                "address": {"country": "PT"},
            },
            headers=admin,
        ),
        201,
    )
    by_phone = await h.ok(
        api.post(
            "/v1/contacts",
            json={
                "last_name": "Costa",
                "phones": ["+351 912 345 678"],
                "address": {"country": "PT"},
            },
            headers=admin,
        ),
        201,
    )
    reply = await h.ok(
        api.post(
            form["submit_url"],
            json={
                "your_name": "Ines Costa",
                "email": "INES@example.pt",
                "phone": "+351912345678",
                "country": "PT",
            },
        ),
        201,
    )
    submission = await h.ok(api.get(f"/v1/forms/submissions/{reply['id']}", headers=admin))
    assert submission["contact_id"] == by_email["id"]
    assert submission["merged_contact_ids"] == [by_phone["id"]]
    survivor = await h.ok(api.get(f"/v1/contacts/{by_email['id']}", headers=admin))
    assert survivor["phones"] == ["+351912345678"] and survivor["last_name"] == "Costa"
    merged = await h.ok(api.get(f"/v1/contacts/{by_phone['id']}", headers=admin))
    assert merged["merged_into_id"] == by_email["id"]

    # The same person again: no new contact, a second deal on the survivor.
    again = await h.ok(api.post(form["submit_url"], json={"email": "ines@example.pt"}), 201)
    repeat = await h.ok(api.get(f"/v1/forms/submissions/{again['id']}", headers=admin))
    assert repeat["contact_id"] == by_email["id"] and repeat["merged_contact_ids"] == []
    deals = await h.ok(api.get(f"/v1/deals?contact_id={by_email['id']}", headers=admin))
    assert len(deals["data"]) == 2


async def test_spam_and_abuse_get_clear_answers(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    target = await h.pipeline_with_rule(api, admin)
    form = await make_form(h.ok, api, admin, target, rate_limit_per_ip=2)
    url = form["submit_url"]

    assert (await api.post("/public/forms/eu-0000", json={"email": "a@b.de"})).status_code == 404
    assert (await api.post("/public/forms/xx-0000", json={"email": "a@b.de"})).status_code == 404
    bot = await api.post(url, json={"email": "bot@spam.example", "website": "http://spam"})
    assert bot.status_code == 422 and bot.json()["errors"][0]["field"] == "website"
    bad = await api.post(url, json={"email": "not-an-email", "phone": "12"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"email", "phone"}
    assert (
        await api.post(url, content=b"hi", headers={"content-type": "text/plain"})
    ).status_code == 415
    # Two requests from this address this minute were let through; the third is refused
    # (415s are refused before they count).
    limited = await api.post(url, json={"email": "late@example.org"})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "60"
    assert limited.headers["content-type"] == "application/problem+json"


async def test_a_submission_during_a_deals_outage_is_completed_later(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str], cluster: Any, move_clock: Any
) -> None:
    target = await h.pipeline_with_rule(api, admin)
    form = await make_form(h.ok, api, admin, target)
    deals = next(p for p in cluster.processes if p.name == "deals-eu")
    deals.stop()
    try:
        reply = await api.post(
            form["submit_url"], json={"your_name": "Olaf Ring", "email": "olaf@example.de"}
        )
        assert reply.status_code == 202, reply.text
        stored = await h.ok(api.get(f"/v1/forms/submissions/{reply.json()['id']}", headers=admin))
        assert stored["status"] == "pending" and stored["deal_id"] == ""
        assert stored["contact_id"]  # contacts was up: that step is done and kept
        assert "deals" in stored["last_error"]
    finally:
        deals.start(cluster.log_dir)
        await h.eventually(lambda: _healthy(deals), "deals-eu to come back", within=60)

    async def completed() -> Any:
        found = await h.ok(api.get(f"/v1/forms/submissions/{reply.json()['id']}", headers=admin))
        return found if found["status"] == "completed" else None

    done = await h.eventually(
        completed, "the retry worker", within=60, between=lambda: move_clock(timedelta(minutes=5))
    )
    deal = await h.ok(api.get(f"/v1/deals/{done['deal_id']}", headers=admin))
    assert deal["contact_id"] == stored["contact_id"]

    async def task() -> Any:
        return (await h.ok(api.get(f"/v1/tasks?deal_id={deal['id']}", headers=admin)))["data"]

    await h.eventually(task, "the call-back task of the late deal")


async def _healthy(process: Any) -> bool:
    import asyncio

    return bool(await asyncio.to_thread(process.healthy))
