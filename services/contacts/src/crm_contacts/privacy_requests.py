"""Data-subject requests (GDPR Art. 15-20, LGPD Art. 18), owned by the subject's
system of record: the contacts service of the subject's region.

The orchestrator calls the PrivacyService of this service and of every peer service
configured for contacts in this region (`CRM_PEER_ENDPOINTS`, i.e. PEERS["contacts"]
in crm_cli.cluster and the contacts kustomization): that list is the one place that
names which services hold personal data. Every call stays in the subject's region.

States: received -> in_progress -> completed | failed; a failed request keeps its
error and can be retried (RetryPrivacyRequest) — nothing is ever silently done.
Due dates: GDPR (subjects in eu and us) one month; LGPD (br) 15 days. The reminder
fires 7 (GDPR) or 3 (LGPD) days before the due date (crm_contacts.compliance_scheduler).
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import csv
import io
import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import grpc
import phonenumbers
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from google.protobuf import json_format
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.compliance.v1 import compliance_pb2, compliance_pb2_grpc
from crm_api.crm.compliance.v1 import privacy_requests_pb2 as pb
from crm_api.crm.contacts.v1 import contacts_pb2
from crm_api.crm.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from crm_contacts import attachments, contacts, models, privacy
from crm_contacts.convert import timestamp
from crm_contacts.normalize import normalize_email, normalize_phone
from crm_kit import clock, subject_copies
from crm_kit.audit import append_audit, audit_as
from crm_kit.context import Principal, current_principal
from crm_kit.db import audit_table, transaction
from crm_kit.errors import (
    CrmError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from crm_kit.ids import new_id, region_of
from crm_kit.placement import ResidencyPolicy, law_for_region, region_for_country
from crm_kit.relocation import forget_answers
from crm_kit.runtime import Runtime
from crm_kit.spreadsheet import safe_cell

log = logging.getLogger(__name__)

KINDS = ("export", "erasure", "rectification")
# What the law of the subject's region gives the controller to answer
# (days allowed, 0 meaning one calendar month; reminder days before the due date)
DEADLINES: dict[str, tuple[int, int]] = {"GDPR": (0, 7), "LGPD": (15, 3)}


def add_month(at: datetime) -> datetime:
    """Same day next month, clamped to the month's last day (GDPR Art. 12(3))."""
    year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def due_dates(law: str, received_at: datetime) -> tuple[datetime, datetime]:
    """(due date, reminder time) of a request received at `received_at`."""
    allowed, remind_days = DEADLINES[law]
    due = add_month(received_at) if allowed == 0 else received_at + timedelta(days=allowed)
    return due, due - timedelta(days=remind_days)


def require_officer(principal: Principal) -> None:
    if not principal.has_role("admin", "compliance_officer"):
        raise PermissionDenied("data-subject requests are for compliance officers and admins")


def to_pb(row: models.PrivacyRequest, public_key: bytes = b"") -> pb.PrivacyRequest:
    return pb.PrivacyRequest(
        id=row.id,
        kind=row.kind,
        contact_id=row.contact_id,
        status=row.status,
        law=row.law,
        due_at=timestamp(row.due_at),
        reminder_at=timestamp(row.reminder_at),
        reminder_sent=row.reminder_sent_at is not None,
        requested_by=row.requested_by,
        created_at=timestamp(row.created_at),
        updated_at=timestamp(row.updated_at),
        completed_at=timestamp(row.completed_at),
        error=row.error,
        attempts=row.attempts,
        receipt=row.receipt,
        receipt_signature=row.receipt_signature,
        public_key=base64.b64encode(public_key).decode() if row.receipt else "",
        rectified_fields=row.rectified_fields,
    )


# ------------------------------------------------------------------ signing keys


async def tenant_key(session: AsyncSession, tenant_id: str) -> models.TenantKey:
    """The tenant's Ed25519 key of this region, created on first use."""
    row = await session.get(models.TenantKey, tenant_id)
    if row is not None:
        return row
    key = Ed25519PrivateKey.generate()
    await session.execute(
        pg_insert(models.TenantKey)
        .values(
            tenant_id=tenant_id,
            private_key=key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
            public_key=key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        )
        .on_conflict_do_nothing()
    )
    row = await session.get(models.TenantKey, tenant_id, populate_existing=True)
    assert row is not None
    return row


