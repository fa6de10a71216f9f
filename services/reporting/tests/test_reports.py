"""Reports through the gateway, built from the events of real deals, tasks and calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import timestamp_pb2
from ulid import ULID

from crm_api.crm.events.v1 import deals_pb2 as deal_events
from crm_api.crm.events.v1 import integrations_pb2
from crm_api.crm.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from crm_cli.cluster import Cluster
from crm_kit import clock
from crm_kit.context import Principal

from .conftest import REGIONS, Tenant, envelope, eventually, ok


def _count(report: dict[str, Any], stage: str, key: str = "deals") -> int:
    """A funnel figure while waiting: 0 until the stage shows at all."""
    rows = [r for r in report["data"] if r["stage"] == stage]
    return int(rows[0][key]) if rows else 0


def _row(report: dict[str, Any], **match: Any) -> dict[str, Any]:
    rows = [r for r in report["data"] if all(r.get(k) == v for k, v in match.items())]
    assert len(rows) == 1, (match, report["data"])
    return rows[0]


async def test_funnel_win_rate_revenue_and_forecast_follow_deals(
    crm: Tenant, move_clock: Any
) -> None:
    # Noon UTC: the whole test falls on one day, whatever the hour the suite runs at.
    move_clock.to(move_clock.next_local("UTC", "12:00"))
    today = clock.now().date()
    close = (today + timedelta(days=40)).isoformat()
    await crm.rate("USD", "0.5", (today - timedelta(days=1)).isoformat())
    a = await crm.deal("eu", amount="100.00", close=close, source="web_form")
    b = await crm.deal("us", amount="300.00", currency="USD", close=close)
    c = await crm.deal("br", amount="50.00", currency="BRL")  # no BRL rate
    await crm.move(a, "Qualified")
    await crm.move(a, "Proposal")
    await crm.move(b, "Qualified")
    await crm.move(b, "Won")
    await crm.move(c, "Lost")

    async def funnel_ready() -> dict[str, Any] | None:
        report = await crm.report("funnel")
        done = (
            _count(report, "Won") == 1
            and _count(report, "Lost") == 1
            and _count(report, "Proposal") == 1
            and _count(report, "Lead", "entered") == 3
        )
        return report if done else None

    funnel = await eventually(funnel_ready, what="the funnel to show the moves")
    assert funnel["regions"] == REGIONS
    assert funnel["reporting_currency"] == "EUR"
    lead = _row(funnel, stage="Lead")
    assert (lead["deals"], lead["entered"], lead["conversion_to_next"]) == (0, 3, "0.6667")
    proposal = _row(funnel, stage="Proposal")
    assert (proposal["deals"], proposal["value"], proposal["entered"]) == (1, "100.00", 1)
    assert _row(funnel, stage="Won")["value"] == "150.00"  # 300 USD at 0.5
    # a went on to Proposal, b skipped it and won: both converted from Qualified.
    assert _row(funnel, stage="Qualified")["conversion_to_next"] == "1.0000"

    win = (await crm.report("win_rate"))["data"][0]
    assert win["deals_won"] == 1 and win["deals_lost"] == 1
    assert win["win_rate"] == "0.5000" and win["value_won"] == "150.00"
    assert win["average_deal_size"] == "150.00" and win["cycle_days_median"] == 0

    revenue = await crm.report("revenue", granularity="day")
    assert revenue["data"] == [
        {"period": today.isoformat(), "granularity": "day", "deals": 1, "value": "150.00"}
    ]
    # The lost BRL deal has no rate: named, not guessed.
    win_all = await crm.report("win_rate")
    assert {"currency": "BRL", "on": today.isoformat()} in win_all["missing_rates"]

    forecast = await crm.report("forecast")
    assert forecast["data"] == [
        {"month": close[:7], "deals": 1, "value": "100.00", "weighted": "60.00"}
    ]
    sources = await crm.report("lead_sources")
    assert _row(sources, source="web_form") == {
        "source": "web_form",
        "deals": 1,
        "won": 0,
        "lost": 0,
        "conversion_to_won": "0.0000",
    }
    # One region only, and a period that excludes everything.
    eu_only = await crm.report("funnel", region="eu")
    assert eu_only["regions"] == ["eu"] and _row(eu_only, stage="Lead")["entered"] == 1
    later = (today + timedelta(days=1)).isoformat()
    empty = await crm.report("win_rate", **{"from": later})
    assert empty["data"][0]["deals_won"] == 0 and empty["data"][0]["win_rate"] is None


async def test_funnel_conversion_counts_deals_that_skip_a_stage_once(crm: Tenant) -> None:
    """A deal converts from a stage when it reaches any later non-lost stage: deals that
    jump over Qualified used to read as 300 % conversion from it."""
    careful = await crm.deal("eu")
    await crm.move(careful, "Qualified")
    await crm.move(careful, "Proposal")
    for _ in range(2):
        await crm.move(await crm.deal("eu"), "Proposal")  # Qualified skipped
    skipper = await crm.deal("eu")
    await crm.move(skipper, "Won")  # straight from Lead to Won
    await crm.move(await crm.deal("eu"), "Lost")

    async def settled() -> dict[str, Any] | None:
        report = await crm.report("funnel")
        done = (
            _count(report, "Proposal") == 3
            and _count(report, "Won") == 1
            and _count(report, "Lost") == 1
        )
        return report if done else None

    funnel = await eventually(settled, what="the funnel to show the moves")
    conversion = {r["stage"]: r["conversion_to_next"] for r in funnel["data"]}
    entered = {r["stage"]: r["entered"] for r in funnel["data"]}
    assert entered == {"Lead": 5, "Qualified": 1, "Proposal": 3, "Won": 1, "Lost": 1}
    # Lead: 4 of 5 went on (one lost); Qualified: its one deal reached Proposal;
    # Proposal: none of the three moved on yet; Won and Lost have no next stage.
    assert conversion == {
        "Lead": "0.8000",
        "Qualified": "1.0000",
        "Proposal": "0.0000",
        "Won": None,
        "Lost": None,
    }


async def test_lost_reasons_per_reason_period_and_team(crm: Tenant, move_clock: Any) -> None:
    # Noon UTC: the whole test falls on one day, whatever the hour the suite runs at.
    move_clock.to(move_clock.next_local("UTC", "12:00"))
    today = clock.now().date()
    await crm.rate("USD", "0.5", (today - timedelta(days=1)).isoformat())
    # The tenant's categories: events and reports carry a category, never the free text
    # of a reason (which may name people); any other wording counts as "other".
    settings = await ok(
        crm.api.put(
            "/v1/deal-settings",
            json={"reporting_currency": "EUR", "lost_reasons": ["Price", "chose a  competitor"]},
            headers=crm.admin["eu"],
        )
    )
    assert settings["lost_reasons"] == ["price", "chose a competitor"]
    # A PUT of the currency alone keeps them.
    await ok(
        crm.api.put(
            "/v1/deal-settings", json={"reporting_currency": "EUR"}, headers=crm.admin["eu"]
        )
    )

    async def lose(deal: dict[str, Any], reason: str) -> None:
        region = deal["id"].split("_", 1)[0]
        await ok(
            crm.api.post(
                f"/v1/deals/{deal['id']}/stage",
                json={"stage_id": crm.stage["Lost"], "lost_reason": reason},
                headers=crm.admin[region],
            )
        )

    await lose(await crm.deal("eu", amount="100.00"), "Price")
    await lose(await crm.deal("eu", amount="50.00", owner="rep-b"), "  price ")
    await lose(await crm.deal("us", amount="300.00", currency="USD"), "Chose a competitor")
    await lose(
        await crm.deal("eu", amount="40.00", owner="rep-c", team="south"), "Moved to Geheimstadt"
    )
    await crm.move(await crm.deal("eu", amount="999.00"), "Won")

    async def all_lost() -> dict[str, Any] | None:
        report = await crm.report("lost-reasons")
        return report if sum(r["deals"] for r in report["data"]) == 4 else None

    report = await eventually(all_lost, what="four lost deals")
    assert report["report"] == "lost_reasons"
    month = f"{today.year}-{today.month:02d}"
    assert report["data"] == [
        {"period": month, "granularity": "month", "reason": "price", "deals": 2, "value": "150.00"},
        {
            "period": month,
            "granularity": "month",
            "reason": "chose a competitor",
            "deals": 1,
            "value": "150.00",
        },
        {"period": month, "granularity": "month", "reason": "other", "deals": 1, "value": "40.00"},
    ]
    north = await crm.report("lost-reasons", team="north", granularity="day")
    assert {(r["period"], r["reason"], r["deals"]) for r in north["data"]} == {
        (today.isoformat(), "price", 2),
        (today.isoformat(), "chose a competitor", 1),
    }
    later = (today + timedelta(days=1)).isoformat()
    assert (await crm.report("lost_reasons", **{"from": later}))["data"] == []
    # A manager of south sees their team's only; CSV like the other reports.
    south = crm.user("boss-south", "manager", team="south")
    response = await crm.api.get(
        "/v1/reports/lost-reasons", params={"format": "csv"}, headers=south
    )
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines() == [
        "period,granularity,reason,deals,value",
        f"{month},month,other,1,40.00",
    ]


async def test_amount_owner_and_close_date_changes_move_the_numbers(
    crm: Tenant, move_clock: Any
) -> None:
    # Noon UTC: the whole test falls on one day, whatever the hour the suite runs at.
    move_clock.to(move_clock.next_local("UTC", "12:00"))
    today = clock.now().date()
    deal = await crm.deal("eu", amount="100.00", close=(today + timedelta(days=5)).isoformat())
    later = (today + timedelta(days=70)).isoformat()
    await ok(
        crm.api.patch(
            f"/v1/deals/{deal['id']}",
            json={
                "amount": {"amount": "250.00", "currency": "EUR"},
                "owner_id": "rep-b",
                "expected_close_date": later,
            },
            headers=crm.admin["eu"],
        )
    )

    async def moved() -> dict[str, Any] | None:
        report = await crm.report("forecast", owner="rep-b")
        return report if report["data"] else None

    forecast = await eventually(moved, what="the forecast to follow the update")
    assert forecast["data"] == [
        {"month": later[:7], "deals": 1, "value": "250.00", "weighted": "25.00"}
    ]
    assert (await crm.report("forecast", owner="rep-a"))["data"] == []


async def test_a_sales_rep_sees_only_their_own_deals_and_a_manager_their_team(
    crm: Tenant,
) -> None:
    await crm.deal("eu", owner="rep-a", team="north", amount="10.00")
    await crm.deal("eu", owner="rep-b", team="north", amount="20.00")
    await crm.deal("eu", owner="rep-c", team="south", amount="40.00")
    rep_a = crm.user("rep-a", "sales_rep", team="north")
    north = crm.user("boss-north", "manager", team="north")

    async def all_in() -> bool:
        report = await crm.report("funnel")
        return _count(report, "Lead") == 3

    await eventually(all_in, what="three deals in the funnel")
    assert _row(await crm.report("funnel", rep_a), stage="Lead")["value"] == "10.00"
    assert _row(await crm.report("funnel", north), stage="Lead")["value"] == "30.00"
    assert _row(await crm.report("funnel"), stage="Lead")["value"] == "70.00"
    # Asking for someone else's numbers is refused, not silently narrowed.
    response = await crm.api.get("/v1/reports/funnel", params={"owner": "rep-c"}, headers=rep_a)
    assert response.status_code == 403
    response = await crm.api.get("/v1/reports/funnel", params={"team": "south"}, headers=north)
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-05-02", "to": "2026-05-01"}, "to"),
        ({"granularity": "fortnight"}, "granularity"),
        ({"region": "mars"}, "region"),
        ({"format": "xls"}, "format"),
    ],
)
async def test_bad_filters_are_refused_naming_the_field(
    api: httpx.AsyncClient, token_for: Any, params: dict[str, str], field: str
) -> None:
    response = await api.get(
        "/v1/reports/revenue", params=params, headers=token_for("boss", "admin", "eu")
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_unknown_report_and_charts_of_tables(api: httpx.AsyncClient, token_for: Any) -> None:
    admin = token_for("boss", "admin", "eu")
    assert (await api.get("/v1/reports/pie", headers=admin)).status_code == 404
    response = await api.get("/v1/reports/activity", params={"format": "png"}, headers=admin)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "format"


async def test_csv_svg_and_png(crm: Tenant) -> None:
    deal = await crm.deal("eu", amount="120.00")
    await crm.move(deal, "Won")

    async def won() -> bool:
        return bool((await crm.report("revenue"))["data"])

    await eventually(won, what="revenue")
    response = await crm.api.get(
        "/v1/reports/revenue", params={"format": "csv"}, headers=crm.admin["eu"]
    )
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "period,granularity,deals,value"
    assert lines[1].endswith(",month,1,120.00")
    svg = await crm.api.get("/v1/reports/funnel", params={"format": "svg"}, headers=crm.admin["eu"])
    assert svg.headers["content-type"] == "image/svg+xml" and b"<svg" in svg.content
    assert b"Won" in svg.content
    png = await crm.api.get(
        "/v1/reports/revenue", params={"format": "png"}, headers=crm.admin["eu"]
    )
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")


def _call(owner: str, started: timestamp_pb2.Timestamp) -> integrations_pb2.CallLogged:
    return integrations_pb2.CallLogged(
        call_id="call-1",
        contact_id="",
        owner_id=owner,
        direction="outbound",
        duration_seconds=60,
        started_at=started,
    )


async def test_activity_counts_calls_once_even_when_redelivered(
    crm: Tenant, publish: Callable[..., Awaitable[None]]
) -> None:
    started = timestamp_pb2.Timestamp()
    started.FromDatetime(clock.now())
    event = envelope(crm.name, "integrations.call.logged", _call("rep-a", started))
    # The same event twice under different message ids: JetStream keeps both, so the
    # consumer really sees a redelivery; its inbox makes the second a no-op.
    await publish(event)
    await publish(event, msg_id=f"{event.event_id}-again")
    second = envelope(crm.name, "integrations.call.logged", _call("rep-a", started))
    await publish(second)

    async def counted() -> dict[str, Any] | None:
        report = await crm.report("activity", region="eu")
        rows = [r for r in report["data"] if r["owner_id"] == "rep-a"]
        return rows[0] if rows and rows[0]["calls"] >= 2 else None

    row = await eventually(counted, what="two calls")
    assert row["calls"] == 2


async def test_a_stage_change_that_arrives_before_its_deal_is_applied_once_the_deal_is_known(
    crm: Tenant, publish: Callable[..., Awaitable[None]], db: Any
) -> None:
    """After a fault the deal's creation can be redelivered after its first move (found by
    the fault campaign): the move waits for the deal instead of being dropped."""
    deal_id = f"eu_chaos{crm.name[-8:]}"
    # As the deals service writes them: created a minute before it was won.
    created_at, moved_at = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp()
    created_at.FromDatetime(clock.now() - timedelta(minutes=1))
    moved_at.FromDatetime(clock.now())
    common = {
        "deal_id": deal_id,
        "pipeline_id": "p-1",
        "owner_id": "rep-a",
        "currency": "EUR",
        "created_at": created_at,
    }
    moved = envelope(
        crm.name,
        "deals.deal.stage_changed",
        deal_events.DealStageChanged(
            **common,
            from_stage_id="s-lead",
            to_stage_id="s-won",
            to_stage_kind="won",
            amount="100",
            moved_at=moved_at,
        ),
    )
    created = envelope(
        crm.name,
        "deals.deal.created",
        deal_events.DealCreated(**common, stage_id="s-lead", stage_kind="open", amount="100"),
    )
    await publish(moved)
    await publish(created)

    async def applied() -> list[Any] | None:
        rows = await db(
            "reporting",
            "eu",
            "SELECT stage_id, status, reached FROM rm_deals WHERE deal_id = $1",
            deal_id,
        )
        return rows if rows and rows[0]["status"] == "won" else None

    rows = await eventually(applied, within=90, what="the move applied after the creation")
    assert rows[0]["stage_id"] == "s-won"
    assert list(rows[0]["reached"]) == ["s-lead", "s-won"]


async def test_an_older_stage_change_arriving_after_a_newer_one_leaves_the_deal_where_it_is(
    crm: Tenant, publish: Callable[..., Awaitable[None]], db: Any
) -> None:
    """Under redelivery (a consumer killed mid-batch, NATS restarted) a deal's move into
    Qualified can arrive after its later win (found by the fault campaign): the report keeps
    the deal won, and the funnel still counts each stage it entered once."""
    deal_id = f"eu_{ULID()}"
    stage = crm.stage
    created_at = clock.now() - timedelta(minutes=3)

    def at(when: datetime) -> timestamp_pb2.Timestamp:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(when)
        return stamp

    common = {
        "deal_id": deal_id,
        "pipeline_id": crm.pipeline["id"],
        "owner_id": "rep-a",
        "owner_team": "north",
        "amount": "100.00",
        "currency": "EUR",
        "created_at": at(created_at),
    }
    created = envelope(
        crm.name,
        "deals.deal.created",
        deal_events.DealCreated(**common, stage_id=stage["Lead"], stage_kind="open"),
    )
    qualified = envelope(
        crm.name,
        "deals.deal.stage_changed",
        deal_events.DealStageChanged(
            **common,
            from_stage_id=stage["Lead"],
            to_stage_id=stage["Qualified"],
            to_stage_kind="open",
            win_probability=30,
            moved_at=at(created_at + timedelta(minutes=1)),
        ),
    )
    won = envelope(
        crm.name,
        "deals.deal.stage_changed",
        deal_events.DealStageChanged(
            **common,
            from_stage_id=stage["Qualified"],
            to_stage_id=stage["Won"],
            to_stage_kind="won",
            win_probability=100,
            moved_at=at(created_at + timedelta(minutes=2)),
        ),
    )
    await publish(created)
    await publish(won)
    await publish(qualified)  # the older move, last
    await publish(qualified, msg_id=f"{qualified.event_id}-again")  # and redelivered

    async def both_applied() -> dict[str, Any] | None:
        report = await crm.report("funnel", region="eu")
        return report if _count(report, "Qualified", "entered") == 1 else None

    funnel = await eventually(both_applied, within=90, what="both moves applied")
    entered = {r["stage"]: r["entered"] for r in funnel["data"]}
    now_in = {r["stage"]: r["deals"] for r in funnel["data"]}
    assert entered == {"Lead": 1, "Qualified": 1, "Proposal": 0, "Won": 1, "Lost": 0}
    assert now_in == {"Lead": 0, "Qualified": 0, "Proposal": 0, "Won": 1, "Lost": 0}
    win = (await crm.report("win_rate", region="eu"))["data"][0]
    assert (win["deals_won"], win["value_won"]) == (1, "100.00")
    [row] = await db(
        "reporting",
        "eu",
        "SELECT stage_id, status, reached FROM rm_deals WHERE deal_id = $1",
        deal_id,
    )
    assert (row["stage_id"], row["status"]) == (stage["Won"], "won")
    assert sorted(row["reached"]) == sorted([stage["Lead"], stage["Won"], stage["Qualified"]])


async def test_activity_counts_calls_on_the_timeline_for_who_made_or_took_them(
    crm: Tenant,
) -> None:
    """The README's call logged on the timeline counts for the rep who logged it; a
    telephony call for the agent the provider names, else for the contact's owner."""
    admin = crm.admin["eu"]
    contact = await ok(
        crm.api.post(
            "/v1/contacts",
            json={
                "first_name": "Jonas",
                "phones": ["+49 30 5550101"],
                "owner_id": "owner-o",
                "address": {"country": "DE"},
            },
            headers=admin,
        ),
        201,
    )
    # A rep logs a call by hand (the README's example); a manager of another name too.
    caller_c = crm.user("caller-c", "admin")
    await ok(
        crm.api.post(
            f"/v1/contacts/{contact['id']}/notes",
            json={"kind": "call", "direction": "outbound", "body": "Wants three windows."},
            headers=caller_c,
        ),
        201,
    )
    provider = await ok(
        crm.api.post(
            "/v1/integrations/providers",
            json={"kind": "telephony", "name": "PBX", "default_country": "DE"},
            headers=admin,
        ),
        201,
    )
    secret = {"X-Integration-Secret": provider["secret"]}
    call = {"direction": "inbound", "from": "030 5550101", "to": "+49 30 1111", "duration": 30}
    taken = await ok(
        crm.api.post(
            provider["webhook_url"],
            json={**call, "call_id": "t-1", "user_id": "agent-t"},
            headers=secret,
        )
    )
    assert taken["contact_id"] == contact["id"] and taken["new_lead"] is False
    await ok(crm.api.post(provider["webhook_url"], json={**call, "call_id": "t-2"}, headers=secret))
    notes = await ok(crm.api.get(f"/v1/contacts/{contact['id']}/notes", headers=admin))
    assert sorted(e["author_id"] for e in notes["data"]) == ["agent-t", "caller-c", "owner-o"]

    async def counted() -> dict[str, int] | None:
        report = await crm.report("activity", region="eu")
        calls = {r["owner_id"]: r["calls"] for r in report["data"] if r["calls"]}
        return calls if sum(calls.values()) >= 3 else None

    calls = await eventually(counted, what="three calls in the activity report")
    assert calls == {"caller-c": 1, "agent-t": 1, "owner-o": 1}


