"""Reports of one region, read from the aggregates only.

A region answers with mergeable rows: counts, exact (unrounded) decimal sums already
converted into the tenant's reporting currency, and the sales-cycle histogram. Keys
are stage ids, sources, date buckets and, for the activity report only, the user id
of the employee whose activity is counted. No contact, company or deal id and no
name is ever part of an answer, so the gateway may merge regions freely.

Money is converted with the tenant's rates, read from the deals service of this
region at query time (rates are tenant configuration kept in every region; they can be
corrected afterwards, so they are not copied into the read model): closed deals at
the rate valid on their close day, open deals (funnel values, forecast) at today's.
An amount whose currency has no rate is left out of the sums and named in
`missing_rates`, never guessed.
"""

from __future__ import annotations

import decimal
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.reporting.v1 import reporting_pb2 as pb
from crm_kit.clock import now
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, InvalidArgument, PermissionDenied
from crm_reporting import models

NAMES = (
    "funnel",
    "win_rate",
    "revenue",
    "activity",
    "lead_sources",
    "forecast",
    "payments",
    "lost_reasons",
)
GRANULARITIES = ("day", "week", "month", "quarter")
MAX_FILTER_VALUES = 100
PRECISION = 60


# ---------------------------------------------------------------- filters


@dataclass(frozen=True)
class Filters:
    first: date | None
    last: date | None
    pipeline_ids: tuple[str, ...]
    owner_ids: tuple[str, ...]
    teams: tuple[str, ...]
    granularity: str


def _day(raw: str, name: str, violations: list[FieldViolation]) -> date | None:
    text = raw.strip()
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        violations.append(FieldViolation(name, f"expected YYYY-MM-DD, got {text!r}"))
        return None


def _values(raw: Iterable[str], name: str, violations: list[FieldViolation]) -> tuple[str, ...]:
    values = tuple(dict.fromkeys(v.strip() for v in raw if v.strip()))
    if len(values) > MAX_FILTER_VALUES:
        violations.append(FieldViolation(name, f"at most {MAX_FILTER_VALUES} values"))
    return values


def parse_filters(name: str, msg: pb.ReportFilter) -> Filters:
    violations: list[FieldViolation] = []
    if name not in NAMES:
        violations.append(FieldViolation("name", f"unknown report; one of {', '.join(NAMES)}"))
    # Named as the caller wrote them: the query parameters `from` and `to`.
    first = _day(msg.period_from, "from", violations)
    last = _day(msg.period_to, "to", violations)
    if first and last and first > last:
        violations.append(FieldViolation("to", "must not be before from"))
    granularity = msg.granularity.strip() or "month"
    if granularity not in GRANULARITIES:
        violations.append(FieldViolation("granularity", f"one of {', '.join(GRANULARITIES)}"))
    filters = Filters(
        first=first,
        last=last,
        pipeline_ids=_values(msg.pipeline_ids, "pipeline_ids", violations),
        owner_ids=_values(msg.owner_ids, "owner_ids", violations),
        teams=_values(msg.teams, "teams", violations),
        granularity=granularity,
    )
    if violations:
        raise InvalidArgument(violations)
    return filters


def check_scope(principal: Principal, filters: Filters) -> None:
    """A sales rep reports on their own deals only, a manager on their team's."""
    if principal.sees_whole_tenant:
        return
    if principal.has_role("manager"):
        if any(team != principal.team for team in filters.teams):
            raise PermissionDenied("a manager reports on their own team only")
        return
    if not principal.has_role("sales_rep"):
        raise PermissionDenied("reports need the role admin, manager or sales_rep")
    if any(owner != principal.user_id for owner in filters.owner_ids):
        raise PermissionDenied("a sales rep reports on their own deals only")
    if filters.teams:
        raise PermissionDenied("a sales rep reports on their own deals only")


def _dimension_conditions(
    table: sa.Table, principal: Principal, filters: Filters
) -> list[sa.ColumnElement[bool]]:
    """Tenant, ownership and the pipeline/owner/team filters on an aggregate table."""
    c = table.c
    conditions: list[sa.ColumnElement[bool]] = [c.tenant_id == principal.tenant_id]
    if filters.pipeline_ids and "pipeline_id" in c:
        conditions.append(c.pipeline_id.in_(filters.pipeline_ids))
    # A team is its members now (the directory's word, crm_kit.teams), not the team an
    # older event carried: a rep who moved takes their deals along.
    return conditions + _user_conditions(c.owner_id, models.members, principal, filters)


