"""Web forms: definitions, the public submission and its completion.

A submission is stored first (its row is the job), then completed: the contact is
found by email or phone (several matches are merged into the oldest), updated or
created, and the deal is created in the form's stage, which fires the tenant's
automation (deals.deal.created). When contacts or deals are down the submission stays
`pending` and the retry worker completes it when they are back; nothing is lost.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_api.crm.contacts.v1 import contacts_pb2 as cpb
from crm_api.crm.deals.v1 import deals_pb2 as dpb
from crm_api.crm.directory.v1 import directory_pb2
from crm_api.crm.events.v1 import integrations_pb2 as events
from crm_api.crm.integrations.v1 import integrations_pb2 as pb
from crm_integrations import models
from crm_integrations.common import Downstream, acting, backoff, normalize_email, normalize_phone
from crm_integrations.settings import IntegrationsSettings
from crm_kit import clock
from crm_kit.context import Principal
from crm_kit.db import transaction
from crm_kit.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied, Unavailable
from crm_kit.ids import is_valid_id, new_id
from crm_kit.messaging import Outbox
from crm_kit.placement import normalize_country

log = logging.getLogger(__name__)

TARGETS = (
    "first_name",
    "last_name",
    "name",
    "email",
    "phone",
    "country",
    "city",
    "language",
    "note",
    "deal_title",
)
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_VALUE = 5000


def _ts(value: datetime | None) -> Any:
    from google.protobuf import timestamp_pb2

    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def form_to_pb(row: models.Form) -> pb.Form:
    return pb.Form(
        id=row.id,
        key=row.key,
        name=row.name,
        field_mapping=row.field_mapping,
        pipeline_id=row.pipeline_id,
        stage_id=row.stage_id,
        owner=row.owner,
        honeypot_field=row.honeypot_field,
        deal_title=row.deal_title,
        source=row.source,
        default_country=row.default_country,
        active=row.active,
        tenant_id=row.tenant_id,
        rate_limit_per_key=row.rate_limit_per_key,
        rate_limit_per_ip=row.rate_limit_per_ip,
        created_at=_ts(row.created_at),
    )


def submission_to_pb(row: models.Submission) -> pb.Submission:
    return pb.Submission(
        id=row.id,
        form_id=row.form_id,
        status=row.status,
        contact_id=row.contact_id,
        deal_id=row.deal_id,
        source=row.source,
        utm=row.utm,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=_ts(row.created_at),
        completed_at=_ts(row.completed_at),
        merged_contact_ids=row.merged_contact_ids,
    )


def require_admin(principal: Principal) -> None:
    if not principal.has_role("admin"):
        raise PermissionDenied("only an admin configures integrations")


def new_form_key(region: str) -> str:
    """Public key of a form; it starts with the region that rate-limits it."""
    return f"{region}-{secrets.token_hex(12)}"


async def put_form(
    session: AsyncSession, principal: Principal, msg: pb.Form, region: str
) -> pb.Form:
    """Creates or replaces a form (the gateway sends the same id and key to every region)."""
    require_admin(principal)
    violations: list[FieldViolation] = []
    if not is_valid_id(msg.id):
        violations.append(FieldViolation("id", "expected '<region>_<ULID>'"))
    if not msg.key or "-" not in msg.key:
        violations.append(FieldViolation("key", "expected '<region>-<token>'"))
    if not msg.name.strip():
        violations.append(FieldViolation("name", "required"))
    if not msg.field_mapping:
        violations.append(FieldViolation("field_mapping", "map at least one field"))
    for field, target in msg.field_mapping.items():
        if target not in TARGETS:
            violations.append(
                FieldViolation(f"field_mapping.{field}", f"must be one of {', '.join(TARGETS)}")
            )
    targets = set(msg.field_mapping.values())
    if not targets & {"email", "phone"}:
        violations.append(FieldViolation("field_mapping", "map an email or a phone field"))
    if not msg.pipeline_id:
        violations.append(FieldViolation("pipeline_id", "required"))
    if not msg.stage_id:
        violations.append(FieldViolation("stage_id", "required"))
    kind, _, who = msg.owner.partition(":")
    if kind not in ("user", "team") or not who.strip():
        violations.append(FieldViolation("owner", "'user:<id>' or 'team:<team>'"))
    if msg.honeypot_field and msg.honeypot_field in msg.field_mapping:
        violations.append(FieldViolation("honeypot_field", "must not be a mapped field"))
    default_country = ""
    if msg.default_country:
        try:
            default_country = normalize_country(msg.default_country, "default_country")
        except InvalidArgument as exc:
            violations.extend(exc.violations)
    if msg.rate_limit_per_key < 0 or msg.rate_limit_per_ip < 0:
        violations.append(FieldViolation("rate_limit_per_key", "cannot be negative"))
    if violations:
        raise InvalidArgument(violations)
    existing = await session.get(models.Form, msg.id)
    if existing is not None and (
        existing.tenant_id != principal.tenant_id or existing.deleted_at is not None
    ):
        raise NotFound("no such form")
    values = {
        "tenant_id": principal.tenant_id,
        "key": msg.key,
        "name": msg.name.strip(),
        "field_mapping": dict(msg.field_mapping),
        "pipeline_id": msg.pipeline_id,
        "stage_id": msg.stage_id,
        "owner": msg.owner.strip(),
        "honeypot_field": msg.honeypot_field,
        "deal_title": msg.deal_title.strip(),
        "source": msg.source.strip() or "web_form",
        "default_country": default_country,
        "active": msg.active,
        "rate_limit_per_key": msg.rate_limit_per_key or 60,
        "rate_limit_per_ip": msg.rate_limit_per_ip or 10,
    }
    if existing is None:
        existing = models.Form(id=msg.id, **values)
        session.add(existing)
    else:
        for name, value in values.items():
            setattr(existing, name, value)
    await session.flush()
    await session.refresh(existing)
    return form_to_pb(existing)


async def _live_form(session: AsyncSession, principal: Principal, form_id: str) -> models.Form:
    row = await session.get(models.Form, form_id)
    if row is None or row.tenant_id != principal.tenant_id or row.deleted_at is not None:
        raise NotFound("no such form")
    return row


async def get_form(session: AsyncSession, principal: Principal, form_id: str) -> pb.Form:
    return form_to_pb(await _live_form(session, principal, form_id))


async def delete_form(session: AsyncSession, principal: Principal, form_id: str) -> pb.Form:
    """The form stops answering (its public URL is 404) and leaves the list. The row
    stays: a submission received before still completes into its contact and deal."""
    require_admin(principal)
    row = await _live_form(session, principal, form_id)
    row.deleted_at = clock.now()
    row.active = False
    await session.flush()
    return form_to_pb(row)


async def list_forms(session: AsyncSession, principal: Principal) -> pb.ListFormsResponse:
    rows = await session.scalars(
        sa.select(models.Form)
        .where(models.Form.tenant_id == principal.tenant_id, models.Form.deleted_at.is_(None))
        .order_by(models.Form.id)
    )
    return pb.ListFormsResponse(forms=[form_to_pb(r) for r in rows])


class RateLimited(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


async def _hit(session: AsyncSession, bucket: str, window_end: datetime) -> int:
    row = await session.execute(
        pg_insert(models.RateCounter)
        .values(bucket=bucket, count=1, expires_at=window_end)
        .on_conflict_do_update(
            index_elements=[models.RateCounter.bucket],
            set_={"count": models.RateCounter.count + 1},
        )
        .returning(models.RateCounter.count)
    )
    return int(row.scalar_one())


async def resolve_key(session: AsyncSession, key: str, client_ip: str) -> pb.Form:
    """The active form behind a public key, counting the request against its limits.

    The counters live in this database (fixed one-minute windows), so every gateway and
    service replica shares them and the limit holds however many replicas run.
    """
    row = await session.scalar(sa.select(models.Form).where(models.Form.key == key))
    if row is None or not row.active:
        raise NotFound("no such form")
    now = datetime.now(UTC)
    window = now.replace(second=0, microsecond=0)
    window_end = window + timedelta(minutes=1)
    stamp = window.strftime("%Y%m%d%H%M")
    if await _hit(session, f"key:{key}:{stamp}", window_end) > row.rate_limit_per_key:
        raise RateLimited("too many submissions to this form; try again in a minute")
    if (
        client_ip
        and await _hit(session, f"ip:{key}:{client_ip}:{stamp}", window_end) > row.rate_limit_per_ip
    ):
        raise RateLimited("too many submissions from your address; try again in a minute")
    if now.second == 0:  # once a minute or so: forget old windows
        await session.execute(
            sa.delete(models.RateCounter).where(models.RateCounter.expires_at < now)
        )
    return form_to_pb(row)


def extract(form: models.Form, fields: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The submission's normalized contact values and its utm_* attribution."""
    violations: list[FieldViolation] = []
    if form.honeypot_field and fields.get(form.honeypot_field, "").strip():
        raise InvalidArgument.single(form.honeypot_field, "this field must be left empty")
    values: dict[str, str] = {}
    for name, target in form.field_mapping.items():
        raw = fields.get(name, "").strip()
        if len(raw) > MAX_VALUE:
            violations.append(FieldViolation(name, f"at most {MAX_VALUE} characters"))
        elif raw:
            values[target] = raw
    if "name" in values and not ({"first_name", "last_name"} & values.keys()):
        first, _, last = values.pop("name").partition(" ")
        values["first_name"], values["last_name"] = first, last.strip()
    values.pop("name", None)
    by_target = {target: name for name, target in form.field_mapping.items()}
    if "country" in values:
        try:
            values["country"] = normalize_country(values["country"], by_target["country"])
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            values.pop("country")
    if not values.get("country") and form.default_country:
        # The gateway placed the submission by this country; the contact must agree.
        values["country"] = form.default_country
    country = values.get("country", "")
    if "email" in values:
        try:
            values["email"] = normalize_email(values["email"])
        except ValueError as exc:
            violations.append(FieldViolation(by_target["email"], f"not a valid email: {exc}"))
    if "phone" in values:
        try:
            values["phone"] = normalize_phone(values["phone"], country)
        except ValueError as exc:
            violations.append(FieldViolation(by_target["phone"], str(exc)))
    if not violations and not ({"email", "phone"} & values.keys()):
        field = by_target.get("email") or by_target.get("phone") or "email"
        violations.append(FieldViolation(field, "give an email address or a phone number"))
    if violations:
        raise InvalidArgument(violations)
    utm = {name: fields[name].strip()[:500] for name in UTM if fields.get(name, "").strip()}
    return values, utm


