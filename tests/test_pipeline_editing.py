"""An admin edits a pipeline in use (PATCH /v1/pipelines/{id}): renames, reorders, adds
and removes stages, and the deals, the board and the funnel follow, because stage ids
stay what they were. Through the gateway, with every region up on real engines."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")


def stages(*names: str) -> list[dict[str, Any]]:
    kinds = {"Won": "won", "Lost": "lost"}
    return [{"name": n, "kind": kinds.get(n, "open")} for n in names]


async def new_pipeline(api: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    created = await api.post(
        "/v1/pipelines",
        json={"name": "Windows", "stages": stages("Lead", "Visit", "Offer", "Won", "Lost")},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def new_deal(
    api: httpx.AsyncClient,
    who: dict[str, str],
    pipeline: dict[str, Any],
    stage: int,
    country: str = "DE",
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    contact = await api.post(
        "/v1/contacts",
        json={"first_name": "Pia", "last_name": tag, "address": {"country": country}},
        headers=who,
    )
    assert contact.status_code == 201, contact.text
    created = await api.post(
        "/v1/deals",
        json={
            "contact_id": contact.json()["id"],
            "title": f"Bay window {tag}",
            "pipeline_id": pipeline["id"],
            "stage_id": pipeline["stages"][stage]["id"],
            "amount": {"amount": "1200.00", "currency": "EUR"},
        },
        headers=who,
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


def edit(pipeline: dict[str, Any], order: list[int], **changes: Any) -> list[dict[str, Any]]:
    """The pipeline's stages as a PATCH body, in `order`, with `changes[i]` merged in."""
    keep = ("id", "name", "kind", "win_probability", "required_fields")
    out = []
    for i in order:
        stage = {k: v for k, v in pipeline["stages"][i].items() if k in keep}
        stage.update(changes.get(f"s{i}", {}))
        out.append(stage)
    return out