def _period(column: Any, filters: Filters) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.first:
        conditions.append(column >= filters.first)
    if filters.last:
        conditions.append(column <= filters.last)
    return conditions


# ---------------------------------------------------------------- money


@dataclass
class Rates:
    """The tenant's reporting currency and dated rates into it (crm.deals.v1)."""

    reporting: str
    # currency -> [(valid_on, rate)] newest first
    by_currency: dict[str, list[tuple[date, Decimal]]]
    missing: set[tuple[str, date]] = field(default_factory=set)

    def convert(self, amount: Decimal, currency: str, on: date) -> Decimal | None:
        if currency in ("", self.reporting) or amount == 0:
            return amount
        for valid_on, rate in self.by_currency.get(currency, ()):
            if valid_on <= on:
                with decimal.localcontext(prec=PRECISION):
                    return amount * rate
        self.missing.add((currency, on))
        return None


def rates_from(reporting: str, rates: Iterable[Any]) -> Rates:
    by_currency: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
    for rate in rates:
        if rate.quote_currency == reporting:
            by_currency[rate.currency].append(
                (date.fromisoformat(rate.valid_on), Decimal(rate.rate))
            )
    for values in by_currency.values():
        values.sort(reverse=True)
    return Rates(reporting, dict(by_currency))


# ---------------------------------------------------------------- rows


class Rows:
    """Accumulates mergeable rows by key."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, ...], dict[str, Decimal]] = {}

    def add(self, keys: tuple[str, ...], **sums: Decimal | int | None) -> None:
        row = self.rows.setdefault(keys, {})
        for name, value in sums.items():
            if value is None:
                continue
            with decimal.localcontext(prec=PRECISION):
                row[name] = row.get(name, Decimal(0)) + Decimal(value)

    def to_pb(self) -> list[pb.Row]:
        # Keys whose deals all moved elsewhere keep a zero row in the aggregates; they
        # are not part of the answer.
        return [
            pb.Row(keys=list(keys), sums={name: _text(v) for name, v in sums.items()})
            for keys, sums in sorted(self.rows.items())
            if any(sums.values())
        ]


def _text(value: Decimal) -> str:
    """Exact, without exponent notation."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def bucket(day: date, granularity: str) -> str:
    if granularity == "day":
        return day.isoformat()
    if granularity == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if granularity == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year}-{day.month:02d}"


# ---------------------------------------------------------------- reports


async def funnel(
    session: AsyncSession, principal: Principal, filters: Filters, rates: Rates
) -> Rows:
    """Deals created in the period: now per stage (count, value), entered per stage, and
    per set of stages entered (stage ids only)."""
    rows = Rows()
    today = now().date()
    t = models.stage_now
    result = await session.execute(
        sa.select(
            t.c.pipeline_id,
            t.c.stage_id,
            t.c.currency,
            sa.func.sum(t.c.deals),
            sa.func.sum(t.c.amount),
        )
        .where(*_dimension_conditions(t, principal, filters), *_period(t.c.created_day, filters))
        .group_by(t.c.pipeline_id, t.c.stage_id, t.c.currency)
    )
    for pipeline_id, stage_id, currency, deals, amount in result.tuples():
        rows.add(
            ("stage", pipeline_id, stage_id),
            deals=deals,
            value=rates.convert(amount, currency, today),
        )
    r = models.stage_reach
    reach = await session.execute(
        sa.select(r.c.pipeline_id, r.c.stage_id, sa.func.sum(r.c.deals))
        .where(*_dimension_conditions(r, principal, filters), *_period(r.c.created_day, filters))
        .group_by(r.c.pipeline_id, r.c.stage_id)
    )
    for pipeline_id, stage_id, deals in reach.tuples():
        rows.add(("stage", pipeline_id, stage_id), entered=deals)
    p = models.stage_paths
    paths = await session.execute(
        sa.select(p.c.pipeline_id, p.c.path, sa.func.sum(p.c.deals))
        .where(*_dimension_conditions(p, principal, filters), *_period(p.c.created_day, filters))
        .group_by(p.c.pipeline_id, p.c.path)
    )
    # The gateway knows the stage order: it derives "converted from a stage" from these.
    for pipeline_id, path, deals in paths.tuples():
        rows.add(("path", pipeline_id, path), deals=deals)
    return rows


