"""Events into the read model: one handler for every event the reports follow.

Each deal event turns the deal's previous state into its next one; the aggregates
change by the difference of the two states' contributions (the old one subtracted,
the new one added), so moves, wins, reopenings, owner or amount changes all take
the same path and replaying the history in order gives the same tables.
Events can also arrive out of order (a failed one is redelivered after the ones behind
it): each deal keeps the time of the newest change applied (`changed_at`, the deals
service's own time of the change, which every deal event carries), and an older change
only adds the stage it entered, so the order of arrival does not matter.
deals.deal.won / lost are consumed but change nothing on their own: the
stage_changed (or created) event written in the same transaction carries the close.
"""

from __future__ import annotations

import decimal
import logging
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from nats.aio.msg import Msg
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.events.v1 import contacts_pb2 as contact_events
from crm_api.crm.events.v1 import deals_pb2 as deal_events
from crm_api.crm.events.v1 import envelope_pb2
from crm_api.crm.events.v1 import integrations_pb2 as integration_events
from crm_api.crm.events.v1 import tasks_pb2 as task_events
from crm_reporting import models

log = logging.getLogger(__name__)

DURABLE = "reporting-read-model"

EVENT_TYPES: dict[str, type[Message]] = {
    "deals.deal.created": deal_events.DealCreated,
    "deals.deal.stage_changed": deal_events.DealStageChanged,
    "deals.deal.updated": deal_events.DealUpdated,
    "deals.deal.won": deal_events.DealWon,
    "deals.deal.lost": deal_events.DealLost,
    "deals.payment.recorded": deal_events.PaymentRecorded,
    "deals.payment.reversed": deal_events.PaymentRecorded,
    "tasks.task.created": task_events.TaskCreated,
    "tasks.task.completed": task_events.TaskCompleted,
    "tasks.task.overdue": task_events.TaskOverdue,
    "integrations.call.logged": integration_events.CallLogged,
    "contacts.call.logged": contact_events.CallLoggedOnTimeline,
    "tasks.user.team_changed": task_events.UserTeamChanged,
}


def subjects(region: str) -> list[str]:
    return [f"crm.{region}.{event_type}" for event_type in EVENT_TYPES]


def tenant_lock_sql(tenant_id: str) -> sa.TextClause:
    """Serializes a tenant's event handling with its rebuild's swap (see rebuild.py)."""
    return sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))").bindparams(
        key=f"reporting:{tenant_id}"
    )


# ---------------------------------------------------------------- deal state


@dataclass(frozen=True)
class Deal:
    pipeline_id: str
    stage_id: str
    status: str
    owner_id: str
    owner_team: str
    source: str
    amount: Decimal
    currency: str
    expected_close_date: str
    win_probability: int
    created_at: datetime
    closed_at: datetime | None
    reached: tuple[str, ...]
    # When the newest change applied happened (the deals service's clock).
    changed_at: datetime
    lost_reason: str = ""


Key = tuple[Any, ...]
# table -> key -> column -> delta
Changes = dict[sa.Table, dict[Key, Counter[str]]]


def _amount(text: str) -> Decimal:
    return Decimal(text) if text else Decimal(0)


def _time(ts: timestamp_pb2.Timestamp, fallback: datetime) -> datetime:
    if ts.seconds == 0 and ts.nanos == 0:
        return fallback
    return ts.ToDatetime(tzinfo=UTC)


def reason_key(reason: str) -> str:
    """One key per reason however it was typed ("Price ", "price"): trimmed, spaces
    collapsed, lower case, at most 200 characters."""
    return " ".join(reason.split()).lower()[:200]


def path_of(reached: tuple[str, ...]) -> str:
    """The set of stages a deal entered, as one key (see models.stage_paths)."""
    return ",".join(sorted(set(reached)))


