"""Deals over gRPC: validation, ownership, updates, lists and stage moves."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from crm_api.crm.deals.v1 import deals_pb2 as pb
from crm_api.crm.events.v1 import deals_pb2 as events

pytestmark = pytest.mark.asyncio(loop_scope="session")
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def money(amount: str, currency: str = "EUR") -> pb.Money:
    return pb.Money(amount=amount, currency=currency)


async def test_a_deal_starts_in_the_first_open_stage_of_the_default_pipeline(
    client: Any, deals_events: Any
) -> None:
    contact = await client.contact()
    deal = await client.deal(
        contact.id,
        amount=money("1299.9"),
        source="web_form",
        expected_close_date="2026-12-24",
        custom_fields_json=json.dumps({"measurement_at": "2026-12-01T10:00"}),
    )
    assert deal.id.startswith("eu_") and deal.region == "eu"
    assert (deal.pipeline_id, deal.stage_id, deal.stage_name, deal.status) == (
        "default",
        "default-qualification",
        "Qualification",
        "open",
    )
    assert deal.amount == money("1299.90")  # the currency's two decimals, from a Decimal
    assert (deal.owner_id, deal.version, list(deal.history)) == ("u-admin", 1, [])
    assert json.loads(deal.custom_fields_json) == {"measurement_at": "2026-12-01T10:00"}
    fetched = await client.deals.GetDeal(pb.GetDealRequest(id=deal.id), metadata=client.admin)
    assert fetched == deal
    created = [
        e for e in await deals_events("eu", "deals.deal.created") if e.tenant_id == client.tenant
    ]
    assert len(created) == 1 and created[0].actor_id == "u-admin"


async def test_invalid_deals_are_refused_field_by_field(client: Any, refused: Any) -> None:
    contact = await client.contact()
    cases = [
        ({"amount": money("12", "EURO")}, {"amount.currency"}),
        ({"amount": money("12", "XYZ")}, {"amount.currency"}),
        ({"amount": money("1e3")}, {"amount.amount"}),  # plain decimals only
        ({"amount": money("-5")}, {"amount.amount"}),
        ({"amount": money("10.123")}, {"amount.amount"}),  # EUR has two decimals
        ({"amount": money("1000.5", "JPY")}, {"amount.amount"}),  # JPY has none
        ({"amount": money("", "EUR")}, {"amount.amount"}),
        ({"amount": money("12", "")}, {"amount.currency"}),
        ({"title": ""}, {"title"}),
        ({"expected_close_date": "24.12.2026"}, {"expected_close_date"}),
        ({"source": "carrier_pigeon"}, {"source"}),
        ({"custom_fields_json": "[1]"}, {"custom_fields_json"}),
        ({"custom_fields_json": '{"a": {"b": 1}}'}, {"custom_fields_json.a"}),
        ({"pipeline_id": "nope"}, {"pipeline_id"}),
        ({"stage_id": "nope"}, {"stage_id"}),
        ({"stage_id": "default-lost"}, {"lost_reason"}),
    ]
    for fields, expected in cases:
        got = await refused(client.deal(contact.id, **fields), INVALID)
        assert got == expected, fields
    # Links: well-formed, in this region, and existing in the contacts service.
    assert await refused(client.deal("nonsense"), INVALID) == {"contact_id"}
    assert await refused(client.deal("br_01JD0000000000000000000000"), INVALID) == {"contact_id"}
    assert await refused(client.deal("eu_01JD0000000000000000000000"), INVALID) == {"contact_id"}
    assert await refused(client.deal(""), INVALID) == {"contact_id"}
    got = await refused(
        client.deal(contact.id, company_id="eu_01JD0000000000000000000000"), INVALID
    )
    assert got == {"company_id"}
    # Several bad fields come back together, and nothing was written.
    got = await refused(client.deal(contact.id, title="", amount=money("1,5")), INVALID)
    assert got == {"title", "amount.amount"}
    listed = await client.deals.ListDeals(pb.ListDealsRequest(), metadata=client.admin)
    assert list(listed.deals) == []


async def test_sales_reps_see_their_own_deals_and_managers_their_teams(
    client: Any, refused: Any
) -> None:
    rep = client.as_("sales_rep", "u-rep", "north")
    other_rep = client.as_("sales_rep", "u-other", "north")
    manager = client.as_("manager", "u-boss", "north")
    other_manager = client.as_("manager", "u-south-boss", "south")
    contact = await client.contact(rep)
    deal = await client.deal(contact.id, rep)
    assert (deal.owner_id, deal.owner_team) == ("u-rep", "north")
    assert await refused(client.deal(contact.id, rep, owner_id="u-other"), INVALID) == {"owner_id"}
    # Another rep may not even link a deal to a contact they cannot see.
    assert await refused(client.deal(contact.id, other_rep), INVALID) == {"contact_id"}

    for who, sees in ((rep, True), (manager, True), (other_rep, False), (other_manager, False)):
        listed = await client.deals.ListDeals(pb.ListDealsRequest(), metadata=who)
        assert [d.id for d in listed.deals] == ([deal.id] if sees else [])
        if not sees:
            await refused(
                client.deals.GetDeal(pb.GetDealRequest(id=deal.id), metadata=who),
                grpc.StatusCode.NOT_FOUND,
            )
            await refused(client.move(deal.id, "default-proposal", who), grpc.StatusCode.NOT_FOUND)


async def test_update_changes_only_the_masked_fields(client: Any, refused: Any) -> None:
    contact = await client.contact()
    deal = await client.deal(contact.id, amount=money("100"), description="first")
    mask = field_mask_pb2.FieldMask(paths=["amount", "custom_fields_json", "expected_close_date"])
    updated = await client.deals.UpdateDeal(
        pb.UpdateDealRequest(
            deal=pb.Deal(
                id=deal.id,
                title="ignored: not in the mask",
                amount=money("250.5", "usd"),
                custom_fields_json='{"floor": 3, "measurement_at": "2026-12-01T10:00"}',
                expected_close_date="2027-01-31",
                version=1,
            ),
            update_mask=mask,
        ),
        metadata=client.admin,
    )
    assert updated.title == deal.title and updated.description == "first"
    assert updated.amount == money("250.50", "USD")
    assert updated.expected_close_date == "2027-01-31" and updated.version == 2
    again = await client.deals.UpdateDeal(
        pb.UpdateDealRequest(
            deal=pb.Deal(id=deal.id, custom_fields_json='{"floor": null}'),
            update_mask=field_mask_pb2.FieldMask(paths=["custom_fields_json"]),
        ),
        metadata=client.admin,
    )
    assert json.loads(again.custom_fields_json) == {"measurement_at": "2026-12-01T10:00"}
    stale = pb.UpdateDealRequest(
        deal=pb.Deal(id=deal.id, title="x", version=1),
        update_mask=field_mask_pb2.FieldMask(paths=["title"]),
    )
    await refused(client.deals.UpdateDeal(stale, metadata=client.admin), grpc.StatusCode.ABORTED)
    for paths in (["stage_id"], []):
        request = pb.UpdateDealRequest(
            deal=pb.Deal(id=deal.id), update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        assert await refused(client.deals.UpdateDeal(request, metadata=client.admin), INVALID)


async def test_list_filters_and_pages_newest_first(client: Any, refused: Any) -> None:
    contact = await client.contact()
    other = await client.contact()
    made = [(await client.deal(contact.id, title=f"deal {i}")).id for i in range(5)]
    unrelated = await client.deal(other.id)
    await client.move(made[0], "default-won")
    pages: list[str] = []
    token = ""
    while True:
        page = await client.deals.ListDeals(
            pb.ListDealsRequest(contact_id=contact.id, page_size=2, page_token=token),
            metadata=client.admin,
        )
        pages.extend(d.id for d in page.deals)
        token = page.next_page_token
        if not token:
            break
    assert pages == sorted(made, reverse=True)
    won = await client.deals.ListDeals(pb.ListDealsRequest(status="won"), metadata=client.admin)
    assert [d.id for d in won.deals] == [made[0]]
    assert unrelated.id not in pages
    await refused(
        client.deals.ListDeals(pb.ListDealsRequest(status="maybe"), metadata=client.admin), INVALID
    )


async def test_moves_are_validated(client: Any, refused: Any, deals_events: Any) -> None:
    other = await client.pipeline(
        pb.Stage(name="Elsewhere"), pb.Stage(name="W", kind="won"), pb.Stage(name="L", kind="lost")
    )
    rep = client.as_("sales_rep", "u-rep", "north")
    manager = client.as_("manager", "u-boss", "north")
    contact = await client.contact(rep)
    deal = await client.deal(contact.id, rep, amount=money("500"))

    assert await refused(client.move(deal.id, other.stages[0].id, rep), INVALID) == {"stage_id"}
    assert await refused(client.move(deal.id, "", rep), INVALID) == {"stage_id"}
    assert await refused(client.move(deal.id, "default-lost", rep), INVALID) == {"lost_reason"}
    lost = await client.move(deal.id, "default-lost", rep, lost_reason="too expensive")
    assert (lost.status, lost.lost_reason, lost.version) == ("lost", "too expensive", 2)
    assert lost.HasField("closed_at")
    # Closed: only a manager reopens it.
    await refused(client.move(deal.id, "default-proposal", rep), grpc.StatusCode.PERMISSION_DENIED)
    await refused(client.move(deal.id, "default-won", rep), grpc.StatusCode.PERMISSION_DENIED)
    reopened = await client.move(deal.id, "default-proposal", manager)
    assert (reopened.status, reopened.lost_reason, reopened.HasField("closed_at")) == (
        "open",
        "",
        False,
    )
    won = await client.move(deal.id, "default-won", rep)
    assert won.status == "won"
    assert [(h.from_stage_id, h.to_stage_id, h.moved_by) for h in won.history] == [
        ("default-qualification", "default-lost", "u-rep"),
        ("default-lost", "default-proposal", "u-boss"),
        ("default-proposal", "default-won", "u-rep"),
    ]
    assert all(h.HasField("moved_at") for h in won.history)

    mine = [e for e in await deals_events("eu", "deals.deal.>") if e.tenant_id == client.tenant]
    types = [e.event_type for e in mine]
    assert types.count("deals.deal.stage_changed") == 3
    assert types.count("deals.deal.lost") == 1 and types.count("deals.deal.won") == 1
    changed = events.DealStageChanged()
    next(e for e in mine if e.event_type == "deals.deal.stage_changed").payload.Unpack(changed)
    assert (changed.to_stage_kind, changed.amount, changed.currency) == ("lost", "500.00", "EUR")
    assert (changed.owner_id, changed.contact_id, changed.win_probability) == (
        "u-rep",
        contact.id,
        0,
    )


async def test_concurrent_moves_leave_one_consistent_history(client: Any) -> None:
    contact = await client.contact()
    deal = await client.deal(contact.id)
    results = await asyncio.gather(
        client.move(deal.id, "default-proposal", expected_version=1),
        client.move(deal.id, "default-negotiation", expected_version=1),
        return_exceptions=True,
    )
    moved = [r for r in results if isinstance(r, pb.Deal)]
    failed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(moved) == 1 and len(failed) == 1, results
    assert failed[0].code() == grpc.StatusCode.ABORTED
    assert "changed meanwhile" in (failed[0].details() or "")
    final = await client.deals.GetDeal(pb.GetDealRequest(id=deal.id), metadata=client.admin)
    assert final.version == 2 and len(final.history) == 1
    assert final.history[0].to_stage_id == final.stage_id == moved[0].stage_id

    # Without expected versions both moves land, one after the other, as a chain.
    results = await asyncio.gather(
        client.move(deal.id, "default-needs-analysis"),
        client.move(deal.id, "default-qualification"),
    )
    final = await client.deals.GetDeal(pb.GetDealRequest(id=deal.id), metadata=client.admin)
    chain = [(h.from_stage_id, h.to_stage_id) for h in final.history]
    assert len(chain) == 3 and final.version == 4
    assert all(chain[i][1] == chain[i + 1][0] for i in range(len(chain) - 1))


async def test_a_move_merges_custom_fields_and_a_repeated_move_is_harmless(client: Any) -> None:
    contact = await client.contact()
    deal = await client.deal(contact.id, custom_fields_json='{"floor": 2}')
    moved = await client.move(
        deal.id, "default-proposal", custom_fields_json='{"measurement_at": "2026-12-01T10:00"}'
    )
    assert json.loads(moved.custom_fields_json) == {
        "floor": 2,
        "measurement_at": "2026-12-01T10:00",
    }
    again = await client.move(deal.id, "default-proposal")
    assert again.version == moved.version and len(again.history) == 1