async def _closed_rows(
    session: AsyncSession, principal: Principal, filters: Filters
) -> list[tuple[date, str, str, int, Decimal]]:
    t = models.closed
    result = await session.execute(
        sa.select(
            t.c.closed_day,
            t.c.outcome,
            t.c.currency,
            sa.func.sum(t.c.deals),
            sa.func.sum(t.c.amount),
        )
        .where(*_dimension_conditions(t, principal, filters), *_period(t.c.closed_day, filters))
        .group_by(t.c.closed_day, t.c.outcome, t.c.currency)
    )
    return list(result.tuples())


async def win_rate(
    session: AsyncSession, principal: Principal, filters: Filters, rates: Rates
) -> Rows:
    """Deals closed in the period: won and lost (count, value at the close day's rate)
    and the won deals' cycle-length histogram in whole days."""
    rows = Rows()
    for day, outcome, currency, deals, amount in await _closed_rows(session, principal, filters):
        rows.add(("outcome", outcome), deals=deals, value=rates.convert(amount, currency, day))
    t = models.cycles
    result = await session.execute(
        sa.select(t.c.days, sa.func.sum(t.c.deals))
        .where(*_dimension_conditions(t, principal, filters), *_period(t.c.closed_day, filters))
        .group_by(t.c.days)
    )
    for days, deals in result.tuples():
        rows.add(("cycle_days", str(days)), deals=deals)
    return rows


async def revenue(
    session: AsyncSession, principal: Principal, filters: Filters, rates: Rates
) -> Rows:
    """Won deals by close day, week, month or quarter, at the close day's rate."""
    rows = Rows()
    for day, outcome, currency, deals, amount in await _closed_rows(session, principal, filters):
        if outcome == "won":
            rows.add(
                ("bucket", bucket(day, filters.granularity)),
                deals=deals,
                value=rates.convert(amount, currency, day),
            )
    return rows


async def activity(
    session: AsyncSession, principal: Principal, filters: Filters, rates: Rates
) -> Rows:
    """Per user: calls logged, tasks completed on time and late in the period, tasks
    overdue now, and deals won and lost in the period."""
    rows = Rows()
    members = models.members
    a = models.activity
    conditions = [a.c.tenant_id == principal.tenant_id, *_period(a.c.day, filters)]
    conditions += _user_conditions(a.c.owner_id, members, principal, filters)
    result = await session.execute(
        sa.select(a.c.owner_id, a.c.kind, sa.func.sum(a.c.count))
        .where(*conditions)
        .group_by(a.c.owner_id, a.c.kind)
    )
    names = {"call": "calls", "task_on_time": "tasks_on_time", "task_late": "tasks_late"}
    for owner_id, kind, count in result.tuples():
        rows.add(("owner", owner_id), **{names[kind]: count})
    o = models.open_tasks
    overdue = await session.execute(
        sa.select(o.c.assignee_id, sa.func.count())
        .where(
            o.c.tenant_id == principal.tenant_id,
            o.c.overdue,
            *_user_conditions(o.c.assignee_id, members, principal, filters),
        )
        .group_by(o.c.assignee_id)
    )
    for owner_id, count in overdue.tuples():
        rows.add(("owner", owner_id), overdue_now=count)
    c = models.closed
    outcomes = await session.execute(
        sa.select(c.c.owner_id, c.c.outcome, sa.func.sum(c.c.deals))
        .where(*_dimension_conditions(c, principal, filters), *_period(c.c.closed_day, filters))
        .group_by(c.c.owner_id, c.c.outcome)
    )
    for owner_id, outcome, deals in outcomes.tuples():
        rows.add(("owner", owner_id), **{f"deals_{outcome}": deals})
    return rows


def _user_conditions(
    column: Any, members: sa.Table, principal: Principal, filters: Filters
) -> list[sa.ColumnElement[bool]]:
    """Ownership and owner/team filters for tables keyed by user only (teams as the
    users' deals last showed them)."""
    conditions: list[sa.ColumnElement[bool]] = []

    def in_teams(teams: Iterable[str]) -> sa.ColumnElement[bool]:
        condition: sa.ColumnElement[bool] = column.in_(
            sa.select(members.c.user_id).where(
                members.c.tenant_id == principal.tenant_id, members.c.team.in_(list(teams))
            )
        )
        return condition

    if not principal.sees_whole_tenant:
        if principal.has_role("manager"):
            conditions.append(sa.or_(in_teams([principal.team]), column == principal.user_id))
        else:
            conditions.append(column == principal.user_id)
    if filters.owner_ids:
        conditions.append(column.in_(filters.owner_ids))
    if filters.teams:
        conditions.append(in_teams(filters.teams))
    return conditions


