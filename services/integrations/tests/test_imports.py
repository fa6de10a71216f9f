"""Imports: a 10k-row messy Windows-1251 CSV with exact counts and an error report, an
XLSX with Portuguese headers, a dry run, the update policy and cancellation, and a file
whose rows belong in several regions."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from openpyxl import Workbook

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROWS = 10_000


def messy_csv() -> tuple[bytes, dict[str, int]]:
    """A Russian-language export: ';'-separated, Windows-1251, phones as people write them."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Имя", "Фамилия", "Телефон", "Эл. почта", "Страна", "Город", "Дата рождения"])
    for i in range(ROWS):
        n = f"{i:06d}"
        country, phone = [
            ("DE", f"+49 151 2{n}1"),
            ("", f"0151 3{n}1"),  # national format, the import's default country (DE)
            ("Russia", f"8 (916) 4{n}"),  # "8..." read as a Russian number
            ("RU", f"+7 916 5{n}"),
        ][i % 4]
        email = f"client{i}@example.ru"
        birthday = f"{1 + i % 28:02d}.{1 + i % 12:02d}.19{50 + i % 50}"
        if i % 10 == 0:
            email = f"client{i}@@broken"
        elif i % 10 == 1:
            phone = "12-34"
        elif i % 1000 == 2:
            email = f"existing{i // 1000}@example.ru"  # already in the CRM: skipped
        elif i % 1000 == 3:
            country = "United States"  # stored in another region: refused here
        elif i % 1000 == 5:
            email = f"client{i - 1}@example.ru"  # the same person as the row before
        elif i % 1000 == 6:
            birthday = "32.13.1990"
        writer.writerow(["Иван", f"Петров{i}", phone, email, country, "Берлин", birthday])
    expected = {"total": ROWS, "failed": 1000 + 1000 + 10 + 10, "skipped": 10 + 10}
    expected["created"] = ROWS - expected["failed"] - expected["skipped"]
    expected["updated"] = 0
    expected["processed"] = ROWS
    expected["forwarded"] = 0
    return out.getvalue().encode("cp1251"), expected


