"""What a client is worth: the total won and the total paid to date over all the deals
of one contact or company, in the tenant's reporting currency.

A contact's or company's deals all live in its region (a deal lives with its contact,
and its company must be of the same region), so one region answers. Whoever may read
the contact or company (asked of the contacts service) sees the client's totals over
all its deals, whoever owns them: the totals are two sums, never the deals themselves.
Won amounts are converted at the rate valid on their close day, payments at the rate
of their day, summed exactly and rounded once (crm_kit.reporting_money), like reports.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.deals.v1 import deals_pb2 as pb
from crm_deals import fx, models, money
from crm_deals.links import Directory
from crm_kit.context import Principal
from crm_kit.errors import InvalidArgument, NotFound
from crm_kit.ids import is_valid_id, region_of
from crm_kit.reporting_money import round_reporting


async def client_value(
    session: AsyncSession,
    principal: Principal,
    region: str,
    directory: Directory,
    request: pb.GetClientValueRequest,
) -> pb.ClientValue:
    contact_id, company_id = request.contact_id.strip(), request.company_id.strip()
    field, record_id = ("contact_id", contact_id) if contact_id else ("company_id", company_id)
    if bool(contact_id) == bool(company_id):
        raise InvalidArgument.single("contact_id", "give a contact_id or a company_id")
    if not is_valid_id(record_id) or region_of(record_id, field) != region:
        raise InvalidArgument.single(field, f"not an id of region {region}")
    found = (
        await directory.contact(principal, contact_id)
        if contact_id
        else await directory.company(principal, company_id)
    )
    if found is None:
        raise NotFound(f"{field.removesuffix('_id')} {record_id} not found")
    deal = models.Deal
    column = deal.contact_id if contact_id else deal.company_id
    deals = (
        await session.execute(
            sa.select(deal.id, deal.status, deal.amount, deal.currency, deal.closed_at).where(
                deal.tenant_id == principal.tenant_id, column == record_id
            )
        )
    ).all()
    rates = await fx.dated_rates(session, principal.tenant_id)
    won = paid = Decimal(0)
    deals_won = 0
    with decimal.localcontext(prec=fx.PRECISION):
        for _, status, amount, currency, closed_at in deals:
            if status != "won" or amount is None or closed_at is None:
                continue
            deals_won += 1
            converted = rates.convert(amount, currency, closed_at.date())
            won += converted if converted is not None else Decimal(0)
        p = models.Payment
        payments = (
            await session.execute(
                sa.select(p.amount, p.currency, p.paid_on).where(
                    p.deal_id.in_([row[0] for row in deals]), p.reversed_at.is_(None)
                )
            )
        ).all()
        for amount, currency, paid_on in payments:
            converted = rates.convert(amount, currency, paid_on)
            paid += converted if converted is not None else Decimal(0)
    places = money.digits(rates.reporting)

    def shown(value: Decimal) -> pb.Money:
        return pb.Money(amount=f"{round_reporting(value, places):f}", currency=rates.reporting)

    return pb.ClientValue(
        contact_id=contact_id,
        company_id=company_id,
        reporting_currency=rates.reporting,
        won=shown(won),
        deals_won=deals_won,
        paid=shown(paid),
        payments=len(payments),
        missing_rates=sorted(rates.missing),
    )