async def test_rebuild_from_the_stream_equals_the_live_read_model(
    crm: Tenant, db: Any, cluster: Cluster, caught_up: Any
) -> None:
    deals = [await crm.deal(r, amount=f"{10 * (i + 1)}.00") for i, r in enumerate(REGIONS * 2)]
    await crm.move(deals[0], "Won")
    await crm.move(deals[1], "Qualified")
    await crm.move(deals[1], "Lost")
    await crm.move(deals[2], "Proposal")

    async def settled() -> list[dict[str, Any]] | None:
        reports = [await crm.report(n) for n in ("funnel", "win_rate", "forecast")]
        win = reports[1]["data"][0]
        funnel = reports[0]
        done = (
            (win["deals_won"], win["deals_lost"]) == (1, 1)
            and _count(funnel, "Lead", "entered") == 6
            and _count(funnel, "Proposal") == 1
        )
        return reports if done else None

    await eventually(settled, what="the live read model")
    # The reports are read one after another while events still arrive (a move can land
    # between the funnel and the win rate): compare with the model once nothing is left.
    await caught_up()
    live = await settled()
    assert live is not None
    # Damage the live tables; the rebuild must restore them from the stream alone.
    for region in REGIONS:
        await db("reporting", region, "DELETE FROM agg_stage_now WHERE tenant_id = $1", crm.name)
    rebuilt = await ok(crm.api.post("/v1/reports/rebuild", headers=crm.admin["eu"]))
    assert {r["region"] for r in rebuilt["regions"]} == set(REGIONS)
    assert all(r["events_applied"] >= 2 for r in rebuilt["regions"])
    after = [await crm.report(n) for n in ("funnel", "win_rate", "forecast")]
    for before, rebuilt_report in zip(live, after, strict=True):
        assert rebuilt_report == before
    # Live consumption goes on after the swap.
    await crm.move(deals[3], "Won")

    async def followed() -> bool:
        return bool((await crm.report("win_rate"))["data"][0]["deals_won"] == 2)

    await eventually(followed, what="the live consumer after the rebuild")
    forbidden = await crm.api.post("/v1/reports/rebuild", headers=crm.user("rep-a", "sales_rep"))
    assert forbidden.status_code == 403


