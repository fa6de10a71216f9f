"""The board: columns per stage with counts and exact totals in the reporting currency."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from crm_api.crm.deals.v1 import deals_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def put_rate(client: Any, currency: str, rate: str, valid_on: str) -> pb.ExchangeRate:
    return await client.deals.PutExchangeRate(
        pb.PutExchangeRateRequest(
            rate=pb.ExchangeRate(currency=currency, rate=rate, valid_on=valid_on)
        ),
        metadata=client.admin,
    )


async def test_board_totals_are_exact_in_the_reporting_currency(client: Any, refused: Any) -> None:
    settings = await client.deals.GetDealSettings(
        pb.GetDealSettingsRequest(), metadata=client.admin
    )
    assert settings.reporting_currency == "EUR"
    # The latest rate valid today counts: not an older one, not one from the future.
    await put_rate(client, "USD", "0.5", "2000-01-01")
    stored = await put_rate(client, "USD", "0.9", "2020-01-01")
    await put_rate(client, "USD", "2.0", "2999-01-01")
    assert (stored.currency, stored.quote_currency, stored.rate) == ("USD", "EUR", "0.9")
    corrected = await put_rate(client, "USD", "0.90", "2020-01-01")  # same day: replaced
    assert corrected.rate == "0.9"
    rates = await client.deals.ListExchangeRates(
        pb.ListExchangeRatesRequest(), metadata=client.admin
    )
    assert [(r.valid_on, r.rate) for r in rates.rates] == [
        ("2999-01-01", "2"),
        ("2020-01-01", "0.9"),
        ("2000-01-01", "0.5"),
    ]

    contact = await client.contact()
    rep = client.as_("sales_rep", "u-rep", "north")
    mine = await client.contact(rep)
    amounts = [("100.10", "EUR"), ("50.05", "USD"), ("0.01", "USD"), ("70", "GBP")]
    for amount, currency in amounts:
        await client.deal(
            contact.id,
            stage_id="default-proposal",
            amount=pb.Money(amount=amount, currency=currency),
        )
    await client.deal(contact.id, stage_id="default-proposal")  # no amount: counted only
    await client.deal(mine.id, rep, amount=pb.Money(amount="1000", currency="EUR"))

    board = await client.deals.GetBoard(pb.GetBoardRequest(), metadata=client.admin)
    assert board.pipeline.id == "default" and board.reporting_currency == "EUR"
    assert [c.stage.name for c in board.columns] == [
        "Qualification",
        "Needs analysis",
        "Proposal",
        "Negotiation",
        "Won",
        "Lost",
    ]
    proposal = board.columns[2]
    assert proposal.count == 5 and len(proposal.deals) == 5
    # 100.10 + (50.05 + 0.01) * 0.9 = 145.154 -> 145.15; GBP has no rate and is left out.
    assert proposal.total == pb.Money(amount="145.15", currency="EUR")
    assert list(board.missing_rates) == ["GBP"]
    assert board.columns[0].count == 1 and board.columns[0].total.amount == "1000.00"
    assert board.columns[4].count == 0 and board.columns[4].total.amount == "0.00"

    # A sales rep's board shows only their own deals; an owner filter narrows it.
    own = await client.deals.GetBoard(pb.GetBoardRequest(pipeline_id="default"), metadata=rep)
    assert [c.count for c in own.columns] == [1, 0, 0, 0, 0, 0]
    assert list(own.missing_rates) == []
    filtered = await client.deals.GetBoard(
        pb.GetBoardRequest(owner_id="u-rep"), metadata=client.admin
    )
    assert [c.count for c in filtered.columns] == [1, 0, 0, 0, 0, 0]

    # With GBP as the reporting currency, the EUR and USD amounts now lack rates.
    await client.deals.PutDealSettings(
        pb.PutDealSettingsRequest(settings=pb.DealSettings(reporting_currency="gbp")),
        metadata=client.admin,
    )
    board = await client.deals.GetBoard(pb.GetBoardRequest(), metadata=client.admin)
    assert board.columns[2].total == pb.Money(amount="70.00", currency="GBP")
    assert list(board.missing_rates) == ["EUR", "USD"]

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    for currency, rate, valid_on, field in (
        ("USX", "1", "", "currency"),
        ("USD", "-1", "", "rate"),
        ("USD", "0", "", "rate"),
        ("USD", "1e2", "", "rate"),
        ("USD", "1", "01/02/2020", "valid_on"),
        ("GBP", "1", "", "currency"),  # the reporting currency itself
    ):
        assert await refused(put_rate(client, currency, rate, valid_on), invalid) == {field}
    await refused(
        client.deals.PutExchangeRate(
            pb.PutExchangeRateRequest(rate=pb.ExchangeRate(currency="USD", rate="1")),
            metadata=rep,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await refused(
        client.deals.GetBoard(pb.GetBoardRequest(pipeline_id="nope"), metadata=client.admin),
        grpc.StatusCode.NOT_FOUND,
    )