def canonical(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


async def verify_receipt(
    session: AsyncSession, principal: Principal, receipt: str, signature: str
) -> pb.VerifyReceiptResponse:
    try:
        document = json.loads(receipt)
        raw_signature = base64.b64decode(signature, validate=True)
    except (ValueError, TypeError):
        return pb.VerifyReceiptResponse(valid=False, reason="the receipt is not signed JSON")
    if not isinstance(document, dict) or document.get("tenant_id") != principal.tenant_id:
        return pb.VerifyReceiptResponse(valid=False, reason="not a receipt of this tenant")
    row = await session.get(models.TenantKey, principal.tenant_id)
    if row is None:
        return pb.VerifyReceiptResponse(valid=False, reason="this tenant has signed nothing here")
    try:
        Ed25519PublicKey.from_public_bytes(row.public_key).verify(raw_signature, receipt.encode())
    except InvalidSignature:
        return pb.VerifyReceiptResponse(
            valid=False, reason="the signature does not match: the receipt was altered"
        )
    return pb.VerifyReceiptResponse(valid=True, reason="signed by the tenant's key")


# ------------------------------------------------------------------ subjects and holds


async def find_subjects(
    session: AsyncSession, principal: Principal, email: str, phone: str
) -> pb.FindSubjectsResponse:
    require_officer(principal)
    if not email and not phone:
        raise InvalidArgument.single("email", "give an email or a phone")
    conditions = []
    if email:
        conditions.append(models.Contact.emails.contains([normalize_email(email, "email")]))
    if phone:
        conditions.append(models.Contact.phones.contains([normalize_phone(phone, None, "phone")]))
    rows = await session.scalars(
        sa.select(models.Contact)
        .where(
            models.Contact.tenant_id == principal.tenant_id,
            models.Contact.merged_into_id.is_(None),
            sa.or_(*conditions),
        )
        .order_by(models.Contact.id)
        .limit(50)
    )
    return pb.FindSubjectsResponse(
        subjects=[
            pb.Subject(
                contact_id=row.id,
                display_name=f"{row.first_name} {row.last_name}".strip(),
                country=row.country,
            )
            for row in rows
        ]
    )


async def set_legal_hold(
    session: AsyncSession, principal: Principal, region: str, contact_id: str, reason: str
) -> pb.LegalHold:
    require_officer(principal)
    if not reason.strip():
        raise InvalidArgument.single("reason", "say why the data must be kept")
    await contacts.get_row(session, principal, contact_id)
    now = clock.now()
    await session.execute(
        pg_insert(models.LegalHold)
        .values(
            tenant_id=principal.tenant_id,
            contact_id=contact_id,
            reason=reason.strip(),
            set_by=principal.user_id,
            set_at=now,
        )
        .on_conflict_do_update(
            index_elements=["tenant_id", "contact_id"],
            set_={"reason": reason.strip(), "set_by": principal.user_id, "set_at": now},
        )
    )
    await audit_as(session, principal, region, "legal_hold.set", contact_id)
    return pb.LegalHold(
        contact_id=contact_id,
        reason=reason.strip(),
        set_by=principal.user_id,
        set_at=timestamp(now),
    )


async def clear_legal_hold(
    session: AsyncSession, principal: Principal, region: str, contact_id: str
) -> None:
    require_officer(principal)
    result = await session.execute(
        sa.delete(models.LegalHold).where(
            models.LegalHold.tenant_id == principal.tenant_id,
            models.LegalHold.contact_id == contact_id,
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"contact {contact_id} has no legal hold")
    await audit_as(session, principal, region, "legal_hold.clear", contact_id)


async def record_elevated_login(
    session: AsyncSession, principal: Principal, region: str, token_hash: str, roles: Sequence[str]
) -> bool:
    """One audit record per token (the gateway also remembers what it has recorded)."""
    if not token_hash:
        raise InvalidArgument.single("token_hash", "required")
    seen = await session.scalar(
        sa.select(sa.func.count())
        .select_from(audit_table)
        .where(
            audit_table.c.tenant_id == principal.tenant_id,
            audit_table.c.action == "login.elevated",
            audit_table.c.record_id == token_hash,
        )
    )
    if seen:
        return False
    await append_audit(
        session,
        tenant_id=principal.tenant_id,
        actor_id=principal.user_id,
        actor_home_region=principal.home_region or region,
        region=region,
        action="login.elevated",
        record_id=token_hash,
        legal_basis=",".join(sorted(roles)),
    )
    return True


# ------------------------------------------------------------------ residency


async def count_contacts(session: AsyncSession, principal: Principal) -> list[Any]:
    """Contacts per region their country requires under the tenant's policy."""
    policy = await contacts.load_policy(session, principal.tenant_id)
    rows = (
        await session.execute(
            sa.select(models.Contact.country, sa.func.count())
            .where(
                models.Contact.tenant_id == principal.tenant_id,
                models.Contact.merged_into_id.is_(None),
            )
            .group_by(models.Contact.country)
        )
    ).all()
    by_region: dict[str, int] = {}
    for country, count in rows:
        required = required_region(country, policy)
        by_region[required] = by_region.get(required, 0) + count
    return [
        compliance_pb2.ResidencyCount(
            kind="contact", required_region=region, subjects=count, records=count
        )
        for region, count in sorted(by_region.items())
    ]


def required_region(country: str, policy: ResidencyPolicy) -> str:
    try:
        return region_for_country(country, policy, ["eu", "br", "us", policy.default_region])
    except InvalidArgument:
        return policy.default_region


# ------------------------------------------------------------------ orchestration


@dataclass
class ServiceResult:
    service: str
    erased: dict[str, int]
    erased_at: datetime
    # Copies of the subject's identifiers outside its linked rows ("table.column": rows).
    copies_erased: dict[str, int] = field(default_factory=dict)
    remaining: int = -1
    copies_remaining: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.remaining == 0 and not self.copies_remaining


def erased_copies(copies: Sequence[compliance_pb2.SubjectCopy]) -> dict[str, int]:
    return {f"{c.table}.{c.column}": c.rows for c in copies if c.action in ("redacted", "deleted")}


def national_forms(phones: Sequence[str]) -> list[str]:
    """Each stored E.164 number and its national number (how a person writes it at home)."""
    forms = []
    for phone in phones:
        forms.append(phone)
        try:
            forms.append(str(phonenumbers.parse(phone, None).national_number))
        except phonenumbers.NumberParseException:
            continue
    return forms


class PrivacyRequests:
    """Creates and runs requests; every call to a service stays in this region."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.region = runtime.region
        # Requests whose caller stopped waiting and that still run (kept referenced).
        self._running: set[asyncio.Task[None]] = set()

    @property
    def peer_services(self) -> list[str]:
        # The services whose PrivacyService is called besides contacts itself.
        return sorted(self.runtime.peers.endpoints)

    # ---------------------------------------------------------------- per service

    def _stub(self, service: str) -> privacy_pb2_grpc.PrivacyServiceStub:
        return self.runtime.peers.stub(service, privacy_pb2_grpc.PrivacyServiceStub)

    async def export_everywhere(
        self, principal: Principal, contact_id: str
    ) -> list[privacy_pb2.ExportSubjectResponse]:
        async with transaction(self.runtime.sessions) as session:
            results = [await privacy.export_subject(session, principal, contact_id)]
        for service in self.peer_services:
            results.append(
                await self._call(
                    service,
                    self._stub(service).ExportSubject,
                    privacy_pb2.ExportSubjectRequest(contact_id=contact_id),
                    principal,
                )
            )
        return results

    async def _call(self, service: str, method: Any, request: Any, principal: Principal) -> Any:
        try:
            # wait_for_ready: a peer that just came back is used as soon as its channel
            # reconnects, within the deadline, rather than failing fast during backoff.
            return await method(
                request,
                metadata=principal.to_metadata(),
                timeout=self.runtime.peers.timeout,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as exc:
            raise StepFailed(f"{service}: {exc.code().name}: {exc.details()}") from exc

    # ---------------------------------------------------------------- requests

    async def create(
        self, session: AsyncSession, principal: Principal, request: pb.CreatePrivacyRequestRequest
    ) -> pb.PrivacyRequest:
        require_officer(principal)
        if request.kind not in KINDS:
            raise InvalidArgument.single("kind", f"one of {', '.join(KINDS)}")
        if region_of(request.contact_id, "contact_id") != self.region:
            raise InvalidArgument.single("contact_id", "the subject lives in another region")
        await contacts.get_row(session, principal, request.contact_id)
        changes = json_format.MessageToDict(request.changes) if request.HasField("changes") else {}
        if request.kind == "rectification" and not changes:
            raise InvalidArgument.single("changes", "name the fields to correct")
        now = clock.now()
        law = law_for_region(self.region)
        due, remind = due_dates(law, now)
        row = models.PrivacyRequest(
            id=new_id(self.region),
            tenant_id=principal.tenant_id,
            kind=request.kind,
            contact_id=request.contact_id,
            status="received",
            law=law,
            due_at=due,
            reminder_at=remind,
            requested_by=principal.user_id,
            changes=changes,
            rectified_fields=[],
            attempts=0,
            error="",
            receipt="",
            receipt_signature="",
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await session.flush()
        await audit_as(session, principal, self.region, f"privacy_request.{request.kind}", row.id)
        return to_pb(row)

    async def get(self, principal: Principal, request_id: str) -> pb.PrivacyRequest:
        require_officer(principal)
        async with transaction(self.runtime.sessions) as session:
            row = await self._row(session, principal, request_id)
            key = await session.get(models.TenantKey, principal.tenant_id)
            return to_pb(row, key.public_key if key else b"")

    async def _row(
        self, session: AsyncSession, principal: Principal, request_id: str, lock: bool = False
    ) -> models.PrivacyRequest:
        query = sa.select(models.PrivacyRequest).where(
            models.PrivacyRequest.id == request_id,
            models.PrivacyRequest.tenant_id == principal.tenant_id,
        )
        row = await session.scalar(query.with_for_update() if lock else query)
        if row is None:
            raise NotFound(f"privacy request {request_id} not found")
        return row

    async def list_requests(
        self, principal: Principal, status: str
    ) -> pb.ListPrivacyRequestsResponse:
        require_officer(principal)
        query = sa.select(models.PrivacyRequest).where(
            models.PrivacyRequest.tenant_id == principal.tenant_id
        )
        if status:
            query = query.where(models.PrivacyRequest.status == status)
        async with transaction(self.runtime.sessions) as session:
            rows = await session.scalars(
                query.order_by(models.PrivacyRequest.created_at.desc()).limit(500)
            )
            return pb.ListPrivacyRequestsResponse(requests=[to_pb(row) for row in rows])

    async def run(self, principal: Principal, request_id: str, *, retry: bool = False) -> None:
        """Moves a received (or, on retry, failed) request to completed or failed."""
        principal = principal.with_changes(idempotency_key="")
        async with transaction(self.runtime.sessions) as session:
            row = await self._row(session, principal, request_id, lock=True)
            allowed = ("received", "failed") if retry else ("received",)
            if row.status not in allowed:
                if retry:
                    raise FailedPrecondition(f"privacy request {request_id} is {row.status}")
                return
            row.status = "in_progress"
            row.attempts += 1
            row.error = ""
            row.updated_at = clock.now()
            kind, contact_id = row.kind, row.contact_id
            await audit_as(
                session,
                principal,
                self.region,
                "privacy_request.retry" if retry else "privacy_request.start",
                request_id,
            )
        # The steps go on when the caller stops waiting (the gateway's deadline on a busy
        # system cancels this call): cancelled halfway, the request stayed in_progress for
        # ever, the person half erased, and only a failed request may be retried.
        steps = asyncio.create_task(self._steps(principal, request_id, kind, contact_id))
        self._running.add(steps)
        steps.add_done_callback(self._running.discard)
        await asyncio.shield(steps)

    async def _steps(
        self, principal: Principal, request_id: str, kind: str, contact_id: str
    ) -> None:
        try:
            if kind == "export":
                await self.export_everywhere(principal, contact_id)
                outcome: dict[str, Any] = {}
            elif kind == "erasure":
                outcome = await self._erase(principal, request_id, contact_id)
            else:
                outcome = await self._rectify(principal, request_id, contact_id)
        except (StepFailed, CrmError) as exc:
            await self._finish(principal, request_id, error=str(exc) or type(exc).__name__)
            return
        except Exception as exc:
            # Anything else (a database error, a lost connection) must leave the request
            # failed, with its error, so that it can be retried; never in_progress.
            log.exception("privacy request %s failed", request_id)
            await self._finish(principal, request_id, error=f"{type(exc).__name__}: {exc}")
            return
        await self._finish(principal, request_id, **outcome)

    async def _finish(
        self,
        principal: Principal,
        request_id: str,
        *,
        error: str = "",
        receipt: str = "",
        signature: str = "",
        rectified_fields: Sequence[str] = (),
    ) -> None:
        async with transaction(self.runtime.sessions) as session:
            row = await self._row(session, principal, request_id, lock=True)
            now = clock.now()
            row.updated_at = now
            if error:
                row.status, row.error = "failed", error[:2000]
                # A verification that found something left: its receipt says what.
                row.receipt, row.receipt_signature = receipt, signature
            else:
                row.status, row.completed_at = "completed", now
                row.receipt, row.receipt_signature = receipt, signature
                row.rectified_fields = list(rectified_fields)
                row.changes = {}
            await audit_as(
                session,
                principal,
                self.region,
                "privacy_request.fail" if error else "privacy_request.complete",
                request_id,
            )

    def _copies_stub(self, service: str) -> compliance_pb2_grpc.ComplianceServiceStub:
        return self.runtime.peers.stub(service, compliance_pb2_grpc.ComplianceServiceStub)

    async def subject_terms(
        self, principal: Principal, contact_id: str
    ) -> list[compliance_pb2.SubjectTerm]:
        """The identifiers searched for everywhere (crm_kit.subject_copies decides which):
        the contact's and those of the duplicates merged into it."""
        async with transaction(self.runtime.sessions) as session:
            rows = await session.scalars(
                sa.select(models.Contact).where(
                    models.Contact.tenant_id == principal.tenant_id,
                    sa.or_(
                        models.Contact.id == contact_id,
                        models.Contact.merged_into_id == contact_id,
                    ),
                )
            )
            terms: dict[tuple[str, str], compliance_pb2.SubjectTerm] = {}
            for row in rows:
                for term in subject_copies.subject_terms(
                    row.first_name, row.last_name, row.emails, national_forms(row.phones)
                ):
                    terms[(term.kind, term.value)] = term
        return list(terms.values())

    async def erase_everywhere(
        self, principal: Principal, contact_id: str
    ) -> tuple[list[ServiceResult], list[compliance_pb2.SubjectTerm]]:
        """EraseSubject and the redaction of every copy in every service, then the check
        that no linked record and no copy of the subject's identifiers remains."""
        async with transaction(self.runtime.sessions) as session:
            hold = await session.get(models.LegalHold, (principal.tenant_id, contact_id))
            if hold is not None:
                raise FailedPrecondition(f"legal hold on {contact_id}: {hold.reason}")
        # Read before anything is erased: the contact's own row is the source of them.
        terms = await self.subject_terms(principal, contact_id)
        subject = compliance_pb2.SubjectIdentifiers(contact_id=contact_id, terms=terms)
        results: list[ServiceResult] = []
        # Peers first, the contact itself last: until the end the subject stays findable,
        # so a failed step can be retried.
        for service in self.peer_services:
            reply: privacy_pb2.EraseSubjectResponse = await self._call(
                service,
                self._stub(service).EraseSubject,
                privacy_pb2.EraseSubjectRequest(contact_id=contact_id),
                principal,
            )
            redacted: compliance_pb2.SubjectCopiesResponse = await self._call(
                service,
                self._copies_stub(service).RedactSubjectCopies,
                compliance_pb2.RedactSubjectCopiesRequest(subject=subject),
                principal,
            )
            results.append(
                ServiceResult(
                    service,
                    {e.kind: e.count for e in reply.erased},
                    clock.now(),
                    copies_erased=erased_copies(redacted.copies),
                )
            )
        async with transaction(self.runtime.sessions) as session:
            own = await privacy.erase_subject(session, principal, self.runtime.outbox, contact_id)
            own_copies = await subject_copies.redact(
                session, principal.tenant_id, contact_id, terms, self.runtime.copy_rules
            )
            await session.execute(
                sa.delete(models.LegalHold).where(models.LegalHold.contact_id == contact_id)
            )
        results.append(
            ServiceResult(
                "contacts",
                {e.kind: e.count for e in own.erased},
                clock.now(),
                copies_erased=erased_copies(own_copies),
            )
        )
        await self._verify(principal, contact_id, subject, results)
        return results, terms

    async def _verify(
        self,
        principal: Principal,
        contact_id: str,
        subject: compliance_pb2.SubjectIdentifiers,
        results: list[ServiceResult],
    ) -> None:
        """Every service must now export nothing for the subject (linked records) and
        hold no copy of the subject's identifiers in any table (everything else)."""
        exports = {
            e.service: len(e.records) for e in await self.export_everywhere(principal, contact_id)
        }
        found: dict[str, Sequence[compliance_pb2.SubjectCopy]] = {}
        for service in self.peer_services:
            reply: compliance_pb2.SubjectCopiesResponse = await self._call(
                service,
                self._copies_stub(service).FindSubjectCopies,
                compliance_pb2.FindSubjectCopiesRequest(subject=subject),
                principal,
            )
            found[service] = reply.copies
        async with transaction(self.runtime.sessions) as session:
            found["contacts"] = await subject_copies.find(
                session,
                principal.tenant_id,
                contact_id,
                subject.terms,
                self.runtime.copy_rules,
            )
        for result in results:
            result.remaining = exports.get(result.service, -1)
            result.copies_remaining = [
                {"table": c.table, "column": c.column, "rows": c.rows}
                for c in found.get(result.service, ())
            ]

    async def _erase(
        self, principal: Principal, request_id: str, contact_id: str
    ) -> dict[str, Any]:
        results, terms = await self.erase_everywhere(principal, contact_id)
        async with transaction(self.runtime.sessions) as session:
            key = await tenant_key(session, principal.tenant_id)
        searched: dict[str, int] = {}
        for term in terms:
            searched[term.kind] = searched.get(term.kind, 0) + 1
        receipt = canonical(
            {
                "type": "erasure_receipt",
                "request_id": request_id,
                "tenant_id": principal.tenant_id,
                "contact_id": contact_id,
                "region": self.region,
                "law": law_for_region(self.region),
                "completed_at": clock.now().isoformat(),
                # What the search for copies looked for (how many of each kind, never the
                # values): see crm_kit.subject_copies for the rule.
                "identifiers_searched": searched,
                "services": [
                    {
                        "service": r.service,
                        "erased": r.erased,
                        "copies_erased": r.copies_erased,
                        "erased_at": r.erased_at.isoformat(),
                        "verification": "empty" if r.empty else "not empty",
                        "records_remaining": r.remaining,
                        "copies_remaining": r.copies_remaining,
                    }
                    for r in results
                ],
            }
        )
        signature = Ed25519PrivateKey.from_private_bytes(key.private_key).sign(receipt.encode())
        outcome: dict[str, Any] = {
            "receipt": receipt,
            "signature": base64.b64encode(signature).decode(),
        }
        left = [r for r in results if not r.empty]
        if left:
            # Not done, and the signed receipt says what remains and where.
            outcome["error"] = "verification failed: " + "; ".join(
                f"{r.service} still holds "
                + ", ".join(
                    [f"{r.remaining} linked record(s)"] * (r.remaining != 0)
                    + [
                        f"{c['rows']} copy(ies) in {c['table']}.{c['column']}"
                        for c in r.copies_remaining
                    ]
                )
                for r in left
            )
        return outcome

    async def _rectify(
        self, principal: Principal, request_id: str, contact_id: str
    ) -> dict[str, Any]:
        async with transaction(self.runtime.sessions) as session:
            row = await self._row(session, principal, request_id)
            changes = dict(row.changes)
            message = contacts_pb2.Contact()
            try:
                json_format.ParseDict(changes, message)
            except json_format.ParseError as exc:
                raise InvalidArgument.single("changes", str(exc)) from exc
            message.id = contact_id
            await contacts.update_contact(
                session,
                principal,
                self.region,
                self.runtime.settings.regions,
                self.runtime.outbox,
                message,
                sorted(changes),
                0,
            )
        return {"rectified_fields": sorted(changes)}

    # ---------------------------------------------------------------- export file

    async def download(self, principal: Principal, request_id: str) -> pb.DownloadExportResponse:
        require_officer(principal)
        async with transaction(self.runtime.sessions) as session:
            row = await self._row(session, principal, request_id)
            if row.kind != "export" or row.status != "completed":
                raise FailedPrecondition("only a completed export request can be downloaded")
            contact_id = row.contact_id
        exports = await self.export_everywhere(
            principal.with_changes(idempotency_key=""), contact_id
        )
        async with transaction(self.runtime.sessions) as session:
            files = await attachments.files_of(session, contact_id)
        content = export_zip(request_id, contact_id, exports, files)
        async with transaction(self.runtime.sessions) as session:
            await audit_as(session, principal, self.region, "export.privacy_request", request_id)
        return pb.DownloadExportResponse(
            filename=f"privacy-export-{request_id}.zip", content=content
        )


class StepFailed(Exception):
    """A service did not do its part; the request fails and can be retried."""


def export_zip(
    request_id: str,
    contact_id: str,
    exports: Sequence[privacy_pb2.ExportSubjectResponse],
    files: Sequence[tuple[str, bytes]] = (),
) -> bytes:
    """subject.json with everything, one CSV per service and kind of record, and the
    files attached to the person as they were uploaded."""
    document: dict[str, Any] = {
        "request_id": request_id,
        "contact_id": contact_id,
        "generated_at": clock.now().isoformat(),
        "services": {},
    }
    tables: dict[str, list[dict[str, Any]]] = {}
    for export in exports:
        records: list[dict[str, Any]] = [
            {"kind": r.kind, "id": r.id, "data": json_format.MessageToDict(r.data)}
            for r in export.records
        ]
        document["services"][export.service] = {"region": export.region, "records": records}
        for record in records:
            tables.setdefault(f"{export.service}/{record['kind']}.csv", []).append(
                {"id": record["id"], **record["data"]}
            )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("subject.json", json.dumps(document, indent=2, ensure_ascii=False))
        for name, rows in sorted(tables.items()):
            columns = list(dict.fromkeys(key for row in rows for key in row))
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {
                        k: safe_cell(
                            v if isinstance(v, str | int | float) or v is None else json.dumps(v)
                        )
                        for k, v in row.items()
                    }
                )
            archive.writestr(name, text.getvalue())
        for name, data in files:
            archive.writestr(name, data)
    return buffer.getvalue()


# ------------------------------------------------------------------ relocation


async def relocation_copy_in(
    session: AsyncSession, values: dict[str, Any], request: compliance_pb2.CopyInRequest
) -> None:
    """The moved contact takes its new country (the reason it moved)."""
    if values.get("id") == request.new_contact_id and "country" in values:
        values["country"] = request.country
        values["address"] = {**(values.get("address") or {}), "country": request.country}


async def relocation_remove(session: AsyncSession, request: compliance_pb2.RemoveRequest) -> None:
    """The old id stays resolvable here: an alias to the new id (ids only). The answers
    stored for replays that name a contact merged into this one (its creation quotes the
    merged person's name and emails, which now are the subject's) go too; the kit forgets
    those naming the moved records."""
    principal = current_principal()
    if principal is None or not request.new_contact_id:
        return  # a discarded partial copy: no alias
    merged: list[str] = []
    into = [request.contact_id]
    while into:  # a contact merged into one that was merged in turn
        into = list(
            await session.scalars(
                sa.select(models.Contact.id).where(
                    models.Contact.tenant_id == principal.tenant_id,
                    models.Contact.merged_into_id.in_(into),
                )
            )
        )
        merged += into
    if merged:
        await forget_answers(session, principal.tenant_id, merged)
    await session.execute(
        pg_insert(models.ContactAlias)
        .values(
            old_id=request.contact_id,
            tenant_id=principal.tenant_id,
            new_id=request.new_contact_id,
        )
        .on_conflict_do_update(index_elements=["old_id"], set_={"new_id": request.new_contact_id})
    )
    # Aliases pointing at the old id follow it (a contact that moved twice).
    await session.execute(
        sa.update(models.ContactAlias)
        .where(
            models.ContactAlias.tenant_id == principal.tenant_id,
            models.ContactAlias.new_id == request.contact_id,
        )
        .values(new_id=request.new_contact_id)
    )


async def resolve_alias(
    session: AsyncSession, principal: Principal, contact_id: str
) -> pb.ResolveContactAliasResponse:
    new = await session.scalar(
        sa.select(models.ContactAlias.new_id).where(
            models.ContactAlias.old_id == contact_id,
            models.ContactAlias.tenant_id == principal.tenant_id,
        )
    )
    if new is None:
        raise NotFound(f"contact {contact_id} not found")
    return pb.ResolveContactAliasResponse(new_contact_id=new)
