"""The in-app inbox, notification preferences and the tenant's templates (API side)."""

from __future__ import annotations

import sqlalchemy as sa
from google.protobuf import timestamp_pb2
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.notifications.v1 import notifications_pb2 as pb
from crm_kit import clock
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied
from crm_notifications import models, templates
from crm_notifications.channels import CHANNELS
from crm_notifications.planner import DEFAULT_CHANNELS

MAX_PAGE = 200


def _ts(value: object) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)  # type: ignore[arg-type]
    return stamp


def item_to_pb(row: models.InboxItem) -> pb.Notification:
    return pb.Notification(
        id=row.id,
        user_id=row.user_id,
        kind=row.kind,
        title=row.title,
        body=row.body,
        task_id=row.task_id,
        deal_id=row.deal_id,
        contact_id=row.contact_id,
        created_at=_ts(row.created_at),
        read_at=_ts(row.read_at),
        locale=row.locale,
    )


async def list_inbox(
    session: AsyncSession, principal: Principal, request: pb.ListNotificationsRequest
) -> pb.ListNotificationsResponse:
    size = request.page_size if 0 < request.page_size <= MAX_PAGE else 50
    item = models.InboxItem
    stmt = sa.select(item).where(
        item.tenant_id == principal.tenant_id, item.user_id == principal.user_id
    )
    if request.unread_only:
        stmt = stmt.where(item.read_at.is_(None))
    if request.page_token:
        stmt = stmt.where(item.id < request.page_token)
    rows = list(await session.scalars(stmt.order_by(item.id.desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return pb.ListNotificationsResponse(
        notifications=[item_to_pb(r) for r in rows],
        next_page_token=rows[-1].id if more and rows else "",
    )


async def count_unread(session: AsyncSession, principal: Principal) -> pb.CountUnreadResponse:
    item = models.InboxItem
    count = await session.scalar(
        sa.select(sa.func.count()).where(
            item.tenant_id == principal.tenant_id,
            item.user_id == principal.user_id,
            item.read_at.is_(None),
        )
    )
    return pb.CountUnreadResponse(unread=int(count or 0))


async def mark_read(
    session: AsyncSession, principal: Principal, request: pb.MarkReadRequest
) -> pb.MarkReadResponse:
    item = models.InboxItem
    if not request.all and not request.ids:
        raise InvalidArgument.single("ids", "name the notifications to mark read, or send all")
    stmt = sa.update(item).where(
        item.tenant_id == principal.tenant_id,
        item.user_id == principal.user_id,
        item.read_at.is_(None),
    )
    if not request.all:
        stmt = stmt.where(item.id.in_(list(request.ids)))
    result = await session.execute(stmt.values(read_at=clock.now()))
    return pb.MarkReadResponse(marked=int(result.rowcount))  # type: ignore[attr-defined]


# ------------------------------------------------------------------ preferences


async def get_preferences(session: AsyncSession, principal: Principal) -> pb.Preferences:
    stored = {
        row.kind: list(row.channels)
        for row in await session.scalars(
            sa.select(models.Preference).where(
                models.Preference.tenant_id == principal.tenant_id,
                models.Preference.user_id == principal.user_id,
            )
        )
    }
    return pb.Preferences(
        user_id=principal.user_id,
        preferences=[
            pb.Preference(kind=kind, channels=stored.get(kind, list(DEFAULT_CHANNELS)))
            for kind in templates.USER_KINDS
        ],
    )


async def put_preferences(
    session: AsyncSession, principal: Principal, request: pb.PutPreferencesRequest
) -> pb.Preferences:
    violations: list[FieldViolation] = []
    seen: set[str] = set()
    values = []
    for i, pref in enumerate(request.preferences):
        if pref.kind not in templates.USER_KINDS:
            violations.append(
                FieldViolation(
                    f"preferences[{i}].kind", f"one of {', '.join(templates.USER_KINDS)}"
                )
            )
        elif pref.kind in seen:
            violations.append(FieldViolation(f"preferences[{i}].kind", "given twice"))
        seen.add(pref.kind)
        channels: list[str] = []
        for j, channel in enumerate(pref.channels):
            if channel not in CHANNELS:
                violations.append(
                    FieldViolation(
                        f"preferences[{i}].channels[{j}]", f"one of {', '.join(CHANNELS)}"
                    )
                )
            elif channel not in channels:
                channels.append(channel)
        values.append(
            {
                "tenant_id": principal.tenant_id,
                "user_id": principal.user_id,
                "kind": pref.kind,
                "channels": channels,
            }
        )
    if not request.preferences:
        violations.append(FieldViolation("preferences", "send at least one kind"))
    if violations:
        raise InvalidArgument(violations)
    statement = pg_insert(models.Preference).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant_id", "user_id", "kind"],
            set_={"channels": statement.excluded.channels},
        )
    )
    return await get_preferences(session, principal)


# ------------------------------------------------------------------ templates


def _template_pb(t: templates.TemplateText, updated_at: object = None) -> pb.Template:
    return pb.Template(
        kind=t.kind,
        locale=t.locale,
        subject=t.subject,
        body_text=t.body_text,
        body_html=t.body_html,
        builtin=t.builtin,
        updated_at=_ts(updated_at),
    )


def _require_admin(principal: Principal) -> None:
    if not principal.has_role("admin"):
        raise PermissionDenied("only admins manage templates")


async def put_template(
    session: AsyncSession, principal: Principal, template: pb.Template
) -> pb.Template:
    _require_admin(principal)
    checked = templates.validate(
        templates.TemplateText(
            template.kind, template.locale, template.subject, template.body_text, template.body_html
        )
    )
    now = clock.now()
    statement = pg_insert(models.Template).values(
        tenant_id=principal.tenant_id,
        kind=checked.kind,
        locale=checked.locale,
        subject=checked.subject,
        body_text=checked.body_text,
        body_html=checked.body_html,
        updated_at=now,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant_id", "kind", "locale"],
            set_={
                "subject": statement.excluded.subject,
                "body_text": statement.excluded.body_text,
                "body_html": statement.excluded.body_html,
                "updated_at": now,
            },
        )
    )
    return _template_pb(checked, now)


