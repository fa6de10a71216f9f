"""Files on contacts and deals: the measurement sheet, the photos of the window, the
signed contract. Kept with the contact (its region), listed on its timeline, downloaded
as they were uploaded, refused clearly when too large or of a kind a CRM should not
hold, and visible only to who may see the contact."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROBLEM = "application/problem+json"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 8
MIB = 1_048_576


async def ok(call: Any, status: int = 200) -> Any:
    reply = await call
    assert reply.status_code == status, (reply.request.url, reply.status_code, reply.text)
    return reply.json() if reply.content else None


def refused(reply: httpx.Response, status: int = 422) -> set[str]:
    assert reply.status_code == status, (reply.status_code, reply.text)
    assert reply.headers["content-type"] == PROBLEM
    return {e["field"] for e in reply.json().get("errors", [])}


class Shop:
    """A window-installation company in the eu region: a rep, her client and a deal."""

    def __init__(self, api: httpx.AsyncClient, token_for: Any) -> None:
        self.api = api
        tenant = f"files-{uuid.uuid4().hex[:8]}"
        self.admin = token_for("boss", "admin", "eu", tenant=tenant)
        self.rita = token_for("rep-rita", "sales_rep", "eu", tenant=tenant, team="north")
        self.otto = token_for("rep-otto", "sales_rep", "eu", tenant=tenant, team="south")

    async def client_with_deal(self) -> tuple[dict[str, Any], dict[str, Any]]:
        contact = await ok(
            self.api.post(
                "/v1/contacts",
                json={"first_name": "Jürgen", "last_name": "Fenster", "address": {"country": "DE"}},
                headers=self.rita,
            ),
            201,
        )
        pipeline = await ok(
            self.api.post(
                "/v1/pipelines",
                json={
                    "name": "Windows",
                    "stages": [
                        {"name": "Measurement"},
                        {"name": "Won", "kind": "won"},
                        {"name": "Lost", "kind": "lost"},
                    ],
                },
                headers=self.admin,
            ),
            201,
        )
        deal = await ok(
            self.api.post(
                "/v1/deals",
                json={
                    "title": "3 windows",
                    "contact_id": contact["id"],
                    "pipeline_id": pipeline["id"],
                },
                headers=self.rita,
            ),
            201,
        )
        return contact, deal


async def test_a_file_on_a_deal_is_kept_listed_and_downloaded_as_uploaded(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    shop = Shop(api, token_for)
    contact, deal = await shop.client_with_deal()

    sheet = await ok(
        api.post(
            "/v1/attachments",
            params={"deal_id": deal["id"]},
            files={"file": ("Aufmaß.pdf", PDF, "application/pdf")},
            headers=shop.rita,
        ),
        201,
    )
    assert sheet["id"].startswith("eu_")  # with the contact, in its region
    assert (sheet["contact_id"], sheet["deal_id"]) == (contact["id"], deal["id"])
    assert (sheet["filename"], sheet["media_type"]) == ("Aufmaß.pdf", "application/pdf")
    assert sheet["size"] == len(PDF) and sheet["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert sheet["uploaded_by"] == "rep-rita"
    # A photo straight from the phone, sent as the raw body.
    photo = await ok(
        api.post(
            "/v1/attachments",
            params={"contact_id": contact["id"], "filename": "IMG_0042.jpg"},
            content=JPEG,
            headers={**shop.rita, "Content-Type": "application/octet-stream"},
        ),
        201,
    )
    assert photo["media_type"] == "image/jpeg" and photo["deal_id"] == ""

    on_deal = await ok(api.get(f"/v1/deals/{deal['id']}/attachments", headers=shop.rita))
    assert [a["id"] for a in on_deal["data"]] == [sheet["id"]]
    on_contact = await ok(api.get(f"/v1/contacts/{contact['id']}/attachments", headers=shop.rita))
    assert [a["id"] for a in on_contact["data"]] == [photo["id"], sheet["id"]]  # newest first
    timeline = await ok(api.get(f"/v1/contacts/{contact['id']}/notes", headers=shop.rita))
    files = [(e["kind"], e["subject"], e["attachment_id"]) for e in timeline["data"]]
    assert files == [
        ("attachment", "Aufmaß.pdf", sheet["id"]),
        ("attachment", "IMG_0042.jpg", photo["id"]),
    ]

    download = await api.get(f"/v1/attachments/{sheet['id']}", headers=shop.rita)
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert "Aufma%C3%9F.pdf" in download.headers["content-disposition"]

    # Deleting a file removes it and its line on the timeline.
    await ok(api.delete(f"/v1/attachments/{photo['id']}", headers=shop.rita), 204)
    assert (await api.get(f"/v1/attachments/{photo['id']}", headers=shop.rita)).status_code == 404
    timeline = await ok(api.get(f"/v1/contacts/{contact['id']}/notes", headers=shop.rita))
    assert [e["attachment_id"] for e in timeline["data"]] == [sheet["id"]]


async def test_another_teams_rep_cannot_see_list_or_delete_the_files(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    shop = Shop(api, token_for)
    contact, deal = await shop.client_with_deal()
    sheet = await ok(
        api.post(
            "/v1/attachments",
            params={"contact_id": contact["id"]},
            files={"file": ("contract.pdf", PDF, "application/pdf")},
            headers=shop.rita,
        ),
        201,
    )
    for call in (
        api.get(f"/v1/attachments/{sheet['id']}", headers=shop.otto),
        api.get(f"/v1/contacts/{contact['id']}/attachments", headers=shop.otto),
        api.get(f"/v1/deals/{deal['id']}/attachments", headers=shop.otto),
        api.delete(f"/v1/attachments/{sheet['id']}", headers=shop.otto),
        api.post(
            "/v1/attachments",
            params={"contact_id": contact["id"]},
            files={"file": ("x.pdf", PDF, "application/pdf")},
            headers=shop.otto,
        ),
    ):
        reply = await call
        assert reply.status_code == 404, (reply.request.url, reply.text)
        assert "contract.pdf" not in reply.text
    listed = await ok(api.get(f"/v1/contacts/{contact['id']}/attachments", headers=shop.admin))
    assert [a["filename"] for a in listed["data"]] == ["contract.pdf"]


async def test_what_a_crm_should_not_hold_is_refused_naming_the_field_and_nothing_is_kept(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    shop = Shop(api, token_for)
    contact, _ = await shop.client_with_deal()

    async def attach(name: str, data: bytes, **params: str) -> httpx.Response:
        return await api.post(
            "/v1/attachments",
            params=params or {"contact_id": contact["id"]},
            files={"file": (name, data, "application/pdf")},
            headers=shop.rita,
        )

    # A web page posing as a PDF (a browser would run it), a program, an empty file.
    assert refused(await attach("invoice.pdf", b"<html><script>alert(1)</script>")) == {"file"}
    assert refused(await attach("setup.exe", b"MZ\x90\x00\x03" + bytes(500))) == {"file"}
    assert refused(await attach("empty.pdf", b"")) == {"file"}
    # Over 10 MiB: refused (by the service, or by the gateway before it reads it all).
    too_big = await attach("scan.pdf", PDF + bytes(10 * MIB))
    assert too_big.status_code in (413, 422), too_big.text
    assert too_big.headers["content-type"] == PROBLEM
    # Neither a contact nor a deal, or both.
    assert refused(await attach("a.pdf", PDF, filename="a.pdf")) == {"contact_id"}
    assert refused(await attach("a.pdf", PDF, contact_id=contact["id"], deal_id=contact["id"])) == {
        "contact_id"
    }
    listed = await ok(api.get(f"/v1/contacts/{contact['id']}/attachments", headers=shop.rita))
    assert listed["data"] == []

    # A name is a name, never a path.
    kept = await ok(attach("../../../etc/passwd.txt", b"just text\n"), 201)
    assert (kept["filename"], kept["media_type"]) == ("passwd.txt", "text/plain")
