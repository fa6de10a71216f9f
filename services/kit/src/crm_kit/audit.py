"""The tamper-evident audit trail every service keeps in its own database.

Every record is chained: `hash = sha256(prev_hash + canonical record)`, one chain per
tenant per database. Writers take a transaction-scoped advisory lock on the tenant's
chain, so concurrent writers (and replicas) append one after the other and the chain
never forks; the lock ends with the writer's transaction. Altering a stored record
breaks its hash, deleting one breaks the next record's `prev_hash`: `verify_chain`
reports both. Every writer goes through `append_audit`.

`ComplianceServicer` serves the trail (query, verify) and local residency counts over
gRPC; `run_server` registers it for every service, so a new service gets it for free.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import grpc
import sqlalchemy as sa
from google.protobuf import timestamp_pb2
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.compliance.v1 import compliance_pb2 as pb
from crm_api.crm.compliance.v1 import compliance_pb2_grpc
from crm_kit import clock, subject_copies
from crm_kit.context import Principal, current_principal
from crm_kit.db import audit_table, transaction
from crm_kit.errors import InvalidArgument, PermissionDenied

if TYPE_CHECKING:
    from crm_kit.runtime import Runtime

# Kinds of audit records (the filter of /v1/compliance/audit).
CROSS_REGION = "cross_region_access"
EXPORT = "export"
PRIVACY_REQUEST = "privacy_request"
POLICY_CHANGE = "policy_change"
ELEVATED_LOGIN = "elevated_login"
RETENTION = "retention"
RELOCATION = "relocation"
# Messages and calls to a contact on a user's request, and consents they withdrew.
CONTACT = "contact"
REASSIGNMENT = "reassignment"
KINDS = (
    CROSS_REGION,
    EXPORT,
    PRIVACY_REQUEST,
    POLICY_CHANGE,
    ELEVATED_LOGIN,
    RETENTION,
    RELOCATION,
    CONTACT,
    REASSIGNMENT,
)

_PREFIX_KINDS = {
    "export.": EXPORT,
    "privacy_request.": PRIVACY_REQUEST,
    "legal_hold.": PRIVACY_REQUEST,
    "policy.": POLICY_CHANGE,
    "login.": ELEVATED_LOGIN,
    "retention.": RETENTION,
    "relocation.": RELOCATION,
    "call.": CONTACT,
    "consent.": CONTACT,
    "reassign.": REASSIGNMENT,
}


def kind_of(action: str) -> str:
    """The kind an action belongs to, from its prefix ("export.contacts" -> export)."""
    for prefix, kind in _PREFIX_KINDS.items():
        if action.startswith(prefix):
            return kind
    return CROSS_REGION


def _micros(at: datetime) -> int:
    delta = at.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def record_hash(prev_hash: str, fields: dict[str, object], at: datetime) -> str:
    canonical = json.dumps(
        {**fields, "at": _micros(at)}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


_HASHED = (
    "tenant_id",
    "actor_id",
    "actor_home_region",
    "region",
    "action",
    "record_id",
    "legal_basis",
    "kind",
)


async def append_audit(
    session: AsyncSession,
    *,
    tenant_id: str,
    actor_id: str,
    region: str,
    action: str,
    record_id: str,
    actor_home_region: str = "",
    legal_basis: str = "",
    kind: str = "",
) -> str:
    """Appends one record to the tenant's chain in the caller's transaction; its hash."""
    fields: dict[str, object] = {
        "tenant_id": tenant_id,
        "actor_id": actor_id,
        "actor_home_region": actor_home_region or region,
        "region": region,
        "action": action,
        "record_id": record_id,
        "legal_basis": legal_basis,
        "kind": kind or kind_of(action),
    }
    # One writer per tenant chain at a time; released at commit or rollback.
    await session.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))").bindparams(
            key=f"crm.audit:{tenant_id}"
        )
    )
    prev_hash = (
        await session.scalar(
            sa.select(audit_table.c.hash)
            .where(audit_table.c.tenant_id == tenant_id)
            .order_by(audit_table.c.id.desc())
            .limit(1)
        )
    ) or ""
    at = clock.now()
    digest = record_hash(prev_hash, fields, at)
    await session.execute(
        sa.insert(audit_table).values(**fields, at=at, prev_hash=prev_hash, hash=digest)
    )
    return digest


async def audit_as(
    session: AsyncSession, principal: Principal, region: str, action: str, record_id: str
) -> str:
    """`append_audit` for what `principal` did in `region`."""
    return await append_audit(
        session,
        tenant_id=principal.tenant_id,
        actor_id=principal.user_id,
        actor_home_region=principal.home_region or region,
        region=region,
        action=action,
        record_id=record_id,
        legal_basis=principal.cross_region_basis,
    )


@dataclass
class ChainReport:
    checked: int
    problems: list[tuple[int, str, str]]
    head: str


async def verify_chain(session: AsyncSession, tenant_id: str) -> ChainReport:
    """Walks the tenant's chain in order and reports every record that does not fit."""
    rows = (
        await session.execute(
            sa.select(audit_table)
            .where(audit_table.c.tenant_id == tenant_id)
            .order_by(audit_table.c.id)
        )
    ).all()
    problems: list[tuple[int, str, str]] = []
    previous = ""
    # Records written before the chain existed (migration 0002) have no hash; they are
    # skipped only while no chained record has been seen.
    while rows and not rows[0].hash and not rows[0].prev_hash:
        rows = rows[1:]
    for row in rows:
        fields = {name: getattr(row, name) for name in _HASHED}
        if row.prev_hash != previous:
            problems.append(
                (row.id, "broken_link", "the record before it was deleted or its hash changed")
            )
        if record_hash(row.prev_hash, fields, row.at) != row.hash:
            problems.append((row.id, "altered", "the record does not match its hash"))
        previous = row.hash
    return ChainReport(checked=len(rows), problems=problems, head=previous)


