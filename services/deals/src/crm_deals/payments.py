"""Payments received against a deal, the balance due, and "paid in full".

A payment is in the deal's own currency: a payment in another one is refused (422 on
`amount.currency`) rather than converted, because the balance of an invoice must come
out exact to the cent, and the tenant's exchange rates are dated rates for reporting,
not the rate the client's bank actually applied. The client's transfer is recorded as
the amount credited in the deal's currency.

A payment larger than the balance due is refused too (most often a typo).
A mistaken payment is reversed, not deleted: it stays listed with who reversed it,
when and why, and no longer counts. `deals.payment.recorded` / `deals.payment.reversed`
go through the outbox with the state change; `deals.deal.paid_in_full` is sent once per
deal, the first time the payments cover its amount (a rule can then create the
installation task), and not again if a reversal reopens the balance and it is paid.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.deals.v1 import deals_pb2 as pb
from crm_api.crm.events.v1 import deals_pb2 as events
from crm_deals import models, money
from crm_deals.access import get_deal_row, visible
from crm_deals.convert import deal_to_pb, payment_to_pb
from crm_kit.clock import now
from crm_kit.context import Principal
from crm_kit.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from crm_kit.ids import is_valid_id, new_id, region_of
from crm_kit.messaging import Outbox

METHODS = ("cash", "card", "bank_transfer", "pix", "other")
MAX_NOTE = 1_000
MAX_REASON = 1_000
# The deals service knows no tenant time zone; "today" is the latest calendar day
# anywhere on Earth (UTC+14), so a payment received today is never refused.
_EARLIEST_ZONE = timezone(timedelta(hours=14))


def latest_today() -> date:
    return now().astimezone(_EARLIEST_ZONE).date()


async def paid_by_deal(session: AsyncSession, deal_ids: Sequence[str]) -> dict[str, Decimal]:
    """Sum of the payments that count (not reversed), per deal, in one query."""
    if not deal_ids:
        return {}
    p = models.Payment
    rows = await session.execute(
        sa.select(p.deal_id, sa.func.sum(p.amount))
        .where(p.deal_id.in_(list(deal_ids)), p.reversed_at.is_(None))
        .group_by(p.deal_id)
    )
    return {deal_id: total for deal_id, total in rows.tuples()}


def _paid_on(raw: str, violations: list[FieldViolation]) -> date:
    text = raw.strip()
    if not text:
        return now().astimezone(UTC).date()
    try:
        if len(text) != 10:
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        violations.append(FieldViolation("paid_on", "expected YYYY-MM-DD"))
        return date.min
    if day > latest_today():
        violations.append(FieldViolation("paid_on", "must not be in the future"))
    return day


def _event(row: models.Deal, payment: models.Payment) -> events.PaymentRecorded:
    return events.PaymentRecorded(
        payment_id=payment.id,
        deal_id=row.id,
        pipeline_id=row.pipeline_id,
        owner_id=row.owner_id,
        owner_team=row.owner_team,
        amount=money.to_text(payment.amount, payment.currency),
        currency=payment.currency,
        paid_on=payment.paid_on.isoformat(),
        method=payment.method,
        contact_id=row.contact_id,
        company_id=row.company_id,
    )


async def record_payment(
    session: AsyncSession,
    principal: Principal,
    region: str,
    outbox: Outbox,
    msg: pb.Payment,
) -> pb.Payment:
    """Records one payment; whoever may see the deal may record what it received."""
    violations: list[FieldViolation] = []
    if not is_valid_id(msg.deal_id):
        raise InvalidArgument.single("deal_id", f"malformed id {msg.deal_id!r}")
    # The row lock serialises payments of one deal: two at once cannot both be the one
    # that completes it, so paid_in_full is sent once.
    row = await get_deal_row(session, principal, msg.deal_id, field="deal_id", for_update=True)
    if row.amount is None or not row.currency:
        raise FailedPrecondition(
            f"deal {row.id} has no amount; give it one before recording payments"
        )
    currency = row.currency
    if msg.amount.currency.strip():
        given = money.currency_code(msg.amount.currency, "amount.currency", violations)
        if given and given != row.currency:
            violations.append(
                FieldViolation(
                    "amount.currency",
                    f"the deal is in {row.currency}; record the amount credited in {row.currency}",
                )
            )
    amount = None
    if not msg.amount.amount.strip():
        violations.append(FieldViolation("amount.amount", "required"))
    else:
        amount = money.parse_amount(msg.amount.amount, currency, "amount.amount", violations)
        paid = (await paid_by_deal(session, [row.id])).get(row.id, Decimal(0))
        due = row.amount - paid
        if amount is not None and amount <= 0:
            violations.append(FieldViolation("amount.amount", "must be greater than zero"))
        elif amount is not None and amount > due:
            # Most often a typo (10000 for 1000); a real overpayment is settled outside.
            violations.append(
                FieldViolation(
                    "amount.amount",
                    f"more than the balance due ({money.to_text(due, currency)} {currency})",
                )
            )
    paid_on = _paid_on(msg.paid_on, violations)
    method = msg.method.strip() or "other"
    if method not in METHODS:
        violations.append(FieldViolation("method", f"one of {', '.join(METHODS)}"))
    note = msg.note.strip()
    if len(note) > MAX_NOTE:
        violations.append(FieldViolation("note", f"at most {MAX_NOTE} characters"))
    if violations:
        raise InvalidArgument(violations)
    assert amount is not None
    at = now()
    payment = models.Payment(
        id=new_id(region),
        tenant_id=principal.tenant_id,
        deal_id=row.id,
        amount=amount,
        currency=currency,
        paid_on=paid_on,
        method=method,
        note=note,
        recorded_by=principal.user_id,
        recorded_at=at,
        reversed_at=None,
        reversed_by="",
        reversal_reason="",
    )
    session.add(payment)
    await session.flush()
    await outbox.add(session, principal, "payment", "recorded", _event(row, payment))
    await announce_if_paid(session, principal, outbox, row)
    return payment_to_pb(payment)


async def has_payments(session: AsyncSession, deal_id: str) -> bool:
    """Whether any payment (reversed or not) was recorded against the deal."""
    found = await session.scalar(
        sa.select(models.Payment.id).where(models.Payment.deal_id == deal_id).limit(1)
    )
    return found is not None


async def announce_if_paid(
    session: AsyncSession, principal: Principal, outbox: Outbox, row: models.Deal
) -> None:
    """deals.deal.paid_in_full the first time the payments cover the amount: after a
    payment, or when the amount is lowered to what was already paid."""
    if row.paid_in_full_at is not None or row.amount is None:
        return
    p = models.Payment
    paid, last_day = (
        await session.execute(
            sa.select(sa.func.sum(p.amount), sa.func.max(p.paid_on)).where(
                p.deal_id == row.id, p.reversed_at.is_(None)
            )
        )
    ).one()
    if paid is None or paid <= 0 or paid < row.amount:
        return
    at = now()
    row.paid_in_full_at = at
    row.version += 1
    row.updated_at = at
    await session.flush()
    await outbox.add(
        session,
        principal,
        "deal",
        "paid_in_full",
        events.DealPaidInFull(
            deal_id=row.id,
            pipeline_id=row.pipeline_id,
            owner_id=row.owner_id,
            owner_team=row.owner_team,
            contact_id=row.contact_id,
            amount=money.to_text(row.amount, row.currency),
            currency=row.currency,
            paid_on=last_day.isoformat(),
        ),
    )


async def list_payments(
    session: AsyncSession, principal: Principal, deal_id: str
) -> pb.ListPaymentsResponse:
    row = await get_deal_row(session, principal, deal_id, field="deal_id", via_task="deal.read")
    payments = list(
        await session.scalars(
            sa.select(models.Payment)
            .where(models.Payment.deal_id == row.id)
            .order_by(models.Payment.paid_on, models.Payment.id)
        )
    )
    paid = sum((p.amount for p in payments if p.reversed_at is None), Decimal(0))
    # The deal's own figures, computed in one place (convert.deal_to_pb).
    figures = deal_to_pb(row, "", paid=paid)
    return pb.ListPaymentsResponse(
        payments=[payment_to_pb(p) for p in payments],
        paid=figures.paid if figures.HasField("paid") else None,
        balance_due=figures.balance_due if figures.HasField("balance_due") else None,
    )


async def reverse_payment(
    session: AsyncSession, principal: Principal, outbox: Outbox, request: pb.ReversePaymentRequest
) -> pb.Payment:
    """Marks a mistaken payment as reversed; reversing it again changes nothing."""
    region_of(request.id, "id")
    reason = request.reason.strip()
    if not reason:
        raise InvalidArgument.single("reason", "required: say why the entry was wrong")
    if len(reason) > MAX_REASON:
        raise InvalidArgument.single("reason", f"at most {MAX_REASON} characters")
    p = models.Payment
    payment = await session.scalar(
        sa.select(p)
        .join(models.Deal, models.Deal.id == p.deal_id)
        .where(p.id == request.id, visible(models.Deal, principal))
        .with_for_update(of=p)
    )
    if payment is None or (request.deal_id and payment.deal_id != request.deal_id):
        raise NotFound(f"payment {request.id} not found")
    if payment.reversed_at is not None:
        return payment_to_pb(payment)
    row = await get_deal_row(session, principal, payment.deal_id, for_update=True)
    at = now()
    payment.reversed_at = at
    payment.reversed_by = principal.user_id
    payment.reversal_reason = reason
    row.version += 1
    row.updated_at = at
    await session.flush()
    await outbox.add(session, principal, "payment", "reversed", _event(row, payment))
    return payment_to_pb(payment)
