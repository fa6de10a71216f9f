"""Exports: CSV and XLSX with the list filters, ownership, the cross-region policy, audit."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_exports_obey_filters_ownership_and_policy_and_are_audited(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str], token_for: Any, tenant: str, db: Any
) -> None:
    rep = token_for("rep-kim", "sales_rep", "eu", tenant=tenant)
    for name, owner, tag in (
        ("=cmd()", "boss", "vip"),
        ("Kai", "rep-kim", "vip"),
        ("Uwe", "boss", ""),
    ):
        await h.ok(
            api.post(
                "/v1/contacts",
                json={
                    "first_name": name,
                    "owner_id": owner,
                    "tags": [tag] if tag else [],
                    "address": {"country": "DE"},
                },
                headers=admin,
            ),
            201,
        )
    reply = await api.get("/v1/exports/contacts?tag=vip", headers=admin)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(reply.content.decode("utf-8-sig"))))
    assert sorted(r["first_name"] for r in rows) == ["'=cmd()", "Kai"]  # no formula injection

    mine = await api.get("/v1/exports/contacts?format=xlsx", headers=rep)
    assert mine.status_code == 200
    sheet = load_workbook(io.BytesIO(mine.content), read_only=True).worksheets[0]
    values = [row for row in sheet.iter_rows(values_only=True)]
    assert values[0][:3] == ("id", "region", "first_name") and [v[2] for v in values[1:]] == ["Kai"]

    deals = await api.get("/v1/exports/deals", headers=admin)
    assert deals.status_code == 200 and deals.content.decode("utf-8-sig").startswith(
        "id,region,title"
    )

    refused = await api.get("/v1/exports/contacts?region=br", headers=admin)
    assert refused.status_code == 403

    audit = await db(
        "integrations",
        "eu",
        "SELECT action, actor_id, region, record_id FROM audit_log"
        " WHERE tenant_id = $1 ORDER BY id",
        tenant,
    )
    assert [(a["action"], a["actor_id"], a["region"]) for a in audit] == [
        ("export.contacts", "boss", "eu"),
        ("export.contacts", "rep-kim", "eu"),
        ("export.deals", "boss", "eu"),
    ]
    assert audit[0]["record_id"].startswith("csv:2 rows:")