# ---------------------------------------------------------------------- residency


@dataclass(frozen=True)
class SubjectTable:
    """A table of a service whose rows belong to a contact: counted per subject region.

    A contact's id carries the region its residency policy placed it in, so a row
    stored here for a contact of another region is misplaced."""

    kind: str
    table: str
    contact_column: str = "contact_id"


ResidencyCounter = Callable[[AsyncSession, Principal], Awaitable[list[pb.ResidencyCount]]]


async def count_subject_tables(
    session: AsyncSession, tenant_id: str, tables: Sequence[SubjectTable]
) -> list[pb.ResidencyCount]:
    counts: list[pb.ResidencyCount] = []
    for spec in tables:
        column = sa.column(spec.contact_column, sa.Text)
        subject_region = sa.func.split_part(column, "_", 1)
        rows = (
            await session.execute(
                sa.select(
                    subject_region.label("required_region"),
                    sa.func.count(sa.distinct(column)).label("subjects"),
                    sa.func.count().label("records"),
                )
                .select_from(sa.table(spec.table, sa.column("tenant_id", sa.Text), column))
                .where(sa.column("tenant_id", sa.Text) == tenant_id, column != "")
                .group_by(subject_region)
            )
        ).all()
        counts.extend(
            pb.ResidencyCount(
                kind=spec.kind,
                required_region=row.required_region,
                subjects=row.subjects,
                records=row.records,
            )
            for row in rows
        )
    return counts


# ---------------------------------------------------------------------- gRPC


def _officer() -> Principal:
    principal = current_principal()
    if principal is None or not principal.tenant_id:
        raise InvalidArgument.single("metadata", "x-crm-tenant and x-crm-user are required")
    if not principal.has_role("admin", "compliance_officer"):
        raise PermissionDenied("the audit trail is for compliance officers and admins")
    return principal


def _timestamp(at: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at.astimezone(UTC))
    return stamp