async def test_only_aggregates_cross_regions(crm: Tenant, cluster: Cluster, db: Any) -> None:
    """What a region sends the gateway for the worldwide view, byte for byte: no contact,
    company or deal id, no name; owner user ids only in the per-user activity report."""
    deals = [await crm.deal(r, owner=f"owner-{r}") for r in REGIONS]
    await crm.move(deals[0], "Won")

    async def in_all() -> bool:
        report = await crm.report("funnel")
        return _count(report, "Lead", "entered") == 3

    await eventually(in_all, what="deals of every region")
    personal = {d["id"] for d in deals} | set(crm.contacts.values()) | {"Kai", "Deal"}
    owners = {f"owner-{r}" for r in REGIONS}
    principal = Principal(tenant_id=crm.name, user_id="boss", roles=("admin",), home_region="eu")
    for region in REGIONS:
        async with grpc.aio.insecure_channel(cluster.endpoints["reporting"][region]) as channel:
            stub = reporting_pb2_grpc.ReportingServiceStub(channel)
            for name in ("funnel", "win_rate", "revenue", "activity", "lead_sources", "forecast"):
                part = await stub.GetReport(
                    reporting_pb2.GetReportRequest(name=name),
                    metadata=principal.to_metadata(),
                )
                wire = part.SerializeToString()
                text = str(part)
                for value in personal:
                    assert value.encode() not in wire, (region, name, value)
                if name != "activity":
                    for owner in owners:
                        assert owner.encode() not in wire, (region, name, owner)
                assert "contact" not in text and "deal_id" not in text