async def lead_sources(
    session: AsyncSession, principal: Principal, filters: Filters, rates: Rates
) -> Rows:
    """Deals created in the period per source, and how many of them are won or lost."""
    rows = Rows()
    t = models.cohort
    result = await session.execute(
        sa.select(t.c.source, t.c.status, sa.func.sum(t.c.deals))
        .where(*_dimension_conditions(t, principal, filters), *_period(t.c.created_day, filters))
        .group_by(t.c.source, t.c.status)
    )
    for source, status, deals in result.tuples():
        rows.add(("source", source), deals=deals, **{status: deals})
    return rows


async def forecast(
    session: AsyncSession, principal: Principal, filters: Filters, rates: Rates
) -> Rows:
    """Open deals by expected close month: amount and amount x stage probability, at
    today's rate. The period filters the expected close date; deals without one are
    reported under "none" when no period is given."""
    rows = Rows()
    today = now().date()
    t = models.forecast
    conditions = _dimension_conditions(t, principal, filters)
    if filters.first:
        conditions.append(t.c.close_date >= filters.first.isoformat())
    if filters.last:
        conditions.append(t.c.close_date <= filters.last.isoformat())
        conditions.append(t.c.close_date != "")
    result = await session.execute(
        sa.select(
            t.c.close_date,
            t.c.currency,
            sa.func.sum(t.c.deals),
            sa.func.sum(t.c.amount),
            sa.func.sum(t.c.weighted),
        )
        .where(*conditions)
        .group_by(t.c.close_date, t.c.currency)
    )
    for close_date, currency, deals, amount, weighted in result.tuples():
        month = close_date[:7] if close_date else "none"
        rows.add(
            ("month", month),
            deals=deals,
            value=rates.convert(amount, currency, today),
            weighted=rates.convert(weighted, currency, today),
        )
    return rows


async def payments(
    session: AsyncSession, principal: Principal, filters: Filters, rates: Rates
) -> Rows:
    """Money received by payment day, week, month or quarter (reversed payments taken
    out), each day's amounts at that day's rate."""
    rows = Rows()
    t = models.payments
    result = await session.execute(
        sa.select(t.c.paid_day, t.c.currency, sa.func.sum(t.c.payments), sa.func.sum(t.c.amount))
        .where(*_dimension_conditions(t, principal, filters), *_period(t.c.paid_day, filters))
        .group_by(t.c.paid_day, t.c.currency)
    )
    for day, currency, count, amount in result.tuples():
        rows.add(
            ("bucket", bucket(day, filters.granularity)),
            payments=count,
            value=rates.convert(amount, currency, day),
        )
    return rows


async def lost_reasons(
    session: AsyncSession, principal: Principal, filters: Filters, rates: Rates
) -> Rows:
    """Deals lost in the period per reason and day, week, month or quarter of the loss:
    count and value at the close day's rate."""
    rows = Rows()
    t = models.lost
    result = await session.execute(
        sa.select(
            t.c.closed_day,
            t.c.reason,
            t.c.currency,
            sa.func.sum(t.c.deals),
            sa.func.sum(t.c.amount),
        )
        .where(*_dimension_conditions(t, principal, filters), *_period(t.c.closed_day, filters))
        .group_by(t.c.closed_day, t.c.reason, t.c.currency)
    )
    for day, reason, currency, deals, amount in result.tuples():
        rows.add(
            ("reason", bucket(day, filters.granularity), reason),
            deals=deals,
            value=rates.convert(amount, currency, day),
        )
    return rows


REPORTS = {
    "funnel": funnel,
    "win_rate": win_rate,
    "revenue": revenue,
    "activity": activity,
    "lead_sources": lead_sources,
    "forecast": forecast,
    "payments": payments,
    "lost_reasons": lost_reasons,
}


async def report(
    session: AsyncSession,
    principal: Principal,
    region: str,
    name: str,
    filters: Filters,
    rates: Rates,
) -> pb.ReportPart:
    rows = await REPORTS[name](session, principal, filters, rates)
    return pb.ReportPart(
        name=name,
        region=region,
        reporting_currency=rates.reporting,
        rows=rows.to_pb(),
        missing_rates=[
            pb.MissingRate(currency=currency, on=on.isoformat())
            for currency, on in sorted(rates.missing)
        ],
    )