class ComplianceServicer(compliance_pb2_grpc.ComplianceServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.service = runtime.settings.service_name
        self.region = runtime.region

    async def QueryAudit(
        self, request: pb.QueryAuditRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueryAuditResponse:
        principal = _officer()
        if request.kind and request.kind not in KINDS:
            raise InvalidArgument.single("kind", f"one of {', '.join(KINDS)}")
        t = audit_table.c
        query = sa.select(audit_table).where(t.tenant_id == principal.tenant_id)
        if request.kind:
            query = query.where(t.kind == request.kind)
        if request.actor_id:
            query = query.where(t.actor_id == request.actor_id)
        if request.HasField("since"):
            query = query.where(t.at >= request.since.ToDatetime(UTC))
        if request.HasField("until"):
            query = query.where(t.at < request.until.ToDatetime(UTC))
        limit = min(request.limit or 500, 5000)
        async with transaction(self.runtime.sessions) as session:
            rows = (await session.execute(query.order_by(t.id.desc()).limit(limit))).all()
        return pb.QueryAuditResponse(
            records=[
                pb.AuditRecord(
                    seq=row.id,
                    service=self.service,
                    region=row.region,
                    kind=row.kind,
                    action=row.action,
                    actor_id=row.actor_id,
                    actor_home_region=row.actor_home_region,
                    record_id=row.record_id,
                    legal_basis=row.legal_basis,
                    at=_timestamp(row.at),
                    prev_hash=row.prev_hash,
                    hash=row.hash,
                )
                for row in rows
            ]
        )

    async def VerifyAudit(
        self, request: pb.VerifyAuditRequest, context: grpc.aio.ServicerContext
    ) -> pb.VerifyAuditResponse:
        principal = _officer()
        async with transaction(self.runtime.sessions) as session:
            report = await verify_chain(session, principal.tenant_id)
        return pb.VerifyAuditResponse(
            service=self.service,
            region=self.region,
            records_checked=report.checked,
            intact=not report.problems,
            problems=[
                pb.AuditProblem(seq=seq, problem=problem, detail=detail)
                for seq, problem, detail in report.problems
            ],
            head_hash=report.head,
        )

    async def CountResidency(
        self, request: pb.CountResidencyRequest, context: grpc.aio.ServicerContext
    ) -> pb.CountResidencyResponse:
        principal = _officer()
        async with transaction(self.runtime.sessions) as session:
            counts = await count_subject_tables(
                session, principal.tenant_id, self.runtime.subject_tables
            )
            if self.runtime.residency_counter is not None:
                counts.extend(await self.runtime.residency_counter(session, principal))
        return pb.CountResidencyResponse(service=self.service, region=self.region, counts=counts)

    async def FindSubjectCopies(
        self, request: pb.FindSubjectCopiesRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubjectCopiesResponse:
        principal = _officer()
        async with transaction(self.runtime.sessions) as session:
            copies = await subject_copies.find(
                session,
                principal.tenant_id,
                request.subject.contact_id,
                request.subject.terms,
                self.runtime.copy_rules,
            )
        return pb.SubjectCopiesResponse(service=self.service, region=self.region, copies=copies)

    async def RedactSubjectCopies(
        self, request: pb.RedactSubjectCopiesRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubjectCopiesResponse:
        principal = _officer()
        async with transaction(self.runtime.sessions) as session:
            copies = await subject_copies.redact(
                session,
                principal.tenant_id,
                request.subject.contact_id,
                request.subject.terms,
                self.runtime.copy_rules,
            )
        return pb.SubjectCopiesResponse(service=self.service, region=self.region, copies=copies)


def register_compliance(server: grpc.aio.Server, runtime: Runtime) -> list[str]:
    compliance_pb2_grpc.add_ComplianceServiceServicer_to_server(ComplianceServicer(runtime), server)
    return [pb.DESCRIPTOR.services_by_name["ComplianceService"].full_name]