async def test_a_renamed_and_reordered_pipeline_keeps_its_deals_board_and_funnel(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"pl{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    pipeline = await new_pipeline(api, admin)
    deal = await new_deal(api, admin, pipeline, 1)  # in "Visit"
    ids = [s["id"] for s in pipeline["stages"]]

    body = edit(pipeline, [0, 2, 1, 3, 4], s1={"name": "Measurement", "win_probability": 40})
    body.insert(3, {"name": "Installation", "win_probability": 90})
    changed = await api.patch(
        f"/v1/pipelines/{pipeline['id']}",
        json={"name": "Windows and doors", "stages": body},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert after["name"] == "Windows and doors"
    assert [s["name"] for s in after["stages"]] == [
        "Lead",
        "Offer",
        "Measurement",
        "Installation",
        "Won",
        "Lost",
    ]
    assert [s["position"] for s in after["stages"]] == list(range(6))
    # The old stages keep their ids; the new one got one.
    assert [s["id"] for s in after["stages"]][:3] == [ids[0], ids[2], ids[1]]
    assert after["stages"][3]["id"] not in ids

    # Every region has the same pipeline (a deal anywhere refers to it).
    for region in ("eu", "br", "us"):
        listed = await api.get(
            "/v1/pipelines", headers=token_for("boss", "admin", region, tenant=tenant)
        )
        (mine,) = [p for p in listed.json()["data"] if p["id"] == pipeline["id"]]
        assert mine["stages"] == after["stages"]

    again = await api.get(f"/v1/deals/{deal['id']}", headers=admin)
    assert again.json()["stage_id"] == ids[1]
    assert again.json()["stage_name"] == "Measurement"

    board = await api.get(f"/v1/pipelines/{pipeline['id']}/board", headers=admin)
    assert board.status_code == 200, board.text
    columns = board.json()["columns"]
    assert [c["stage"]["name"] for c in columns][:3] == ["Lead", "Offer", "Measurement"]
    assert [d["id"] for d in columns[2]["deals"]] == [deal["id"]]
    assert columns[2]["count"] == 1

    # Reporting counts by stage id, so the funnel names the deal's stage by its new name.
    row: dict[str, Any] = {}
    for _ in range(300):
        funnel = await api.get("/v1/reports/funnel", headers=admin)
        assert funnel.status_code == 200, funnel.text
        rows = [r for r in funnel.json()["data"] if r["stage_id"] == ids[1]]
        if rows and rows[0]["deals"] == 1:
            row = rows[0]
            break
        await asyncio.sleep(0.2)
    assert row["stage"] == "Measurement" and row["pipeline"] == "Windows and doors"

    # The deal moves into the new stage like into any other.
    moved = await api.post(
        f"/v1/deals/{deal['id']}/stage",
        json={"stage_id": after["stages"][3]["id"]},
        headers=admin,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["stage_name"] == "Installation"


async def test_a_stage_may_require_fields_before_a_deal_enters_it(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"pl{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    pipeline = await new_pipeline(api, admin)
    deal = await new_deal(api, admin, pipeline, 0)
    changed = await api.patch(
        f"/v1/pipelines/{pipeline['id']}",
        json={
            "stages": edit(
                pipeline, [0, 1, 2, 3, 4], s1={"required_fields": ["measurement_at", "floor"]}
            )
        },
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    visit = changed.json()["stages"][1]
    assert visit["required_fields"] == ["measurement_at", "floor"]
    assert changed.json()["name"] == "Windows"  # left out: unchanged

    refused = await api.post(
        f"/v1/deals/{deal['id']}/stage",
        json={"stage_id": visit["id"], "custom_fields": {"floor": 3}},
        headers=admin,
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["custom_fields.measurement_at"]
    still = await api.get(f"/v1/deals/{deal['id']}", headers=admin)
    assert still.json()["stage_id"] == pipeline["stages"][0]["id"]
    assert still.json()["custom_fields"] == {}

    moved = await api.post(
        f"/v1/deals/{deal['id']}/stage",
        json={
            "stage_id": visit["id"],
            "custom_fields": {"floor": 3, "measurement_at": "2026-12-09T10:00"},
        },
        headers=admin,
    )
    assert moved.status_code == 200, moved.text


async def test_a_stage_holding_deals_in_any_region_is_not_removed(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"pl{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    pipeline = await new_pipeline(api, admin)
    # The only deal in "Offer" lives in br; the admin edits from eu.
    await new_deal(api, token_for("boss-br", "admin", "br", tenant=tenant), pipeline, 2, "BR")

    for body in (
        {"name": "Renamed", "stages": edit(pipeline, [0, 1, 3, 4])},
        {"name": "Renamed", "stages": edit(pipeline, [0, 1, 2, 3, 4], s2={"kind": "won"})},
    ):
        refused = await api.patch(f"/v1/pipelines/{pipeline['id']}", json=body, headers=admin)
        assert refused.status_code == 409, refused.text
        assert "'Offer'" in refused.json()["detail"]
        assert "1 deal" in refused.json()["detail"]
    # Nothing was written anywhere: not even the new name.
    for region in ("eu", "br", "us"):
        listed = await api.get(
            "/v1/pipelines", headers=token_for("boss", "admin", region, tenant=tenant)
        )
        (mine,) = [p for p in listed.json()["data"] if p["id"] == pipeline["id"]]
        assert mine["name"] == "Windows"
        assert [s["name"] for s in mine["stages"]] == ["Lead", "Visit", "Offer", "Won", "Lost"]

    # An empty stage goes.
    removed = await api.patch(
        f"/v1/pipelines/{pipeline['id']}",
        json={"stages": edit(pipeline, [0, 2, 3, 4])},
        headers=admin,
    )
    assert removed.status_code == 200, removed.text
    assert [s["name"] for s in removed.json()["stages"]] == ["Lead", "Offer", "Won", "Lost"]


async def test_bad_edits_are_refused_field_by_field_and_only_admins_edit(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"pl{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    pipeline = await new_pipeline(api, admin)
    url = f"/v1/pipelines/{pipeline['id']}"

    bad = edit(pipeline, [0, 1, 2, 3, 4], s2={"name": " "}, s1={"win_probability": 40})
    bad[1]["name"] = "lead"
    refused = await api.patch(url, json={"stages": bad}, headers=admin)
    assert refused.status_code == 422, refused.text
    assert {e["field"] for e in refused.json()["errors"]} == {"stages[1].name", "stages[2].name"}

    stranger = edit(pipeline, [0, 1, 2, 3, 4], s0={"id": "st_not_here"})
    refused = await api.patch(url, json={"stages": stranger}, headers=admin)
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["stages[0].id"]

    no_won = edit(pipeline, [0, 1, 2, 4])
    refused = await api.patch(url, json={"stages": no_won}, headers=admin)
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["stages"]

    manager = token_for("mona", "manager", "eu", tenant=tenant)
    assert (await api.patch(url, json={"name": "Mine"}, headers=manager)).status_code == 403
    other = token_for("boss", "admin", "eu", tenant=f"pl{uuid.uuid4().hex[:8]}")
    assert (await api.patch(url, json={"name": "Mine"}, headers=other)).status_code == 404

    listed = await api.get("/v1/pipelines", headers=admin)
    (mine,) = [p for p in listed.json()["data"] if p["id"] == pipeline["id"]]
    assert mine["name"] == "Windows"
