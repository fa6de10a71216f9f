"""Money received, end to end through the gateway: payments against a deal, the balance
due, "paid in full" starting the installation, and revenue received per period.

A window company takes a deposit in cash, the rest by bank transfer; a mistyped entry
is reversed; a Brazilian client pays by Pix in reais. Everything goes through the REST
API against the whole system (real PostgreSQL and NATS).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
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
