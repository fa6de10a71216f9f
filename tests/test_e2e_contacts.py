"""Contacts end to end through the gateway, with every service up on real engines."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from crm_api.crm.events.v1 import contacts_pb2 as events
from crm_kit import clock

pytestmark = pytest.mark.asyncio(loop_scope="session")


def unique(prefix: str = "p") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def person(country: str, **extra: Any) -> dict[str, Any]:
    tag = unique()
    return {
        "first_name": "Test",
        "last_name": tag,
        "emails": [f"{tag}@example.org"],
        "address": {"country": country},
        **extra,
    }


async def count_contacts(db: Any, region: str, tenant: str = "acme") -> int:
    rows = await db(
        "contacts", region, "SELECT count(*) FROM contacts WHERE tenant_id = $1", tenant
    )
    return int(rows[0][0])


async def test_contacts_land_only_in_their_regions_database(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    created = {}
    for country, region in (("DE", "eu"), ("BR", "br"), ("US", "us")):
        body = person(
            country,
            phones=[
                "030 1234567"
                if country == "DE"
                else "(11) 98765-4321"
                if country == "BR"
                else "(415) 555-2671"
            ],
        )
        reply = await api.post(
            "/v1/contacts", json=body, headers=token_for("admin-" + region, "admin", region)
        )
        assert reply.status_code == 201, reply.text
        contact = reply.json()
        assert contact["id"].startswith(f"{region}_") and contact["region"] == region
        created[region] = (contact["id"], body["emails"][0])
    assert created["eu"][0] and (
        await api.get(f"/v1/contacts/{created['eu'][0]}", headers=token_for("a", "admin", "eu"))
    ).json()["phones"] == ["+49301234567"]
    for region, (contact_id, email) in created.items():
        for other in ("eu", "br", "us"):
            rows = await db(
                "contacts",
                other,
                "SELECT id FROM contacts WHERE id = $1 OR $2 = ANY(emails)",
                contact_id,
                email,
            )
            assert len(rows) == (1 if other == region else 0), f"{contact_id} found in {other}"


async def test_owner_and_team_visibility(api: httpx.AsyncClient, token_for: Any) -> None:
    rep_a = token_for("rep-a", "sales_rep", "eu", team="north")
    rep_b = token_for("rep-b", "sales_rep", "eu", team="north")
    manager_north = token_for("mgr-n", "manager", "eu", team="north")
    manager_south = token_for("mgr-s", "manager", "eu", team="south")
    reply = await api.post("/v1/contacts", json=person("FR"), headers=rep_a)
    assert reply.status_code == 201, reply.text
    contact = reply.json()
    assert contact["owner_id"] == "rep-a" and contact["owner_team"] == "north"
    path = f"/v1/contacts/{contact['id']}"
    assert (await api.get(path, headers=rep_a)).status_code == 200
    assert (await api.get(path, headers=rep_b)).status_code == 404
    assert (await api.patch(path, json={"tags": ["x"]}, headers=rep_b)).status_code == 404
    assert (await api.get(path, headers=manager_north)).status_code == 200
    assert (await api.get(path, headers=manager_south)).status_code == 404
    listed = (
        await api.get("/v1/contacts", params={"q": contact["last_name"]}, headers=rep_b)
    ).json()
    assert listed["data"] == []
    listed = (
        await api.get("/v1/contacts", params={"q": contact["last_name"]}, headers=rep_a)
    ).json()
    assert [c["id"] for c in listed["data"]] == [contact["id"]]
    # A rep cannot hand a record to someone else.
    reply = await api.post("/v1/contacts", json=person("FR", owner_id="rep-b"), headers=rep_a)
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "owner_id"


async def test_tenants_are_isolated(api: httpx.AsyncClient, token_for: Any) -> None:
    reply = await api.post(
        "/v1/contacts", json=person("DE"), headers=token_for("admin", "admin", "eu")
    )
    contact = reply.json()
    other = token_for("admin", "admin", "eu", tenant="globex")
    assert (await api.get(f"/v1/contacts/{contact['id']}", headers=other)).status_code == 404
    listed = await api.get("/v1/contacts", params={"q": contact["last_name"]}, headers=other)
    assert listed.status_code == 200 and listed.json()["data"] == []


async def test_bad_input_is_refused_by_field_and_writes_nothing(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    admin = token_for("admin", "admin", "eu")
    defined = await api.post(
        "/v1/custom-fields",
        json={"key": "budget", "label": "Budget", "type": "number"},
        headers=admin,
    )
    assert defined.status_code == 201, defined.text
    cases = [
        (person("DE", emails=["anna@"]), "emails[0]"),
        (person("DE", custom_fields={"colour": "red"}), "custom_fields.colour"),
        (person("DE", custom_fields={"budget": "lots"}), "custom_fields.budget"),
        (person("DE", phones=["12"]), "phones[0]"),
        (person("DE", favourite_food="pizza"), "favourite_food"),
        (person("Atlantis"), "address.country"),
        (person("DE", lifecycle_stage="hot"), "lifecycle_stage"),
        (person("DE", time_zone="Mars/Olympus"), "time_zone"),
    ]
    before = await count_contacts(db, "eu")
    for body, field in cases:
        reply = await api.post("/v1/contacts", json=body, headers=admin)
        assert reply.status_code == 422, (field, reply.text)
        assert reply.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in reply.json()["errors"]], reply.json()
    # Several bad fields at once are all named.
    reply = await api.post(
        "/v1/contacts", json=person("DE", emails=["x@"], phones=["1"]), headers=admin
    )
    assert {e["field"] for e in reply.json()["errors"]} >= {"emails[0]", "phones[0]"}
    assert await count_contacts(db, "eu") == before

    malformed = await api.get("/v1/contacts/not-an-id", headers=admin)
    assert malformed.status_code == 422 and malformed.json()["errors"][0]["field"] == "id"
    huge = {"first_name": "x" * 1_100_000}
    reply = await api.post("/v1/contacts", json=huge, headers=admin)
    assert reply.status_code == 413 and reply.headers["content-type"].startswith(
        "application/problem+json"
    )
    assert (await api.get("/v1/contacts")).status_code == 401
    assert await count_contacts(db, "eu") == before

    # A bad update changes nothing either.
    contact = (await api.post("/v1/contacts", json=person("DE"), headers=admin)).json()
    reply = await api.patch(
        f"/v1/contacts/{contact['id']}",
        json={"last_name": "Changed", "emails": ["nope"]},
        headers=admin,
    )
    assert reply.status_code == 422
    again = (await api.get(f"/v1/contacts/{contact['id']}", headers=admin)).json()
    assert again["last_name"] == contact["last_name"] and again["version"] == 1


async def test_idempotency_key_creates_once(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    admin = token_for("admin", "admin", "br")
    body = person("BR")
    key = {"Idempotency-Key": unique("key-")}
    first = await api.post("/v1/contacts", json=body, headers={**admin, **key})
    second = await api.post("/v1/contacts", json=body, headers={**admin, **key})
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    rows = await db(
        "contacts", "br", "SELECT id FROM contacts WHERE $1 = ANY(emails)", body["emails"][0]
    )
    assert len(rows) == 1
    clash = await api.post("/v1/contacts", json=person("BR"), headers={**admin, **key})
    assert clash.status_code == 409


async def test_cross_region_access_needs_a_grant_and_is_audited(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    tenant = unique("t-")
    admin_br = token_for("admin-br", "admin", "br", tenant=tenant)
    admin_eu = token_for("admin-eu", "admin", "eu", tenant=tenant)
    br_ids = []
    for _ in range(3):
        br_ids.append(
            (await api.post("/v1/contacts", json=person("BR"), headers=admin_br)).json()["id"]
        )
    eu_ids = []
    for _ in range(2):
        eu_ids.append(
            (await api.post("/v1/contacts", json=person("AT"), headers=admin_eu)).json()["id"]
        )

    denied = await api.get(f"/v1/contacts/{br_ids[0]}", headers=admin_eu)
    assert denied.status_code == 403 and "br" in denied.json()["detail"]
    assert (
        await api.get("/v1/contacts", params={"region": "eu,br"}, headers=admin_eu)
    ).status_code == 403

    policy = {
        "default_region": "us",
        "access_grants": [
            {"from_region": "eu", "to_region": "br", "legal_basis": "standard contractual clauses"}
        ],
    }
    assert (
        await api.put("/v1/compliance/policies", json=policy, headers=admin_eu)
    ).status_code == 200
    assert (await api.get(f"/v1/contacts/{br_ids[0]}", headers=admin_eu)).status_code == 200
    audit = await db(
        "contacts",
        "br",
        "SELECT actor_id, actor_home_region, action, legal_basis FROM audit_log"
        " WHERE tenant_id = $1 AND record_id = $2",
        tenant,
        br_ids[0],
    )
    assert [tuple(r) for r in audit] == [
        ("admin-eu", "eu", "contact.read", "standard contractual clauses")
    ]
    # The reverse direction was not granted.
    assert (await api.get(f"/v1/contacts/{eu_ids[0]}", headers=admin_br)).status_code == 403

    # One cursor pages through both regions, newest first, without loss or repeats.
    seen: list[str] = []
    cursor = None
    while True:
        params = {"region": "eu,br", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/contacts", params=params, headers=admin_eu)).json()
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(br_ids + eu_ids)
    assert [s.split("_")[1] for s in seen] == sorted((s.split("_")[1] for s in seen), reverse=True)


async def test_search_is_tolerant_of_accents_and_typos(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = unique("t-")
    admin = token_for("admin", "admin", "eu", tenant=tenant)
    company = (
        await api.post(
            "/v1/companies",
            json={"name": "Nordlicht Fenster GmbH", "address": {"country": "DE"}},
            headers=admin,
        )
    ).json()
    bodies = [
        {
            "first_name": "Jürgen",
            "last_name": "Müller",
            "emails": ["jm@nordlicht.de"],
            "phones": ["030 5556677"],
            "address": {"country": "DE"},
            "companies": [{"company_id": company["id"], "role": "buyer"}],
        },
        {"first_name": "Anna", "last_name": "Schmidt", "address": {"country": "DE"}},
        {"first_name": "Zoë", "last_name": "Lefèvre", "address": {"country": "FR"}},
    ]
    for body in bodies:
        assert (await api.post("/v1/contacts", json=body, headers=admin)).status_code == 201

    async def names(q: str) -> list[str]:
        reply = await api.get("/v1/contacts", params={"q": q}, headers=admin)
        assert reply.status_code == 200, reply.text
        return [c["last_name"] for c in reply.json()["data"]]

    assert (await names("muller"))[0] == "Müller"
    assert (await names("Mullr"))[0] == "Müller"
    assert (await names("lefevre"))[0] == "Lefèvre"
    assert (await names("jm@nordlicht.de")) == ["Müller"]
    assert (await names("5556677")) == ["Müller"]
    assert "Müller" in await names("nordlicht")
    assert await names("xyzzyq") == []
    company_view = (await api.get(f"/v1/companies/{company['id']}", headers=admin)).json()
    assert [(m["display_name"], m["role"]) for m in company_view["members"]] == [
        ("Jürgen Müller", "buyer")
    ]
    filtered = await api.get(
        "/v1/contacts", params={"q": "muller", "lifecycle_stage": "customer"}, headers=admin
    )
    assert filtered.json()["data"] == []
    bad_filter = await api.get("/v1/contacts", params={"lifecycle_stage": "hot"}, headers=admin)
    assert (
        bad_filter.status_code == 422
        and bad_filter.json()["errors"][0]["field"] == "lifecycle_stage"
    )


async def test_duplicates_merge_keeps_both_histories(
    api: httpx.AsyncClient, token_for: Any, stream_events: Any
) -> None:
    tenant = unique("t-")
    admin = token_for("admin", "admin", "eu", tenant=tenant)
    email = f"{unique()}@example.de"
    first = (
        await api.post(
            "/v1/contacts",
            json={
                "first_name": "Lena",
                "last_name": "Weiß",
                "emails": [email],
                "address": {"country": "DE"},
            },
            headers=admin,
        )
    ).json()
    second = (
        await api.post(
            "/v1/contacts",
            json={
                "first_name": "Lena",
                "last_name": "Weiss",
                "emails": [email.upper()],
                "phones": ["030 7654321"],
                "address": {"country": "DE"},
            },
            headers=admin,
        )
    ).json()
    for contact, text in ((first, "first call"), (second, "second call")):
        reply = await api.post(
            f"/v1/contacts/{contact['id']}/notes",
            json={"kind": "call", "body": text, "direction": "inbound"},
            headers=admin,
        )
        assert reply.status_code == 201, reply.text

    pairs = (await api.get("/v1/contacts/duplicates", headers=admin)).json()["data"]
    assert len(pairs) == 1 and "same_email" in pairs[0]["reasons"]
    assert {pairs[0]["a"]["id"], pairs[0]["b"]["id"]} == {first["id"], second["id"]}

    merged = await api.post(
        f"/v1/contacts/{first['id']}/merge", json={"merged_id": second["id"]}, headers=admin
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["phones"] == ["+49307654321"]
    timeline = (await api.get(f"/v1/contacts/{first['id']}/notes", headers=admin)).json()["data"]
    assert {"first call", "second call"} <= {e["body"] for e in timeline}
    tombstone = (await api.get(f"/v1/contacts/{second['id']}", headers=admin)).json()
    assert tombstone["merged_into_id"] == first["id"] and tombstone["emails"] == []
    assert (await api.get("/v1/contacts/duplicates", headers=admin)).json()["data"] == []

    for _ in range(50):
        envelopes = [
            e for e in await stream_events("eu", "contacts.contact.merged") if e.tenant_id == tenant
        ]
        if envelopes:
            break
        await asyncio.sleep(0.2)
    payload = events.ContactMerged()
    envelopes[0].payload.Unpack(payload)
    assert (payload.survivor_id, payload.merged_id) == (first["id"], second["id"])


async def test_the_timeline_reads_time_by_the_business_clock_on_29_february(
    api: httpx.AsyncClient, token_for: Any, move_clock: Any
) -> None:
    """A call planned 300 days ahead is within a year of the business clock (which tests
    and retention move), and 29 February has a year ahead too."""
    now = clock.now()
    leap = next(
        day
        for year in range(now.year, now.year + 5)
        if (day := datetime(year, 2, 29, 12, tzinfo=UTC) if year % 4 == 0 else None) and day > now
    )
    move_clock.to(leap)
    admin = token_for("admin", "admin", "eu", tenant=unique("t-"))
    contact = (await api.post("/v1/contacts", json=person("DE"), headers=admin)).json()
    notes = f"/v1/contacts/{contact['id']}/notes"
    planned = clock.now() + timedelta(days=300)
    reply = await api.post(
        notes,
        json={"kind": "meeting", "body": "site visit", "occurred_at": planned.isoformat()},
        headers=admin,
    )
    assert reply.status_code == 201, reply.text
    too_far = clock.now() + timedelta(days=400)
    refused = await api.post(
        notes,
        json={"kind": "meeting", "body": "typo", "occurred_at": too_far.isoformat()},
        headers=admin,
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "occurred_at"
    logged = await api.post(notes, json={"kind": "note", "body": "leap day"}, headers=admin)
    assert logged.json()["occurred_at"].startswith(leap.date().isoformat()), logged.text


async def test_consents_keep_history_and_current_state(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    admin = token_for("admin", "admin", "us")
    contact = (await api.post("/v1/contacts", json=person("US"), headers=admin)).json()
    path = f"/v1/contacts/{contact['id']}/consents"
    for status in ("granted", "withdrawn"):
        reply = await api.post(
            path,
            json={"purpose": "marketing_email", "status": status, "source": "web_form"},
            headers=admin,
        )
        assert reply.status_code == 201, reply.text
    state = (await api.get(path, headers=admin)).json()
    assert [(c["purpose"], c["status"]) for c in state["current"]] == [
        ("marketing_email", "withdrawn")
    ]
    assert [c["status"] for c in state["history"]] == ["granted", "withdrawn"]
    bad = await api.post(
        path, json={"purpose": "x", "status": "maybe", "lawful_basis": "vibes"}, headers=admin
    )
    assert {e["field"] for e in bad.json()["errors"]} == {"status", "lawful_basis"}


async def test_writes_survive_a_nats_outage_and_events_arrive_once(
    system: Any, api: httpx.AsyncClient, token_for: Any, stream_events: Any
) -> None:
    tenant = unique("t-")
    admin = token_for("admin", "admin", "eu", tenant=tenant)
    system.nats.stop()
    try:
        ids = []
        for _ in range(5):
            reply = await api.post("/v1/contacts", json=person("IT"), headers=admin)
            assert reply.status_code == 201, reply.text
            ids.append(reply.json()["id"])
    finally:
        system.nats.start(system.log_dir / "nats.log")
    created: list[str] = []
    for _ in range(100):
        created = []
        for envelope in await stream_events("eu", "contacts.contact.created"):
            if envelope.tenant_id == tenant:
                payload = events.ContactCreated()
                envelope.payload.Unpack(payload)
                created.append(payload.contact_id)
        if len(created) >= len(ids):
            break
        await asyncio.sleep(0.3)
    assert sorted(created) == sorted(ids)  # each exactly once


async def test_database_outage_gives_503_and_recovers(
    system: Any, api: httpx.AsyncClient, token_for: Any
) -> None:
    admin = token_for("admin", "admin", "eu")
    system.postgres.stop()
    try:
        reply = await api.post("/v1/contacts", json=person("DE"), headers=admin)
        assert reply.status_code == 503, reply.text
        assert reply.headers["retry-after"] == "2"
        assert reply.headers["content-type"].startswith("application/problem+json")
        assert (await api.get("/v1/contacts", headers=admin)).status_code == 503
    finally:
        system.postgres.start()
    for _ in range(50):
        reply = await api.post("/v1/contacts", json=person("DE"), headers=admin)
        if reply.status_code == 201:
            break
        await asyncio.sleep(0.2)
    assert reply.status_code == 201, reply.text


async def test_health_docs_and_metrics(system: Any, api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    expected = {
        f"{service}.{region}" for service, regions in system.endpoints.items() for region in regions
    }
    assert ready.status_code == 200 and set(ready.json()["services"]) == expected
    assert all(ready.json()["services"].values())
    assert "/v1/contacts" in (await api.get("/openapi.json")).json()["paths"]
    assert (await api.get("/docs")).status_code == 200
    assert "crm_http_requests_total" in (await api.get("/metrics/")).text
    # Every service process serves its own Prometheus endpoint.
    for name, address in system.metrics_endpoints.items():
        scraped = await api.get(f"http://{address}/metrics")
        assert "crm_grpc_requests_total{" in scraped.text and 'code="OK"' in scraped.text, name


async def test_one_trace_runs_from_the_gateway_through_grpc_to_the_event(
    system: Any, api: httpx.AsyncClient, token_for: Any
) -> None:
    import nats
    from nats.js.api import ConsumerConfig, DeliverPolicy

    from crm_kit.messaging import stream_name, unpack_envelope

    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    headers = {**token_for("admin", "admin", "eu"), "traceparent": traceparent}
    reply = await api.post("/v1/contacts", json=person("NL"), headers=headers)
    assert reply.status_code == 201, reply.text
    contact_id = reply.json()["id"]

    client = await nats.connect(system.nats.url)
    try:
        js = client.jetstream()
        found = None
        for _ in range(50):
            subscription = await js.pull_subscribe(
                "crm.eu.contacts.contact.created",
                stream=stream_name("eu"),
                config=ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT),
            )
            try:
                for message in await subscription.fetch(1, timeout=1):
                    payload = events.ContactCreated()
                    unpack_envelope(message.data).payload.Unpack(payload)
                    if payload.contact_id == contact_id:
                        found = message
            except (nats.errors.TimeoutError, TimeoutError):  # nats-py raises either
                pass
            await subscription.unsubscribe()
            if found:
                break
            await asyncio.sleep(0.2)
        assert found is not None and found.headers is not None
        assert found.headers["traceparent"].split("-")[1] == trace_id
    finally:
        await client.close()