async def store_submission(
    session: AsyncSession, principal: Principal, region: str, request: pb.SubmitFormRequest
) -> models.Submission:
    form = await session.get(models.Form, request.form_id)
    if form is None or form.tenant_id != principal.tenant_id or not form.active:
        raise NotFound("no such form")
    values, utm = extract(form, dict(request.fields))
    submission_id = request.submission_id or new_id(region)
    if not is_valid_id(submission_id):
        raise InvalidArgument.single("submission_id", "expected '<region>_<ULID>'")
    existing = await session.get(models.Submission, submission_id)
    if existing is not None:  # a retried POST: the first one stands
        return existing
    row = models.Submission(
        id=submission_id,
        tenant_id=principal.tenant_id,
        form_id=form.id,
        status="pending",
        fields=values,
        utm=utm,
        source=utm.get("utm_source") or form.source,
        client_ip=request.client_ip[:100],
        user_agent=request.user_agent[:500],
        referrer=request.referrer[:2000],
        merged_contact_ids=[],
        attempts=0,
        # The inline attempt holds it for a minute; if this process dies the worker takes it.
        next_attempt_at=clock.now() + timedelta(seconds=60),
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return row


class Completer:
    """Completes stored submissions: inline after storing, and from the retry worker."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        downstream: Downstream,
        region: str,
        settings: IntegrationsSettings,
    ) -> None:
        self.sessions = sessions
        self.outbox = outbox
        self.downstream = downstream
        self.region = region
        self.settings = settings

    async def complete(self, submission_id: str) -> models.Submission:
        """One attempt; on an outage the row stays pending with its next attempt set."""
        try:
            await self._attempt(submission_id)
        except Unavailable as exc:
            await self._record_failure(submission_id, str(exc), retry=True)
        except InvalidArgument as exc:
            await self._record_failure(submission_id, str(exc), retry=False)
            raise
        async with transaction(self.sessions) as session:
            row = await session.get(models.Submission, submission_id)
            assert row is not None
            return row

    async def _record_failure(self, submission_id: str, error: str, *, retry: bool) -> None:
        async with transaction(self.sessions) as session:
            row = await session.get(models.Submission, submission_id, with_for_update=True)
            if row is None or row.status != "pending":
                return
            row.attempts += 1
            row.last_error = error[:2000]
            if retry:
                row.next_attempt_at = clock.now() + backoff(
                    row.attempts, self.settings.retry_base_seconds, self.settings.retry_max_seconds
                )
            else:
                row.status = "failed"
                row.next_attempt_at = None

    async def _owner(self, form: models.Form, principal: Principal) -> str:
        kind, _, who = form.owner.partition(":")
        if kind == "user":
            return who
        reply = await self.downstream.call(
            "directory",
            self.downstream.directory.ListUsers,
            directory_pb2.ListUsersRequest(team=who),
            principal,
        )
        users = sorted(u.id for u in reply.users)
        if not users:
            raise InvalidArgument.single("owner", f"team {who!r} has no users")
        async with transaction(self.sessions) as session:
            # Take the next position atomically, so concurrent submissions rotate fairly.
            position = await session.scalar(
                sa.update(models.Form)
                .where(models.Form.id == form.id)
                .values(round_robin=models.Form.round_robin + 1)
                .returning(models.Form.round_robin)
            )
        return str(users[(int(position or 1) - 1) % len(users)])

    async def _attempt(self, submission_id: str) -> None:
        async with transaction(self.sessions) as session:
            row = await session.get(models.Submission, submission_id)
            if row is None or row.status != "pending":
                return
            form = await session.get(models.Form, row.form_id)
            assert form is not None
        principal = acting(row.tenant_id, self.region)
        if not row.owner_id:
            owner = await self._owner(form, principal)
            async with transaction(self.sessions) as session:
                await session.execute(
                    sa.update(models.Submission)
                    .where(models.Submission.id == row.id)
                    .values(owner_id=owner)
                )
            row.owner_id = owner
        values = row.fields
        if not row.contact_id:
            contact_id, merged = await self._upsert_contact(row, principal)
            async with transaction(self.sessions) as session:
                await session.execute(
                    sa.update(models.Submission)
                    .where(models.Submission.id == row.id)
                    .values(contact_id=contact_id, merged_contact_ids=merged)
                )
            row.contact_id = contact_id
        if values.get("note"):
            await self.downstream.call(
                "contacts",
                self.downstream.contacts.AddTimelineEntry,
                cpb.AddTimelineEntryRequest(
                    entry=cpb.TimelineEntry(
                        contact_id=row.contact_id,
                        kind="note",
                        subject=f"Web form: {form.name}",
                        body=values["note"],
                    )
                ),
                principal.with_changes(idempotency_key=f"{row.id}:note"),
            )
        name = " ".join(p for p in (values.get("first_name"), values.get("last_name")) if p)
        title = values.get("deal_title") or form.deal_title or f"{form.name}: {name or 'web lead'}"
        deal = await self.downstream.call(
            "deals",
            self.downstream.deals.CreateDeal,
            dpb.CreateDealRequest(
                deal=dpb.Deal(
                    title=title[:200],
                    contact_id=row.contact_id,
                    owner_id=row.owner_id,
                    source="web_form",
                    pipeline_id=form.pipeline_id,
                    stage_id=form.stage_id,
                )
            ),
            principal.with_changes(idempotency_key=f"{row.id}:deal"),
        )
        async with transaction(self.sessions) as session:
            current = await session.get(models.Submission, row.id, with_for_update=True)
            if current is None or current.status != "pending":
                return
            current.deal_id = deal.id
            current.status = "completed"
            current.completed_at = clock.now()
            current.next_attempt_at = None
            current.attempts += 1
            current.last_error = ""
            await self.outbox.add(
                session,
                principal,
                "form",
                "submitted",
                events.FormSubmitted(
                    submission_id=current.id,
                    form_id=current.form_id,
                    contact_id=current.contact_id,
                    deal_id=deal.id,
                    source=current.source,
                    utm_medium=current.utm.get("utm_medium", ""),
                    utm_campaign=current.utm.get("utm_campaign", ""),
                ),
            )

    async def _upsert_contact(
        self, row: models.Submission, principal: Principal
    ) -> tuple[str, list[str]]:
        values = row.fields
        email, phone = values.get("email", ""), values.get("phone", "")
        found: dict[str, cpb.Contact] = {}
        for contact in [
            *await self.downstream.find_contacts(principal, email=email),
            *await self.downstream.find_contacts(principal, phone=phone),
        ]:
            found.setdefault(contact.id, contact)
        if not found:
            created = await self.downstream.call(
                "contacts",
                self.downstream.contacts.CreateContact,
                cpb.CreateContactRequest(
                    contact=cpb.Contact(
                        first_name=values.get("first_name", ""),
                        last_name=values.get("last_name", ""),
                        emails=[email] if email else [],
                        phones=[phone] if phone else [],
                        address=cpb.Address(
                            country=values.get("country", ""), city=values.get("city", "")
                        ),
                        language=values.get("language", ""),
                        owner_id=row.owner_id,
                        source="web_form",
                        lifecycle_stage="lead",
                    )
                ),
                principal.with_changes(idempotency_key=f"{row.id}:contact"),
            )
            return str(created.id), []
        ordered = sorted(found.values(), key=lambda c: c.id)
        survivor, others = ordered[0], ordered[1:]
        merged: list[str] = []
        for other in others:
            survivor = await self.downstream.call(
                "contacts",
                self.downstream.contacts.MergeContacts,
                cpb.MergeContactsRequest(survivor_id=survivor.id, merged_id=other.id),
                principal.with_changes(idempotency_key=f"{row.id}:merge:{other.id}"),
            )
            merged.append(other.id)
        update = cpb.Contact(id=survivor.id)
        paths: list[str] = []
        if email and email not in survivor.emails:
            update.emails.extend([*survivor.emails, email])
            paths.append("emails")
        if phone and phone not in survivor.phones:
            update.phones.extend([*survivor.phones, phone])
            paths.append("phones")
        for name in ("first_name", "last_name"):
            if values.get(name) and not getattr(survivor, name):
                setattr(update, name, values[name])
                paths.append(name)
        if paths:
            from google.protobuf import field_mask_pb2

            await self.downstream.call(
                "contacts",
                self.downstream.contacts.UpdateContact,
                cpb.UpdateContactRequest(
                    contact=update, update_mask=field_mask_pb2.FieldMask(paths=paths)
                ),
                principal.with_changes(idempotency_key=""),
            )
        return str(survivor.id), merged

    async def run(self) -> None:
        """Retries pending submissions whose next attempt is due (every replica; SKIP LOCKED)."""
        import asyncio

        while True:
            try:
                await self.pass_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("submission worker pass failed")
            await asyncio.sleep(self.settings.worker_interval)

    async def pass_once(self) -> int:
        now = clock.now()
        async with transaction(self.sessions) as session:
            ids = list(
                await session.scalars(
                    sa.select(models.Submission.id)
                    .where(
                        models.Submission.status == "pending",
                        models.Submission.next_attempt_at <= now,
                    )
                    .order_by(models.Submission.next_attempt_at)
                    .limit(20)
                    .with_for_update(skip_locked=True)
                )
            )
            if ids:
                # A lease: other replicas skip these while this one works on them.
                await session.execute(
                    sa.update(models.Submission)
                    .where(models.Submission.id.in_(ids))
                    .values(next_attempt_at=now + timedelta(seconds=60))
                )
        for submission_id in ids:
            try:
                await self.complete(submission_id)
            except InvalidArgument:
                log.warning("submission %s failed for good", submission_id)
        return len(ids)
