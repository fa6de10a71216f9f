"""Telephony and inbound-email providers: authenticated by a per-provider secret, calls
and emails matched to a contact by normalized phone or email and logged on its timeline.

An unknown caller becomes a new lead; a missed inbound call becomes a "call back" task
for the contact's owner. Peer calls carry idempotency keys derived from the provider's
own call or message id, so a provider that retries after a timeout logs nothing twice.

Click-to-call: a telephony provider with a `call_url` is asked (a POST signed per
Standard Webhooks with the provider's `call_secret`, the target checked like a webhook's)
to connect the calling user's directory phone with the contact's. Its answer's call id
is stored with the contact and the user, so the provider's later callbacks for that call
land on that contact's timeline credited to that user. Nothing is stored when the
provider does not answer: the caller gets 503 and may click again.
"""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_api.crm.contacts.v1 import contacts_pb2 as cpb
from crm_api.crm.directory.v1 import directory_pb2 as dpb
from crm_api.crm.events.v1 import integrations_pb2 as events
from crm_api.crm.integrations.v1 import integrations_pb2 as pb
from crm_api.crm.tasks.v1 import tasks_pb2 as tpb
from crm_integrations import models
from crm_integrations.common import (
    Downstream,
    acting,
    new_secret,
    normalize_email,
    normalize_phone,
    sha256,
)
from crm_integrations.forms import require_admin
from crm_integrations.webhooks import check_target, new_webhook_secret, signed_headers
from crm_kit import clock
from crm_kit.audit import append_audit
from crm_kit.context import Principal
from crm_kit.db import transaction
from crm_kit.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from crm_kit.ids import new_id
from crm_kit.messaging import Outbox
from crm_kit.placement import normalize_country

KINDS = ("telephony", "email")
DIRECTIONS = ("inbound", "outbound")
CALL_STATUSES = ("completed", "missed", "busy", "no_answer")


async def create_provider(
    session: AsyncSession, principal: Principal, region: str, request: pb.CreateProviderRequest
) -> pb.CreateProviderResponse:
    require_admin(principal)
    violations: list[FieldViolation] = []
    if request.kind not in KINDS:
        violations.append(FieldViolation("kind", f"must be one of {', '.join(KINDS)}"))
    country = ""
    if request.default_country:
        try:
            country = normalize_country(request.default_country, "default_country")
        except InvalidArgument as exc:
            violations.extend(exc.violations)
    call_url = request.call_url.strip()
    if call_url and request.kind != "telephony":
        violations.append(FieldViolation("call_url", "only telephony providers place calls"))
    if violations:
        raise InvalidArgument(violations)
    if call_url:
        settings = await session.get(models.TenantSettings, principal.tenant_id)
        allow = bool(settings and settings.allow_private_webhook_targets)
        await check_target(call_url, allow, "call_url")
    secret = new_secret("psk_")
    call_secret = new_webhook_secret() if call_url else ""
    row = models.Provider(
        id=new_id(region),
        tenant_id=principal.tenant_id,
        kind=request.kind,
        name=request.name.strip()[:200],
        secret_hash=sha256(secret),
        default_owner_id=request.default_owner_id.strip() or principal.user_id,
        default_country=country,
        call_url=call_url,
        call_secret=call_secret,
    )
    session.add(row)
    await session.flush()
    return pb.CreateProviderResponse(
        id=row.id, kind=row.kind, secret=secret, call_secret=call_secret
    )


async def authenticate(
    sessions: async_sessionmaker[AsyncSession], provider_id: str, secret: str, kind: str
) -> models.Provider:
    async with transaction(sessions) as session:
        row = await session.get(models.Provider, provider_id)
    # Compare digests in constant time; an unknown provider looks like a wrong secret.
    expected = row.secret_hash if row is not None else sha256("-")
    if not hmac.compare_digest(expected, sha256(secret)) or row is None or row.kind != kind:
        raise PermissionDenied("unknown provider or wrong secret")
    return row