def contributions(deal: Deal) -> Changes:
    """What one deal adds to each aggregate."""
    dims = (deal.pipeline_id, deal.owner_id, deal.owner_team)
    created_day = models.day_of(deal.created_at)
    out: Changes = {}

    def add(table: sa.Table, key: Key, **values: Decimal | int) -> None:
        counter = out.setdefault(table, {}).setdefault(key, Counter())
        for name, value in values.items():
            counter[name] += value  # type: ignore[assignment]

    add(
        models.stage_now,
        (created_day, *dims, deal.stage_id, deal.currency),
        deals=1,
        amount=deal.amount,
    )
    for stage_id in deal.reached:
        add(models.stage_reach, (created_day, *dims, stage_id), deals=1)
    add(models.stage_paths, (created_day, *dims, path_of(deal.reached)), deals=1)
    add(models.cohort, (created_day, *dims, deal.source, deal.status), deals=1)
    if deal.status == "open":
        with decimal.localcontext(prec=60):
            weighted = deal.amount * deal.win_probability / 100
        add(
            models.forecast,
            (deal.expected_close_date, *dims, deal.currency),
            deals=1,
            amount=deal.amount,
            weighted=weighted,
        )
    elif deal.closed_at is not None:
        closed_day = models.day_of(deal.closed_at)
        add(
            models.closed,
            (closed_day, *dims, deal.source, deal.status, deal.currency),
            deals=1,
            amount=deal.amount,
        )
        if deal.status == "won":
            days = (deal.closed_at - deal.created_at).days
            add(models.cycles, (closed_day, *dims, days), deals=1)
        else:
            add(
                models.lost,
                (closed_day, *dims, reason_key(deal.lost_reason), deal.currency),
                deals=1,
                amount=deal.amount,
            )
    return out


def difference(before: Deal | None, after: Deal | None) -> Changes:
    changes: Changes = {}
    for sign, deal in ((-1, before), (1, after)):
        if deal is None:
            continue
        for table, rows in contributions(deal).items():
            for key, values in rows.items():
                counter = changes.setdefault(table, {}).setdefault(key, Counter())
                for name, value in values.items():
                    counter[name] += sign * value
    return changes


def _key_columns(table: sa.Table) -> list[str]:
    return [c.name for c in table.primary_key.columns if c.name != "tenant_id"]


async def apply_changes(session: AsyncSession, tenant_id: str, changes: Changes) -> None:
    for table, rows in changes.items():
        names = _key_columns(table)
        for key, values in rows.items():
            if not any(values.values()):
                continue
            row: dict[str, Any] = {"tenant_id": tenant_id, **dict(zip(names, key, strict=True))}
            measures = {c.name for c in table.columns} - set(names) - {"tenant_id"}
            for name in measures:
                row[name] = values.get(name, 0)
            statement = pg_insert(table).values(**row)
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["tenant_id", *names],
                    set_={name: table.c[name] + statement.excluded[name] for name in measures},
                )
            )


def _state_of(row: models.DealState) -> Deal:
    return Deal(
        pipeline_id=row.pipeline_id,
        stage_id=row.stage_id,
        status=row.status,
        owner_id=row.owner_id,
        owner_team=row.owner_team,
        source=row.source,
        amount=row.amount,
        currency=row.currency,
        expected_close_date=row.expected_close_date,
        win_probability=row.win_probability,
        created_at=row.created_at,
        closed_at=row.closed_at,
        reached=tuple(row.reached),
        changed_at=row.changed_at,
        lost_reason=row.lost_reason,
    )


async def _save(session: AsyncSession, tenant_id: str, deal_id: str, deal: Deal) -> None:
    values = {
        "pipeline_id": deal.pipeline_id,
        "stage_id": deal.stage_id,
        "status": deal.status,
        "owner_id": deal.owner_id,
        "owner_team": deal.owner_team,
        "source": deal.source,
        "amount": deal.amount,
        "currency": deal.currency,
        "expected_close_date": deal.expected_close_date,
        "win_probability": deal.win_probability,
        "created_at": deal.created_at,
        "closed_at": deal.closed_at,
        "reached": list(deal.reached),
        "changed_at": deal.changed_at,
        "lost_reason": deal.lost_reason,
    }
    statement = pg_insert(models.DealState).values(tenant_id=tenant_id, deal_id=deal_id, **values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant_id", "deal_id"],
            set_=values,
        )
    )
    if deal.owner_team:  # an event without a team says nothing about the membership
        await _member(session, tenant_id, deal.owner_id, deal.owner_team)


async def _member(session: AsyncSession, tenant_id: str, user_id: str, team: str) -> None:
    statement = pg_insert(models.Member).values(tenant_id=tenant_id, user_id=user_id, team=team)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant_id", "user_id"], set_={"team": team}
        )
    )