async def list_templates(
    session: AsyncSession, principal: Principal, request: pb.ListTemplatesRequest
) -> pb.ListTemplatesResponse:
    stmt = sa.select(models.Template).where(models.Template.tenant_id == principal.tenant_id)
    if request.kind:
        stmt = stmt.where(models.Template.kind == request.kind)
    if request.locale:
        stmt = stmt.where(models.Template.locale == request.locale)
    rows = list(await session.scalars(stmt.order_by(models.Template.kind, models.Template.locale)))
    result = [
        _template_pb(
            templates.TemplateText(r.kind, r.locale, r.subject, r.body_text, r.body_html),
            r.updated_at,
        )
        for r in rows
    ]
    if request.include_builtin:
        own = {(r.kind, r.locale) for r in rows}
        for shipped in templates.builtins():
            if (shipped.kind, shipped.locale) in own:
                continue
            if request.kind and shipped.kind != request.kind:
                continue
            if request.locale and shipped.locale != request.locale:
                continue
            result.append(_template_pb(shipped))
    return pb.ListTemplatesResponse(templates=result)


async def delete_template(
    session: AsyncSession, principal: Principal, request: pb.DeleteTemplateRequest
) -> pb.DeleteTemplateResponse:
    _require_admin(principal)
    result = await session.execute(
        sa.delete(models.Template).where(
            models.Template.tenant_id == principal.tenant_id,
            models.Template.kind == request.kind,
            models.Template.locale == request.locale,
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"no {request.kind} template in {request.locale}")
    return pb.DeleteTemplateResponse()


# ------------------------------------------------------------------ delivery log


async def list_deliveries(
    session: AsyncSession, principal: Principal, request: pb.ListDeliveriesRequest
) -> pb.ListDeliveriesResponse:
    d = models.Delivery
    stmt = sa.select(d).where(d.tenant_id == principal.tenant_id)
    if not principal.has_role("admin", "compliance_officer"):
        # Everyone else sees what was sent to them, and the emails they sent to clients.
        stmt = stmt.where(
            sa.or_(
                d.recipient_id == principal.user_id,
                d.context["requested_by"].astext == principal.user_id,
            )
        )
    if request.recipient_id:
        stmt = stmt.where(d.recipient_id == request.recipient_id)
    if request.event_id:
        stmt = stmt.where(d.event_id == request.event_id)
    if request.status:
        stmt = stmt.where(d.status == request.status)
    if request.campaign_id:
        stmt = stmt.where(d.campaign_id == request.campaign_id)
    size = request.page_size if 0 < request.page_size <= 500 else 100
    rows = list(await session.scalars(stmt.order_by(d.id.desc()).limit(size)))
    attempts: dict[str, list[models.DeliveryAttempt]] = {}
    if rows:
        for attempt in await session.scalars(
            sa.select(models.DeliveryAttempt)
            .where(models.DeliveryAttempt.delivery_id.in_([r.id for r in rows]))
            .order_by(models.DeliveryAttempt.id)
        ):
            attempts.setdefault(attempt.delivery_id, []).append(attempt)
    return pb.ListDeliveriesResponse(
        deliveries=[
            pb.Delivery(
                id=r.id,
                event_id=r.event_id,
                kind=r.kind,
                recipient_id=r.recipient_id,
                channel=r.channel,
                status=r.status,
                attempts=r.attempts,
                next_attempt_at=_ts(r.next_attempt_at),
                sent_at=_ts(r.sent_at),
                message_id=r.message_id,
                last_error=r.last_error,
                campaign_id=r.campaign_id,
                deferred_reason=r.deferred_reason,
                log=[
                    pb.DeliveryAttempt(
                        attempt=a.attempt, outcome=a.outcome, detail=a.detail, at=_ts(a.at)
                    )
                    for a in attempts.get(r.id, [])
                ],
            )
            for r in rows
        ]
    )
