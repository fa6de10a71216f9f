"""Money, end to end through the gateway: payments against a deal, the balance due,
"paid in full" starting the installation, revenue received per period, what a client is
worth, and the invoice emailed to the client.

A window company takes a deposit in cash, the rest by bank transfer; a mistyped entry
is reversed; a Brazilian client pays by Pix in reais and gets the invoice by email.
Everything goes through the REST API against the whole system (real PostgreSQL, NATS
and the system's aiosmtpd SMTP server).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from crm_kit import clock

pytestmark = pytest.mark.asyncio(loop_scope="session")
T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, within: float = 30) -> T:
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


class Shop:
    """A fresh tenant: an admin, a rep, a pipeline and helpers."""

    def __init__(self, api: httpx.AsyncClient, token_for: Any) -> None:
        self.api = api
        self.tenant = f"money-{uuid.uuid4().hex[:8]}"
        self.admin = token_for("boss", "admin", "eu", tenant=self.tenant)
        # Brazilian clients' data stays in br, worked on by the colleague there.
        self.admin_br = token_for("boss-br", "admin", "br", tenant=self.tenant)
        self.rep_br = token_for("rep-olga", "sales_rep", "br", tenant=self.tenant)
        self.rep = token_for("rep-olga", "sales_rep", "eu", tenant=self.tenant, team="install")
        self.stranger = token_for("rep-other", "sales_rep", "eu", tenant=self.tenant)
        self.pipeline: dict[str, Any] = {}

    async def setup(self) -> Shop:
        self.pipeline = await ok(
            self.api.post(
                "/v1/pipelines",
                json={
                    "name": "Windows",
                    "stages": [
                        {"name": "Offer", "win_probability": 50},
                        {"name": "Won", "win_probability": 100, "kind": "won"},
                        {"name": "Lost", "win_probability": 0, "kind": "lost"},
                    ],
                },
                headers=self.admin,
            ),
            201,
        )
        return self

    async def deal(
        self, last: str, country: str, amount: str, currency: str, *, br: bool = False
    ) -> dict[str, Any]:
        headers = self.admin_br if br else self.admin
        contact = await ok(
            self.api.post(
                "/v1/contacts",
                json={
                    "first_name": "Client",
                    "last_name": last,
                    "emails": [f"{last.lower()}@example.com"],
                    "address": {"city": "Somewhere", "country": country},
                    "owner_id": "rep-olga",
                },
                headers=headers,
            ),
            201,
        )
        return dict(
            await ok(
                self.api.post(
                    "/v1/deals",
                    json={
                        "title": f"Windows for {last}",
                        "contact_id": contact["id"],
                        "owner_id": "rep-olga",
                        "pipeline_id": self.pipeline["id"],
                        "amount": {"amount": amount, "currency": currency},
                    },
                    headers=headers,
                ),
                201,
            )
        )

    async def pay(self, deal_id: str, status: int = 201, **body: Any) -> Any:
        headers = self.admin_br if deal_id.startswith("br_") else self.rep
        return await ok(
            self.api.post(f"/v1/deals/{deal_id}/payments", json=body, headers=headers), status
        )


def fields_of(problem: dict[str, Any]) -> set[str]:
    return {error["field"] for error in problem.get("errors") or []}


async def test_payments_balance_paid_in_full_and_the_installation_task(
    api: httpx.AsyncClient, token_for: Any, stream_events: Any
) -> None:
    shop = await Shop(api, token_for).setup()
    await ok(
        api.post(
            "/v1/automations",
            json={
                "name": "Install once paid",
                "trigger": {"event_type": "deals.deal.paid_in_full"},
                "actions": [
                    {"type": "create_task", "title": "Install the windows", "assignee": "owner"}
                ],
            },
            headers=shop.admin,
        ),
        201,
    )
    deal = await shop.deal("Fenster", "DE", "1000.00", "EUR")
    assert (deal["paid"], deal["balance_due"]) == (
        {"amount": "0.00", "currency": "EUR"},
        {"amount": "1000.00", "currency": "EUR"},
    )
    today = clock.now().date()
    deposit_day = (today - timedelta(days=40)).isoformat()

    # The deposit, in cash.
    deposit = await shop.pay(
        deal["id"], amount="400", paid_on=deposit_day, method="cash", note="deposit"
    )
    assert deposit["id"].startswith("eu_")  # in the deal's region
    assert (deposit["amount"], deposit["method"], deposit["paid_on"]) == (
        {"amount": "400.00", "currency": "EUR"},
        "cash",
        deposit_day,
    )
    after = await ok(api.get(f"/v1/deals/{deal['id']}", headers=shop.rep))
    assert (after["paid"]["amount"], after["balance_due"]["amount"]) == ("400.00", "600.00")
    assert "paid_in_full_at" not in after

    # Bad input: 422 naming each field, and nothing written.
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"amount": "-5"}, {"amount.amount"}),
        ({"amount": "0"}, {"amount.amount"}),
        ({"amount": "10.123"}, {"amount.amount"}),  # EUR has two decimals
        ({"amount": "600.01"}, {"amount.amount"}),  # more than the balance due
        ({"amount": "10", "currency": "USD"}, {"amount.currency"}),  # not the deal's
        ({"amount": "10", "currency": "XYZ"}, {"amount.currency"}),
        ({"amount": "10", "method": "cheque"}, {"method"}),
        ({"amount": "10", "paid_on": (today + timedelta(days=3)).isoformat()}, {"paid_on"}),
        ({"amount": "10", "paid_on": "07.12.2026"}, {"paid_on"}),
        (
            {"amount": "-1", "method": "barter", "paid_on": "soon"},
            {"amount.amount", "method", "paid_on"},
        ),
    ]
    for body, expected in cases:
        problem = await shop.pay(deal["id"], 422, **body)
        assert fields_of(problem) == expected, (body, problem)
    # A deal the rep does not own is not found, for paying as for reading.
    stranger = await api.post(
        f"/v1/deals/{deal['id']}/payments", json={"amount": "1"}, headers=shop.stranger
    )
    assert stranger.status_code == 404, stranger.text
    listed = await ok(api.get(f"/v1/deals/{deal['id']}/payments", headers=shop.rep))
    assert [p["id"] for p in listed["data"]] == [deposit["id"]]

    # The rest by bank transfer, mistyped first: 60 instead of 600, reversed.
    typo = await shop.pay(deal["id"], amount="60", method="bank_transfer")
    missing_reason = await api.post(
        f"/v1/deals/{deal['id']}/payments/{typo['id']}/reverse",
        json={"reason": " "},
        headers=shop.rep,
    )
    assert missing_reason.status_code == 422 and fields_of(missing_reason.json()) == {"reason"}
    reversed_ = await ok(
        api.post(
            f"/v1/deals/{deal['id']}/payments/{typo['id']}/reverse",
            json={"reason": "typed 60 for 600"},
            headers=shop.rep,
        )
    )
    assert reversed_["reversed_by"] == "rep-olga" and reversed_["reversal_reason"]
    rest = await shop.pay(deal["id"], amount="600.00", method="bank_transfer")
    paid = await ok(api.get(f"/v1/deals/{deal['id']}", headers=shop.rep))
    assert (paid["paid"]["amount"], paid["balance_due"]["amount"]) == ("1000.00", "0.00")
    assert paid["paid_in_full_at"]

    listed = await ok(api.get(f"/v1/deals/{deal['id']}/payments", headers=shop.rep))
    assert [(p["id"], "reversed_at" in p) for p in listed["data"]] == [
        (deposit["id"], False),
        (typo["id"], True),  # still listed, marked
        (rest["id"], False),
    ]
    assert (listed["paid"]["amount"], listed["balance_due"]["amount"]) == ("1000.00", "0.00")
    # Fully paid: nothing more can be recorded.
    assert fields_of(await shop.pay(deal["id"], 422, amount="0.01")) == {"amount.amount"}

    # The rule made the installation task for the owner.
    async def installation() -> list[dict[str, Any]] | None:
        tasks = await ok(api.get("/v1/tasks", params={"deal_id": deal["id"]}, headers=shop.admin))
        return [t for t in tasks["data"] if t["title"] == "Install the windows"] or None

    [task] = await eventually(installation, "the installation task")
    assert task["assignee_id"] == "rep-olga"

    # paid_in_full is announced once, even after a reversal and a new payment.
    await ok(
        api.post(
            f"/v1/deals/{deal['id']}/payments/{rest['id']}/reverse",
            json={"reason": "the transfer bounced"},
            headers=shop.admin,
        )
    )
    again = await shop.pay(deal["id"], amount="600.00", method="card")
    assert again["method"] == "card"
    events = [e for e in await stream_events("eu", "deals.>") if e.tenant_id == shop.tenant]
    kinds = [e.event_type for e in events]
    assert kinds.count("deals.deal.paid_in_full") == 1
    assert kinds.count("deals.payment.recorded") == 4
    assert kinds.count("deals.payment.reversed") == 2
    for envelope in events:  # ids, amounts and enums only: no note, no name
        raw = envelope.SerializeToString()
        assert b"deposit" not in raw and b"Fenster" not in raw, envelope.event_type


async def test_revenue_received_per_month_over_regions_in_the_reporting_currency(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    shop = await Shop(api, token_for).setup()
    today = clock.now().date()
    first = today.replace(day=1) - timedelta(days=20)  # some day last month
    second = today.replace(day=1)  # the first of this month
    await ok(
        api.put(
            "/v1/exchange-rates",
            json={"currency": "BRL", "rate": "0.1555", "valid_on": "2020-01-01"},
            headers=shop.admin,
        )
    )
    german = await shop.deal("Fenster", "DE", "2000.00", "EUR")
    brazilian = await shop.deal("Janela", "BR", "3000.00", "BRL", br=True)
    assert brazilian["id"].startswith("br_")
    await shop.pay(german["id"], amount="500.00", paid_on=first.isoformat(), method="cash")
    mistake = await shop.pay(german["id"], amount="700.00", paid_on=first.isoformat())
    await ok(
        api.post(
            f"/v1/deals/{german['id']}/payments/{mistake['id']}/reverse",
            json={"reason": "recorded on the wrong deal"},
            headers=shop.admin,
        )
    )
    await shop.pay(german["id"], amount="1000.00", paid_on=second.isoformat(), method="card")
    pix = await shop.pay(brazilian["id"], amount="500.05", paid_on=second.isoformat(), method="pix")
    assert pix["id"].startswith("br_") and pix["amount"]["currency"] == "BRL"

    def month(day: Any) -> str:
        return f"{day.year}-{day.month:02d}"

    async def report() -> dict[str, Any] | None:
        answer = await ok(
            api.get(
                "/v1/reports/payments",
                params={"granularity": "month", "from": first.isoformat()},
                headers=shop.admin,
            )
        )
        rows = {row["period"]: row for row in answer["data"]}
        done = rows.get(month(second), {}).get("payments") == 2 and month(first) in rows
        return answer if done and rows[month(first)]["payments"] == 1 else None

    answer = await eventually(report, "the payments report")
    assert answer["reporting_currency"] == "EUR" and answer["missing_rates"] == []
    assert set(answer["regions"]) == {"eu", "br", "us"}
    rows = {row["period"]: row for row in answer["data"]}
    # Last month: the cash deposit only (the mistaken 700 was reversed).
    assert rows[month(first)]["value"] == "500.00"
    # This month: 1000 EUR and 500.05 BRL x 0.1555 = 77.757775 EUR, rounded once.
    assert rows[month(second)]["value"] == "1077.76"
    assert rows[month(second)]["granularity"] == "month"

    # A rep reports on their own deals only, like every report.
    other = await ok(api.get("/v1/reports/payments", headers=shop.stranger))
    assert other["data"] == []


async def test_what_a_client_is_worth_on_the_contact_and_the_company(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    shop = await Shop(api, token_for).setup()
    won_stage = shop.pipeline["stages"][1]["id"]
    await ok(
        api.put(
            "/v1/exchange-rates",
            json={"currency": "USD", "rate": "0.9", "valid_on": "2020-01-01"},
            headers=shop.admin,
        )
    )
    company = await ok(
        api.post(
            "/v1/companies",
            json={"name": "Fensterbau GmbH", "address": {"country": "DE"}},
            headers=shop.admin,
        ),
        201,
    )
    first = await shop.deal("Wertvoll", "DE", "1000.00", "EUR")
    contact_id = first["contact_id"]
    await ok(
        api.patch(
            f"/v1/deals/{first['id']}", json={"company_id": company["id"]}, headers=shop.admin
        )
    )

    async def deal(amount: str, currency: str, owner: str) -> dict[str, Any]:
        return dict(
            await ok(
                api.post(
                    "/v1/deals",
                    json={
                        "title": "More windows",
                        "contact_id": contact_id,
                        "owner_id": owner,
                        "pipeline_id": shop.pipeline["id"],
                        "amount": {"amount": amount, "currency": currency},
                    },
                    headers=shop.admin,
                ),
                201,
            )
        )

    # A second deal in dollars, owned by another rep; a third still open.
    dollars = await deal("200.00", "USD", "rep-other")
    still_open = await deal("500.00", "EUR", "rep-olga")
    for won in (first, dollars):
        await ok(
            api.post(
                f"/v1/deals/{won['id']}/stage", json={"stage_id": won_stage}, headers=shop.admin
            )
        )
    await shop.pay(first["id"], amount="1000.00", method="bank_transfer")
    await shop.pay(still_open["id"], amount="100.00", method="cash")
    reversed_ = await shop.pay(still_open["id"], amount="50.00", method="cash")
    await ok(
        api.post(
            f"/v1/deals/{still_open['id']}/payments/{reversed_['id']}/reverse",
            json={"reason": "double entry"},
            headers=shop.admin,
        )
    )

    # The owner of the contact sees what the client is worth over all its deals.
    value = await ok(api.get(f"/v1/contacts/{contact_id}/value", headers=shop.rep))
    assert value == {
        "contact_id": contact_id,
        "company_id": "",
        "region": "eu",
        "reporting_currency": "EUR",
        "won": {"amount": "1180.00", "currency": "EUR"},  # 1000 EUR + 200 USD x 0.9
        "deals_won": 2,
        "paid": {"amount": "1100.00", "currency": "EUR"},  # the reversed 50 does not count
        "payments": 2,
        "missing_rates": [],
    }
    worth = await ok(api.get(f"/v1/companies/{company['id']}/value", headers=shop.admin))
    assert (worth["won"]["amount"], worth["deals_won"], worth["paid"]["amount"]) == (
        "1000.00",
        1,
        "1000.00",
    )
    # Someone who may not read the contact learns nothing about it.
    hidden = await api.get(f"/v1/contacts/{contact_id}/value", headers=shop.stranger)
    assert hidden.status_code == 404, hidden.text
    bad = await api.get("/v1/contacts/not-an-id/value", headers=shop.admin)
    assert bad.status_code == 422, bad.text


INVOICE = (
    "<h1>Fatura</h1><p>{{ contact.first_name }} {{ contact.last_name }}</p>"
    "<p>{{ amount_formatted }}</p>"
)


def mails_to(system: Any, address: str) -> list[EmailMessage]:
    """What the system's SMTP server (aiosmtpd, `crm_cli.mailcatcher`) received for one
    address: one .eml file per message."""
    found = []
    for path in sorted(Path(system.mail_dir).glob("*.eml")):
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(mail, EmailMessage)
        if address in str(mail["To"]):
            found.append(mail)
    return found


def restart(system: Any, process: Any) -> None:
    process.start(system.log_dir)
    deadline = time.monotonic() + 60
    while not process.healthy():
        assert time.monotonic() < deadline, f"{process.name} did not restart"
        time.sleep(0.2)


async def test_sending_the_invoice_to_the_client_by_email(
    api: httpx.AsyncClient, token_for: Any, system: Any, stream_events: Any
) -> None:
    shop = await Shop(api, token_for).setup()
    admin = shop.admin_br  # a Brazilian client: everything about them stays in br
    await ok(
        api.put(
            "/v1/document-templates/invoice",
            json={"name": "Fatura", "body": INVOICE, "locale": "pt_BR"},
            headers=shop.admin,
        )
    )
    # The tenant's own email for the document, in the client's language.
    await ok(
        api.put(
            "/v1/templates/document.sent/pt-BR",
            json={
                "subject": "{{ document.title }} de Janelas Ltda.",
                "body_text": "Olá {{ contact.first_name }}, segue a fatura de "
                "{{ deal.amount|money(deal.currency) }} em anexo.",
            },
            headers=shop.admin,
        )
    )
    deal = await shop.deal("Envio", "BR", "3000.00", "BRL", br=True)
    address = "envio@example.com"
    document = await ok(
        api.post(
            f"/v1/deals/{deal['id']}/documents", json={"template_key": "invoice"}, headers=admin
        ),
        201,
    )
    # While the notifications service is down, the send is accepted and waits.
    notifications = next(p for p in system.processes if p.name == "notifications-br")
    notifications.stop()
    try:
        # Olga, who owns the deal, sends it.
        queued = await ok(
            api.post(
                f"/v1/deals/{deal['id']}/documents/{document['id']}/send",
                headers={**shop.rep_br, "Idempotency-Key": "send-invoice-1"},
            ),
            202,
        )
        assert (queued["status"], queued["contact_id"]) == ("queued", deal["contact_id"])
        assert mails_to(system, address) == []
    finally:
        restart(system, notifications)

    async def delivered() -> list[EmailMessage] | None:
        return mails_to(system, address) or None

    [mail] = await eventually(delivered, "the invoice email", within=60)
    assert str(mail["Subject"]) == "Fatura de Janelas Ltda."
    text = mail.get_body(preferencelist=("plain",))
    assert text is not None and "Olá Client, segue a fatura de R$" in text.get_content()
    [pdf] = [part for part in mail.iter_attachments()]
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_filename() == f"invoice-{document['id']}.pdf"
    assert pdf.get_content().startswith(b"%PDF")

    # The same request again (same Idempotency-Key) sends nothing more.
    again = await ok(
        api.post(
            f"/v1/deals/{deal['id']}/documents/{document['id']}/send",
            headers={**shop.rep_br, "Idempotency-Key": "send-invoice-1"},
        ),
        202,
    )
    assert again["event_id"] == queued["event_id"]

    # Visible: the delivery and its log (to who sent it), and the email on the timeline.
    log = await ok(api.get(queued["deliveries"], headers=shop.rep_br))
    [delivery] = log["data"]
    assert (delivery["kind"], delivery["channel"], delivery["status"]) == (
        "document.sent",
        "email",
        "sent",
    )
    assert delivery["recipient_id"] == deal["contact_id"]
    assert [a["outcome"] for a in delivery["log"]] == ["sent"]
    other_rep = token_for("rep-other", "sales_rep", "br", tenant=shop.tenant)
    assert (await ok(api.get(queued["deliveries"], headers=other_rep)))["data"] == []

    async def on_the_timeline() -> list[dict[str, Any]] | None:
        notes = await ok(api.get(f"/v1/contacts/{deal['contact_id']}/notes", headers=admin))
        return [n for n in notes["data"] if n["kind"] == "email"] or None

    [entry] = await eventually(on_the_timeline, "the email on the timeline")
    assert entry["subject"] == "Fatura de Janelas Ltda." and address in entry["body"]

    # The event carries ids only: no address, no name, no PDF.
    events = [
        e
        for e in await stream_events("br", "deals.document.>")
        if e.tenant_id == shop.tenant and e.event_type == "deals.document.send_requested"
    ]
    assert len(events) == 1
    raw = events[0].SerializeToString()
    assert b"Envio" not in raw and address.encode() not in raw and b"%PDF" not in raw

    # A client without an email address: 422 naming the field, nothing queued.
    silent = await ok(
        api.post(
            "/v1/contacts",
            json={"first_name": "Sem", "last_name": "Email", "address": {"country": "BR"}},
            headers=admin,
        ),
        201,
    )
    quiet = await ok(
        api.post(
            "/v1/deals",
            json={
                "title": "No email",
                "contact_id": silent["id"],
                "pipeline_id": shop.pipeline["id"],
                "amount": {"amount": "10.00", "currency": "BRL"},
            },
            headers=admin,
        ),
        201,
    )
    doc = await ok(
        api.post(
            f"/v1/deals/{quiet['id']}/documents", json={"template_key": "invoice"}, headers=admin
        ),
        201,
    )
    refused = await api.post(f"/v1/deals/{quiet['id']}/documents/{doc['id']}/send", headers=admin)
    assert refused.status_code == 422, refused.text
    assert fields_of(refused.json()) == {"contact_id"}
    # Another deal's document is not this deal's.
    other = await api.post(
        f"/v1/deals/{quiet['id']}/documents/{document['id']}/send", headers=admin
    )
    assert other.status_code == 404, other.text


async def test_a_lowered_amount_can_complete_the_payment_and_the_currency_stays(
    api: httpx.AsyncClient, token_for: Any, stream_events: Any
) -> None:
    shop = await Shop(api, token_for).setup()
    deal = await shop.deal("Rabatt", "DE", "500.00", "EUR")
    await shop.pay(deal["id"], amount="450.00", method="card")
    # Another currency now would make the balance meaningless: 422, nothing changed.
    refused = await api.patch(
        f"/v1/deals/{deal['id']}",
        json={"amount": {"amount": "450.00", "currency": "USD"}},
        headers=shop.admin,
    )
    assert refused.status_code == 422, refused.text
    assert fields_of(refused.json()) == {"amount.currency"}
    # A discount of 50: what was paid now covers the amount.
    lowered = await ok(
        api.patch(
            f"/v1/deals/{deal['id']}",
            json={"amount": {"amount": "450.00", "currency": "EUR"}},
            headers=shop.admin,
        )
    )
    assert (lowered["balance_due"]["amount"], bool(lowered.get("paid_in_full_at"))) == (
        "0.00",
        True,
    )
    paid = [
        e
        for e in await stream_events("eu", "deals.deal.paid_in_full")
        if e.tenant_id == shop.tenant
    ]
    assert len(paid) == 1
