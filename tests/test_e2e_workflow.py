"""The window-installation company's sales workflow, end to end through the gateway.

Nothing here is built in: the pipeline, the automation rules, the users and the
invoice template are the tenant's own data, created through the API first. Time is
moved with the shared test clock, so nothing waits fifteen real minutes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from crm_api.crm.events.v1 import tasks_pb2 as task_events
from crm_kit import clock

pytestmark = pytest.mark.asyncio(loop_scope="session")
T = TypeVar("T")

INVOICE = """
<html><body>
<h1>Invoice {{ deal.title }}</h1>
<p>Bill to: {{ contact.first_name }} {{ contact.last_name }},
{{ contact.address.street }}, {{ contact.address.postal_code }} {{ contact.address.city }}</p>
<p>Service: {{ vars.service }}</p>
<p>Amount due: {{ amount_formatted }}</p>
<p>Pay to {{ vars.bank }}, IBAN {{ vars.iban }}</p>
</body></html>
"""


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, within: float = 30) -> T:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def test_window_installation_workflow(
    system: Any, api: httpx.AsyncClient, token_for: Any, stream_events: Any, move_clock: Any
) -> None:
    tenant = f"windows-{uuid.uuid4().hex[:6]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    olga = token_for("rep-olga", "sales_rep", "eu", tenant=tenant, team="install")

    async def ok(reply: Awaitable[httpx.Response], status: int = 200) -> dict[str, Any]:
        response = await reply
        assert response.status_code == status, response.text
        return dict(response.json()) if response.content else {}

    # --- the tenant's own set-up: users, template, pipeline, rules
    users = {
        "rep-olga": {
            "display_name": "Olga",
            "team": "install",
            "manager_id": "mgr-max",
            "time_zone": "Europe/Berlin",
        },
        "mgr-max": {"display_name": "Max", "team": "install", "time_zone": "Europe/Berlin"},
        "meas-mia": {
            "display_name": "Mia",
            "job_roles": ["measurer"],
            "time_zone": "Europe/Berlin",
        },
        "inst-ivo": {
            "display_name": "Ivo",
            "job_roles": ["installer"],
            "time_zone": "Europe/Berlin",
        },
    }
    for user_id, user in users.items():
        await ok(api.put(f"/v1/users/{user_id}", json=user, headers=admin))
    await ok(
        api.put(
            "/v1/document-templates/invoice",
            json={
                "name": "Invoice",
                "body": INVOICE,
                "locale": "de_DE",
                "variables": {
                    "service": "Window installation",
                    "bank": "Sparkasse",
                    "iban": "DE89 3704 0044 0532 0130 00",
                },
            },
            headers=admin,
        )
    )
    stage_names = [
        "First call",
        "Measurement",
        "Approval",
        "Payment",
        "Installation",
        "Won",
        "Lost",
    ]
    pipeline = await ok(
        api.post(
            "/v1/pipelines",
            json={
                "name": "Windows",
                "stages": [
                    {"name": "First call", "win_probability": 10},
                    {"name": "Measurement", "win_probability": 30},
                    {"name": "Approval", "win_probability": 50},
                    {"name": "Payment", "win_probability": 70, "document_template_key": "invoice"},
                    {"name": "Installation", "win_probability": 90},
                    {"name": "Won", "win_probability": 100, "kind": "won"},
                    {"name": "Lost", "win_probability": 0, "kind": "lost"},
                ],
            },
            headers=admin,
        ),
        201,
    )
    stage = {s["name"]: s["id"] for s in pipeline["stages"]}
    assert list(stage) == stage_names

    async def rule(name: str, trigger: dict[str, Any], actions: list[dict[str, Any]]) -> str:
        created = await ok(
            api.post(
                "/v1/automations",
                json={"name": name, "trigger": trigger, "actions": actions},
                headers=admin,
            ),
            201,
        )
        return str(created["id"])

    call_back = await rule(
        "Call back new web leads",
        {"event_type": "deals.deal.created", "conditions": {"stage_id": stage["First call"]}},
        [
            {
                "type": "create_task",
                "title": "Call the client back within 15 minutes",
                "assignee": "owner",
                "due": "+15m",
                "priority": "high",
            }
        ],
    )
    await rule(
        "Tell owner and manager about a missed call back",
        {"event_type": "tasks.task.overdue", "conditions": {"rule_id": call_back}},
        [
            {
                "type": "notify",
                "recipients": ["assignee", "assignee_manager"],
                "message": "A web lead is waiting for a call back",
            }
        ],
    )
    await rule(
        "Measurement appointment",
        {
            "event_type": "deals.deal.stage_changed",
            "conditions": {"to_stage_id": stage["Measurement"]},
        },
        [
            {
                "type": "create_task",
                "title": "Measurement",
                "assignee": "role:measurer",
                "due": "field:measurement_at",
            }
        ],
    )
    await rule(
        "Price the job",
        {
            "event_type": "deals.deal.stage_changed",
            "conditions": {"to_stage_id": stage["Approval"]},
        },
        [
            {
                "type": "create_task",
                "title": "Calculate the cost and call the client within 2 hours",
                "assignee": "owner",
                "due": "+2h",
            }
        ],
    )
    await rule(
        "Installation",
        {
            "event_type": "deals.deal.stage_changed",
            "conditions": {"to_stage_id": stage["Installation"]},
        },
        [
            {
                "type": "create_task",
                "title": "Install the windows",
                "assignee": "role:installer",
                "due": "field:installation_deadline",
            }
        ],
    )
    bad = await api.post(
        "/v1/automations",
        json={
            "name": "broken",
            "trigger": {"event_type": "deals.deal.teleported"},
            "actions": [{"type": "create_task", "title": "x", "due": "soonish"}],
        },
        headers=admin,
    )
    assert bad.status_code == 422 and {"trigger.event_type", "actions[0].due"} <= {
        e["field"] for e in bad.json()["errors"]
    }

    # --- a request from the website: a contact and a deal in "First call"
    contact = await ok(
        api.post(
            "/v1/contacts",
            json={
                "first_name": "Henrike",
                "last_name": "Brandt",
                "source": "web_form",
                "phones": ["0176 12345678"],
                "address": {
                    "street": "Lindenallee 5",
                    "postal_code": "50968",
                    "city": "Köln",
                    "country": "DE",
                },
                "owner_id": "rep-olga",
                "owner_team": "install",
            },
            headers=admin,
        ),
        201,
    )
    deal = await ok(
        api.post(
            "/v1/deals",
            json={
                "title": "Six windows, Lindenallee",
                "contact_id": contact["id"],
                "owner_id": "rep-olga",
                "owner_team": "install",
                "source": "web_form",
                "pipeline_id": pipeline["id"],
                "stage_id": stage["First call"],
                "amount": {"amount": "1299.90", "currency": "EUR"},
            },
            headers=admin,
        ),
        201,
    )

    async def tasks_titled(
        title: str, headers: dict[str, str] = admin
    ) -> list[dict[str, Any]] | None:
        reply = await api.get("/v1/tasks", params={"deal_id": deal["id"]}, headers=headers)
        assert reply.status_code == 200, reply.text
        found = [t for t in reply.json()["data"] if t["title"] == title]
        return found or None

    [call] = await eventually(
        lambda: tasks_titled("Call the client back within 15 minutes", olga), "the call-back task"
    )
    assert call["assignee_id"] == "rep-olga" and call["priority"] == "high"
    due = datetime.fromisoformat(call["due_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=14) < due - clock.now() <= timedelta(minutes=15)
    assert call["time_zone"] == "Europe/Berlin" and call["due_local"].endswith(("+01:00", "+02:00"))

    # --- nobody calls back: 16 minutes later the owner and her manager are told
    move_clock(timedelta(minutes=16))

    async def notified() -> list[Any] | None:
        found = []
        for envelope in await stream_events("eu", "tasks.notification.requested"):
            if envelope.tenant_id == tenant:
                payload = task_events.NotificationRequested()
                envelope.payload.Unpack(payload)
                found.append(payload)
        return found or None

    [notice] = await eventually(notified, "the overdue notification")
    assert sorted(notice.recipient_ids) == ["mgr-max", "rep-olga"] and notice.task_id == call["id"]
    overdue = await ok(api.get(f"/v1/tasks/{call['id']}", headers=olga))
    assert overdue["overdue_at"]

    # --- moving the deal on creates the next tasks
    async def move(to: str, **custom: str) -> dict[str, Any]:
        return await ok(
            api.post(
                f"/v1/deals/{deal['id']}/stage",
                json={"stage_id": stage[to], "custom_fields": custom},
                headers=olga,
            )
        )

    await move("Measurement", measurement_at="2026-12-03T10:00")
    [measure] = await eventually(lambda: tasks_titled("Measurement"), "the measurement task")
    assert measure["assignee_id"] == "meas-mia"
    assert measure["due_at"].startswith("2026-12-03T09:00:00")  # 10:00 in Berlin

    await move("Approval")
    [price] = await eventually(
        lambda: tasks_titled("Calculate the cost and call the client within 2 hours"),
        "the pricing task",
    )
    assert price["assignee_id"] == "rep-olga"
    price_due = datetime.fromisoformat(price["due_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=119) < price_due - clock.now() <= timedelta(hours=2)

    moved = await move("Payment")
    assert [h["to_stage_id"] for h in moved["history"]][-3:] == [
        stage["Measurement"],
        stage["Approval"],
        stage["Payment"],
    ]
    documents = await ok(api.get(f"/v1/deals/{deal['id']}/documents", headers=olga))
    [invoice] = documents["data"]
    html = (
        await api.get(f"/v1/documents/{invoice['id']}", params={"format": "html"}, headers=olga)
    ).text
    for expected in (
        "Henrike Brandt",
        "Lindenallee 5",
        "50968 Köln",
        "Window installation",
        "1.299,90",
        "€",
        "DE89 3704 0044 0532 0130 00",
    ):
        assert expected in html, expected
    pdf = await api.get(f"/v1/documents/{invoice['id']}", headers=olga)
    assert (
        pdf.status_code == 200
        and pdf.headers["content-type"] == "application/pdf"
        and pdf.content.startswith(b"%PDF")
    )

    await move("Installation", installation_deadline="2026-12-20T08:00")
    [install] = await eventually(
        lambda: tasks_titled("Install the windows"), "the installation task"
    )
    assert install["assignee_id"] == "inst-ivo" and install["due_at"].startswith(
        "2026-12-20T07:00:00"
    )

    # The measurer completes her task, late: task.completed says so.
    done = await ok(
        api.post(
            f"/v1/tasks/{measure['id']}/complete",
            headers=token_for("meas-mia", "sales_rep", "eu", tenant=tenant),
        )
    )
    assert done["status"] == "done"

    # --- another tenant has none of these rules: its deals create no tasks
    other_admin = token_for("admin", "admin", "eu", tenant=f"other-{uuid.uuid4().hex[:6]}")
    other_contact = await ok(
        api.post(
            "/v1/contacts",
            json={"first_name": "Kai", "address": {"country": "DE"}},
            headers=other_admin,
        ),
        201,
    )
    other_deal = await ok(
        api.post(
            "/v1/deals",
            json={"title": "Door", "contact_id": other_contact["id"]},
            headers=other_admin,
        ),
        201,
    )
    await asyncio.sleep(2)
    reply = await api.get("/v1/tasks", params={"deal_id": other_deal["id"]}, headers=other_admin)
    assert reply.json()["data"] == []
    assert datetime.now(UTC) < clock.now()  # the clock really was moved


async def test_a_manager_sees_the_teams_records_by_every_path_and_after_a_team_change(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"teams-{uuid.uuid4().hex[:6]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)

    async def ok(reply: Awaitable[httpx.Response], status: int = 200) -> dict[str, Any]:
        response = await reply
        assert response.status_code == status, response.text
        return dict(response.json()) if response.content else {}

    for user, entry in {
        "rep-olga": {"team": "install", "manager_id": "mgr-max"},
        "rep-wendy": {"team": "web", "manager_id": "mgr-max"},
        "mgr-max": {"team": "install"},
    }.items():
        await ok(api.put(f"/v1/users/{user}", json=entry, headers=admin))
    install = token_for("mgr-max", "manager", "eu", tenant=tenant, team="install")
    web = token_for("mgr-wanda", "manager", "eu", tenant=tenant, team="web")
    pipeline = await ok(
        api.post(
            "/v1/pipelines",
            json={
                "name": "Windows",
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
    stage = {s["name"]: s["id"] for s in pipeline["stages"]}

    # 1. An admin assigns a contact and a deal to Olga.
    assigned = await ok(
        api.post(
            "/v1/contacts",
            json={"first_name": "Anke", "address": {"country": "DE"}, "owner_id": "rep-olga"},
            headers=admin,
        ),
        201,
    )
    deal = await ok(
        api.post(
            "/v1/deals",
            json={
                "title": "Six windows",
                "contact_id": assigned["id"],
                "owner_id": "rep-olga",
                "pipeline_id": pipeline["id"],
                "amount": {"amount": "100.00", "currency": "EUR"},
            },
            headers=admin,
        ),
        201,
    )
    # 2. A web form whose owners rotate over the web team (Wendy is its only member).
    form = await ok(
        api.post(
            "/v1/forms",
            json={
                "name": "Quote",
                "field_mapping": {"name": "name", "email": "email"},
                "pipeline_id": pipeline["id"],
                "stage_id": stage["New"],
                "owner": "team:web",
                "default_country": "DE",
            },
            headers=admin,
        ),
        201,
    )
    submitted = await ok(
        api.post(
            f"/public/forms/{form['key']}", json={"name": "Lea Web", "email": "lea@example.org"}
        ),
        201,
    )
    submission = await ok(api.get(f"/v1/forms/submissions/{submitted['id']}", headers=admin))
    # 3. A missed call from an unknown number, the provider's leads going to Olga.
    provider = await ok(
        api.post(
            "/v1/integrations/providers",
            json={"kind": "telephony", "default_country": "DE", "default_owner_id": "rep-olga"},
            headers=admin,
        ),
        201,
    )
    call = await ok(
        api.post(
            provider["webhook_url"],
            json={
                "call_id": "m-1",
                "direction": "inbound",
                "from": "0151 11223344",
                "to": "+49 30 1234567",
                "duration": 0,
            },
            headers={"X-Integration-Secret": provider["secret"]},
        )
    )

    async def readable(path: str, headers: dict[str, str]) -> dict[str, Any] | None:
        reply = await api.get(path, headers=headers)
        return dict(reply.json()) if reply.status_code == 200 else None

    for path, manager in (
        (f"/v1/contacts/{assigned['id']}", install),
        (f"/v1/deals/{deal['id']}", install),
        (f"/v1/contacts/{call['contact_id']}", install),
        (f"/v1/contacts/{submission['contact_id']}", web),
        (f"/v1/deals/{submission['deal_id']}", web),
    ):
        record = await eventually(
            lambda p=path, m=manager: readable(p, m), f"the manager reads {path}"
        )
        assert record["owner_team"] in ("install", "web"), record
    assert (await api.get(f"/v1/deals/{deal['id']}", headers=web)).status_code == 404

    # The team's won deal is in its manager's win rate.
    await ok(
        api.post(f"/v1/deals/{deal['id']}/stage", json={"stage_id": stage["Won"]}, headers=admin)
    )

    async def won(manager: dict[str, str], count: int) -> dict[str, Any] | None:
        report = await ok(api.get("/v1/reports/win_rate", params={"region": "eu"}, headers=manager))
        rows = report["data"]
        return report if sum(int(r.get("deals_won") or 0) for r in rows) == count else None

    await eventually(lambda: won(install, 1), "the install team's won deal in its report")

    # Olga moves to the web team: her records follow her to that manager, at once
    # for new reads, and leave the install team's.
    await ok(api.put("/v1/users/rep-olga", json={"team": "web"}, headers=admin))
    await eventually(
        lambda: readable(f"/v1/deals/{deal['id']}", web), "Olga's deal seen by the web manager"
    )
    await eventually(
        lambda: readable(f"/v1/contacts/{assigned['id']}", web), "her contact, by the web manager"
    )
    assert (await api.get(f"/v1/deals/{deal['id']}", headers=install)).status_code == 404
    assert (await api.get(f"/v1/contacts/{assigned['id']}", headers=install)).status_code == 404
    await eventually(lambda: won(web, 1), "her won deal in the web team's report")
    await eventually(lambda: won(install, 0), "and no longer in the install team's")


async def test_field_staff_read_the_client_of_their_open_task_and_nothing_else(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"field-{uuid.uuid4().hex[:6]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    mia = token_for("meas-mia", "sales_rep", "eu", tenant=tenant)

    async def ok(reply: Awaitable[httpx.Response], status: int = 200) -> dict[str, Any]:
        response = await reply
        assert response.status_code == status, response.text
        return dict(response.json()) if response.content else {}

    await ok(api.put("/v1/users/meas-mia", json={"job_roles": ["measurer"]}, headers=admin))
    pipeline = await ok(
        api.post(
            "/v1/pipelines",
            json={
                "name": "W",
                "stages": [
                    {"name": "Measurement"},
                    {"name": "Won", "kind": "won"},
                    {"name": "Lost", "kind": "lost"},
                ],
            },
            headers=admin,
        ),
        201,
    )

    async def client(last: str) -> tuple[dict[str, Any], dict[str, Any]]:
        contact = await ok(
            api.post(
                "/v1/contacts",
                json={
                    "first_name": "Karl",
                    "last_name": last,
                    "phones": ["030 1234567"],
                    "address": {"street": "Hauptstr. 1", "city": "Berlin", "country": "DE"},
                    "owner_id": "rep-olga",
                },
                headers=admin,
            ),
            201,
        )
        deal = await ok(
            api.post(
                "/v1/deals",
                json={
                    "title": f"Windows {last}",
                    "contact_id": contact["id"],
                    "owner_id": "rep-olga",
                    "pipeline_id": pipeline["id"],
                    "amount": {"amount": "1299.90", "currency": "EUR"},
                },
                headers=admin,
            ),
            201,
        )
        return contact, deal

    contact, deal = await client("Kunde")
    other, other_deal = await client("Anderer")
    await ok(
        api.post(
            f"/v1/contacts/{contact['id']}/notes",
            json={"kind": "note", "body": "Ring twice, side door"},
            headers=admin,
        ),
        201,
    )
    task = await ok(
        api.post(
            "/v1/tasks",
            json={
                "title": "Measurement",
                "assignee_id": "meas-mia",
                "contact_id": contact["id"],
                "deal_id": deal["id"],
                "due_at": (clock.now() + timedelta(days=2)).isoformat(),
            },
            headers=admin,
        ),
        201,
    )

    async def readable(path: str) -> dict[str, Any] | None:
        reply = await api.get(path, headers=mia)
        return dict(reply.json()) if reply.status_code == 200 else None

    seen = await eventually(lambda: readable(f"/v1/contacts/{contact['id']}"), "her client")
    assert seen["address"]["street"] == "Hauptstr. 1" and seen["phones"] == ["+49301234567"]
    seen_deal = await eventually(lambda: readable(f"/v1/deals/{deal['id']}"), "her client's deal")
    assert seen_deal["title"] == "Windows Kunde"
    assert seen_deal["amount"] == {"amount": "1299.90", "currency": "EUR"}
    assert seen_deal["stage_name"] == "Measurement"
    notes = await ok(api.get(f"/v1/contacts/{contact['id']}/notes", headers=mia))
    assert [n["body"] for n in notes["data"]] == ["Ring twice, side door"]
    # Nothing else of the owner's: not the other client, not in lists, no changes.
    assert (await api.get(f"/v1/contacts/{other['id']}", headers=mia)).status_code == 404
    assert (await api.get(f"/v1/deals/{other_deal['id']}", headers=mia)).status_code == 404
    listed = await ok(api.get("/v1/contacts", headers=mia))
    assert listed["data"] == []
    changed = await api.patch(
        f"/v1/contacts/{contact['id']}", json={"first_name": "X"}, headers=mia
    )
    assert changed.status_code == 404
    # Audited like any read, with the task as the basis.
    audit = await ok(api.get("/v1/compliance/audit", params={"actor": "meas-mia"}, headers=admin))
    reads = {(r["action"], r["record_id"]) for r in audit["data"]}
    assert {("contact.read", contact["id"]), ("deal.read", deal["id"])} <= reads
    assert all(
        r["legal_basis"] == f"assignee of open task {task['id']}"
        for r in audit["data"]
        if r["action"] in ("contact.read", "deal.read")
    )

    # Once the task is done, the client is the owner's again.
    await ok(api.post(f"/v1/tasks/{task['id']}/complete", headers=mia))

    async def gone() -> bool:
        reply = await api.get(f"/v1/contacts/{contact['id']}", headers=mia)
        deal_reply = await api.get(f"/v1/deals/{deal['id']}", headers=mia)
        return reply.status_code == 404 and deal_reply.status_code == 404

    await eventually(gone, "the client closed to her after the task")


async def test_the_board_and_the_revenue_report_round_the_same_money_the_same_way(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"cents-{uuid.uuid4().hex[:6]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)

    async def ok(reply: Awaitable[httpx.Response], status: int = 200) -> dict[str, Any]:
        response = await reply
        assert response.status_code == status, response.text
        return dict(response.json()) if response.content else {}

    await ok(api.put("/v1/deal-settings", json={"reporting_currency": "EUR"}, headers=admin))
    yesterday = (clock.now() - timedelta(days=1)).date().isoformat()
    await ok(
        api.put(
            "/v1/exchange-rates",
            json={"currency": "USD", "rate": "0.5", "valid_on": yesterday},
            headers=admin,
        )
    )
    pipeline = await ok(
        api.post(
            "/v1/pipelines",
            json={
                "name": "Cents",
                "stages": [
                    {"name": "New"},
                    {"name": "Won", "kind": "won"},
                    {"name": "Lost", "kind": "lost"},
                ],
            },
            headers=admin,
        ),
        201,
    )
    won = next(s["id"] for s in pipeline["stages"] if s["name"] == "Won")
    contact = await ok(
        api.post(
            "/v1/contacts", json={"first_name": "Cent", "address": {"country": "DE"}}, headers=admin
        ),
        201,
    )
    # 10.01 USD at 0.5 is exactly 5.005 EUR: the one rule (half to even) says 5.00.
    deal = await ok(
        api.post(
            "/v1/deals",
            json={
                "title": "Half a cent",
                "contact_id": contact["id"],
                "pipeline_id": pipeline["id"],
                "amount": {"amount": "10.01", "currency": "USD"},
            },
            headers=admin,
        ),
        201,
    )
    await ok(api.post(f"/v1/deals/{deal['id']}/stage", json={"stage_id": won}, headers=admin))
    board = await ok(api.get(f"/v1/pipelines/{pipeline['id']}/board", headers=admin))
    on_board = next(c["total"]["amount"] for c in board["columns"] if c["stage"]["id"] == won)

    async def revenue() -> str | None:
        report = await ok(
            api.get(
                "/v1/reports/revenue",
                params={"region": "eu", "pipeline": pipeline["id"]},
                headers=admin,
            )
        )
        values = [row["value"] for row in report["data"] if row["deals"]]
        return values[0] if values else None

    in_report = await eventually(revenue, "the won deal in the revenue report")
    assert on_board == in_report == "5.00"


async def test_the_board_filters_by_team_with_counts_and_totals_of_that_team(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"teams-{uuid.uuid4().hex[:6]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)

    async def ok(reply: Awaitable[httpx.Response], status: int = 200) -> dict[str, Any]:
        response = await reply
        assert response.status_code == status, response.text
        return dict(response.json()) if response.content else {}

    for user, team in (("olga", "install"), ("max", "install"), ("sven", "north")):
        await ok(api.put(f"/v1/users/{user}", json={"team": team}, headers=admin))
    pipeline = await ok(
        api.post(
            "/v1/pipelines",
            json={
                "name": "Teams",
                "stages": [
                    {"name": "New"},
                    {"name": "Won", "kind": "won"},
                    {"name": "Lost", "kind": "lost"},
                ],
            },
            headers=admin,
        ),
        201,
    )
    contact = await ok(
        api.post(
            "/v1/contacts",
            json={"first_name": "Lena", "last_name": "Vogel", "address": {"country": "DE"}},
            headers=admin,
        ),
        201,
    )
    for title, owner, team, amount in (
        ("Olga's windows", "olga", "install", "100.00"),
        ("Max's door", "max", "install", "50.00"),
        ("Sven's roof", "sven", "north", "7.00"),
    ):
        await ok(
            api.post(
                "/v1/deals",
                json={
                    "title": title,
                    "contact_id": contact["id"],
                    "owner_id": owner,
                    "owner_team": team,
                    "pipeline_id": pipeline["id"],
                    "amount": {"amount": amount, "currency": "EUR"},
                },
                headers=admin,
            ),
            201,
        )
    url = f"/v1/pipelines/{pipeline['id']}/board"
    install = (await ok(api.get(url, params={"team": "install"}, headers=admin)))["columns"][0]
    assert sorted(d["title"] for d in install["deals"]) == ["Max's door", "Olga's windows"]
    assert install["count"] == 2
    assert install["total"]["amount"] == "150.00"
    north = (await ok(api.get(url, params={"team": "north"}, headers=admin)))["columns"][0]
    assert [d["title"] for d in north["deals"]] == ["Sven's roof"]
    # Team and owner combine; the whole board is still there without a filter.
    both = await ok(api.get(url, params={"team": "install", "owner_id": "sven"}, headers=admin))
    assert both["columns"][0]["count"] == 0
    everyone = await ok(api.get(url, headers=admin))
    assert everyone["columns"][0]["count"] == 3
