"""Every filter and sort parameter of every listing, generated from the OpenAPI document,
with what a hostile client puts there: SQL metacharacters and LIKE wildcards, a value over
the length limit, bytes that are not UTF-8, confusable and invisible Unicode. Each answer
is a 4xx problem+json naming the parameter, or a correct answer: one that finds nothing
of the tenant's records (none of them matches such a value), never a 5xx."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROBLEM = "application/problem+json"
# Raw query strings (already percent-encoded where they must be).
HOSTILE = {
    "sql-quote": "%27%20OR%20%271%27%3D%271",
    "sql-comment": "x%27%3B%20DROP%20TABLE%20contacts%3B%20--",
    "like-percent": "%25",
    "like-underscore": "_",
    "backslash": "%5C",
    "over-long": "a" * 2001,
    "not-utf8": "%FF%FE%C3",
    "confusable": "%D0%B0na",  # a Cyrillic a (U+0430), then "na": looks like "ana"
    "invisible": "%E2%80%AEana%E2%80%8B",  # right-to-left override, zero-width space
}
# The search (`q`) is tolerant by design: it folds confusable letters, drops invisible
# ones and what is not a letter, so these find Ana as "ana" would.
TOLERANT = {"confusable", "invisible", "not-utf8"}
# Parameters that select how, not what (paging, format, region): their own tests cover them.
NOT_FILTERS = {"cursor", "format", "region"}


@pytest.mark.timeout(1200)
async def test_every_listing_parameter_survives_hostile_values(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    admin = token_for("boss", "admin", "eu", tenant=f"filters-{uuid.uuid4().hex[:8]}")
    seeded = await api.post(
        "/v1/contacts",
        json={"first_name": "Ana", "last_name": "Probe", "address": {"country": "DE"}},
        headers=admin,
    )
    assert seeded.status_code == 201, seeded.text
    contact_id = seeded.json()["id"]
    document = (await api.get("/openapi.json")).json()
    calls: list[tuple[str, str, str]] = []
    for path, operations in document["paths"].items():
        get = operations.get("get")
        path = path.replace("/v1/reports/{name}", "/v1/reports/funnel")
        if not path.startswith("/v1/") or "{" in path or get is None or "/dev/" in path:
            continue
        for parameter in get.get("parameters", []):
            if parameter["in"] == "query" and parameter["name"] not in NOT_FILTERS:
                calls += [(path, parameter["name"], value) for value in HOSTILE]
    wrong: list[str] = []
    limit = asyncio.Semaphore(6)

    async def probe(path: str, name: str, kind: str) -> None:
        url = f"{path}?{name}={HOSTILE[kind]}"
        async with limit:
            reply = await api.get(url, headers=admin)
        where = f"{kind}: GET {path}?{name}=… -> {reply.status_code}"
        if reply.status_code >= 500:
            wrong.append(f"{where} {reply.text[:300]}")
        elif reply.status_code >= 400:
            if reply.headers.get("content-type") != PROBLEM:
                wrong.append(f"{where} as {reply.headers.get('content-type')}")
            elif reply.status_code == 422:
                fields = {e["field"] for e in reply.json().get("errors", [])}
                if name not in fields:
                    wrong.append(f"{where} names {fields}, not {name}")
        elif contact_id in reply.text and not (name == "q" and kind in TOLERANT):
            wrong.append(f"{where} found the contact Ana Probe: {reply.text[:300]}")

    await asyncio.gather(*(probe(path, name, kind) for path, name, kind in calls))
    print(f"\nhostile filters: {len(calls)} requests, {len(wrong)} wrong")
    assert calls and not wrong, "\n".join(sorted(wrong))
