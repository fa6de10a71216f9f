"""Compliance officers, end to end through the gateway against the whole system: data-
subject requests (export, erasure with a signed receipt, legal hold, retry, due dates),
the tamper-evident audit trail, the residency report, and role isolation.

Databases are read and tampered with directly through the `db` fixture, as an auditor
(or an attacker) would.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from crm_api.crm.events.v1 import contacts_pb2 as contact_events
from crm_kit import clock

pytestmark = pytest.mark.asyncio(loop_scope="session")
T = TypeVar("T")
SERVICES = ("contacts", "deals", "tasks", "notifications", "integrations", "reporting")


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, within: float = 30) -> T:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def ok(reply: Awaitable[httpx.Response], status: int = 200) -> Any:
    response = await reply
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


# The first bytes of real files: an attachment's type is read from its content.
PDF_BYTES = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"


class World:
    """A fresh tenant with an admin and an officer in one region, and helpers."""

    def __init__(self, api: httpx.AsyncClient, token_for: Any, region: str, db: Any) -> None:
        self.api = api
        self.db = db
        self.tenant = f"gdpr-{uuid.uuid4().hex[:8]}"
        self.region = region
        self.admin = token_for("boss", "admin", region, tenant=self.tenant)
        self.officer = token_for("dpo-dana", "compliance_officer", region, tenant=self.tenant)
        self.rep = token_for("rep-rita", "sales_rep", region, tenant=self.tenant)
        self.pipeline: dict[str, Any] = {}

    async def setup(self) -> World:
        self.pipeline = await ok(
            self.api.post(
                "/v1/pipelines",
                json={
                    "name": "Sales",
                    "stages": [
                        {"name": "New", "win_probability": 10},
                        {"name": "Won", "win_probability": 100, "kind": "won"},
                        {"name": "Lost", "win_probability": 0, "kind": "lost"},
                    ],
                },
                headers=self.admin,
            ),
            201,
        )
        return self

    async def person(self, first: str, last: str, country: str, email: str) -> dict[str, Any]:
        """A contact with a note, a deal and a task: data in every service."""
        contact = await ok(
            self.api.post(
                "/v1/contacts",
                json={
                    "first_name": first,
                    "last_name": last,
                    "emails": [email],
                    "address": {"city": "Somewhere", "country": country},
                    "owner_id": "rep-rita",
                },
                headers=self.admin,
            ),
            201,
        )
        await ok(
            self.api.post(
                f"/v1/contacts/{contact['id']}/notes",
                json={"kind": "note", "body": f"{first} prefers mornings"},
                headers=self.admin,
            ),
            201,
        )
        deal = await ok(
            self.api.post(
                "/v1/deals",
                json={
                    "title": f"Windows for {last}",
                    "contact_id": contact["id"],
                    "owner_id": "rep-rita",
                    "pipeline_id": self.pipeline["id"],
                    "stage_id": self.pipeline["stages"][0]["id"],
                    "amount": {"amount": "100.00", "currency": "EUR"},
                },
                headers=self.admin,
            ),
            201,
        )
        task = await ok(
            self.api.post(
                "/v1/tasks",
                json={
                    "title": f"Call {last}",
                    "contact_id": contact["id"],
                    "deal_id": deal["id"],
                    "assignee_id": "rep-rita",
                    "due_at": (clock.now() + timedelta(days=400)).isoformat(),
                },
                headers=self.admin,
            ),
            201,
        )

        # Data in every service before a test goes on: once the notifications service has
        # planned the messages about the task (one transaction), nothing about this person
        # is still on its way to be written after an erasure or an export has looked.
        async def planned() -> bool:
            rows = await self.db(
                "notifications",
                self.region,
                "SELECT count(*) FROM deliveries WHERE tenant_id = $1 AND contact_id = $2",
                self.tenant,
                contact["id"],
            )
            return bool(rows[0][0])

        await eventually(planned, f"the messages about the task for {last}")
        return {"contact": contact, "deal": deal, "task": task, "last": last, "email": email}

    async def request(self, kind: str, status: int = 201, **subject: Any) -> dict[str, Any]:
        return dict(
            await ok(
                self.api.post(
                    "/v1/privacy/requests", json={"kind": kind, **subject}, headers=self.officer
                ),
                status,
            )
        )


async def traces(db: Any, region: str, needles: list[str]) -> list[str]:
    """Every table row, in every service's database of `region`, containing a needle."""
    found = []
    for service in SERVICES:
        tables = await db(
            service,
            region,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        )
        for (table,) in tables:
            for needle in needles:
                rows = await db(
                    service,
                    region,
                    f'SELECT count(*) FROM "{table}" t WHERE t::text ILIKE $1',  # noqa: S608 - catalogue names
                    f"%{needle}%",
                )
                if rows[0][0]:
                    found.append(f"{service}.{table}: {needle}")
    return found


# ------------------------------------------------------------------ export


