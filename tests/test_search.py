"""Contact search by term (migration 0006): the term tables follow every change of a
contact, other scripts and several words rank the right person first, and searches
keep to their own share of the service's connections."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx


def unique(prefix: str = "p") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def ok(reply: Any, status: int = 200) -> Any:
    response = await reply
    assert response.status_code == status, (response.request.url, response.text)
    return response.json() if response.content else {}


async def found(api: httpx.AsyncClient, headers: dict[str, str], q: str) -> list[str]:
    """The ids a search answers, best first."""
    reply = await ok(api.get("/v1/contacts", params={"q": q}, headers=headers))
    return [contact["id"] for contact in reply["data"]]


async def test_the_search_terms_follow_updates_merges_and_erasure(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    tenant = unique("t-")
    admin = token_for("admin", "admin", "eu", tenant=tenant)
    officer = token_for("dpo", "compliance_officer", "eu", tenant=tenant)
    tag = uuid.uuid4().hex[:6]
    digits = str(uuid.uuid4().int)[:7]
    email = f"wq.{tag}@example.de"
    wilhelmina = await ok(
        api.post(
            "/v1/contacts",
            json={
                "first_name": "Wilhelmina",
                "last_name": "Quastenberg",
                "emails": [email],
                "phones": [f"030 9{digits}"],
                "address": {"country": "DE"},
            },
            headers=admin,
        ),
        201,
    )
    assert await found(api, admin, "quastenbrg") == [wilhelmina["id"]]

    # A new name replaces the old one in the search at once.
    await ok(
        api.patch(
            f"/v1/contacts/{wilhelmina['id']}", json={"last_name": "Brandtner"}, headers=admin
        )
    )
    assert await found(api, admin, "quastenberg") == []
    assert await found(api, admin, "brandtnr") == [wilhelmina["id"]]
    words = [w for (w,) in await db("contacts", "eu", TENANT_WORDS, tenant)]
    assert "brandtner" in words and "quastenberg" not in words

    # Merged: the duplicate's email finds the survivor, and the tombstone nothing.
    willi = await ok(
        api.post(
            "/v1/contacts",
            json={
                "first_name": "Willi",
                "last_name": "Brandtner",
                "emails": [f"willi.{tag}@example.de"],
                "address": {"country": "DE"},
            },
            headers=admin,
        ),
        201,
    )
    await ok(
        api.post(
            f"/v1/contacts/{wilhelmina['id']}/merge",
            json={"merged_id": willi["id"]},
            headers=admin,
        )
    )
    assert await found(api, admin, f"willi.{tag}@example.de") == [wilhelmina["id"]]
    assert await found(api, admin, "willi") == [wilhelmina["id"]]

    # Erased: nothing of her is left to find, nor in the term tables.
    request = await ok(
        api.post(
            "/v1/privacy/requests",
            json={"kind": "erasure", "contact_id": wilhelmina["id"]},
            headers=officer,
        ),
        201,
    )
    assert request["status"] == "completed", request
    for q in ("brandtner", email, digits, "wilhelmina"):
        assert await found(api, admin, q) == [], q
    assert await db("contacts", "eu", TENANT_WORDS, tenant) == []
    assert await db("contacts", "eu", TERMS_OF, wilhelmina["id"]) == []


TENANT_WORDS = "SELECT term FROM search_terms WHERE tenant_id = $1 ORDER BY term"
TERMS_OF = "SELECT term FROM contact_terms WHERE contact_id = $1"


async def test_other_scripts_and_several_words_find_the_right_person_first(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    admin = token_for("admin", "admin", "eu", tenant=unique("t-"))
    people = [
        ("अनिरुद्ध", "त्रिवेदी"),
        ("હેમંત", "પંડ્યા"),
        ("شیرین", "نوروزی"),
        ("Jürgen", "Müller"),
        ("Jürgen", "Schmidt"),
        ("Anna", "Müller"),
    ]
    ids = {}
    for first, last in people:
        body = {"first_name": first, "last_name": last, "address": {"country": "DE"}}
        ids[last if first != "Jürgen" else f"Jürgen {last}"] = (
            await ok(api.post("/v1/contacts", json=body, headers=admin), 201)
        )["id"]
    assert (await found(api, admin, "त्रिवेदी"))[0] == ids["त्रिवेदी"]
    assert (await found(api, admin, "પંડ્યા"))[0] == ids["પંડ્યા"]
    assert (await found(api, admin, "نوروزی"))[0] == ids["نوروزی"]
    # Both words beat either one alone, also with a typo; each alone still finds her.
    assert (await found(api, admin, "jurgen mullr"))[0] == ids["Jürgen Müller"]
    assert (await found(api, admin, "müller jürgen"))[0] == ids["Jürgen Müller"]
    assert set(await found(api, admin, "jurgen")) == {ids["Jürgen Müller"], ids["Jürgen Schmidt"]}


async def test_stuck_searches_keep_to_their_share_and_answer_503(
    api: httpx.AsyncClient, token_for: Any, system: Any
) -> None:
    """Searches that cannot finish hold at most their own few connections: the rest of
    the service keeps answering, and the searches end as 503 with Retry-After."""
    admin = token_for("admin", "admin", "eu", tenant=unique("t-"))
    contact = await ok(
        api.post(
            "/v1/contacts",
            json={"first_name": "Stella", "last_name": "Langsam", "address": {"country": "DE"}},
            headers=admin,
        ),
        201,
    )
    blocker = await asyncpg.connect(system.postgres.dsn(system.database("contacts", "eu")))
    try:
        transaction = blocker.transaction()
        await transaction.start()
        # Every search reads the term dictionary; this makes each one wait.
        await blocker.execute("LOCK TABLE search_terms IN ACCESS EXCLUSIVE MODE")
        searches = [
            asyncio.ensure_future(api.get("/v1/contacts", params={"q": "langsam"}, headers=admin))
            for _ in range(30)
        ]
        waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::regclass"
        for _ in range(1200):  # until the first search waits for the lock
            if await blocker.fetchval(waiting, "search_terms"):
                break
            await asyncio.sleep(0.05)
        # More searches than the pool has connections are waiting; reads that are not
        # searches still get one.
        again = await ok(api.get(f"/v1/contacts/{contact['id']}", headers=admin))
        assert again["last_name"] == "Langsam"
        listed = await ok(api.get("/v1/contacts", params={"limit": 1}, headers=admin))
        assert [c["id"] for c in listed["data"]] == [contact["id"]]
        replies = await asyncio.gather(*searches)
    finally:
        await blocker.close()
    assert {reply.status_code for reply in replies} == {503}, replies[0].text
    assert all(reply.headers.get("Retry-After") for reply in replies)
    assert await found(api, admin, "langsam") == [contact["id"]]
