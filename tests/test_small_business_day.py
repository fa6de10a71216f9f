"""The small-business day (issue 14) through the gateway: country names in the file's
own language, every field error at once, a deal's tasks found by its id, the agreed
appointment time in the client's zone and the client region's measurer; a leaving
rep's work handed over and exports closed to reps; the rep's day and calendar feed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from icalendar import Calendar

from crm_kit import clock

pytestmark = pytest.mark.asyncio(loop_scope="session")
T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, within: float = 60) -> T:
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


def tenant_name() -> str:
    return f"day-{uuid.uuid4().hex[:8]}"


async def test_an_import_reads_country_names_in_the_files_own_language(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = tenant_name()
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    # This tenant keeps its Russian customers in eu (its own residency rule).
    await ok(
        api.put(
            "/v1/compliance/policies",
            json={"default_region": "us", "residency_overrides": {"RU": "eu"}},
            headers=admin,
        )
    )
    rows = ["Имя;Страна", "Анна;Россия", "Hans;Deutschland", "Zoé;Allemagne", "Joana;Alemanha"]
    job = await ok(
        api.post(
            "/v1/imports?file_name=kunden.csv",
            content="\r\n".join(rows).encode(),
            headers={**admin, "content-type": "text/csv"},
        ),
        201,
    )
    preview = await ok(api.post(f"/v1/imports/{job['id']}/preview", json={}, headers=admin))
    assert preview["counts"]["failed"] == 0, preview
    assert preview["counts"]["created"] == 4
    # And a single contact: "Brasil" is Brazil, stored in br.
    br = token_for("bruno", "admin", "br", tenant=tenant)
    created = await ok(
        api.post(
            "/v1/contacts",
            json={"first_name": "Luíza", "address": {"country": "Brasil"}},
            headers=br,
        ),
        201,
    )
    assert created["id"].startswith("br_") and created["address"]["country"] == "BR"


async def test_a_bad_country_does_not_hide_the_other_field_errors(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = tenant_name()
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    response = await api.post(
        "/v1/contacts",
        json={"first_name": "X", "emails": ["x@"], "address": {"country": "Atlantis"}},
        headers=admin,
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    fields = [e["field"] for e in response.json()["errors"]]
    assert sorted(fields) == ["address.country", "emails[0]"]
    company = await api.post(
        "/v1/companies", json={"name": "", "address": {"country": "Atlantis"}}, headers=admin
    )
    assert company.status_code == 422, company.text
    assert sorted(e["field"] for e in company.json()["errors"]) == ["address.country", "name"]
    # Nothing was written.
    listed = await ok(api.get("/v1/contacts", headers=admin))
    assert listed["data"] == []


async def test_a_brazilian_clients_measurement_goes_to_a_measurer_in_br_at_their_time(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = tenant_name()
    boss = token_for("boss", "admin", "eu", tenant=tenant)
    bruno = token_for("bruno", "admin", "br", tenant=tenant)
    await ok(
        api.put(
            "/v1/compliance/policies",
            json={
                "default_region": "us",
                "access_grants": [{"from_region": "eu", "to_region": "br", "legal_basis": "SCC"}],
            },
            headers=boss,
        )
    )
    # Two measurers: Anna works in Berlin, Bia in Brazil (living in Manaus, an hour
    # behind São Paulo). Anna comes first by id and both are free.
    users = {
        "m-anna": {"job_roles": ["measurer"], "home_region": "eu", "time_zone": "Europe/Berlin"},
        "m-bia": {"job_roles": ["measurer"], "home_region": "br", "time_zone": "America/Manaus"},
    }
    for user_id, user in users.items():
        await ok(api.put(f"/v1/users/{user_id}", json=user, headers=boss))
    bad = await api.put("/v1/users/m-cid", json={"home_region": "mars"}, headers=boss)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "home_region"
    pipeline = await ok(
        api.post(
            "/v1/pipelines",
            json={
                "name": "Janelas",
                "stages": [
                    {"name": "First call", "win_probability": 10},
                    {"name": "Measurement", "win_probability": 30},
                    {"name": "Won", "win_probability": 100, "kind": "won"},
                    {"name": "Lost", "win_probability": 0, "kind": "lost"},
                ],
            },
            headers=boss,
        ),
        201,
    )
    stage = {s["name"]: s["id"] for s in pipeline["stages"]}
    await ok(
        api.post(
            "/v1/automations",
            json={
                "name": "Measurement appointment",
                "trigger": {
                    "event_type": "deals.deal.stage_changed",
                    "conditions": {"to_stage_id": stage["Measurement"]},
                },
                "actions": [
                    {
                        "type": "create_task",
                        "title": "Measurement",
                        "assignee": "role:measurer",
                        "due": "field:measurement_at",
                    }
                ],
            },
            headers=boss,
        ),
        201,
    )
    contact = await ok(
        api.post(
            "/v1/contacts",
            json={
                "first_name": "Luíza",
                "address": {"city": "São Paulo", "country": "BR"},
                "time_zone": "America/Sao_Paulo",
            },
            headers=bruno,
        ),
        201,
    )
    deal = await ok(
        api.post(
            "/v1/deals",
            json={
                "title": "Janelas",
                "contact_id": contact["id"],
                "pipeline_id": pipeline["id"],
                "amount": {"amount": "4200.00", "currency": "BRL"},
            },
            headers=bruno,
        ),
        201,
    )
    assert deal["id"].startswith("br_")
    # "Measurement at 10:00" agreed with the client: 10:00 in São Paulo (UTC-3).
    await ok(
        api.post(
            f"/v1/deals/{deal['id']}/stage",
            json={
                "stage_id": stage["Measurement"],
                "custom_fields": {"measurement_at": "2027-01-20T10:00"},
            },
            headers=bruno,
        )
    )

    # Boss (home region eu, granted br) asks for the deal's tasks without region=br:
    # the deal's id says where they are.
    async def measurement() -> list[dict[str, Any]] | None:
        found = await ok(api.get("/v1/tasks", params={"deal_id": deal["id"]}, headers=boss))
        return [t for t in found["data"] if t["title"] == "Measurement"] or None

    [task] = await eventually(measurement, "the measurement task")
    assert task["assignee_id"] == "m-bia"
    assert task["due_at"].startswith("2027-01-20T13:00:00")  # 10:00 in São Paulo
    by_contact = await ok(api.get("/v1/tasks", params={"contact_id": contact["id"]}, headers=boss))
    assert [t["id"] for t in by_contact["data"]] == [task["id"]]
    deals = await ok(api.get("/v1/deals", params={"contact_id": contact["id"]}, headers=boss))
    assert [d["id"] for d in deals["data"]] == [deal["id"]]
    # Still only the home region when asked so.
    home = await ok(
        api.get("/v1/tasks", params={"deal_id": deal["id"], "region": "eu"}, headers=boss)
    )
    assert home["data"] == []


async def test_an_admin_hands_a_leaving_reps_open_work_to_a_colleague(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = tenant_name()
    boss = token_for("boss", "admin", "eu", tenant=tenant)
    bruno = token_for("bruno", "admin", "br", tenant=tenant)
    kim = token_for("rep-kim", "sales_rep", "eu", tenant=tenant, team="south")
    await ok(
        api.put(
            "/v1/compliance/policies",
            json={
                "default_region": "us",
                "access_grants": [{"from_region": "eu", "to_region": "br", "legal_basis": "SCC"}],
            },
            headers=boss,
        )
    )
    for user_id, team in (("rep-leo", "north"), ("rep-kim", "south")):
        await ok(api.put(f"/v1/users/{user_id}", json={"team": team}, headers=boss))
    pipeline = await ok(
        api.post(
            "/v1/pipelines",
            json={
                "name": "Sales",
                "stages": [
                    {"name": "Lead", "win_probability": 10},
                    {"name": "Won", "win_probability": 100, "kind": "won"},
                    {"name": "Lost", "win_probability": 0, "kind": "lost"},
                ],
            },
            headers=boss,
        ),
        201,
    )
    won_stage = next(s["id"] for s in pipeline["stages"] if s["kind"] == "won")

    async def client_of_leo(headers: dict[str, str], country: str) -> tuple[str, str]:
        contact = await ok(
            api.post(
                "/v1/contacts",
                json={
                    "first_name": "Client",
                    "owner_id": "rep-leo",
                    "address": {"country": country},
                },
                headers=headers,
            ),
            201,
        )
        deal = await ok(
            api.post(
                "/v1/deals",
                json={
                    "title": "Windows",
                    "contact_id": contact["id"],
                    "owner_id": "rep-leo",
                    "pipeline_id": pipeline["id"],
                    "amount": {"amount": "100.00", "currency": "EUR"},
                },
                headers=headers,
            ),
            201,
        )
        return contact["id"], deal["id"]

    eu_contact, eu_deal = await client_of_leo(boss, "DE")
    br_contact, br_deal = await client_of_leo(bruno, "BR")
    _, closed_deal = await client_of_leo(boss, "AT")
    await ok(api.post(f"/v1/deals/{closed_deal}/stage", json={"stage_id": won_stage}, headers=boss))
    task = await ok(
        api.post(
            "/v1/tasks",
            json={"title": "Call back", "assignee_id": "rep-leo", "deal_id": eu_deal},
            headers=boss,
        ),
        201,
    )

    # Who may do it, and what a request must name.
    refused = await api.post("/v1/users/rep-leo/reassign", json={"to_user": "rep-kim"}, headers=kim)
    assert refused.status_code == 403
    for body, field in (
        ({}, "to_user"),
        ({"to_user": "nobody"}, "to_user"),
        ({"to_team": "east"}, "to_team"),
    ):
        bad = await api.post("/v1/users/rep-leo/reassign", json=body, headers=boss)
        assert bad.status_code == 422, bad.text
        assert bad.json()["errors"][0]["field"] == field

    moved = await ok(
        api.post("/v1/users/rep-leo/reassign", json={"to_user": "rep-kim"}, headers=boss)
    )
    assert moved["to_users"] == ["rep-kim"]
    assert moved["moved"] == [
        {"region": "eu", "contacts": 2, "deals": 1, "tasks": 1},
        {"region": "br", "contacts": 1, "deals": 1, "tasks": 0},
    ]
    assert moved["total"] == {"contacts": 3, "deals": 2, "tasks": 1}
    # Kim, a sales rep of team south, now owns them; the won deal stays Leo's.
    assert (await ok(api.get(f"/v1/contacts/{eu_contact}", headers=kim)))["owner_id"] == "rep-kim"
    assert (await ok(api.get(f"/v1/tasks/{task['id']}", headers=kim)))["assignee_id"] == "rep-kim"

    async def kims_team() -> dict[str, Any] | None:
        deal = await ok(api.get(f"/v1/deals/{br_deal}", headers=bruno))
        return deal if deal["owner_team"] == "south" else None

    # The new owner's team, as for any owner change (the directory's word reaches each
    # region's copy as an event).
    deal = await eventually(kims_team, "the moved deal in Kim's team")
    assert deal["owner_id"] == "rep-kim"
    assert (await ok(api.get(f"/v1/deals/{closed_deal}", headers=boss)))["owner_id"] == "rep-leo"
    assert (await ok(api.get(f"/v1/contacts/{br_contact}", headers=bruno)))["owner_id"] == "rep-kim"
    # Once is enough: a second run finds nothing left.
    again = await ok(
        api.post("/v1/users/rep-leo/reassign", json={"to_user": "rep-kim"}, headers=boss)
    )
    assert again["total"] == {"contacts": 0, "deals": 0, "tasks": 0}
    # Audited by each service in each region.
    audit = await ok(
        api.get(
            "/v1/compliance/audit",
            params={"kind": "reassignment", "region": "eu,br"},
            headers=boss,
        )
    )
    assert {(r["service"], r["region"]) for r in audit["data"]} == {
        (s, r) for s in ("contacts", "deals", "tasks") for r in ("eu", "br")
    }
    assert all(r["action"] == "reassign.owner" and r["actor_id"] == "boss" for r in audit["data"])
    assert all(r["record_id"] == "rep-leo -> rep-kim" for r in audit["data"])
    assert "moved: deals 1" in {r["legal_basis"] for r in audit["data"] if r["region"] == "br"}


async def test_a_tenant_can_forbid_exports_to_sales_reps(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = tenant_name()
    boss = token_for("boss", "admin", "eu", tenant=tenant)
    rep = token_for("rep-kim", "sales_rep", "eu", tenant=tenant)
    manager = token_for("max", "manager", "eu", tenant=tenant, team="south")
    assert (await api.get("/v1/exports/contacts", headers=rep)).status_code == 200
    settings = await ok(
        api.put("/v1/integrations/settings", json={"forbid_sales_rep_exports": True}, headers=boss)
    )
    assert settings["forbid_sales_rep_exports"] is True
    assert (await ok(api.get("/v1/integrations/settings", headers=boss)))[
        "forbid_sales_rep_exports"
    ] is True
    for kind in ("contacts", "deals"):
        refused = await api.get(f"/v1/exports/{kind}", params={"format": "xlsx"}, headers=rep)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert (await api.get(f"/v1/exports/{kind}", headers=manager)).status_code == 200
        assert (await api.get(f"/v1/exports/{kind}", headers=boss)).status_code == 200
    # Only admins change it.
    denied = await api.put(
        "/v1/integrations/settings", json={"forbid_sales_rep_exports": False}, headers=rep
    )
    assert denied.status_code in (403, 404)


async def test_the_reps_day_in_their_zone_and_their_tasks_in_a_calendar(
    api: httpx.AsyncClient, token_for: Any, move_clock: Any
) -> None:
    tenant = tenant_name()
    boss = token_for("boss", "admin", "eu", tenant=tenant)
    ana = token_for("rep-ana", "sales_rep", "eu", tenant=tenant)
    zone = "Pacific/Auckland"  # half a day ahead of UTC: "today" differs from UTC's
    await ok(api.put("/v1/users/rep-ana", json={"time_zone": zone}, headers=boss))
    # Wednesday 10:00 in Auckland (Tuesday evening in UTC).
    move_clock.to(move_clock.next_local(zone, "10:00", weekdays=(3,)))
    today = clock.now().astimezone(ZoneInfo(zone)).date()

    def at(days: int, hhmm: str) -> str:
        return f"{(today + timedelta(days=days)).isoformat()}T{hhmm}"

    contact = await ok(
        api.post(
            "/v1/contacts",
            json={
                "first_name": "Zélia",
                "last_name": "Quintana",
                "phones": ["+49 30 5550199"],
                "address": {"country": "DE"},
            },
            headers=boss,
        ),
        201,
    )
    ids: dict[str, str] = {}
    for title, due_local in (
        ("overdue", at(0, "08:00")),
        ("today", at(0, "18:00")),
        ("tomorrow", at(1, "09:00")),
        ("next week", at(7, "09:00")),
        ("done", at(-1, "09:00")),
    ):
        body = {"title": title, "assignee_id": "rep-ana", "due_local": due_local, "time_zone": zone}
        if title == "today":
            body["contact_id"] = contact["id"]
        ids[title] = (await ok(api.post("/v1/tasks", json=body, headers=boss), 201))["id"]
    await ok(api.post(f"/v1/tasks/{ids['done']}/complete", headers=ana))
    await ok(
        api.post(
            "/v1/tasks", json={"title": "boss's own", "due_local": at(0, "12:00")}, headers=boss
        ),
        201,
    )

    async def titles(due: str) -> set[str]:
        found = await ok(api.get("/v1/tasks", params={"due": due}, headers=ana))
        return {t["title"] for t in found["data"]}

    assert await titles("today") == {"overdue", "today"}
    assert await titles("this_week") == {"overdue", "today", "tomorrow", "done"}
    assert await titles("overdue") == {"overdue"}
    bad = await api.get("/v1/tasks", params={"due": "yesterday"}, headers=ana)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "due"

    # The calendar feed: a secret URL, no token needed, only title, due time and link.
    made = await ok(api.post("/v1/me/calendar-feed", headers=ana), 201)
    assert made["url"].endswith(made["path"]) and made["path"].endswith(".ics")
    response = await api.get(made["path"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    events = Calendar.from_ical(response.content).walk("VEVENT")
    assert {str(e["summary"]) for e in events} == {"overdue", "today", "tomorrow", "next week"}
    today_event = next(e for e in events if str(e["summary"]) == "today")
    assert today_event["dtstart"].dt == datetime.fromisoformat(at(0, "18:00")).replace(
        tzinfo=ZoneInfo(zone)
    )
    assert str(today_event["url"]).endswith(f"/v1/tasks/{ids['today']}")
    for personal in (b"Quintana", b"Z\xc3\xa9lia", b"5550199", contact["id"].encode()):
        assert personal not in response.content
    # Rotating makes the old URL stop working; revoking stops the new one.
    rotated = await ok(api.post("/v1/me/calendar-feed", headers=ana), 201)
    assert rotated["path"] != made["path"]
    assert (await api.get(made["path"])).status_code == 404
    assert (await api.get(rotated["path"])).status_code == 200
    assert await ok(api.delete("/v1/me/calendar-feed", headers=ana)) == {"revoked": True}
    gone = await api.get(rotated["path"])
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    assert (
        await api.get("/public/calendar/cal_mars_0123456789abcdefghijkl.ics")
    ).status_code == 404
