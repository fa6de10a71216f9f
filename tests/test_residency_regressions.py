"""Residency bugs found by the random residency run (tools/residency, issue 17 §3), each
reproduced through the gateway in a small story and checked straight in the databases."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")
SERVICES = ("contacts", "deals", "tasks", "notifications", "integrations", "reporting")


async def ok(reply: Any, status: int = 200) -> Any:
    response = await reply
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


async def copies(db: Any, region: str, needle: str) -> list[str]:
    """Every table of every service database of `region` with a row holding `needle`
    (in any column, binary ones too: a stored answer is protobuf bytes)."""
    found = []
    for service in SERVICES:
        tables = await db(
            service,
            region,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        )
        for (table,) in tables:
            rows = await db(service, region, f'SELECT * FROM "{table}"')  # noqa: S608 - catalogue names
            for row in rows:
                values = [v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row]
                if any(needle in v for v in values):
                    found.append(f"{service}_{region}.{table}")
                    break
    return found


async def test_a_relocated_person_leaves_no_stored_answer_behind_in_the_old_region(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    """A create sent with an Idempotency-Key keeps its answer (the person's name and email)
    for replays; after the person moved from br to eu that answer stayed in br."""
    tenant = f"moved-{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "br", tenant=tenant)
    officer = token_for("dpo", "compliance_officer", "br", tenant=tenant)
    await ok(
        api.put(
            "/v1/compliance/policies",
            json={
                "default_region": "us",
                "access_grants": [
                    {"from_region": "br", "to_region": "eu", "legal_basis": "subject moved"}
                ],
            },
            headers=officer,
        )
    )
    email = f"tiago.{tenant}@example.com"
    contact = await ok(
        api.post(
            "/v1/contacts",
            json={
                "first_name": "Tiago",
                "last_name": "Mudou",
                "emails": [email],
                "address": {"country": "BR"},
            },
            headers={**admin, "Idempotency-Key": f"create-{tenant}"},
        ),
        201,
    )
    await ok(
        api.post(
            f"/v1/contacts/{contact['id']}/notes",
            json={"body": f"Tiago asked to be mailed at {email}"},
            headers={**admin, "Idempotency-Key": f"note-{tenant}"},
        ),
        201,
    )
    assert "contacts_br.idempotency_keys" in await copies(db, "br", email)

    moved = await ok(
        api.post(
            "/v1/compliance/relocations",
            json={"contact_id": contact["id"], "country": "PT"},
            headers=officer,
        )
    )

    assert moved["to_region"] == "eu"
    assert await copies(db, "br", email) == []
    assert "contacts_eu.contacts" in await copies(db, "eu", email)


async def test_what_a_merged_person_left_follows_the_survivor_when_it_moves(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    """Lena was entered twice in br; her duplicate had a task ("Call Lena Duplo") and was
    merged into the other record. The survivor then moved to eu: the task and the stored
    answer of the duplicate's creation stayed in br, with her name and email."""
    tenant = f"merged-{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "br", tenant=tenant)
    officer = token_for("dpo", "compliance_officer", "br", tenant=tenant)
    await ok(
        api.put(
            "/v1/compliance/policies",
            json={
                "default_region": "us",
                "access_grants": [
                    {"from_region": "br", "to_region": "eu", "legal_basis": "subject moved"}
                ],
            },
            headers=officer,
        )
    )
    email = f"lena.{tenant}@example.com"
    survivor = await ok(
        api.post(
            "/v1/contacts",
            json={"first_name": "Lena", "last_name": "Duplo", "address": {"country": "BR"}},
            headers=admin,
        ),
        201,
    )
    duplicate = await ok(
        api.post(
            "/v1/contacts",
            json={
                "first_name": "Lena",
                "last_name": "Duplo",
                "emails": [email],
                "address": {"country": "BR"},
            },
            headers={**admin, "Idempotency-Key": f"create-{tenant}"},
        ),
        201,
    )
    await ok(
        api.post(
            "/v1/tasks",
            json={
                "title": f"Call Lena Duplo at {email}",
                "contact_id": duplicate["id"],
                "assignee_id": "boss",
                "due_at": "2030-01-01T09:00:00+00:00",
            },
            headers=admin,
        ),
        201,
    )
    await ok(
        api.post(
            f"/v1/contacts/{survivor['id']}/merge",
            json={"merged_id": duplicate["id"]},
            headers=admin,
        )
    )

    async def followed() -> bool:
        rows = await db("tasks", "br", "SELECT contact_id FROM tasks WHERE tenant_id = $1", tenant)
        return [r["contact_id"] for r in rows] == [survivor["id"]]

    deadline = asyncio.get_running_loop().time() + 30
    while not await followed():
        assert asyncio.get_running_loop().time() < deadline, "the task stayed on the duplicate"
        await asyncio.sleep(0.3)

    moved = await ok(
        api.post(
            "/v1/compliance/relocations",
            json={"contact_id": survivor["id"], "country": "PT"},
            headers=officer,
        )
    )

    assert await copies(db, "br", email) == []
    found = await copies(db, "eu", email)
    assert {"contacts_eu.contacts", "tasks_eu.tasks"} <= set(found), found
    tasks = await db("tasks", "eu", "SELECT contact_id FROM tasks WHERE tenant_id = $1", tenant)
    assert [t["contact_id"] for t in tasks] == [moved["new_contact_id"]]


async def test_erasing_a_person_also_erases_what_was_stored_under_their_merged_duplicate(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    """A deal created (with an Idempotency-Key) for Lena's duplicate record keeps its
    answer, "Windows for Lena Brandt", under the duplicate's id. After the merge and the
    erasure of the survivor (whose own name is Lena Vogel) that answer was still there."""
    tenant = f"erased-{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "br", tenant=tenant)
    officer = token_for("dpo", "compliance_officer", "br", tenant=tenant)
    pipeline = await ok(
        api.post(
            "/v1/pipelines",
            json={
                "name": "Sales",
                "stages": [
                    {"name": "New", "win_probability": 10},
                    {"name": "Won", "win_probability": 100, "kind": "won"},
                    {"name": "Lost", "win_probability": 0, "kind": "lost"},
                ],
            },
            headers=admin,
        ),
        201,
    )
    survivor = await ok(
        api.post(
            "/v1/contacts",
            json={"first_name": "Lena", "last_name": "Vogel", "address": {"country": "BR"}},
            headers=admin,
        ),
        201,
    )
    duplicate = await ok(
        api.post(
            "/v1/contacts",
            json={"first_name": "Lena", "last_name": "Brandt", "address": {"country": "BR"}},
            headers=admin,
        ),
        201,
    )
    await ok(
        api.post(
            "/v1/deals",
            json={
                "title": "Windows for Lena Brandt",
                "contact_id": duplicate["id"],
                "pipeline_id": pipeline["id"],
                "stage_id": pipeline["stages"][0]["id"],
                "amount": {"amount": "100.00", "currency": "BRL"},
            },
            headers={**admin, "Idempotency-Key": f"deal-{tenant}"},
        ),
        201,
    )
    assert "deals_br.idempotency_keys" in await copies(db, "br", "Lena Brandt")
    await ok(
        api.post(
            f"/v1/contacts/{survivor['id']}/merge",
            json={"merged_id": duplicate["id"]},
            headers=admin,
        )
    )

    async def followed() -> bool:
        rows = await db("deals", "br", "SELECT contact_id FROM deals WHERE tenant_id = $1", tenant)
        return [r["contact_id"] for r in rows] == [survivor["id"]]

    deadline = asyncio.get_running_loop().time() + 30
    while not await followed():
        assert asyncio.get_running_loop().time() < deadline, "the deal stayed on the duplicate"
        await asyncio.sleep(0.3)
    erasure = await ok(
        api.post(
            "/v1/privacy/requests",
            json={"kind": "erasure", "contact_id": survivor["id"]},
            headers=officer,
        ),
        201,
    )

    assert erasure["status"] == "completed", erasure
    assert await copies(db, "br", "Brandt") == []


async def test_an_erasure_the_gateway_stopped_waiting_for_still_finishes(
    api: httpx.AsyncClient, token_for: Any, db: Any, system: Any
) -> None:
    """On a busy system an erasure took longer than the gateway waits: the call was
    cancelled halfway, the request stayed in_progress for ever (only a failed request
    may be retried) and the person stayed with their name, email and search terms (the
    full residency run's "erased person's data remains", first listed in contact_terms).
    Here another transaction holds the person's row until the gateway has given up."""
    import asyncpg

    tenant = f"slow-{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "br", tenant=tenant)
    officer = token_for("dpo", "compliance_officer", "br", tenant=tenant)
    needle = f"devagar{uuid.uuid4().hex[:8]}"
    contact = await ok(
        api.post(
            "/v1/contacts",
            json={
                "first_name": "Kenji",
                "last_name": needle.capitalize(),
                "emails": [f"kenji.{needle}@example.com"],
                "address": {"country": "BR"},
            },
            headers=admin,
        ),
        201,
    )
    assert "contacts_br.contact_terms" in await copies(db, "br", needle)

    holder = await asyncpg.connect(system.postgres.dsn(system.database("contacts", "br")))
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT 1 FROM contacts WHERE id = $1 FOR UPDATE", contact["id"])
        answer = await api.post(
            "/v1/privacy/requests",
            json={"kind": "erasure", "contact_id": contact["id"]},
            headers=officer,
            timeout=120,
        )
        assert answer.status_code == 503, answer.text
        listed = await ok(api.get("/v1/privacy/requests", headers=officer))
        [request] = [r for r in listed["data"] if r["contact_id"] == contact["id"]]
        assert request["status"] == "in_progress"
        await held.rollback()
    finally:
        await holder.close()

    deadline = asyncio.get_running_loop().time() + 60
    while request["status"] == "in_progress":
        assert asyncio.get_running_loop().time() < deadline, "the erasure stayed in_progress"
        await asyncio.sleep(0.3)
        request = await ok(api.get(f"/v1/privacy/requests/{request['id']}", headers=officer))

    assert request["status"] == "completed", request
    assert await copies(db, "br", needle) == []