async def _load(session: AsyncSession, tenant_id: str, deal_id: str) -> Deal | None:
    # populate_existing: a rebuild replays many events in one session, and its identity
    # map would otherwise hand back the state from before the last upsert.
    row = await session.get(
        models.DealState, (tenant_id, deal_id), with_for_update=True, populate_existing=True
    )
    return None if row is None else _state_of(row)


def next_state(before: Deal | None, event: Message, occurred: datetime) -> Deal | None:
    """The deal after `event`; None when the event cannot apply (logged by the caller)."""
    if isinstance(event, deal_events.DealCreated):
        created = _time(event.created_at, occurred)
        kind = event.stage_kind or "open"
        return Deal(
            pipeline_id=event.pipeline_id,
            stage_id=event.stage_id,
            status=kind,
            owner_id=event.owner_id,
            owner_team=event.owner_team,
            source=event.source,
            amount=_amount(event.amount),
            currency=event.currency,
            expected_close_date=event.expected_close_date,
            win_probability=event.win_probability,
            created_at=created,
            closed_at=None if kind == "open" else created,
            reached=(event.stage_id,),
            changed_at=created,
            lost_reason=event.lost_reason if kind == "lost" else "",
        )
    if before is None:
        return None
    if isinstance(event, deal_events.DealStageChanged):
        moved = _time(event.moved_at, occurred)
        kind = event.to_stage_kind or "open"
        reached = before.reached
        if event.to_stage_id not in reached:
            reached = (*reached, event.to_stage_id)
        if moved < before.changed_at:
            # Older than what the deal already shows (redelivered late): the deal stays
            # where the newer change put it; the stage it entered still counts, once.
            return replace(before, reached=reached)
        return replace(
            before,
            stage_id=event.to_stage_id,
            status=kind,
            owner_id=event.owner_id,
            owner_team=event.owner_team,
            source=event.source or before.source,
            amount=_amount(event.amount),
            currency=event.currency,
            expected_close_date=event.expected_close_date,
            win_probability=event.win_probability,
            closed_at=None if kind == "open" else moved,
            reached=reached,
            changed_at=moved,
            lost_reason=event.lost_reason if kind == "lost" else "",
        )
    if isinstance(event, deal_events.DealUpdated):
        updated = _time(event.updated_at, occurred)
        if updated < before.changed_at:
            return before  # a newer change already carries this one's fields
        return replace(
            before,
            changed_at=updated,
            owner_id=event.owner_id,
            owner_team=event.owner_team,
            source=event.source,
            amount=_amount(event.amount),
            currency=event.currency,
            expected_close_date=event.expected_close_date,
            # Events written before they carried the reason leave it as it was.
            lost_reason=event.lost_reason or before.lost_reason,
        )
    return before


# ---------------------------------------------------------------- payments


async def _payment(
    session: AsyncSession, tenant_id: str, event: deal_events.PaymentRecorded, reversed_: bool
) -> bool:
    """A recorded payment adds to its day; its reversal takes out what it added."""
    state = await session.get(
        models.PaymentState,
        (tenant_id, event.payment_id),
        with_for_update=True,
        populate_existing=True,
    )
    if reversed_:
        if state is None:
            return False  # never counted (or already taken out)
        sign = -1
        await session.delete(state)
    else:
        if state is not None:
            return False
        try:
            paid_day = date.fromisoformat(event.paid_on)
        except ValueError:
            log.warning("reporting: payment %s has no valid day", event.payment_id)
            return False
        state = models.PaymentState(
            tenant_id=tenant_id,
            payment_id=event.payment_id,
            paid_day=paid_day,
            pipeline_id=event.pipeline_id,
            owner_id=event.owner_id,
            owner_team=event.owner_team,
            method=event.method,
            currency=event.currency,
            amount=_amount(event.amount),
        )
        session.add(state)
        sign = 1
    key = (
        state.paid_day,
        state.pipeline_id,
        state.owner_id,
        state.owner_team,
        state.method,
        state.currency,
    )
    delta: Counter[str] = Counter()
    delta["payments"] = sign
    delta["amount"] += sign * state.amount  # type: ignore[assignment]
    await apply_changes(session, tenant_id, {models.payments: {key: delta}})
    await session.flush()
    return True


# ---------------------------------------------------------------- handler


