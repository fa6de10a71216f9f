"""Timeline (notes and logged calls, emails, meetings) and consents of a contact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_api.crm.events.v1 import contacts_pb2 as events
from crm_contacts import models
from crm_contacts.contacts import DEFAULT_PAGE, MAX_PAGE, get_row
from crm_contacts.convert import consent_to_pb, timeline_to_pb
from crm_kit import clock
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, InvalidArgument
from crm_kit.ids import new_id, region_of
from crm_kit.messaging import Outbox

ENTRY_KINDS = ("note", "call", "email", "meeting")
MAX_BODY = 20_000
LAWFUL_BASES = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
)
CONSENT_STATUSES = ("granted", "withdrawn")


async def add_entry(
    session: AsyncSession, principal: Principal, outbox: Outbox, entry: pb.TimelineEntry
) -> pb.TimelineEntry:
    """Adds a note, call, email or meeting. The author is the caller; an integration
    (a telephony provider's call) may name the person who made or took the call, to whom
    reports credit it. A call is announced as contacts.call.logged (ids only)."""
    contact = await get_row(session, principal, entry.contact_id)
    violations: list[FieldViolation] = []
    if entry.kind not in ENTRY_KINDS:
        violations.append(FieldViolation("kind", f"must be one of {', '.join(ENTRY_KINDS)}"))
    body = entry.body.strip()
    if entry.kind == "note" and not body:
        violations.append(FieldViolation("body", "a note needs text"))
    if len(body) > MAX_BODY:
        violations.append(FieldViolation("body", f"at most {MAX_BODY} characters"))
    if entry.duration_seconds < 0:
        violations.append(FieldViolation("duration_seconds", "cannot be negative"))
    # The business clock, as retention and reports read it (a year ahead of a moved clock
    # is not "too far"); a year as days, which 29 February has too.
    now = clock.now()
    occurred_at = entry.occurred_at.ToDatetime(UTC) if entry.HasField("occurred_at") else now
    if occurred_at > now + timedelta(days=366):
        violations.append(FieldViolation("occurred_at", "too far in the future"))
    if violations:
        raise InvalidArgument(violations)
    row = models.TimelineEntry(
        id=new_id(region_of(contact.id)),
        tenant_id=principal.tenant_id,
        contact_id=contact.id,
        kind=entry.kind,
        body=body,
        direction=entry.direction.strip(),
        subject=entry.subject.strip()[:500],
        duration_seconds=entry.duration_seconds,
        occurred_at=occurred_at,
        author_id=_author(principal, entry),
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    if row.kind == "call":
        await outbox.add(
            session,
            principal,
            "call",
            "logged",
            events.CallLoggedOnTimeline(
                entry_id=row.id,
                contact_id=contact.id,
                author_id=row.author_id,
                direction=row.direction,
                duration_seconds=row.duration_seconds,
                occurred_at_unix=int(row.occurred_at.timestamp()),
            ),
        )
    return timeline_to_pb(row)


def _author(principal: Principal, entry: pb.TimelineEntry) -> str:
    """People write as themselves; only an integration writes on someone's behalf."""
    named = entry.author_id.strip()[:200]
    if named and principal.has_role("integration"):
        return named
    return principal.user_id


async def list_entries(
    session: AsyncSession, principal: Principal, request: pb.ListTimelineRequest
) -> pb.ListTimelineResponse:
    contact = await get_row(session, principal, request.contact_id, via_task="timeline.read")
    page_size = request.page_size or DEFAULT_PAGE
    if not 1 <= page_size <= MAX_PAGE:
        raise InvalidArgument.single("page_size", f"between 1 and {MAX_PAGE}")
    entry = models.TimelineEntry
    stmt = sa.select(entry).where(
        entry.contact_id == contact.id, entry.tenant_id == principal.tenant_id
    )
    if request.page_token:
        after = await session.get(entry, request.page_token)
        if after is None:
            raise InvalidArgument.single("page_token", "malformed page token")
        stmt = stmt.where(
            sa.tuple_(entry.occurred_at, entry.id)
            > sa.tuple_(sa.literal(after.occurred_at), sa.literal(after.id))
        )
    # Chronological: the story of the relationship, oldest first.
    rows = (
        await session.scalars(stmt.order_by(entry.occurred_at, entry.id).limit(page_size + 1))
    ).all()
    more = len(rows) > page_size
    rows = rows[:page_size]
    return pb.ListTimelineResponse(
        entries=[timeline_to_pb(r) for r in rows],
        next_page_token=rows[-1].id if more and rows else "",
    )


async def _consents(session: AsyncSession, contact_id: str) -> list[models.Consent]:
    return list(
        (
            await session.scalars(
                sa.select(models.Consent)
                .where(models.Consent.contact_id == contact_id)
                .order_by(models.Consent.recorded_at, models.Consent.id)
            )
        ).all()
    )


def _current(history: list[models.Consent]) -> dict[str, models.Consent]:
    current: dict[str, models.Consent] = {}
    for row in history:
        current[row.purpose] = row
    return current


async def record_consent(
    session: AsyncSession, principal: Principal, outbox: Outbox, consent: pb.Consent
) -> pb.Consent:
    contact = await get_row(session, principal, consent.contact_id, for_update=True)
    violations: list[FieldViolation] = []
    purpose = consent.purpose.strip().lower()
    if not purpose or len(purpose) > 64 or not purpose.replace("_", "").isalnum():
        violations.append(
            FieldViolation("purpose", "a short name like marketing_email (letters, digits, _)")
        )
    if consent.lawful_basis not in LAWFUL_BASES:
        violations.append(
            FieldViolation("lawful_basis", f"must be one of {', '.join(LAWFUL_BASES)}")
        )
    if consent.status not in CONSENT_STATUSES:
        violations.append(FieldViolation("status", "must be granted or withdrawn"))
    if violations:
        raise InvalidArgument(violations)
    previous = _current(await _consents(session, contact.id)).get(purpose)
    row = models.Consent(
        id=new_id(region_of(contact.id)),
        tenant_id=principal.tenant_id,
        contact_id=contact.id,
        purpose=purpose,
        lawful_basis=consent.lawful_basis,
        status=consent.status,
        source=consent.source.strip() or "manual",
        recorded_at=datetime.now(UTC),
        recorded_by=principal.user_id,
    )
    session.add(row)
    await session.flush()
    if previous is None or previous.status != row.status:
        await outbox.add(
            session,
            principal,
            "consent",
            "changed",
            events.ConsentChanged(contact_id=contact.id, purpose=purpose, status=row.status),
        )
    return consent_to_pb(row)


async def list_consents(
    session: AsyncSession, principal: Principal, contact_id: str
) -> pb.ListConsentsResponse:
    contact = await get_row(session, principal, contact_id)
    history = await _consents(session, contact.id)
    current = sorted(_current(history).values(), key=lambda r: r.purpose)
    return pb.ListConsentsResponse(
        current=[consent_to_pb(r) for r in current], history=[consent_to_pb(r) for r in history]
    )
