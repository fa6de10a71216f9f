"""The authorisation matrix: who may see and change whose records, generated from the
gateway's OpenAPI document.

One tenant works in `eu` with two teams: rep-n1 and rep-n2 in team north (managed by
mgr-n), rep-s1 in team south. Each rep owns one record of every kind (a contact, a
company, a deal with a payment and a generated document, a task, a file); another
tenant and the same tenant's `br` region hold the same kinds. Then every operation of
the OpenAPI document that names one such record in its path is called by a caller of
each role (sales rep rep-n1, manager mgr-n, admin, compliance officer, an API key of
the integration role) on each record:

- a record of the caller's own tenant and region that the caller may see (a rep their
  own, a manager their team's, the others the whole tenant): reads answer 2xx;
- one they may not see (another owner, another team, another tenant): 404 for reads,
  and a write answers exactly as the same write on an id that does not exist (so
  nobody learns the record exists) and changes nothing;
- one in a region the tenant's policy does not grant the caller: 403.

Every listing of the document (no record in the path) is called by each caller too,
and with `region=br` where it takes one (403). No answer anywhere (a body, a problem,
a CSV export) may carry the id, email or name of a record the caller may not see.
The number of cells and of leaks is printed; any leak fails the test.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from crm_kit.ids import new_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

CALLERS = ("sales_rep", "manager", "admin", "compliance_officer", "integration")
OWNERS = ("rep-n1", "rep-n2", "rep-s1")  # the caller rep is rep-n1
TEAMS = {"rep-n1": "north", "rep-n2": "north", "rep-s1": "south", "mgr-n": "north"}
# Which seeded record a path parameter names.
PARAMS = {
    "contact_id": "contact",
    "company_id": "company",
    "deal_id": "deal",
    "task_id": "task",
    "attachment_id": "attachment",
    "payment_id": "payment",
    "document_id": "document",
    # The tenant's own objects, which no one owns (the matrix checks tenant isolation).
    "pipeline_id": "pipeline",
    "rule_id": "automation",
    "form_id": "form",
    "webhook_id": "webhook",
    "request_id": "privacy_request",
    "import_id": "import",
}
TENANT_KINDS = {"pipeline", "automation", "form", "webhook", "privacy_request", "import"}
# A write that would be accepted if the caller could reach the record, so that a
# refusal comes from who may see it, not from the body.
WRITES: dict[str, Any] = {
    "PATCH /v1/contacts/{contact_id}": {"first_name": "Hijacked"},
    "POST /v1/contacts/{contact_id}/notes": {"kind": "note", "body": "Hijacked"},
    "POST /v1/contacts/{contact_id}/consents": {
        "purpose": "marketing_email",
        "lawful_basis": "consent",
        "status": "granted",
        "source": "web_form",
    },
    "PATCH /v1/companies/{company_id}": {"name": "Hijacked"},
    "PATCH /v1/deals/{deal_id}": {"title": "Hijacked"},
    "POST /v1/deals/{deal_id}/payments": {"amount": "1.00", "method": "cash"},
    "POST /v1/deals/{deal_id}/payments/{payment_id}/reverse": {"reason": "Hijacked"},
    "POST /v1/deals/{deal_id}/documents": {"template_key": "matrix"},
    "PATCH /v1/tasks/{task_id}": {"title": "Hijacked"},
    "POST /v1/tasks/{task_id}/complete": {},
    "PUT /v1/privacy/legal-holds/{contact_id}": {"reason": "Hijacked"},
}
# Operations that never answer in the matrix's terms (a side effect on another system).
NOT_IN_MATRIX = {
    "POST /v1/contacts/{contact_id}/call",  # needs a telephony provider
}
# Operations only compliance officers and admins may use: 404 for every other role,
# whatever the record (README, "A compliance officer's walkthrough").
COMPLIANCE_ONLY = ("/v1/privacy/",)
ELEVATED = ("admin", "compliance_officer")


@dataclass
class Record:
    kind: str
    id: str
    owner: str  # rep-n1 …, or "other-tenant" / "other-region"
    markers: set[str] = field(default_factory=set)


@dataclass
class Matrix:
    cells: int = 0
    leaks: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    skipped: set[str] = field(default_factory=set)


def marker(kind: str) -> str:
    """A name no other record, test or seed will ever contain."""
    return f"Mx{kind[:3]}{uuid.uuid4().hex[:12]}"


async def ok(reply: Any, status: int = 201) -> Any:
    answer = await reply
    assert answer.status_code == status, (answer.request.url, answer.status_code, answer.text)
    return answer.json() if answer.content else None


async def seed(
    api: httpx.AsyncClient, headers: dict[str, str], owner: str, country: str, stage_id: str
) -> dict[str, Record]:
    """One record of each kind, created by its owner as a user would."""
    first, email, company, title, task, note, filename = (
        marker("contact"),
        f"{marker('email')}@matrix.example".lower(),
        marker("company"),
        marker("deal"),
        marker("task"),
        marker("note"),
        f"{marker('file')}.txt",
    )
    contact = await ok(
        api.post(
            "/v1/contacts",
            json={
                "first_name": first,
                "last_name": "Matrix",
                "emails": [email],
                "address": {"country": country},
            },
            headers=headers,
        )
    )
    org = await ok(
        api.post(
            "/v1/companies",
            json={"name": company, "address": {"country": country}},
            headers=headers,
        )
    )
    deal = await ok(
        api.post(
            "/v1/deals",
            json={
                "title": title,
                "contact_id": contact["id"],
                "amount": {"amount": "100.00", "currency": "EUR"},
                **({"stage_id": stage_id} if stage_id else {}),
            },
            headers=headers,
        )
    )
    todo = await ok(
        api.post(
            "/v1/tasks",
            json={"title": task, "deal_id": deal["id"], "contact_id": contact["id"]},
            headers=headers,
        )
    )
    await ok(api.post(f"/v1/contacts/{contact['id']}/notes", json={"body": note}, headers=headers))
    payment = await ok(
        api.post(
            f"/v1/deals/{deal['id']}/payments",
            json={"amount": "10.00", "method": "cash"},
            headers=headers,
        )
    )
    document = await ok(
        api.post(
            f"/v1/deals/{deal['id']}/documents", json={"template_key": "matrix"}, headers=headers
        )
    )
    attachment = await ok(
        api.post(
            "/v1/attachments",
            params={"contact_id": contact["id"], "filename": filename},
            content=b"measurement sheet\n",
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
    )
    records = {
        "contact": Record("contact", contact["id"], owner, {first, email, note}),
        "company": Record("company", org["id"], owner, {company}),
        "deal": Record("deal", deal["id"], owner, {title}),
        "task": Record("task", todo["id"], owner, {task}),
        "payment": Record("payment", payment["id"], owner),
        "document": Record("document", document["id"], owner),
        "attachment": Record("attachment", attachment["id"], owner, {filename}),
    }
    for record in records.values():
        record.markers.add(record.id)
    return records


async def seed_tenant_objects(
    api: httpx.AsyncClient, admin: dict[str, str], dpo: dict[str, str], contact_id: str
) -> dict[str, Record]:
    """One of each object a tenant's admins (and compliance officers) keep."""
    names = {kind: marker(kind) for kind in TENANT_KINDS}
    pipeline = await ok(
        api.post(
            "/v1/pipelines",
            json={
                "name": names["pipeline"],
                "stages": [
                    {"name": "New"},
                    {"name": "Won", "kind": "won"},
                    {"name": "Lost", "kind": "lost"},
                ],
            },
            headers=admin,
        )
    )
    rule = await ok(
        api.post(
            "/v1/automations",
            json={
                "name": names["automation"],
                "trigger": {"event_type": "deals.deal.created"},
                "actions": [{"type": "create_task", "title": "Call", "assignee": "owner"}],
            },
            headers=admin,
        )
    )
    form = await ok(
        api.post(
            "/v1/forms",
            json={
                "name": names["form"],
                "field_mapping": {"email": "email"},
                "pipeline_id": pipeline["id"],
                "stage_id": pipeline["stages"][0]["id"],
                "owner": "user:boss",
            },
            headers=admin,
        )
    )
    # A public address, subscribed to an event that never comes: nothing is delivered.
    hook = await ok(
        api.post(
            "/v1/webhooks",
            json={
                "url": f"http://8.8.8.8/{names['webhook']}",
                "event_types": ["integrations.never.happens"],
            },
            headers=admin,
        )
    )
    request = await ok(
        api.post(
            "/v1/privacy/requests", json={"kind": "export", "contact_id": contact_id}, headers=dpo
        )
    )
    job = await ok(
        api.post(
            f"/v1/imports?file_name={names['import']}.csv",
            content=b"first_name,email\nAna,ana@example.pt\n",
            headers=admin,
        )
    )
    records = {
        "pipeline": Record("pipeline", pipeline["id"], "tenant", {names["pipeline"]}),
        "automation": Record("automation", rule["id"], "tenant", {names["automation"]}),
        "form": Record("form", form["id"], "tenant", {names["form"]}),
        "webhook": Record("webhook", hook["id"], "tenant", {names["webhook"]}),
        "privacy_request": Record("privacy_request", request["id"], "tenant"),
        "import": Record("import", job["id"], "tenant", {names["import"]}),
    }
    for record in records.values():
        record.markers.add(record.id)
    return records


