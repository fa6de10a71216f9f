"""The pipeline board: one column per stage, in order, with the deals the caller may
see, their count and their total in the tenant's reporting currency.

Totals are exact Decimal sums of each amount converted with today's rate, rounded once
to the reporting currency's minor unit by the one rule every report uses
(crm_kit.reporting_money: half to even).
Amounts in a currency without a rate are left out of the totals and the currency is
listed in `missing_rates`.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.deals.v1 import deals_pb2 as pb
from crm_deals import fx, models, money, pipelines
from crm_deals.access import visible
from crm_deals.convert import stage_to_pb
from crm_deals.deals import to_pbs
from crm_kit.clock import now
from crm_kit.context import Principal
from crm_kit.reporting_money import round_reporting

# Deals listed per column (the most recently entered first); count and total cover all.
MAX_DEALS_PER_COLUMN = 200


async def get_board(
    session: AsyncSession, principal: Principal, request: pb.GetBoardRequest
) -> pb.Board:
    view = await pipelines.load(session, principal.tenant_id, request.pipeline_id)
    deal = models.Deal
    conditions = [visible(deal, principal), deal.pipeline_id == view.pipeline.id]
    if request.owner_id:
        conditions.append(deal.owner_id == request.owner_id)
    if request.owner_team:
        conditions.append(deal.owner_team == request.owner_team)

    sums = await session.execute(
        sa.select(deal.stage_id, deal.currency, sa.func.count(), sa.func.sum(deal.amount))
        .where(*conditions)
        .group_by(deal.stage_id, deal.currency)
    )
    conversion = await fx.converter(session, principal.tenant_id, now().date())
    counts: dict[str, int] = {}
    totals: dict[str, Decimal] = {}
    with decimal.localcontext(prec=fx.PRECISION):
        for stage_id, currency, count, amount in sums.tuples():
            counts[stage_id] = counts.get(stage_id, 0) + count
            if amount is None:  # deals without an amount
                continue
            converted = conversion.convert(amount, currency)
            if converted is not None:
                totals[stage_id] = totals.get(stage_id, Decimal(0)) + converted

    ranked = (
        sa.select(
            deal.id,
            sa.func.row_number()
            .over(
                partition_by=deal.stage_id,
                order_by=(deal.stage_entered_at.desc(), deal.id.desc()),
            )
            .label("n"),
        )
        .where(*conditions)
        .subquery()
    )
    rows = (
        await session.scalars(
            sa.select(deal)
            .join(ranked, ranked.c.id == deal.id)
            .where(ranked.c.n <= MAX_DEALS_PER_COLUMN)
            .order_by(ranked.c.n)
        )
    ).all()
    by_stage: dict[str, list[pb.Deal]] = {}
    for message in await to_pbs(session, rows):
        by_stage.setdefault(message.stage_id, []).append(message)

    reporting = conversion.reporting

    def total_of(stage_id: str) -> Decimal:
        return totals.get(stage_id, Decimal(0))

    return pb.Board(
        pipeline=view.to_pb(),
        reporting_currency=reporting,
        columns=[
            pb.BoardColumn(
                stage=stage_to_pb(stage),
                count=counts.get(stage.id, 0),
                total=pb.Money(
                    amount=f"{round_reporting(total_of(stage.id), money.digits(reporting)):f}",
                    currency=reporting,
                ),
                deals=by_stage.get(stage.id, []),
            )
            for stage in view.stages
        ],
        missing_rates=sorted(conversion.missing),
    )