async def test_export_contains_exactly_the_subjects_data_from_every_service(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    world = await World(api, token_for, "eu", db).setup()
    anna = await world.person("Anna", "Exportova", "DE", "anna.exportova@example.com")
    other = await world.person("Otto", "Otherman", "FR", "otto.otherman@example.com")
    payment = await ok(
        api.post(
            f"/v1/deals/{anna['deal']['id']}/payments",
            json={"amount": "40.00", "method": "cash", "note": "Anna paid the deposit"},
            headers=world.admin,
        ),
        201,
    )

    sheet = PDF_BYTES + b"Anna Exportova, 3 windows"
    await ok(
        api.post(
            "/v1/attachments",
            params={"deal_id": anna["deal"]["id"], "filename": "measurement.pdf"},
            content=sheet,
            headers={**world.admin, "Content-Type": "application/pdf"},
        ),
        201,
    )
    # Found by email (the officer does not need to know the id).
    request = await world.request("export", email="Anna.Exportova@example.com")
    assert request["status"] == "completed", request
    assert request["contact_id"] == anna["contact"]["id"]
    assert request["law"] == "GDPR"
    created = datetime.fromisoformat(request["created_at"])
    due = datetime.fromisoformat(request["due_at"])
    assert 28 <= (due - created).days <= 31  # one calendar month

    response = await api.get(f"/v1/privacy/requests/{request['id']}/export", headers=world.officer)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(archive.namelist())
    assert {"subject.json", "contacts/contact.csv", "deals/deal.csv", "tasks/task.csv"} <= names
    document = json.loads(archive.read("subject.json"))
    assert set(document["services"]) == set(SERVICES)
    ids = {
        service: {r["id"] for r in data["records"]}
        for service, data in document["services"].items()
    }
    assert anna["contact"]["id"] in ids["contacts"]
    assert anna["deal"]["id"] in ids["deals"]
    assert anna["task"]["id"] in ids["tasks"]
    assert payment["id"] in ids["deals"]  # payments go with the deal
    # (An attached PDF is bytes, not text: read as text it only needs to show the ids.)
    everything = b"".join(archive.read(name) for name in names).decode(errors="replace")
    assert "prefers mornings" in everything  # the note
    for leak in (other["contact"]["id"], other["deal"]["id"], other["task"]["id"], "Otherman"):
        assert leak not in everything
    rows = list(csv.DictReader(io.StringIO(archive.read("deals/deal.csv").decode())))
    assert [row["id"] for row in rows] == [anna["deal"]["id"]]
    # The file attached to her deal is in the export as it was uploaded.
    (described,) = csv.DictReader(io.StringIO(archive.read("contacts/attachment.csv").decode()))
    assert described["filename"] == "measurement.pdf"
    assert archive.read(f"contacts/attachments/{described['id']}-measurement.pdf") == sheet

    # The download is audited, as an export by the officer.
    audit = await ok(
        api.get("/v1/compliance/audit", params={"kind": "export"}, headers=world.officer)
    )
    assert any(
        r["action"] == "export.privacy_request"
        and r["record_id"] == request["id"]
        and r["actor_id"] == "dpo-dana"
        for r in audit["data"]
    )


# ------------------------------------------------------------------ erasure


async def test_erasure_leaves_no_trace_and_the_signed_receipt_verifies(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    world = await World(api, token_for, "br", db).setup()
    bruna = await world.person("Bruna", "Apagadinha", "BR", "bruna.apagadinha@example.com")
    keep = await world.person("Caio", "Ficasempre", "BR", "caio.ficasempre@example.com")
    contract = await ok(
        api.post(
            "/v1/attachments",
            params={"contact_id": bruna["contact"]["id"]},
            files={"file": ("Apagadinha-contrato.pdf", PDF_BYTES, "application/pdf")},
            headers=world.admin,
        ),
        201,
    )
    needles = ["Apagadinha", "bruna.apagadinha@example.com", bruna["contact"]["id"]]
    assert await traces(db, "br", needles[:2])  # the scan does see the data beforehand

    request = await world.request("erasure", contact_id=bruna["contact"]["id"])
    assert request["status"] == "completed", request
    assert request["law"] == "LGPD"
    due = datetime.fromisoformat(request["due_at"]) - datetime.fromisoformat(request["created_at"])
    assert due == timedelta(days=15)

    # No trace of the person in any table of any service (ids kept only where the
    # request and its receipt must name them, and in the id-only audit trail).
    found = await traces(db, "br", needles[:2])
    assert found == [], found
    gone = await api.get(f"/v1/attachments/{contract['id']}", headers=world.admin)
    assert gone.status_code == 404  # the signed contract went with her
    for service, table in (("contacts", "contacts"), ("deals", "deals"), ("tasks", "tasks")):
        rows = await db(
            service,
            "br",
            f"SELECT count(*) FROM {table} t WHERE tenant_id = $1 AND t::text LIKE $2",  # noqa: S608
            world.tenant,
            f"%{bruna['contact']['id']}%",
        )
        assert rows[0][0] == 0, (service, table)
    # The other person is untouched.
    assert await traces(db, "br", ["Ficasempre"])
    gone = await api.get(f"/v1/contacts/{bruna['contact']['id']}", headers=world.admin)
    assert gone.status_code == 404
    await ok(api.get(f"/v1/contacts/{keep['contact']['id']}", headers=world.admin))

    receipt = json.loads(request["receipt"])
    assert receipt["contact_id"] == bruna["contact"]["id"]
    per_service = {s["service"]: s for s in receipt["services"]}
    assert set(per_service) == set(SERVICES)
    assert all(s["verification"] == "empty" for s in per_service.values())
    assert per_service["deals"]["erased"] and per_service["tasks"]["erased"]
    assert per_service["contacts"]["erased"]["contact"] == 1

    verified = await ok(
        api.post(
            "/v1/privacy/receipts/verify",
            json={"receipt": request["receipt"], "signature": request["receipt_signature"]},
            headers=world.officer,
        )
    )
    assert verified["valid"] is True
    tampered = request["receipt"].replace('"verification":"empty"', '"verification":"emptY"', 1)
    assert tampered != request["receipt"]
    refused = await ok(
        api.post(
            "/v1/privacy/receipts/verify",
            json={"receipt": tampered, "signature": request["receipt_signature"]},
            headers=world.officer,
        )
    )
    assert refused["valid"] is False and "altered" in refused["reason"]


async def web_lead_won(
    world: World,
    api: httpx.AsyncClient,
    token_for: Any,
    first: str,
    last: str,
    email: str,
    phone: str = "0151 2233 4455",
) -> dict[str, Any]:
    """The issue's day: a web form lead (its name lands in the deal title), the deal won,
    the owner's manager told in the inbox with the title quoting the name."""
    for user, entry in {
        "rep-olga": {"team": "install", "manager_id": "mgr-max"},
        "mgr-max": {"team": "install"},
    }.items():
        await ok(api.put(f"/v1/users/{user}", json=entry, headers=world.admin))
    stages = {s["name"]: s["id"] for s in world.pipeline["stages"]}
    form = await ok(
        api.post(
            "/v1/forms",
            json={
                "name": "Quote request",
                "field_mapping": {"name": "name", "email": "email", "phone": "phone"},
                "pipeline_id": world.pipeline["id"],
                "stage_id": stages["New"],
                "owner": "user:rep-olga",
                "default_country": "DE",
            },
            headers=world.admin,
        ),
        201,
    )
    reply = await ok(
        api.post(
            f"/public/forms/{form['key']}",
            json={"name": f"{first} {last}", "email": email, "phone": phone},
        ),
        201,
    )
    submission = await ok(api.get(f"/v1/forms/submissions/{reply['id']}", headers=world.admin))
    deal = await ok(api.get(f"/v1/deals/{submission['deal_id']}", headers=world.admin))
    assert f"{first} {last}" in deal["title"]
    await ok(
        api.post(
            f"/v1/deals/{deal['id']}/stage", json={"stage_id": stages["Won"]}, headers=world.admin
        )
    )
    manager = token_for("mgr-max", "manager", world.region, tenant=world.tenant, team="install")

    async def told() -> list[dict[str, Any]] | None:
        inbox = await ok(api.get("/v1/notifications", headers=manager))
        return [n for n in inbox["data"] if n["kind"] == "deal.won"] or None

    [won] = await eventually(told, "the manager's deal.won inbox item")
    assert f"{first} {last}" in json.dumps(won, ensure_ascii=False)
    return {"contact_id": submission["contact_id"], "deal": deal, "manager": manager}


async def test_erasure_removes_every_copy_of_the_name_and_the_receipt_says_so(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    world = await World(api, token_for, "eu", db).setup()
    first, last = "Lena", f"Kuckuck{uuid.uuid4().hex[:6]}"
    email = f"lena.{last.lower()}@example.org"
    # Her own number: the scan below reads every row of the region, other tests' too.
    subscriber = str(random.randrange(10_000_000, 100_000_000))
    lead = await web_lead_won(world, api, token_for, first, last, email, f"0151 {subscriber}")
    contact_id = lead["contact_id"]
    # More copies nobody linked to her: a task on the deal titled with her name, and a
    # colleague's note on another client quoting her email and phone.
    await ok(
        api.post(
            "/v1/tasks",
            json={
                "title": f"Send {first} {last} the warranty",
                "deal_id": lead["deal"]["id"],
                "assignee_id": "rep-olga",
                "due_at": (clock.now() + timedelta(days=3)).isoformat(),
            },
            headers=world.admin,
        ),
        201,
    )
    other = await world.person("Otto", "Nachbar", "DE", f"otto.{last.lower()}@example.net")
    await ok(
        api.post(
            f"/v1/contacts/{other['contact']['id']}/notes",
            json={
                "kind": "note",
                "body": f"Neighbour of {email}, call +49 151 {subscriber[:4]} {subscriber[4:]}",
            },
            headers=world.admin,
        ),
        201,
    )
    # A namesake: another person with the same name keeps it (only her own row does).
    namesake = await ok(
        api.post(
            "/v1/contacts",
            json={"first_name": first, "last_name": last, "address": {"country": "AT"}},
            headers=world.admin,
        ),
        201,
    )
    needles = [f"{first} {last}", email, f"49151{subscriber}", f"151{subscriber}"]
    before = await traces(db, "eu", needles)
    assert any(t.startswith("notifications.user_notifications") for t in before), before
    assert any(t.startswith("tasks.tasks") for t in before), before

    request = await world.request("erasure", contact_id=contact_id)
    assert request["status"] == "completed", request["error"]

    # Nowhere, in no table of any service of the region, except the namesake's own row.
    assert await traces(db, "eu", needles[1:]) == []
    assert await traces(db, "eu", needles[:1]) == [f"contacts.contacts: {first} {last}"]
    kept = await ok(api.get(f"/v1/contacts/{namesake['id']}", headers=world.admin))
    assert (kept["first_name"], kept["last_name"]) == (first, last)
    inbox = await ok(api.get("/v1/notifications", headers=lead["manager"]))
    assert last not in json.dumps(inbox, ensure_ascii=False)
    assert [n["title"] for n in inbox["data"] if "[erased]" in n["title"]]
    note = await ok(api.get(f"/v1/contacts/{other['contact']['id']}/notes", headers=world.admin))
    assert [n["body"] for n in note["data"]][-1] == "Neighbour of [erased], call [erased]"

    receipt = json.loads(request["receipt"])
    assert receipt["identifiers_searched"] == {"full_name": 3, "email": 1, "phone": 2}
    per_service = {s["service"]: s for s in receipt["services"]}
    assert set(per_service) == set(SERVICES)
    assert all(
        s["verification"] == "empty" and s["copies_remaining"] == [] for s in per_service.values()
    ), per_service
    assert any(
        k.startswith("user_notifications.") for k in per_service["notifications"]["copies_erased"]
    )
    assert "tasks.title" in per_service["tasks"]["copies_erased"]
    assert "timeline_entries.body" in per_service["contacts"]["copies_erased"]


async def test_a_copy_that_cannot_be_erased_is_reported_by_the_signed_receipt(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    world = await World(api, token_for, "eu", db).setup()
    first, last = "Ana", f"Resto{uuid.uuid4().hex[:6]}"
    email = f"ana.{last.lower()}@example.org"
    lead = await web_lead_won(world, api, token_for, first, last, email)
    # A copy somewhere nothing links to the person, in a table erasure must not change
    # (the hash-chained audit trail of the notifications service).
    await db(
        "notifications",
        "eu",
        "INSERT INTO audit_log (tenant_id, actor_id, actor_home_region, region, action, "
        "record_id, legal_basis) VALUES ($1, 'someone', 'eu', 'eu', 'note', 'x', $2)",
        world.tenant,
        f"asked by {email}",
    )

    request = await world.request("erasure", contact_id=lead["contact_id"])
    assert request["status"] == "failed", request
    assert "notifications still holds 1 copy(ies) in audit_log.legal_basis" in request["error"]
    receipt = json.loads(request["receipt"])
    per_service = {s["service"]: s for s in receipt["services"]}
    assert per_service["notifications"]["verification"] == "not empty"
    assert per_service["notifications"]["copies_remaining"] == [
        {"table": "audit_log", "column": "legal_basis", "rows": 1}
    ]
    # Everything else did go, and says so.
    assert all(s["verification"] == "empty" for n, s in per_service.items() if n != "notifications")
    verified = await ok(
        api.post(
            "/v1/privacy/receipts/verify",
            json={"receipt": request["receipt"], "signature": request["receipt_signature"]},
            headers=world.officer,
        )
    )
    assert verified["valid"] is True


async def test_a_legal_hold_blocks_erasure_with_its_reason(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    world = await World(api, token_for, "eu", db).setup()
    held = await world.person("Hugo", "Haltbar", "AT", "hugo.haltbar@example.com")
    contact_id = held["contact"]["id"]
    await ok(
        api.put(
            f"/v1/privacy/legal-holds/{contact_id}",
            json={"reason": "litigation 4 O 123/26"},
            headers=world.officer,
        )
    )
    request = await world.request("erasure", contact_id=contact_id)
    assert request["status"] == "failed"
    assert "legal hold" in request["error"] and "litigation 4 O 123/26" in request["error"]
    await ok(api.get(f"/v1/contacts/{contact_id}", headers=world.admin))
    await ok(api.get(f"/v1/deals/{held['deal']['id']}", headers=world.admin))

    # Once the hold is lifted, the same request can be completed.
    lifted = await api.delete(f"/v1/privacy/legal-holds/{contact_id}", headers=world.officer)
    assert lifted.status_code == 204
    retried = await ok(
        api.post(f"/v1/privacy/requests/{request['id']}/retry", headers=world.officer)
    )
    assert retried["status"] == "completed" and retried["attempts"] == 2


async def test_a_failing_service_leaves_the_request_failed_and_retryable(
    system: Any, api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    world = await World(api, token_for, "us", db).setup()
    sam = await world.person("Sam", "Retryson", "US", "sam.retryson@example.com")
    tasks_us = next(p for p in system.processes if p.name == "tasks-us")
    tasks_us.stop()
    try:
        request = await world.request("erasure", contact_id=sam["contact"]["id"])
    finally:
        tasks_us.start(system.log_dir)
    assert request["status"] == "failed", request
    assert request["error"].startswith("tasks: "), request["error"]
    # Never silently done: the person is still there, in contacts and in tasks.
    await ok(api.get(f"/v1/contacts/{sam['contact']['id']}", headers=world.admin))
    await eventually(lambda: asyncio.to_thread(tasks_us.healthy), "tasks-us back")
    listed = await ok(api.get("/v1/privacy/requests?status=failed", headers=world.officer))
    assert [r["id"] for r in listed["data"]] == [request["id"]]

    retried = await ok(
        api.post(f"/v1/privacy/requests/{request['id']}/retry", headers=world.officer)
    )
    assert retried["status"] == "completed", retried["error"]
    assert retried["error"] == "" and retried["receipt"]
    gone = await api.get(f"/v1/tasks/{sam['task']['id']}", headers=world.admin)
    assert gone.status_code == 404


async def test_rectification_corrects_the_named_fields(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    world = await World(api, token_for, "eu", db).setup()
    rita = await world.person("Rita", "Wrongname", "IT", "rita.w@example.com")
    request = await world.request(
        "rectification", contact_id=rita["contact"]["id"], changes={"last_name": "Rightname"}
    )
    assert request["status"] == "completed", request
    assert request["rectified_fields"] == ["last_name"]
    contact = await ok(api.get(f"/v1/contacts/{rita['contact']['id']}", headers=world.admin))
    assert contact["last_name"] == "Rightname"


async def test_a_reminder_fires_before_the_due_date(
    api: httpx.AsyncClient, token_for: Any, stream_events: Any, move_clock: Any, db: Any
) -> None:
    world = await World(api, token_for, "br", db).setup()
    lia = await world.person("Lia", "Lembrete", "BR", "lia.lembrete@example.com")
    await ok(
        api.put(
            f"/v1/privacy/legal-holds/{lia['contact']['id']}",
            json={"reason": "tax audit"},
            headers=world.officer,
        )
    )
    # Blocked by the hold, the request stays open and approaches its LGPD due date.
    request = await world.request("erasure", contact_id=lia["contact"]["id"])
    assert request["status"] == "failed" and request["reminder_sent"] is False
    assert datetime.fromisoformat(request["reminder_at"]) == datetime.fromisoformat(
        request["due_at"]
    ) - timedelta(days=3)
    move_clock(timedelta(days=12, hours=1))

    async def reminded() -> dict[str, Any] | None:
        current = await ok(api.get(f"/v1/privacy/requests/{request['id']}", headers=world.officer))
        return current if current["reminder_sent"] else None

    await eventually(reminded, "the reminder")
    envelopes = await stream_events("br", "contacts.privacy_request.due_soon")
    payloads = []
    for envelope in envelopes:
        if envelope.tenant_id == world.tenant:
            event = contact_events.PrivacyRequestDueSoon()
            envelope.payload.Unpack(event)
            payloads.append(event)
    assert [(e.request_id, e.officer_id) for e in payloads] == [(request["id"], "dpo-dana")]

    async def officer_task() -> list[dict[str, Any]]:
        tasks = await ok(api.get("/v1/tasks?assignee_id=dpo-dana&region=br", headers=world.admin))
        return [t for t in tasks["data"] if request["id"] in t["title"]]

    (task,) = await eventually(officer_task, "the officer's reminder task")
    assert task["priority"] == "high"
    assert datetime.fromisoformat(task["due_at"]) == datetime.fromisoformat(request["due_at"])


# ------------------------------------------------------------------ audit


async def test_the_audit_trail_is_queryable_and_an_altered_record_is_detected(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    world = await World(api, token_for, "eu", db).setup()
    eve = await world.person("Eve", "Audita", "DE", "eve.audita@example.com")
    await world.request("export", contact_id=eve["contact"]["id"])
    await world.request("export", contact_id=eve["contact"]["id"])
    for _ in range(3):  # the same token logs in once
        await ok(api.get("/v1/privacy/requests", headers=world.officer))

    trail = await ok(
        api.get(
            "/v1/compliance/audit",
            params={"kind": "privacy_request", "actor": "dpo-dana"},
            headers=world.officer,
        )
    )
    actions = [r["action"] for r in trail["data"]]
    assert actions.count("privacy_request.export") == 2
    assert actions.count("privacy_request.complete") == 2
    assert all(r["kind"] == "privacy_request" for r in trail["data"])
    logins = await ok(
        api.get(
            "/v1/compliance/audit",
            params={"kind": "elevated_login", "actor": "dpo-dana"},
            headers=world.officer,
        )
    )
    assert len(logins["data"]) == 1
    assert logins["data"][0]["legal_basis"] == "compliance_officer"
    future = (clock.now() + timedelta(days=3650)).isoformat()
    empty = await ok(
        api.get("/v1/compliance/audit", params={"since": future}, headers=world.officer)
    )
    assert empty["data"] == []

    before = await ok(api.get("/v1/compliance/audit/verify", headers=world.officer))
    assert before["intact"] is True
    assert sum(c["records_checked"] for c in before["chains"]) >= 6

    # Someone with database access rewrites who did something...
    rows = await db(
        "contacts",
        "eu",
        "SELECT id FROM audit_log WHERE tenant_id = $1 ORDER BY id",
        world.tenant,
    )
    altered, deleted = rows[1]["id"], rows[3]["id"]
    await db("contacts", "eu", "UPDATE audit_log SET actor_id = 'nobody' WHERE id = $1", altered)
    # ...and removes another record.
    await db("contacts", "eu", "DELETE FROM audit_log WHERE id = $1", deleted)
    after = await ok(api.get("/v1/compliance/audit/verify", headers=world.officer))
    assert after["intact"] is False
    broken = next(c for c in after["chains"] if c["service"] == "contacts")
    problems = {(p["seq"], p["problem"]) for p in broken["problems"]}
    assert (altered, "altered") in problems
    assert any(problem == "broken_link" and seq > deleted for seq, problem in problems)
    assert all(c["intact"] for c in after["chains"] if c["service"] != "contacts")


# ------------------------------------------------------------------ residency


async def test_the_residency_report_shows_a_planted_misplaced_record(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    world = await World(api, token_for, "eu", db).setup()
    await world.person("Ines", "Inplace", "DE", "ines@example.com")
    moved = await world.person("Mario", "Misplaced", "PT", "mario@example.com")
    clean = await ok(api.get("/v1/compliance/residency", headers=world.officer))
    assert clean["violations"] == []
    eu = next(r for r in clean["regions"] if r["region"] == "eu")
    assert eu["subjects"] == 2
    assert eu["services"]["deals"]["deal"] == {"subjects": 2, "records": 2}

    # A Brazilian's record lands in the eu database, bypassing the services.
    await db(
        "contacts",
        "eu",
        "UPDATE contacts SET country = 'BR' WHERE id = $1",
        moved["contact"]["id"],
    )
    report = await ok(api.get("/v1/compliance/residency", headers=world.officer))
    assert report["violations"] == [
        {
            "service": "contacts",
            "kind": "contact",
            "stored_in": "eu",
            "required_region": "br",
            "subjects": 1,
            "records": 1,
        }
    ]
    as_csv = await api.get("/v1/compliance/residency?format=csv", headers=world.officer)
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "eu,contacts,contact,br,1" in as_csv.text
    as_pdf = await api.get("/v1/compliance/residency?format=pdf", headers=world.officer)
    assert as_pdf.headers["content-type"] == "application/pdf"
    assert as_pdf.content.startswith(b"%PDF")


# ------------------------------------------------------------------ roles


async def test_a_sales_rep_gets_404_on_every_compliance_endpoint(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    world = World(api, token_for, "eu", db)
    some_id = "eu_01JD0000000000000000000000"
    calls = [
        ("POST", "/v1/privacy/requests", {"kind": "export", "contact_id": some_id}),
        ("GET", "/v1/privacy/requests", None),
        ("GET", f"/v1/privacy/requests/{some_id}", None),
        ("POST", f"/v1/privacy/requests/{some_id}/retry", None),
        ("GET", f"/v1/privacy/requests/{some_id}/export", None),
        ("POST", "/v1/privacy/receipts/verify", {"receipt": "{}", "signature": ""}),
        ("PUT", f"/v1/privacy/legal-holds/{some_id}", {"reason": "x"}),
        ("DELETE", f"/v1/privacy/legal-holds/{some_id}", None),
        ("GET", "/v1/compliance/audit", None),
        ("GET", "/v1/compliance/audit/verify", None),
        ("GET", "/v1/compliance/residency", None),
        ("GET", "/v1/compliance/residency?format=pdf", None),
        ("GET", "/v1/compliance/policies", None),
        ("PUT", "/v1/compliance/policies", {"default_region": "us"}),
        ("GET", "/v1/compliance/policies/history", None),
        ("GET", "/v1/compliance/retention/runs", None),
        ("POST", "/v1/compliance/relocations", {"contact_id": some_id, "country": "BR"}),
    ]
    for method, path, body in calls:
        response = await api.request(method, path, json=body, headers=world.rep)
        assert response.status_code == 404, (method, path, response.status_code)


# ------------------------------------------------------------------ policies and retention


async def test_policies_are_versioned_with_who_changed_what(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    world = World(api, token_for, "eu", db)
    await ok(
        api.put("/v1/compliance/policies", json={"default_region": "us"}, headers=world.officer)
    )
    await ok(
        api.put(
            "/v1/compliance/policies",
            json={
                "default_region": "us",
                "residency_overrides": {"CH": "eu"},
                "access_grants": [
                    {"from_region": "eu", "to_region": "us", "legal_basis": "SCC 2021/914"}
                ],
                "retention_rules": [{"rule": "anonymize_lost_deals", "after_months": 60}],
            },
            headers=world.admin,
        )
    )
    bad = await api.put(
        "/v1/compliance/policies",
        json={"default_region": "us", "retention_rules": [{"rule": "forget", "after_months": 1}]},
        headers=world.officer,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "retention_rules[0].rule"

    history = await ok(api.get("/v1/compliance/policies/history", headers=world.officer))
    assert [v["version"] for v in history["data"]] == [2, 1]
    latest = history["data"][0]
    assert latest["changed_by"] == "boss"
    assert latest["changes"] == [
        "residency CH: - -> eu",
        "+ access grant eu -> us (SCC 2021/914)",
        "retention anonymize_lost_deals: - -> 60 months",
    ]
    assert latest["policy"]["residency_overrides"] == {"CH": "eu"}
    assert history["data"][1]["changed_by"] == "dpo-dana"
    audit = await ok(
        api.get("/v1/compliance/audit", params={"kind": "policy_change"}, headers=world.officer)
    )
    # Every region keeps a copy and audits its change in its own trail; the officer now
    # sees eu and, through the new grant, us.
    assert sorted((r["region"], r["record_id"], r["actor_id"]) for r in audit["data"]) == [
        (region, f"policy:v{v}", actor)
        for region in ("eu", "us")
        for v, actor in ((1, "dpo-dana"), (2, "boss"))
    ]


async def test_retention_deletes_exactly_the_inactive_leads_and_anonymizes_lost_deals(
    api: httpx.AsyncClient, token_for: Any, system: Any, db: Any, move_clock: Any
) -> None:
    world = await World(api, token_for, "eu", db).setup()
    idle = await world.person("Ida", "Idlelead", "DE", "ida.idle@example.com")
    busy = await world.person("Bea", "Busylead", "DE", "bea.busy@example.com")
    client = await world.person("Carl", "Customer", "DE", "carl.customer@example.com")
    await ok(
        api.patch(
            f"/v1/contacts/{client['contact']['id']}",
            json={"lifecycle_stage": "customer"},
            headers=world.admin,
        )
    )
    lost_stage = next(s["id"] for s in world.pipeline["stages"] if s["name"] == "Lost")
    await ok(
        api.post(
            f"/v1/deals/{client['deal']['id']}/stage",
            json={"stage_id": lost_stage, "lost_reason": "price"},
            headers=world.admin,
        )
    )
    open_deal = await ok(
        api.post(
            "/v1/deals",
            json={
                "title": "Second order",
                "contact_id": client["contact"]["id"],
                "owner_id": "rep-rita",
                "pipeline_id": world.pipeline["id"],
                "stage_id": world.pipeline["stages"][0]["id"],
            },
            headers=world.admin,
        ),
        201,
    )
    # Bea has activity in the period the rule looks at (a call logged for that time).
    later = clock.now() + timedelta(days=200)
    await ok(
        api.post(
            f"/v1/contacts/{busy['contact']['id']}/notes",
            json={"kind": "call", "body": "called back", "occurred_at": later.isoformat()},
            headers=world.admin,
        ),
        201,
    )
    await ok(
        api.put(
            "/v1/compliance/policies",
            json={
                "default_region": "us",
                "retention_rules": [
                    {"rule": "delete_inactive_leads", "after_months": 6},
                    {"rule": "anonymize_lost_deals", "after_months": 6},
                ],
            },
            headers=world.officer,
        )
    )
    move_clock(timedelta(days=7 * 31))
    today = clock.now().date().isoformat()

    async def todays_runs() -> dict[str, list[str]] | None:
        # Every region's scheduler runs each rule over its own data, under the same run id;
        # what the tenant's rules did is the union over the regions.
        runs = await ok(api.get("/v1/compliance/retention/runs", headers=world.officer))
        found: dict[str, list[str]] = {}
        for run in runs["data"]:
            if run["id"].endswith(today):
                found.setdefault(run["rule"], []).extend(run.get("record_ids", []))
        done = found.get("delete_inactive_leads") and found.get("anonymize_lost_deals")
        return found if done else None

    runs = await eventually(todays_runs, "today's retention runs", within=60)
    assert runs["delete_inactive_leads"] == [idle["contact"]["id"]]
    assert runs["anonymize_lost_deals"] == [client["deal"]["id"]]

    assert (
        await api.get(f"/v1/contacts/{idle['contact']['id']}", headers=world.admin)
    ).status_code == 404
    # deals keeps the erased person's deal for the statistics, without the person.
    kept = await ok(api.get(f"/v1/deals/{idle['deal']['id']}", headers=world.admin))
    assert kept["contact_id"] == "" and "Idlelead" not in json.dumps(kept)
    assert await traces(db, "eu", ["Idlelead"]) == []
    await ok(api.get(f"/v1/contacts/{busy['contact']['id']}", headers=world.admin))
    await ok(api.get(f"/v1/contacts/{client['contact']['id']}", headers=world.admin))
    anonymized = await ok(api.get(f"/v1/deals/{client['deal']['id']}", headers=world.admin))
    assert anonymized["title"] == "Anonymized deal" and anonymized["contact_id"] == ""
    assert anonymized["status"] == "lost"
    untouched = await ok(api.get(f"/v1/deals/{open_deal['id']}", headers=world.admin))
    assert untouched["contact_id"] == client["contact"]["id"]
    audit = await ok(
        api.get("/v1/compliance/audit", params={"kind": "retention"}, headers=world.officer)
    )
    assert {r["action"] for r in audit["data"]} >= {
        "retention.delete_inactive_leads",
        "retention.anonymize_lost_deals",
    }


# ------------------------------------------------------------------ relocation


async def test_relocation_from_br_to_eu_moves_everything_and_the_old_id_resolves(
    api: httpx.AsyncClient, token_for: Any, db: Any
) -> None:
    world = await World(api, token_for, "br", db).setup()
    await ok(
        api.put(
            "/v1/compliance/policies",
            json={
                "default_region": "us",
                "access_grants": [
                    {"from_region": "br", "to_region": "eu", "legal_basis": "data subject moved"}
                ],
            },
            headers=world.officer,
        )
    )
    luis = await world.person("Luis", "Mudanca", "BR", "luis.mudanca@example.com")
    stay = await world.person("Rosa", "Ficaaqui", "BR", "rosa.ficaaqui@example.com")
    old_id = luis["contact"]["id"]
    await ok(
        api.post(
            f"/v1/deals/{luis['deal']['id']}/payments",
            json={"amount": "30.00", "method": "pix", "note": "Mudanca paid by Pix"},
            headers=world.admin,
        ),
        201,
    )
    await ok(
        api.post(
            f"/v1/deals/{luis['deal']['id']}/stage",
            json={"stage_id": world.pipeline["stages"][1]["id"]},
            headers=world.admin,
        )
    )
    photo = JPEG_BYTES + b"window photo"
    await ok(
        api.post(
            "/v1/attachments",
            params={"deal_id": luis["deal"]["id"]},
            files={"file": ("window.jpg", photo, "image/jpeg")},
            headers=world.admin,
        ),
        201,
    )
    before = {
        table: len(await db(svc, "br", f"SELECT 1 FROM {table} WHERE {col} = $1", value))  # noqa: S608
        for svc, table, col, value in (
            ("contacts", "timeline_entries", "contact_id", old_id),
            ("deals", "stage_changes", "deal_id", luis["deal"]["id"]),
            ("tasks", "tasks", "contact_id", old_id),
        )
    }
    assert all(before.values()), before

    moved = await ok(
        api.post(
            "/v1/compliance/relocations",
            json={"contact_id": old_id, "country": "Portugal"},
            headers=world.officer,
        )
    )
    new_id = moved["new_contact_id"]
    assert moved["from_region"] == "br" and moved["to_region"] == "eu"
    assert new_id.startswith("eu_")

    # Only in eu now: nothing about Luis is left in any br database; Rosa stays.
    assert await traces(db, "br", ["Mudanca", "luis.mudanca@example.com"]) == []
    assert await traces(db, "br", ["Ficaaqui"])
    found = await traces(db, "eu", ["Mudanca"])
    assert {f.split(":")[0] for f in found} >= {"contacts.contacts", "deals.deals", "tasks.tasks"}

    # Nothing lost: the person, the note, the deal with its stage history, the task.
    old_link = await api.get(f"/v1/contacts/{old_id}", headers=world.officer)
    assert old_link.status_code == 308
    assert old_link.headers["location"] == f"/v1/contacts/{new_id}"
    person = await ok(api.get(f"/v1/contacts/{new_id}", headers=world.officer))
    assert person["emails"] == ["luis.mudanca@example.com"]
    assert person["address"]["country"] == "PT" and person["last_name"] == "Mudanca"
    notes = await ok(api.get(f"/v1/contacts/{new_id}/notes", headers=world.officer))
    assert [n["body"] for n in notes["data"] if n["kind"] == "note"] == ["Luis prefers mornings"]
    deals = await db("deals", "eu", "SELECT id, title FROM deals WHERE contact_id = $1", new_id)
    assert [d["title"] for d in deals] == ["Windows for Mudanca"]
    new_deal = deals[0]["id"]
    history = await db("deals", "eu", "SELECT 1 FROM stage_changes WHERE deal_id = $1", new_deal)
    assert len(history) == before["stage_changes"]
    moved_deal = await ok(api.get(f"/v1/deals/{new_deal}", headers=world.officer))
    assert (moved_deal["paid"]["amount"], moved_deal["balance_due"]["amount"]) == ("30.00", "70.00")
    payments = await ok(api.get(f"/v1/deals/{new_deal}/payments", headers=world.officer))
    assert [(p["id"][:3], p["note"]) for p in payments["data"]] == [("eu_", "Mudanca paid by Pix")]
    tasks = await db(
        "tasks", "eu", "SELECT title, deal_id FROM tasks WHERE contact_id = $1", new_id
    )
    assert [(t["title"], t["deal_id"]) for t in tasks] == [("Call Mudanca", new_deal)]
    # The photo of the window moved with him, still on his (new) deal.
    (file,) = (await ok(api.get(f"/v1/deals/{new_deal}/attachments", headers=world.officer)))[
        "data"
    ]
    assert file["id"].startswith("eu_") and file["contact_id"] == new_id
    assert file["deal_id"] == new_deal and file["filename"] == "window.jpg"
    download = await api.get(f"/v1/attachments/{file['id']}", headers=world.officer)
    assert download.status_code == 200 and download.content == photo
    listed = [n["attachment_id"] for n in notes["data"] if n["kind"] == "attachment"]
    assert listed == [file["id"]]  # the timeline names the moved file by its new id
    assert stay["contact"]["id"].startswith("br_")

    # The move is audited in both regions, and residency holds.
    audit = await ok(
        api.get("/v1/compliance/audit", params={"kind": "relocation"}, headers=world.officer)
    )
    steps = {(r["region"], r["action"]) for r in audit["data"]}
    assert {
        ("br", "relocation.copy_out"),
        ("eu", "relocation.copy_in"),
        ("br", "relocation.remove"),
    } <= steps
    report = await ok(api.get("/v1/compliance/residency", headers=world.officer))
    assert report["violations"] == []
