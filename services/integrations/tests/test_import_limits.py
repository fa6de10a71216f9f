"""Imports at their limits, as a hostile or careless client meets them: an error report
larger than one gRPC message, an over-long query parameter, an XLSX bomb, a CSV field over
the csv module's limit, refused and abandoned uploads (their files must not stay)."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta
from typing import Any

import grpc
import httpx
import pytest
from openpyxl import Workbook

from crm_api.crm.integrations.v1 import integrations_pb2 as pb
from crm_api.crm.integrations.v1 import integrations_pb2_grpc
from crm_cli.cluster import Cluster
from crm_kit.context import Principal

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _jobs(db: Any, tenant: str) -> list[Any]:
    """Each import job of the tenant in eu with the chunks of its file still stored."""
    return await db(
        "integrations",
        "eu",
        "SELECT i.id, i.status, i.error, (SELECT count(*) FROM import_chunks c"
        " WHERE c.import_id = i.id) AS chunks FROM imports i WHERE i.tenant_id = $1"
        " ORDER BY i.created_at",
        tenant,
    )


async def test_an_error_report_larger_than_a_grpc_message_downloads_whole(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """10,000 error lines of ~480 bytes: a 4.8 MB report, over gRPC's 4 MiB message limit
    (it was 429 "Too many requests" with gRPC's own words)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "email"])
    for i in range(500):
        bad = ";".join(f"{i:04d}{j:02d}" + "x" * 435 + "@" for j in range(20))
        writer.writerow([f"Person {i}", bad])
    job = await h.ok(
        api.post("/v1/imports?file_name=bad.csv", content=out.getvalue(), headers=admin), 201
    )
    await h.ok(api.post(f"/v1/imports/{job['id']}/start", json={}, headers=admin), 202)

    async def finished() -> Any:
        current = await h.ok(api.get(f"/v1/imports/{job['id']}", headers=admin))
        return current if current["status"] == "completed" else None

    done = await h.eventually(finished, "the import to finish", within=180)
    assert done["counts"]["failed"] == 500
    report = await api.get(f"/v1/imports/{job['id']}/errors", headers=admin)
    assert report.status_code == 200, report.text[:500]
    assert report.headers["content-type"].startswith("text/csv")
    assert len(report.content) > 4 * 1024 * 1024
    lines = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert lines[0] == ["row", "column", "value", "error"]
    assert len(lines) == 1 + 500 * 20
    assert [int(line[0]) for line in lines[1:]] == sorted(int(line[0]) for line in lines[1:])
    assert lines[1] == ["2", "email", "000000" + "x" * 435 + "@", "not a valid email address"]
    assert lines[-1][:2] == ["501", "email"] and lines[-1][2].startswith("049919")


async def test_an_over_long_parameter_is_422_naming_it_never_429(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    listed = await api.get("/v1/contacts", params={"country": "D" * 10_000}, headers=admin)
    assert listed.status_code == 422, listed.text[:300]
    assert listed.headers["content-type"] == "application/problem+json"
    assert listed.json()["errors"][0]["field"] == "country"
    # In a body, the service's answer quotes the value: still a bounded 422.
    created = await api.post(
        "/v1/contacts",
        json={"first_name": "Long", "address": {"country": "Ж" * 10_000}},
        headers=admin,
    )
    assert created.status_code == 422, created.text[:300]
    assert len(created.content) < 8 * 1024


def _bomb(shared_strings_bytes: int) -> bytes:
    """A real workbook whose shared-strings table expands to `shared_strings_bytes`
    (highly repetitive XML: a few hundred kilobytes on disk)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["name", "email"])
    sheet.append(["Ana", "ana@example.pt"])
    plain = io.BytesIO()
    book.save(plain)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(plain) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb,
    ):
        for item in source.infolist():
            if item.filename != "xl/sharedStrings.xml":
                bomb.writestr(item, source.read(item))
        entry = "<si><t>" + "A" * 1000 + "</t></si>"
        count = shared_strings_bytes // len(entry)
        with bomb.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            namespace = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
            part.write(
                b'<?xml version="1.0" encoding="UTF-8"?>'
                b'<sst xmlns="%s" count="%d" uniqueCount="%d">' % (namespace, count, count)
            )
            block = (entry * 1024).encode()
            for _ in range(count // 1024):
                part.write(block)
            part.write(b"</sst>")
    return out.getvalue()


async def test_an_xlsx_bomb_is_refused_before_it_is_parsed_and_not_kept(
    api: httpx.AsyncClient, admin: dict[str, str], db: Any, tenant: str
) -> None:
    data = _bomb(64 * 1024 * 1024)
    assert len(data) < 1024 * 1024  # small on disk, 64 MiB once inflated
    refused = await api.post(
        "/v1/imports?file_name=leads.xlsx", files={"file": ("leads.xlsx", data)}, headers=admin
    )
    assert refused.status_code == 422, refused.text[:300]
    [error] = refused.json()["errors"]
    assert error["field"] == "file"
    assert "leads.xlsx" in error["message"] and "xl/sharedStrings.xml" in error["message"]
    # The refused upload is not kept: no file, and the job says why.
    [job] = await _jobs(db, tenant)
    assert (job["status"], job["chunks"]) == ("failed", 0)
    assert "xl/sharedStrings.xml" in job["error"]


async def test_a_csv_field_over_128_kib_is_refused_at_upload_naming_the_row(
    api: httpx.AsyncClient, admin: dict[str, str], db: Any, tenant: str
) -> None:
    data = "name,email,notes\nAna,ana@example.pt,short\nRui,rui@example.pt," + "n" * 200_000
    refused = await api.post("/v1/imports?file_name=notes.csv", content=data, headers=admin)
    assert refused.status_code == 422, refused.text[:300]
    [error] = refused.json()["errors"]
    assert error["field"] == "file"
    assert "notes.csv" in error["message"] and "row 3" in error["message"]
    assert "128 KiB" in error["message"]
    # An empty body is refused by the gateway: that job does not stay `uploading` either.
    empty = await api.post("/v1/imports?file_name=empty.csv", content=b"", headers=admin)
    assert empty.status_code == 422
    jobs = await _jobs(db, tenant)
    assert [(job["status"], job["chunks"]) for job in jobs] == [("failed", 0), ("cancelled", 0)]


async def test_abandoned_uploads_expire_a_day_after_they_were_last_touched(
    h: Any,
    api: httpx.AsyncClient,
    admin: dict[str, str],
    db: Any,
    tenant: str,
    cluster: Cluster,
    move_clock: Any,
) -> None:
    # One file uploaded and never imported, one upload never finished (its client died).
    ready = await h.ok(
        api.post("/v1/imports?file_name=later.csv", content="name\nAna\n", headers=admin), 201
    )
    metadata = Principal(
        tenant_id=tenant, user_id="boss", roles=("admin",), home_region="eu"
    ).to_metadata()
    async with grpc.aio.insecure_channel(cluster.endpoints["integrations"]["eu"]) as channel:
        stub = integrations_pb2_grpc.IntegrationsServiceStub(channel)
        unfinished = await stub.CreateImport(
            pb.CreateImportRequest(file_name="half.csv"), metadata=metadata, timeout=10
        )
        await stub.UploadImportChunk(
            pb.UploadImportChunkRequest(id=unfinished.id, sequence=0, data=b"name\nRui\n"),
            metadata=metadata,
            timeout=10,
        )
    assert [(j["status"], j["chunks"]) for j in await _jobs(db, tenant)] == [
        ("ready", 1),
        ("uploading", 1),
    ]
    move_clock(timedelta(hours=23))
    fresh = await h.ok(
        api.post("/v1/imports?file_name=fresh.csv", content="name\nEva\n", headers=admin), 201
    )
    move_clock(timedelta(hours=2))

    async def expired() -> Any:
        jobs = await _jobs(db, tenant)
        return jobs if jobs[0]["status"] == "expired" and jobs[1]["status"] == "expired" else None

    jobs = await h.eventually(expired, "the abandoned uploads to expire", within=60)
    assert [(j["status"], j["chunks"]) for j in jobs] == [
        ("expired", 0),
        ("expired", 0),
        ("ready", 1),  # touched 2 hours ago
    ]
    shown = await h.ok(api.get(f"/v1/imports/{ready['id']}", headers=admin))
    assert shown["status"] == "expired" and "abandoned" in shown["error"]
    started = await api.post(f"/v1/imports/{ready['id']}/start", json={}, headers=admin)
    assert started.status_code == 409
    assert (await api.get(f"/v1/imports/{fresh['id']}", headers=admin)).json()["status"] == "ready"


def _xlsx_declaring(declaration: str, reference: str) -> bytes:
    """A real workbook whose first sheet declares `declaration` and uses `reference`."""
    workbook = Workbook()
    workbook.active.append(["first_name", "email"])
    workbook.active.append(["PLACEHOLDER", "ana@example.pt"])
    saved = io.BytesIO()
    workbook.save(saved)
    source = zipfile.ZipFile(io.BytesIO(saved.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in source.infolist():
            data = source.read(part.filename)
            if b"PLACEHOLDER" in data:
                body = data.decode()
                if body.startswith("<?xml"):
                    body = body.split("?>", 1)[1]
                body = body.replace("PLACEHOLDER", reference)
                data = (f'<?xml version="1.0" encoding="UTF-8"?>{declaration}{body}').encode()
            archive.writestr(part, data)
    return out.getvalue()


LAUGHS = (
    '<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">'
    + "".join(
        f'<!ENTITY {name} "{("&" + previous + ";") * 10}">'
        for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "]>"
)


@pytest.mark.parametrize(
    ("declaration", "reference"),
    [
        ('<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "&xxe;"),
        (
            '<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "http://169.254.169.254/latest/">]>',
            "&xxe;",
        ),
        (LAUGHS, "&i;"),
    ],
    ids=["external-file", "external-url", "billion-laughs"],
)
async def test_an_xlsx_declaring_entities_is_refused_and_not_kept(
    api: httpx.AsyncClient,
    admin: dict[str, str],
    db: Any,
    tenant: str,
    declaration: str,
    reference: str,
) -> None:
    data = _xlsx_declaring(declaration, reference)
    refused = await api.post(
        "/v1/imports?file_name=leads.xlsx", files={"file": ("leads.xlsx", data)}, headers=admin
    )
    assert refused.status_code == 422, refused.text[:300]
    [error] = refused.json()["errors"]
    assert error["field"] == "file" and "DTD or XML entities" in error["message"], error
    assert "root:" not in refused.text
    [job] = await _jobs(db, tenant)
    assert (job["status"], job["chunks"]) == ("failed", 0)


async def test_a_csv_with_a_million_columns_or_thousands_is_refused_naming_the_file(
    api: httpx.AsyncClient, admin: dict[str, str], db: Any, tenant: str
) -> None:
    million = "," * 1_000_000 + "\n"
    refused = await api.post("/v1/imports?file_name=wide.csv", content=million, headers=admin)
    assert refused.status_code == 422, refused.text[:300]
    [error] = refused.json()["errors"]
    assert error["field"] == "file", error
    assert "row 1 has 1000001 columns; at most 1000" in error["message"], error
    # Short enough a line, but far more columns than a contact file has.
    wide = "name,email\nAna,ana@example.pt\n" + ",".join(f"c{i}" for i in range(5000)) + "\n"
    refused = await api.post("/v1/imports?file_name=wide.csv", content=wide, headers=admin)
    assert refused.status_code == 422, refused.text[:300]
    [error] = refused.json()["errors"]
    assert error["field"] == "file" and "row 3 has 5000 columns; at most 1000" in error["message"]
    jobs = await _jobs(db, tenant)
    assert [(job["status"], job["chunks"]) for job in jobs] == [("failed", 0), ("failed", 0)]


async def test_a_100_mb_line_is_refused_without_reading_it_whole(
    api: httpx.AsyncClient, admin: dict[str, str], db: Any, tenant: str
) -> None:
    async def body() -> Any:
        yield b"name,email\n"
        for _ in range(100):
            yield b"a," * (512 * 1024)  # 1 MiB of fields, no end of line in 100 MiB

    refused = await api.post("/v1/imports?file_name=long.csv", content=body(), headers=admin)
    assert refused.status_code == 422, refused.text[:300]
    [error] = refused.json()["errors"]
    assert error["field"] == "file" and "line 2 is longer than 1 MiB" in error["message"], error
    [job] = await _jobs(db, tenant)
    assert (job["status"], job["chunks"]) == ("failed", 0)