async def _activity(
    session: AsyncSession, tenant_id: str, owner_id: str, at: datetime, kind: str
) -> None:
    await apply_changes(
        session,
        tenant_id,
        {models.activity: {(models.day_of(at), owner_id, kind): Counter(count=1)}},
    )


class DealNotYetKnown(Exception):
    """A change of a deal whose `deal.created` has not arrived yet: after a fault a failed
    event is redelivered later and the events behind it arrive first."""


async def apply(
    session: AsyncSession, envelope: envelope_pb2.Envelope, *, wait_for_created: bool = False
) -> bool:
    """Applies one event to the read model; False when it changes nothing.

    `wait_for_created`: raise DealNotYetKnown for a change of an unknown deal (the live
    consumer naks it and it comes back once the deal is known) instead of skipping it."""
    message_type = EVENT_TYPES.get(envelope.event_type)
    if message_type is None:
        return False
    event = message_type()
    if not envelope.payload.Unpack(event):
        log.warning("reporting: cannot read %s %s", envelope.event_type, envelope.event_id)
        return False
    tenant = envelope.tenant_id
    occurred = envelope.occurred_at.ToDatetime(tzinfo=UTC)
    await session.execute(tenant_lock_sql(tenant))
    if isinstance(
        event,
        deal_events.DealCreated | deal_events.DealStageChanged | deal_events.DealUpdated,
    ):
        before = await _load(session, tenant, event.deal_id)
        after = next_state(before, event, occurred)
        if after is None and wait_for_created:
            raise DealNotYetKnown(f"{envelope.event_type} for deal {event.deal_id} before it")
        if after is None:
            log.warning("reporting: %s for unknown deal %s", envelope.event_type, event.deal_id)
            return False
        if isinstance(event, deal_events.DealCreated) and before is not None:
            return False  # created twice (cannot happen with the inbox; kept safe)
        await apply_changes(session, tenant, difference(before, after))
        await _save(session, tenant, event.deal_id, after)
        return True
    if isinstance(event, deal_events.PaymentRecorded):
        reversed_ = envelope.event_type == "deals.payment.reversed"
        return await _payment(session, tenant, event, reversed_)
    if isinstance(event, task_events.TaskCreated):
        await session.execute(
            pg_insert(models.OpenTask)
            .values(tenant_id=tenant, task_id=event.task_id, assignee_id=event.assignee_id)
            .on_conflict_do_nothing()
        )
        return True
    if isinstance(event, task_events.TaskOverdue):
        statement = pg_insert(models.OpenTask).values(
            tenant_id=tenant, task_id=event.task_id, assignee_id=event.assignee_id, overdue=True
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["tenant_id", "task_id"], set_={"overdue": True}
            )
        )
        return True
    if isinstance(event, task_events.TaskCompleted):
        await session.execute(
            sa.delete(models.OpenTask).where(
                models.OpenTask.tenant_id == tenant, models.OpenTask.task_id == event.task_id
            )
        )
        at = _time(event.completed_at, occurred)
        kind = "task_on_time" if event.on_time else "task_late"
        await _activity(session, tenant, event.assignee_id, at, kind)
        return True
    if isinstance(event, task_events.UserTeamChanged):
        # The directory's word on a user's team: reports of a team cover its current
        # members' deals and activity, whatever team their older events carried.
        await _member(session, tenant, event.user_id, event.team)
        return True
    if isinstance(event, contact_events.CallLoggedOnTimeline):
        # Every call on a timeline, logged by a rep or reported by a telephony provider,
        # credited to who made or took it (the entry's author).
        at = (
            datetime.fromtimestamp(event.occurred_at_unix, UTC)
            if event.occurred_at_unix
            else occurred
        )
        await _activity(session, tenant, event.author_id, at, "call")
        return True
    if isinstance(event, integration_events.CallLogged):
        if event.on_timeline:
            return False  # counted from its contacts.call.logged
        # Older provider calls, written before timeline calls were announced.
        taken_by = event.user_id or event.owner_id
        await _activity(session, tenant, taken_by, _time(event.started_at, occurred), "call")
        return True
    return False


async def handle(session: AsyncSession, envelope: envelope_pb2.Envelope, _: Msg) -> None:
    """The durable consumer's handler (crm_kit.messaging.Consumer wraps it in the inbox)."""
    await apply(session, envelope, wait_for_created=True)