@pytest.mark.timeout(900)
async def test_a_10k_row_messy_windows_1251_csv(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # This tenant keeps its Russian customers in eu (its own residency rule).
    await h.ok(
        api.put(
            "/v1/compliance/policies",
            json={"default_region": "us", "residency_overrides": {"RU": "eu"}},
            headers=admin,
        )
    )
    for k in range(10):
        await h.ok(
            api.post(
                "/v1/contacts",
                json={
                    "first_name": "Old",
                    "emails": [f"existing{k}@example.ru"],
                    "address": {"country": "DE"},
                },
                headers=admin,
            ),
            201,
        )
    data, expected = messy_csv()
    job = await h.ok(
        api.post(
            "/v1/imports?file_name=clients.csv",
            content=data,
            headers={**admin, "content-type": "text/csv"},
        ),
        201,
    )
    assert job["status"] == "ready" and job["encoding"] == "cp1251" and job["delimiter"] == ";"
    assert job["mapping"] == {
        "Имя": "first_name",
        "Фамилия": "last_name",
        "Телефон": "phone",
        "Эл. почта": "email",
        "Страна": "country",
        "Город": "city",
        "Дата рождения": "birthday",
    }
    settings = {"duplicate_policy": "skip", "default_country": "DE"}
    preview = await h.ok(
        api.post(f"/v1/imports/{job['id']}/preview", json={**settings, "rows": 6}, headers=admin)
    )
    assert preview["counts"] == expected
    assert [r["action"] for r in preview["preview"]] == [
        "error",  # bad email
        "error",  # bad phone
        "skip",  # already in the CRM
        "error",  # stored in another region
        "create",
        "skip",  # the same person as the row before
    ]
    assert preview["preview"][4]["contact"]["phones"] == ["+4915120000041"]

    started = await h.ok(
        api.post(f"/v1/imports/{job['id']}/start", json=settings, headers=admin), 202
    )
    assert started["status"] == "running"

    async def finished() -> Any:
        current = await h.ok(api.get(f"/v1/imports/{job['id']}", headers=admin))
        return current if current["status"] == "completed" else None

    done = await h.eventually(finished, "the import to finish", within=800)
    assert done["counts"] == expected

    report = await api.get(f"/v1/imports/{job['id']}/errors", headers=admin)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert lines[0] == ["row", "column", "value", "error"]
    by_row = {int(line[0]): line for line in lines[1:]}
    assert len(by_row) == expected["failed"]
    # Spreadsheet row numbers: the header is row 1, data row i is row i + 2.
    assert by_row[2][1:3] == ["Эл. почта", "client0@@broken"]
    assert by_row[3][1:3] == ["Телефон", "12-34"]
    assert "stored in region us" in by_row[3 + 2][3]
    assert by_row[6 + 2][1:3] == ["Дата рождения", "32.13.1990"]

    found = await h.ok(api.get("/v1/contacts?q=client4@example.ru", headers=admin))
    contact = next(c for c in found["data"] if c["emails"] == ["client4@example.ru"])
    assert contact["phones"] == ["+4915120000041"] and contact["source"] == "import"
    assert contact["address"]["country"] == "DE" and contact["address"]["city"] == "Берлин"
    assert contact["important_dates"] == [{"kind": "birthday", "date": "1954-05-05", "label": ""}]
    found = await h.ok(api.get("/v1/contacts?q=client14@example.ru", headers=admin))
    russian = next(c for c in found["data"] if c["emails"] == ["client14@example.ru"])
    assert russian["phones"] == ["+79164000014"]  # "8 (916) ..." read as a Russian number


def xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_an_xlsx_with_portuguese_headers_updates_duplicates(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str], token_for: Any, tenant: str
) -> None:
    await h.ok(
        api.post(
            "/v1/contacts",
            json={"first_name": "Ana", "emails": ["ana@example.pt"], "address": {"country": "PT"}},
            headers=admin,
        ),
        201,
    )
    data = xlsx(
        [
            ["Nome", "Sobrenome", "Telefone", "E-mail", "País", "Observação"],
            ["Ana", "Silva", 912345678, "ana@example.pt", "Portugal", "x"],
            ["Rui", "Sousa", "+351 913 000 111", "rui@example.pt", "PT", "y"],
            ["Eva", "", "", "not-an-email", "PT", "z"],
        ]
    )
    job = await h.ok(
        api.post(
            "/v1/imports?file_name=clientes.xlsx", files={"file": ("c.xlsx", data)}, headers=admin
        ),
        201,
    )
    assert job["format"] == "xlsx"
    assert job["mapping"] == {
        "Nome": "first_name",
        "Sobrenome": "last_name",
        "Telefone": "phone",
        "E-mail": "email",
        "País": "country",
        "Observação": "",
    }
    wrong = await api.post(
        f"/v1/imports/{job['id']}/start", json={"mapping": {"Nope": "email"}}, headers=admin
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "mapping[0].column"
    other = token_for("someone", "sales_rep", "eu", tenant=tenant)
    assert (await api.get(f"/v1/imports/{job['id']}", headers=other)).status_code == 404

    await h.ok(
        api.post(
            f"/v1/imports/{job['id']}/start", json={"duplicate_policy": "update"}, headers=admin
        ),
        202,
    )

    async def finished() -> Any:
        current = await h.ok(api.get(f"/v1/imports/{job['id']}", headers=admin))
        return current if current["status"] == "completed" else None

    done = await h.eventually(finished, "the import to finish")
    assert {k: done["counts"][k] for k in ("created", "updated", "skipped", "failed")} == {
        "created": 1,
        "updated": 1,
        "skipped": 0,
        "failed": 1,
    }
    found = await h.ok(api.get("/v1/contacts?q=ana@example.pt", headers=admin))
    ana = found["data"][0]
    assert ana["last_name"] == "Silva" and ana["phones"] == ["+351912345678"]

    # A job not started yet can be cancelled; its file is gone.
    second = await h.ok(
        api.post("/v1/imports?file_name=more.xlsx", content=data, headers=admin), 201
    )
    cancelled = await h.ok(api.post(f"/v1/imports/{second['id']}/cancel", headers=admin))
    assert cancelled["status"] == "cancelled"
    refused = await api.post(f"/v1/imports/{second['id']}/start", json={}, headers=admin)
    assert refused.status_code == 409


async def test_each_row_goes_to_its_region(
    h: Any, api: httpx.AsyncClient, admin: dict[str, str], token_for: Any, tenant: str
) -> None:
    """An eu admin imports German, Brazilian and American customers: the Brazilians are
    written in br (the tenant grants eu users access there), the Americans refused (no
    grant for us), and the job reports them all together."""
    basis = "SCC 2021/914 module 1"
    await h.ok(
        api.put(
            "/v1/compliance/policies",
            json={
                "default_region": "us",
                "access_grants": [{"from_region": "eu", "to_region": "br", "legal_basis": basis}],
            },
            headers=admin,
        )
    )
    rep_br = dict(token_for("rita", "admin", "br", tenant=tenant))
    await h.ok(
        api.post(
            "/v1/contacts",
            json={"first_name": "Old", "emails": ["joao@example.br"], "address": {"country": "BR"}},
            headers=rep_br,
        ),
        201,
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["First name", "Last name", "Email", "Phone", "Country", "Language"])
    rows = [
        ["Hans", "Weber", "hans@example.de", "030 1234567", "DE", "de"],  # row 2: eu
        ["João", "Silva", "joao@example.br", "", "Brazil", "pt-BR"],  # 3: br, a duplicate
        ["Maria", "Souza", "maria@example.br", "(11) 91234-5678", "BR", "pt-BR"],  # 4: br
        ["Ann", "Lee", "ann@example.com", "", "US", "en"],  # 5: us, no grant
        ["Bea", "Lima", "bea@@example.br", "", "BR", ""],  # 6: bad email, never forwarded
        ["Caio", "Reis", "caio@example.br", "", "BR", "xx-nope-zz"],  # 7: br refuses it
        ["Greta", "Berg", "greta@example.de", "", "DE", "de"],  # 8: eu
        ["Rui", "Costa", "rui@example.br", "", "BR", "pt"],  # 9: br
    ]
    writer.writerows(rows)
    job = await h.ok(
        api.post(
            "/v1/imports?file_name=mixed.csv",
            content=out.getvalue().encode(),
            headers={**admin, "content-type": "text/csv"},
        ),
        201,
    )
    settings = {"duplicate_policy": "skip", "mapping": {"Language": "language"}}
    preview = await h.ok(api.post(f"/v1/imports/{job['id']}/preview", json=settings, headers=admin))
    assert [(r["action"], r["region"]) for r in preview["preview"]] == [
        ("create", ""),
        ("forward", "br"),
        ("forward", "br"),
        ("error", ""),
        ("error", ""),
        ("forward", "br"),
        ("create", ""),
        ("forward", "br"),
    ]
    assert preview["counts"]["forwarded"] == 4

    await h.ok(api.post(f"/v1/imports/{job['id']}/start", json=settings, headers=admin), 202)

    async def finished() -> Any:
        current = await h.ok(api.get(f"/v1/imports/{job['id']}", headers=admin))
        return current if current["status"] == "completed" else None

    done = await h.eventually(finished, "the import to finish in both regions", within=120)
    assert {k: done["counts"][k] for k in ("total", "created", "skipped", "failed")} == {
        "total": 8,
        "created": 4,  # Hans, Greta in eu; Maria, Rui in br
        "skipped": 1,  # João, already in br
        "failed": 3,  # Ann (us), Bea (email), Caio (language, refused in br)
    }
    assert done["counts"]["processed"] == 8 and done["counts"]["forwarded"] == 4
    assert set(done["regions"]) == {"eu", "br"}
    assert done["regions"]["br"]["counts"]["created"] == 2
    assert done["regions"]["eu"]["counts"]["created"] == 2

    # Where the people are: Brazilians in br only, Germans in eu only.
    in_br = await h.ok(api.get("/v1/contacts?region=br&source=import", headers=admin))
    in_eu = await h.ok(api.get("/v1/contacts?region=eu&source=import", headers=admin))
    assert sorted(c["first_name"] for c in in_br["data"]) == ["Maria", "Rui"]
    assert sorted(c["first_name"] for c in in_eu["data"]) == ["Greta", "Hans"]
    maria = next(c for c in in_br["data"] if c["first_name"] == "Maria")
    assert maria["phones"] == ["+5511912345678"] and maria["id"].startswith("br_")

    report = await api.get(f"/v1/imports/{job['id']}/errors", headers=admin)
    lines = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert [int(line[0]) for line in lines[1:]] == [5, 6, 7]  # both regions, in file order
    assert lines[1][1:3] == ["Country", "US"] and "stored in region us" in lines[1][3]
    assert lines[2][1:3] == ["Email", "bea@@example.br"]
    # br refused Caio's language: the report names the file's column and value.
    assert lines[3][1:3] == ["Language", "xx-nope-zz"]

    # Every write in br by the eu admin is on br's audit trail, with the grant's basis.
    officer = dict(token_for("olga", "compliance_officer", "br", tenant=tenant))
    audit = await h.ok(
        api.get(
            "/v1/compliance/audit?region=br&kind=cross_region_access&actor=boss", headers=officer
        )
    )
    imports = [r for r in audit["data"] if r["action"] == "contact.import"]
    assert imports and all(r["legal_basis"] == basis for r in imports)
    assert all(r["actor_home_region"] == "eu" for r in imports)