class Providers:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        downstream: Downstream,
        region: str,
        call_timeout: float = 5.0,
    ) -> None:
        self.sessions = sessions
        self.outbox = outbox
        self.downstream = downstream
        self.region = region
        self.call_timeout = call_timeout

    # ---------------------------------------------------------------- click-to-call

    async def start_call(
        self, principal: Principal, request: pb.StartCallRequest
    ) -> pb.StartCallResponse:
        reader = principal.with_changes(idempotency_key="")
        # As the user: a contact they may not see is "not found" here too.
        contact: cpb.Contact = await self.downstream.call(
            "contacts",
            self.downstream.contacts.GetContact,
            cpb.GetContactRequest(id=request.contact_id),
            reader,
        )
        provider, allow = await self._call_provider(principal, request.provider_id.strip())
        country = contact.address.country or provider.default_country
        violations: list[FieldViolation] = []
        to_number = ""
        if not contact.phones:
            violations.append(FieldViolation("contact.phones", "the contact has no phone number"))
        elif request.phone.strip():
            try:
                wanted = normalize_phone(request.phone, country)
            except ValueError as exc:
                violations.append(FieldViolation("phone", str(exc)))
            else:
                if wanted in contact.phones:
                    to_number = wanted
                else:
                    violations.append(FieldViolation("phone", "not one of the contact's numbers"))
        else:
            to_number = contact.phones[0]
        from_number = ""
        own_phone = await self._user_phone(principal)
        if not own_phone:
            violations.append(
                FieldViolation(
                    "user.phone",
                    "you have no phone in the user directory (an admin sets it with "
                    "PUT /v1/users/{id})",
                )
            )
        else:
            try:
                from_number = normalize_phone(own_phone, provider.default_country)
            except ValueError as exc:
                violations.append(FieldViolation("user.phone", f"your directory phone: {exc}"))
        if violations:
            raise InvalidArgument(violations)
        await check_target(provider.call_url, allow, "call_url")
        request_id = new_id(self.region)
        call_id = await self._ask_provider(
            provider,
            request_id,
            {
                "id": request_id,
                "type": "call.requested",
                "tenant_id": principal.tenant_id,
                "user_id": principal.user_id,
                "contact_id": contact.id,
                "from": from_number,
                "to": to_number,
            },
        )
        async with transaction(self.sessions) as session:
            await session.execute(
                pg_insert(models.CallRequest)
                .values(
                    id=request_id,
                    tenant_id=principal.tenant_id,
                    provider_id=provider.id,
                    external_id=call_id,
                    user_id=principal.user_id,
                    contact_id=contact.id,
                    from_number=from_number,
                    to_number=to_number,
                )
                .on_conflict_do_nothing()
            )
            # The contact's number went to the provider on this user's request.
            await append_audit(
                session,
                tenant_id=principal.tenant_id,
                actor_id=principal.user_id,
                actor_home_region=principal.home_region or self.region,
                region=self.region,
                action="call.start",
                record_id=contact.id,
                legal_basis=principal.cross_region_basis or "home region",
            )
        return pb.StartCallResponse(
            call_id=call_id,
            provider_id=provider.id,
            contact_id=contact.id,
            from_number=from_number,
            to_number=to_number,
        )

    async def _call_provider(
        self, principal: Principal, provider_id: str
    ) -> tuple[models.Provider, bool]:
        async with transaction(self.sessions) as session:
            query = sa.select(models.Provider).where(
                models.Provider.tenant_id == principal.tenant_id,
                models.Provider.kind == "telephony",
                models.Provider.call_url != "",
            )
            if provider_id:
                query = query.where(models.Provider.id == provider_id)
            provider = await session.scalar(
                query.order_by(models.Provider.created_at.desc(), models.Provider.id.desc())
            )
            settings = await session.get(models.TenantSettings, principal.tenant_id)
        if provider is None:
            if provider_id:
                raise InvalidArgument.single(
                    "provider_id", "no telephony provider with a call_url has this id here"
                )
            raise FailedPrecondition(
                f"no telephony provider with a call_url is configured in region {self.region}"
            )
        return provider, bool(settings and settings.allow_private_webhook_targets)

    async def _user_phone(self, principal: Principal) -> str:
        try:
            user: dpb.User = await self.downstream.call(
                "directory",
                self.downstream.directory.GetUser,
                dpb.GetUserRequest(id=principal.user_id),
                acting(principal.tenant_id, self.region),
            )
        except NotFound:
            return ""
        return str(user.phone).strip()

    async def _ask_provider(
        self, provider: models.Provider, request_id: str, payload: dict[str, str]
    ) -> str:
        """POSTs the signed request; the provider's call id, or Unavailable."""
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        signed = signed_headers(provider.call_secret, request_id, datetime.now(UTC), body)
        try:
            async with httpx.AsyncClient(
                timeout=self.call_timeout, follow_redirects=False
            ) as client:
                reply = await client.post(
                    provider.call_url,
                    content=body.encode(),
                    headers={
                        "content-type": "application/json",
                        **signed,
                        "idempotency-key": request_id,
                        "user-agent": "AtlasCRM-Telephony/1.0",
                    },
                )
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"the telephony provider did not answer: {type(exc).__name__}"
            ) from exc
        if 400 <= reply.status_code < 500 and reply.status_code not in (408, 429):
            raise FailedPrecondition(
                f"the telephony provider refused the call: HTTP {reply.status_code}"
            )
        if not 200 <= reply.status_code < 300:
            raise Unavailable(f"the telephony provider answered HTTP {reply.status_code}")
        try:
            call_id = str(reply.json()["call_id"]).strip()
        except (ValueError, KeyError, TypeError) as exc:
            raise Unavailable("the telephony provider's answer has no call_id") from exc
        if not call_id or len(call_id) > 200:
            raise Unavailable("the telephony provider's answer has no usable call_id")
        return call_id

    async def log_call(self, request: pb.LogCallRequest) -> pb.CallRecord:
        provider = await authenticate(
            self.sessions, request.provider_id, request.secret, "telephony"
        )
        violations: list[FieldViolation] = []
        if request.direction not in DIRECTIONS:
            violations.append(FieldViolation("direction", "inbound or outbound"))
        status = request.status or ("missed" if request.duration_seconds == 0 else "completed")
        if status not in CALL_STATUSES:
            violations.append(FieldViolation("status", f"one of {', '.join(CALL_STATUSES)}"))
        if request.duration_seconds < 0:
            violations.append(FieldViolation("duration", "cannot be negative"))
        if request.recording_url and not request.recording_url.startswith(("https://", "http://")):
            violations.append(FieldViolation("recording_url", "an http(s) URL"))
        other = request.from_number if request.direction == "inbound" else request.to_number
        field = "from" if request.direction == "inbound" else "to"
        phone = ""
        try:
            phone = normalize_phone(other, provider.default_country)
        except ValueError as exc:
            violations.append(FieldViolation(field, str(exc)))
        if violations:
            raise InvalidArgument(violations)
        external_id = request.external_id.strip() or new_id(self.region)
        async with transaction(self.sessions) as session:
            existing = await session.scalar(
                sa.select(models.Call).where(
                    models.Call.provider_id == provider.id,
                    models.Call.external_id == external_id,
                )
            )
            placed = await session.scalar(
                sa.select(models.CallRequest).where(
                    models.CallRequest.provider_id == provider.id,
                    models.CallRequest.external_id == external_id,
                )
            )
        if existing is not None:
            return _call_pb(existing, duplicate=True)
        principal = acting(provider.tenant_id, self.region)
        key = f"call:{provider.id}:{external_id}"
        missed = status != "completed"
        matches: list[cpb.Contact] = []
        if placed is not None:
            # A click-to-call: the contact that was clicked, credited to who clicked.
            principal = acting(provider.tenant_id, self.region, user=placed.user_id)
            try:
                matches = [
                    await self.downstream.call(
                        "contacts",
                        self.downstream.contacts.GetContact,
                        cpb.GetContactRequest(id=placed.contact_id),
                        principal,
                    )
                ]
            except NotFound:
                matches = []
        if not matches:
            matches = await self.downstream.find_contacts(principal, phone=phone)
        new_lead = not matches
        if matches:
            contact = matches[0]
        else:
            contact = await self.downstream.call(
                "contacts",
                self.downstream.contacts.CreateContact,
                cpb.CreateContactRequest(
                    contact=cpb.Contact(
                        first_name="Unknown caller",
                        last_name=phone,
                        phones=[phone],
                        address=cpb.Address(country=provider.default_country),
                        owner_id=provider.default_owner_id,
                        source="call",
                        lifecycle_stage="lead",
                    )
                ),
                principal.with_changes(idempotency_key=f"{key}:contact"),
            )
        started = (
            request.started_at.ToDatetime(UTC) if request.HasField("started_at") else clock.now()
        )
        # The call is the named user's (who made or took it), else the contact owner's.
        taken_by = request.user_id.strip()
        entry = cpb.TimelineEntry(
            contact_id=contact.id,
            kind="call",
            author_id=taken_by or contact.owner_id or provider.default_owner_id,
            direction=request.direction,
            subject=("Missed call" if missed else "Call")
            + (" from " if request.direction == "inbound" else " to ")
            + phone,
            body="\n".join(
                line
                for line in (
                    f"Status: {status}",
                    f"Recording: {request.recording_url}" if request.recording_url else "",
                )
                if line
            ),
            duration_seconds=request.duration_seconds,
        )
        entry.occurred_at.FromDatetime(started)
        logged = await self.downstream.call(
            "contacts",
            self.downstream.contacts.AddTimelineEntry,
            cpb.AddTimelineEntryRequest(entry=entry),
            principal.with_changes(idempotency_key=f"{key}:timeline"),
        )
        task_id = ""
        if missed and request.direction == "inbound":
            due = clock.now() + timedelta(minutes=30)
            task = tpb.Task(
                title=f"Call back {phone}",
                description="Missed call" + (f" ({status})" if status != "missed" else ""),
                assignee_id=contact.owner_id or provider.default_owner_id,
                contact_id=contact.id,
                priority="high",
            )
            task.due_at.FromDatetime(due)
            created = await self.downstream.call(
                "tasks",
                self.downstream.tasks.CreateTask,
                tpb.CreateTaskRequest(task=task),
                principal.with_changes(idempotency_key=f"{key}:task"),
            )
            task_id = created.id
        async with transaction(self.sessions) as session:
            row = models.Call(
                id=new_id(self.region),
                tenant_id=provider.tenant_id,
                provider_id=provider.id,
                external_id=external_id,
                direction=request.direction,
                from_number=request.from_number[:50],
                to_number=request.to_number[:50],
                duration_seconds=request.duration_seconds,
                recording_url=request.recording_url[:2000],
                status=status,
                missed=missed,
                contact_id=contact.id,
                new_lead=new_lead,
                task_id=task_id,
                timeline_entry_id=logged.id,
                started_at=started,
            )
            session.add(row)
            await session.flush()
            started_pb = cpb.TimelineEntry().occurred_at
            started_pb.FromDatetime(started)
            await self.outbox.add(
                session,
                principal,
                "call",
                "logged",
                events.CallLogged(
                    call_id=row.id,
                    contact_id=contact.id,
                    owner_id=contact.owner_id,
                    direction=request.direction,
                    duration_seconds=request.duration_seconds,
                    missed=missed,
                    started_at=started_pb,
                    new_lead=new_lead,
                    user_id=taken_by,
                    on_timeline=True,
                ),
            )
        return _call_pb(row)

    async def log_email(self, request: pb.LogEmailRequest) -> pb.EmailRecord:
        provider = await authenticate(self.sessions, request.provider_id, request.secret, "email")
        try:
            sender = normalize_email(request.from_address)
        except ValueError as exc:
            raise InvalidArgument.single("from", f"not a valid email: {exc}") from exc
        message_id = request.message_id.strip() or new_id(self.region)
        async with transaction(self.sessions) as session:
            existing = await session.scalar(
                sa.select(models.InboundEmail).where(
                    models.InboundEmail.provider_id == provider.id,
                    models.InboundEmail.message_id == message_id,
                )
            )
        if existing is not None:
            return _email_pb(existing)
        principal = acting(provider.tenant_id, self.region)
        matches = await self.downstream.find_contacts(principal, email=sender)
        contact_id, entry_id, owner = "", "", ""
        if matches:
            contact = matches[0]
            contact_id, owner = contact.id, contact.owner_id
            logged = await self.downstream.call(
                "contacts",
                self.downstream.contacts.AddTimelineEntry,
                cpb.AddTimelineEntryRequest(
                    entry=cpb.TimelineEntry(
                        contact_id=contact.id,
                        kind="email",
                        direction="inbound",
                        subject=request.subject.strip()[:500] or "(no subject)",
                        body=request.body[:20_000],
                    )
                ),
                principal.with_changes(idempotency_key=f"email:{provider.id}:{message_id}"),
            )
            entry_id = logged.id
        async with transaction(self.sessions) as session:
            row = models.InboundEmail(
                id=new_id(self.region),
                tenant_id=provider.tenant_id,
                provider_id=provider.id,
                message_id=message_id,
                from_address=sender,
                to_address=request.to_address[:500],
                subject=request.subject[:500],
                contact_id=contact_id,
                timeline_entry_id=entry_id,
                received_at=datetime.now(UTC),
            )
            session.add(row)
            await session.flush()
            if contact_id:
                received = cpb.TimelineEntry().occurred_at
                received.FromDatetime(row.received_at)
                await self.outbox.add(
                    session,
                    principal,
                    "email",
                    "logged",
                    events.EmailLogged(
                        email_id=row.id,
                        contact_id=contact_id,
                        owner_id=owner,
                        received_at=received,
                    ),
                )
        return _email_pb(row)


def _call_pb(row: models.Call, duplicate: bool = False) -> pb.CallRecord:
    return pb.CallRecord(
        id=row.id,
        contact_id=row.contact_id,
        new_lead=row.new_lead,
        missed=row.missed,
        task_id=row.task_id,
        timeline_entry_id=row.timeline_entry_id,
        duplicate=duplicate,
    )


def _email_pb(row: models.InboundEmail) -> pb.EmailRecord:
    return pb.EmailRecord(
        id=row.id,
        contact_id=row.contact_id,
        matched=bool(row.contact_id),
        timeline_entry_id=row.timeline_entry_id,
    )


__all__ = ["NotFound", "Providers", "create_provider"]
