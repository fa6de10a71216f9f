"""The tenant's reporting currency and its dated exchange rates.

A rate says 1 `currency` = `rate` `quote_currency` from `valid_on` on. An amount is
converted with the latest rate into the reporting currency valid on or before the
day asked for; without one it is not converted at all (never guessed).
Like pipelines, rates and settings are tenant configuration kept in every region.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.deals.v1 import deals_pb2 as pb
from crm_deals import models, money
from crm_deals.convert import rate_to_pb
from crm_kit.clock import now
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, InvalidArgument, PermissionDenied

DEFAULT_REPORTING_CURRENCY = "EUR"
# Amount (18 digits) times rate (24 digits), summed: exact within this precision.
PRECISION = 64


async def reporting_currency(session: AsyncSession, tenant_id: str) -> str:
    row = await session.get(models.DealSettings, tenant_id)
    return row.reporting_currency if row else DEFAULT_REPORTING_CURRENCY


async def get_settings(session: AsyncSession, principal: Principal) -> pb.DealSettings:
    row = await session.get(models.DealSettings, principal.tenant_id)
    return pb.DealSettings(
        reporting_currency=row.reporting_currency if row else DEFAULT_REPORTING_CURRENCY,
        lost_reasons=list(row.lost_reasons) if row else [],
    )


MAX_LOST_REASONS = 100


def reason_key(reason: str) -> str:
    """A lost reason as a category compares: spaces collapsed, lower case."""
    return " ".join(reason.split()).lower()


async def lost_reason_category(session: AsyncSession, tenant_id: str, reason: str) -> str:
    """What events may say of a lost reason: the tenant's category it matches, else
    "other" ("" when there is no reason). The free text stays in the deal."""
    if not reason.strip():
        return ""
    row = await session.get(models.DealSettings, tenant_id)
    key = reason_key(reason)
    return key if row is not None and key in row.lost_reasons else "other"


async def put_settings(
    session: AsyncSession, principal: Principal, msg: pb.DealSettings
) -> pb.DealSettings:
    if not principal.has_role("admin"):
        raise PermissionDenied("only admins change deal settings")
    violations: list[FieldViolation] = []
    currency = money.currency_code(msg.reporting_currency, "reporting_currency", violations)
    reasons: list[str] = []
    if len(msg.lost_reasons) > MAX_LOST_REASONS:
        violations.append(FieldViolation("lost_reasons", f"at most {MAX_LOST_REASONS}"))
    for index, reason in enumerate(msg.lost_reasons):
        key = reason_key(reason)
        if not 1 <= len(key) <= 100 or key == "other":
            violations.append(
                FieldViolation(f"lost_reasons[{index}]", "1 to 100 characters, not 'other'")
            )
        elif key not in reasons:
            reasons.append(key)
    if violations:
        raise InvalidArgument(violations)
    values = {"reporting_currency": currency, "lost_reasons": reasons, "updated_at": now()}
    await session.execute(
        pg_insert(models.DealSettings)
        .values(tenant_id=principal.tenant_id, **values)
        .on_conflict_do_update(index_elements=[models.DealSettings.tenant_id], set_=values)
    )
    return pb.DealSettings(reporting_currency=currency, lost_reasons=reasons)


async def put_rate(
    session: AsyncSession, principal: Principal, msg: pb.ExchangeRate
) -> pb.ExchangeRate:
    """Records (or corrects) the rate of one currency from one day on."""
    if not principal.has_role("admin", "manager"):
        raise PermissionDenied("only admins and managers record exchange rates")
    violations: list[FieldViolation] = []
    currency = money.currency_code(msg.currency, "currency", violations)
    quote = (
        money.currency_code(msg.quote_currency, "quote_currency", violations)
        if msg.quote_currency.strip()
        else await reporting_currency(session, principal.tenant_id)
    )
    if currency and currency == quote:
        violations.append(FieldViolation("currency", f"the rate of {quote} to itself is 1"))
    rate = money.parse_rate(msg.rate, "rate", violations)
    valid_on = now().date()
    if msg.valid_on.strip():
        try:
            valid_on = date.fromisoformat(msg.valid_on.strip())
        except ValueError:
            violations.append(FieldViolation("valid_on", "expected YYYY-MM-DD"))
    if violations:
        raise InvalidArgument(violations)
    key = {
        "tenant_id": principal.tenant_id,
        "currency": currency,
        "quote_currency": quote,
        "valid_on": valid_on,
    }
    await session.execute(
        pg_insert(models.ExchangeRate)
        .values(**key, rate=rate, updated_at=now())
        .on_conflict_do_update(index_elements=list(key), set_={"rate": rate, "updated_at": now()})
    )
    row = await session.get(models.ExchangeRate, tuple(key.values()), populate_existing=True)
    assert row is not None
    return rate_to_pb(row)


async def list_rates(session: AsyncSession, principal: Principal) -> pb.ListExchangeRatesResponse:
    rows = await session.scalars(
        sa.select(models.ExchangeRate)
        .where(models.ExchangeRate.tenant_id == principal.tenant_id)
        .order_by(
            models.ExchangeRate.currency,
            models.ExchangeRate.quote_currency,
            models.ExchangeRate.valid_on.desc(),
        )
    )
    return pb.ListExchangeRatesResponse(rates=[rate_to_pb(row) for row in rows])


@dataclass
class Converter:
    """Converts into the reporting currency with the rates valid on one day."""

    reporting: str
    rates: dict[str, Decimal]
    missing: set[str] = field(default_factory=set)

    def convert(self, amount: Decimal, currency: str) -> Decimal | None:
        """The exact converted amount (not rounded), or None (noted in `missing`)."""
        if currency == self.reporting:
            return amount
        rate = self.rates.get(currency)
        if rate is None:
            self.missing.add(currency)
            return None
        with decimal.localcontext(prec=PRECISION):
            return amount * rate


async def converter(session: AsyncSession, tenant_id: str, on: date) -> Converter:
    reporting = await reporting_currency(session, tenant_id)
    rate = models.ExchangeRate
    rows = await session.execute(
        sa.select(rate.currency, rate.rate)
        .distinct(rate.currency)
        .where(
            rate.tenant_id == tenant_id,
            rate.quote_currency == reporting,
            rate.valid_on <= on,
        )
        .order_by(rate.currency, rate.valid_on.desc())
    )
    return Converter(reporting, {currency: value for currency, value in rows.tuples()})


@dataclass
class DatedRates:
    """Every rate into the reporting currency, for amounts of many different days."""

    reporting: str
    # currency -> [(valid_on, rate)], newest first
    by_currency: dict[str, list[tuple[date, Decimal]]]
    missing: set[str] = field(default_factory=set)

    def convert(self, amount: Decimal, currency: str, on: date) -> Decimal | None:
        """The exact converted amount with the rate valid on `on`, or None (noted)."""
        if currency == self.reporting:
            return amount
        for valid_on, rate in self.by_currency.get(currency, ()):
            if valid_on <= on:
                with decimal.localcontext(prec=PRECISION):
                    return amount * rate
        self.missing.add(currency)
        return None


async def dated_rates(session: AsyncSession, tenant_id: str) -> DatedRates:
    reporting = await reporting_currency(session, tenant_id)
    rate = models.ExchangeRate
    rows = await session.execute(
        sa.select(rate.currency, rate.valid_on, rate.rate)
        .where(rate.tenant_id == tenant_id, rate.quote_currency == reporting)
        .order_by(rate.currency, rate.valid_on.desc())
    )
    by_currency: dict[str, list[tuple[date, Decimal]]] = {}
    for currency, valid_on, value in rows.tuples():
        by_currency.setdefault(currency, []).append((valid_on, value))
    return DatedRates(reporting, by_currency)