def may_see(role: str, owner: str) -> bool:
    """The documented rule: a rep their own, a manager their team's, the others all."""
    if owner in ("other-tenant", "other-region", "tenant"):
        return False
    if role == "sales_rep":
        return owner == "rep-n1"
    if role == "manager":
        return TEAMS[owner] == TEAMS["mgr-n"]
    return True


async def call(
    api: httpx.AsyncClient, method: str, url: str, headers: dict[str, str], body: Any
) -> httpx.Response:
    """One request; a 503 is retried after its Retry-After, as a client would."""
    for _ in range(4):
        reply = await api.request(
            method, url, headers=headers, json=body if method in ("POST", "PUT", "PATCH") else None
        )
        if reply.status_code != 503:
            return reply
        await asyncio.sleep(float(reply.headers.get("Retry-After", "1")))
    return reply


@pytest.mark.timeout(1200)
async def test_every_role_sees_exactly_what_it_may_and_nothing_leaks(
    api: httpx.AsyncClient, token_for: Any, system: Any
) -> None:
    started = time.monotonic()
    tenant, stranger = f"matrix-{uuid.uuid4().hex[:8]}", f"matrix-{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    other_admin = token_for("boss", "admin", "eu", tenant=stranger)
    br_admin = token_for("boss-br", "admin", "br", tenant=tenant)
    for user, team in TEAMS.items():
        await ok(
            api.put(
                f"/v1/users/{user}",
                json={
                    "display_name": user,
                    "team": team,
                    **({"manager_id": "mgr-n"} if team == "north" and user != "mgr-n" else {}),
                },
                headers=admin,
            ),
            200,
        )
    template = {"name": "Matrix", "locale": "en_US", "body": "<p>{{ contact.first_name }}</p>"}
    for headers in (admin, other_admin, br_admin):
        await ok(api.put("/v1/document-templates/matrix", json=template, headers=headers), 200)

    async def stage_of(headers: dict[str, str]) -> str:
        pipelines = await ok(api.get("/v1/pipelines", headers=headers), 200)
        return str(pipelines["data"][0]["stages"][1]["id"]) if pipelines["data"] else ""

    reps = {
        owner: token_for(owner, "sales_rep", "eu", tenant=tenant, team=TEAMS[owner])
        for owner in OWNERS
    }
    records: list[Record] = []
    for owner, headers in reps.items():
        records += (await seed(api, headers, owner, "DE", "")).values()
    stranger_records = await seed(api, other_admin, "other-tenant", "DE", "")
    records += stranger_records.values()
    records += (await seed(api, br_admin, "other-region", "BR", "")).values()
    stage_id = await stage_of(admin)
    # The tenant's own objects: who of the tenant may use them is each route's business
    # (tested with it), so they are not hidden from its callers; another tenant's are.
    own_objects = await seed_tenant_objects(
        api,
        admin,
        token_for("dpo", "compliance_officer", "eu", tenant=tenant),
        records[0].id,
    )
    for record in (
        await seed_tenant_objects(
            api,
            other_admin,
            token_for("dpo", "compliance_officer", "eu", tenant=stranger),
            stranger_records["contact"].id,
        )
    ).values():
        record.owner = "other-tenant"
        records.append(record)

    key = await ok(
        api.post("/v1/api-keys", json={"name": "matrix", "scopes": ["*"]}, headers=admin)
    )
    callers = {
        "sales_rep": reps["rep-n1"],
        "manager": token_for("mgr-n", "manager", "eu", tenant=tenant, team="north"),
        "admin": admin,
        "compliance_officer": token_for("dpo", "compliance_officer", "eu", tenant=tenant),
        "integration": {"Authorization": f"Bearer {key['secret']}"},
    }
    by_owner: dict[str, dict[str, Record]] = {"tenant": own_objects}
    for record in records:
        by_owner.setdefault(record.owner, {})[record.kind] = record
    hidden = {
        role: {m for r in records if not may_see(role, r.owner) for m in r.markers}
        for role in CALLERS
    }
    document = (await api.get("/openapi.json")).json()
    matrix = Matrix()
    limit = asyncio.Semaphore(6)

    def check_leaks(role: str, label: str, reply: httpx.Response, allowed: set[str]) -> None:
        text = reply.text
        for leaked in sorted(m for m in hidden[role] - allowed if m in text):
            matrix.leaks.append(f"{role} {label} -> {reply.status_code} carries {leaked}")

    async def cell(role: str, method: str, path: str, owner: str) -> None:
        label = f"{method} {path}"
        kinds = [PARAMS[p] for p in re.findall(r"{(\w+)}", path)]
        target = by_owner[owner]
        if any(kind not in target for kind in kinds):
            return  # e.g. the tenant's objects are kept in its home region only
        region = "br" if owner == "other-region" else "eu"
        url = path
        nowhere = path
        for name in re.findall(r"{(\w+)}", path):
            url = url.replace(f"{{{name}}}", target[PARAMS[name]].id)
            nowhere = nowhere.replace(f"{{{name}}}", new_id(region))
        body = WRITES.get(label, {})
        if label == "POST /v1/deals/{deal_id}/stage":
            body = {"stage_id": stage_id}
        if label == "POST /v1/contacts/{contact_id}/merge":
            # One of the caller's own contacts (or, across regions, an id of that region:
            # contacts of two regions are never merged, whoever asks).
            body = {
                "merged_id": new_id("br")
                if owner == "other-region"
                else by_owner["rep-n1"]["contact"].id
            }
        visible = may_see(role, owner)
        reading = method == "GET"
        if owner == "tenant" and not (reading and role == "admin"):
            return  # who else of the tenant may use them: the routes' own tests
        gated = any(path.startswith(p) for p in COMPLIANCE_ONLY) and role not in ELEVATED
        if visible and not reading and not gated:
            return  # an allowed write is the functional tests' business
        async with limit:
            reply = await call(api, method, url, callers[role], body)
            missing = await call(api, method, nowhere, callers[role], body)
        matrix.cells += 1
        where = f"{role} x {owner}: {method} {url}"
        check_leaks(role, label, reply, {target[k].id for k in kinds})
        if reply.status_code >= 500:
            matrix.wrong.append(f"{where} -> {reply.status_code} {reply.text[:200]}")
        elif gated:  # the role comes first: nothing about the record or its region shows
            if reply.status_code != 404:
                matrix.wrong.append(f"{where} -> {reply.status_code}, not 404 (role)")
        elif owner == "other-region":
            if reply.status_code != 403:
                matrix.wrong.append(f"{where} -> {reply.status_code}, not 403 {reply.text[:200]}")
        elif visible or owner == "tenant":
            if not 200 <= reply.status_code < 300:
                matrix.wrong.append(f"{where} -> {reply.status_code} {reply.text[:200]}")
        elif (
            reading
            and reply.status_code != 404
            and not (
                reply.status_code == missing.status_code == 403  # the role may not, whatever id
            )
        ):
            matrix.wrong.append(f"{where} -> {reply.status_code}, not 404 {reply.text[:200]}")
        elif reply.status_code != missing.status_code or reply.status_code not in (403, 404, 422):
            matrix.wrong.append(
                f"{where} -> {reply.status_code} {reply.text[:200]}, but on an id that does not "
                f"exist {missing.status_code} {missing.text[:200]}"
            )

    async def listing(role: str, path: str, params: dict[str, str], expected: int) -> int:
        async with limit:
            reply = await api.get(path, params=params, headers=callers[role])
        matrix.cells += 1
        label = f"GET {path} {params or ''}"
        check_leaks(role, label, reply, set())
        if reply.status_code >= 500 or (expected and reply.status_code != expected):
            matrix.wrong.append(f"{role}: {label} -> {reply.status_code} {reply.text[:200]}")
        return reply.status_code

    async def listing_and_region(role: str, path: str, takes_region: bool) -> None:
        plain = await listing(role, path, {}, 0)
        if takes_region:
            # A listing the role may not use at all is refused the same way whatever the
            # region; one it may use is 403 for a region the policy does not grant.
            await listing(role, path, {"region": "br"}, plain if plain in (403, 404) else 403)

    work = []
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/") or path.startswith("/v1/dev/"):
            continue
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            names = re.findall(r"{(\w+)}", path)
            if label in NOT_IN_MATRIX or label == "POST /v1/reports/rebuild":
                continue
            if names and all(name in PARAMS for name in names):
                for role in CALLERS:
                    for owner in by_owner:
                        work.append(cell(role, method.upper(), path, owner))
            elif not names and method == "get":
                takes = {p["name"] for p in operation.get("parameters", [])}
                for role in CALLERS:
                    work.append(listing_and_region(role, path, "region" in takes))
            elif names and method == "get" and path == "/v1/reports/{name}":
                # Reports carry only aggregates, so they are worldwide by design (no
                # grant needed); they must still carry no record of anyone's.
                for role in CALLERS:
                    for name in ("funnel", "revenue", "activity", "payments", "lead_sources"):
                        work.append(listing(role, f"/v1/reports/{name}", {}, 0))
                        work.append(listing(role, f"/v1/reports/{name}", {"format": "csv"}, 0))
            else:
                matrix.skipped.add(label)

    async def search(role: str, record: Record) -> None:
        name = min(m for m in record.markers if m.startswith("Mxcon"))
        async with limit:
            reply = await api.get("/v1/contacts", params={"q": name}, headers=callers[role])
        matrix.cells += 1
        check_leaks(role, f"GET /v1/contacts?q={name}", reply, set())
        found = [row["id"] for row in reply.json().get("data", [])]
        # The control that the leak check is not blind: who may see it finds it.
        if reply.status_code != 200 or found != (
            [record.id] if may_see(role, record.owner) else []
        ):
            matrix.wrong.append(f"{role}: search for {record.owner}'s contact found {found}")

    # Searching by the name of a contact finds it exactly for those who may see it.
    for role in CALLERS:
        for record in records:
            if record.kind == "contact":
                work.append(search(role, record))
    await asyncio.gather(*work)

    # Nothing a refused write touched has changed (seen as each record's tenant admin).
    for record in records:
        if record.owner == "other-region":
            continue
        viewer = other_admin if record.owner == "other-tenant" else admin
        if record.kind in ("contact", "company", "deal", "task"):
            path = {"contact": "contacts", "company": "companies", "deal": "deals"}.get(
                record.kind, "tasks"
            )
            now = await ok(api.get(f"/v1/{path}/{record.id}", headers=viewer), 200)
            assert "Hijacked" not in str(now), now
            if record.kind == "task":
                assert now["status"] == "open", now
        if record.kind == "deal":
            paid = await ok(api.get(f"/v1/deals/{record.id}/payments", headers=viewer), 200)
            assert len(paid["data"]) == 1 and not paid["data"][0].get("reversed_at"), paid
        if record.kind == "contact":
            notes = await ok(api.get(f"/v1/contacts/{record.id}/notes", headers=viewer), 200)
            assert "Hijacked" not in str(notes), notes

    print(
        f"\nauthorisation matrix: {matrix.cells} cells ({len(CALLERS)} roles x "
        f"{len(by_owner)} owners x operations, and listings), {len(matrix.leaks)} leaks, "
        f"{len(matrix.wrong)} wrong answers, in {time.monotonic() - started:.0f}s; "
        f"not in the matrix: {', '.join(sorted(matrix.skipped))}"
    )
    assert not matrix.leaks, "\n".join(matrix.leaks)
    assert not matrix.wrong, "\n".join(matrix.wrong)
