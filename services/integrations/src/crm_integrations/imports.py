"""Contact imports: upload in chunks, inspect, map, dry run, background run.

The file is stored in chunks in this region's database (the importer's home region)
and streamed back to a temporary file for reading, so no process holds it whole.
A row is normalized (phones to E.164 with the row's or the import's default country,
emails validated, countries and dates parsed), checked against existing contacts by
email and phone, and written in groups with one gRPC call to contacts per group (each row all or
nothing on its own; an idempotency key per group, so a resumed job never writes a row
twice).

Rows whose country places them in another region go to that region, like any contact:
services reach only their own region, so at start the gateway asks this job for those
rows (`split`, normalized, as JSON lines) and hands them to an import job of their
region (format "rows", `parent_id` this job), which writes them there. Here they count
as "forwarded". Rows for a region the importer may not write to are errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dateutil import parser as date_parser
from google.protobuf import field_mask_pb2
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_api.crm.contacts.v1 import contacts_pb2 as cpb
from crm_api.crm.integrations.v1 import integrations_pb2 as pb
from crm_api.crm.policy.v1 import policy_pb2, policy_pb2_grpc
from crm_integrations import models, tabular
from crm_integrations.common import Downstream, normalize_email, normalize_phone
from crm_integrations.forms import _ts
from crm_integrations.settings import IntegrationsSettings
from crm_kit import clock
from crm_kit.context import Principal
from crm_kit.db import transaction
from crm_kit.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from crm_kit.ids import is_valid_id, new_id, region_of
from crm_kit.placement import ResidencyPolicy, normalize_country, region_for_country

log = logging.getLogger(__name__)

FORMATS = ("csv", "xlsx")
FORWARDED = "rows"  # JSON lines of normalized rows, sent by another region's import
POLICIES = ("skip", "update", "create")
MAX_BYTES = 500 * 1024 * 1024
MAX_CHUNK = 4 * 1024 * 1024
LIFECYCLE = ("lead", "prospect", "customer", "churned")
PREVIEW_ROWS = 20
# Bytes of error rows per streamed piece of the report: well under gRPC's message limits.
REPORT_PIECE = 1024 * 1024


def job_to_pb(row: models.ImportJob, preview: list[pb.PreviewRow] | None = None) -> pb.ImportJob:
    counts = row.counts or {}
    return pb.ImportJob(
        id=row.id,
        file_name=row.file_name,
        format=row.format,
        status=row.status,
        headers=row.headers,
        mapping=[pb.ColumnMapping(column=h, field=row.mapping.get(h, "")) for h in row.headers],
        duplicate_policy=row.duplicate_policy,
        default_country=row.default_country,
        encoding=row.encoding,
        delimiter=row.delimiter,
        counts=pb.ImportCounts(
            **{k: int(counts.get(k, 0)) for k in pb.ImportCounts.DESCRIPTOR.fields_by_name}
        ),
        preview=preview or [],
        size_bytes=row.size_bytes,
        created_at=_ts(row.created_at),
        finished_at=_ts(row.finished_at),
        error=row.error,
        parent_id=row.parent_id,
        child_ids=row.child_ids,
    )


ACTION_COUNT = {
    "create": "created",
    "update": "updated",
    "skip": "skipped",
    "error": "failed",
    "forward": "forwarded",
}


@dataclass
class Row:
    number: int
    contact: dict[str, Any] = field(default_factory=dict)
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # column, value, error
    action: str = ""
    existing: cpb.Contact | None = None
    region: str = ""  # where the row is stored when it is not this region
    # The file's column and value behind each mapped field, so that errors found later
    # (by contacts, maybe in another region) name what the user sees in the file.
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return [*self.contact.get("emails", []), *self.contact.get("phones", [])]


def _parse_date(value: str, day_first: bool) -> str:
    with contextlib.suppress(ValueError):
        return date.fromisoformat(value).isoformat()  # ISO is never day-first
    try:
        return str(
            date_parser.parse(value, dayfirst=day_first, default=datetime(2000, 1, 1))
            .date()
            .isoformat()
        )
    except (ValueError, OverflowError) as exc:
        raise ValueError("not a date") from exc


def normalize_row(
    number: int,
    cells: list[str],
    headers: list[str],
    mapping: dict[str, str],
    default_country: str,
) -> Row:
    """A row's contact fields, or its errors naming the column and value."""
    row = Row(number)
    values: dict[str, tuple[str, str]] = {}  # field -> (column, value)
    for index, column in enumerate(headers):
        target = mapping.get(column, "")
        value = cells[index].strip() if index < len(cells) else ""
        if target and value:
            if target in values and target in ("phone", "email", "tags"):
                previous = values[target]
                values[target] = (previous[0], f"{previous[1]};{value}")
            else:
                values[target] = (column, value)
    row.sources = values
    contact: dict[str, Any] = {}
    country = ""
    if "country" in values:
        column, value = values["country"]
        try:
            country = normalize_country(value, column)
        except InvalidArgument:
            row.errors.append((column, value, "unknown country"))
    country = country or default_country
    if "name" in values and not ({"first_name", "last_name"} & values.keys()):
        first, _, last = values["name"][1].partition(" ")
        contact["first_name"], contact["last_name"] = first, last.strip()
    for name in ("first_name", "last_name", "city", "street", "postal_code", "language"):
        if name in values:
            contact[name] = values[name][1][:200]
    if "email" in values:
        column, value = values["email"]
        emails = []
        for part in (p for p in value.replace(",", ";").split(";") if p.strip()):
            try:
                emails.append(normalize_email(part))
            except ValueError:
                row.errors.append((column, part.strip(), "not a valid email address"))
        contact["emails"] = list(dict.fromkeys(emails))
    if "phone" in values:
        column, value = values["phone"]
        phones = []
        for part in (p for p in value.replace(",", ";").split(";") if p.strip()):
            try:
                phones.append(normalize_phone(part, country))
            except ValueError as exc:
                row.errors.append((column, part.strip(), str(exc)))
        contact["phones"] = list(dict.fromkeys(phones))
    if "birthday" in values:
        column, value = values["birthday"]
        try:
            contact["birthday"] = _parse_date(value, day_first=country != "US")
        except ValueError:
            row.errors.append((column, value, "not a date"))
    if "tags" in values:
        contact["tags"] = [
            t.strip() for t in values["tags"][1].replace(",", ";").split(";") if t.strip()
        ]
    if "lifecycle_stage" in values:
        column, value = values["lifecycle_stage"]
        if value.lower() in LIFECYCLE:
            contact["lifecycle_stage"] = value.lower()
        else:
            row.errors.append((column, value, f"one of {', '.join(LIFECYCLE)}"))
    contact["country"] = country
    if not row.errors and not (
        contact.get("first_name") or contact.get("last_name") or contact.get("emails")
    ):
        row.errors.append(("", "", "a contact needs a name or an email"))
    row.contact = contact
    return row


# Contact message fields whose mapping target has another name.
_TARGETS = {"emails": "email", "phones": "phone", "important_dates": "birthday"}


def located(row: Row, field_path: str, error: str) -> tuple[str, str, str]:
    """(column, value, error) for an error contacts reported on `field_path` of the row's
    contact (`emails[1]`, `address.country`, `language`): the file's column and value."""
    name, _, index = field_path.partition("[")
    name = name.rpartition(".")[2]
    target = _TARGETS.get(name, name)
    if target not in row.sources and target in ("first_name", "last_name"):
        target = "name"
    column, value = row.sources.get(target, (field_path, ""))
    items = row.contact.get(name)
    position = index.partition("]")[0]
    if isinstance(items, list) and position.isdigit() and int(position) < len(items):
        value = str(items[int(position)])
    return column, value, error


def to_message(contact: dict[str, Any], owner_id: str = "") -> cpb.Contact:
    message = cpb.Contact(
        first_name=contact.get("first_name", ""),
        last_name=contact.get("last_name", ""),
        emails=contact.get("emails", []),
        phones=contact.get("phones", []),
        address=cpb.Address(
            country=contact.get("country", ""),
            city=contact.get("city", ""),
            street=contact.get("street", ""),
            postal_code=contact.get("postal_code", ""),
        ),
        language=contact.get("language", ""),
        tags=contact.get("tags", []),
        lifecycle_stage=contact.get("lifecycle_stage", ""),
        source="import",
        owner_id=owner_id,
    )
    if contact.get("birthday"):
        message.important_dates.append(cpb.ImportantDate(kind="birthday", date=contact["birthday"]))
    return message


class Index:
    """Existing contacts of the region by email and phone (what the importer may see)."""

    def __init__(self) -> None:
        self.by_key: dict[str, cpb.Contact] = {}

    def add(self, contact: cpb.Contact) -> None:
        for key in [*contact.emails, *contact.phones]:
            self.by_key.setdefault(key, contact)

    def find(self, row: Row) -> cpb.Contact | None:
        for key in row.keys:
            if key in self.by_key:
                return self.by_key[key]
        return None


class Importer:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        downstream: Downstream,
        region: str,
        settings: IntegrationsSettings,
        regions: list[str],
    ) -> None:
        self.sessions = sessions
        self.downstream = downstream
        self.region = region
        self.settings = settings
        self.regions = regions
        self.wake = asyncio.Event()
        self.xlsx_limits = tabular.XlsxLimits(
            max_other_bytes=settings.import_xlsx_max_table_bytes,
            max_sheet_bytes=settings.import_xlsx_max_sheet_bytes,
            max_total_bytes=settings.import_xlsx_max_total_bytes,
            max_parts=settings.import_xlsx_max_parts,
        )

    # ---------------------------------------------------------------- API

    async def _job(
        self, session: AsyncSession, principal: Principal, job_id: str, lock: bool = False
    ) -> models.ImportJob:
        row = await session.get(models.ImportJob, job_id, with_for_update=lock)
        if row is None or row.tenant_id != principal.tenant_id:
            raise NotFound("no such import")
        if row.user_id != principal.user_id and not principal.has_role("admin"):
            raise NotFound("no such import")
        return row

    async def create(self, principal: Principal, request: pb.CreateImportRequest) -> pb.ImportJob:
        file_format = request.format or request.file_name.rsplit(".", 1)[-1].lower()
        if request.parent_id:
            if file_format != FORWARDED:
                raise InvalidArgument.single("format", f"{FORWARDED!r} for a forwarded import")
        elif file_format not in FORMATS:
            raise InvalidArgument.single("format", "csv or xlsx")
        async with transaction(self.sessions) as session:
            row = models.ImportJob(
                id=new_id(self.region),
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
                roles=list(principal.roles),
                team=principal.team,
                file_name=request.file_name[:300],
                format=file_format,
                status="uploading",
                headers=[],
                mapping={},
                counts={},
                parent_id=request.parent_id,
                home_region=principal.home_region or self.region,
                cross_region_basis=principal.cross_region_basis,
                touched_at=clock.now(),
            )
            session.add(row)
            await session.flush()
            await session.refresh(row)
            return job_to_pb(row)

    async def upload(
        self, principal: Principal, request: pb.UploadImportChunkRequest
    ) -> pb.ImportJob:
        try:
            return await self._upload(principal, request)
        except InvalidArgument as exc:
            # A refused file is not kept: its chunks (personal data) go, and the job says why.
            await self._refuse(principal, request.id, exc)
            raise

    async def _upload(
        self, principal: Principal, request: pb.UploadImportChunkRequest
    ) -> pb.ImportJob:
        if len(request.data) > MAX_CHUNK:
            raise InvalidArgument.single("data", f"chunks of at most {MAX_CHUNK} bytes")
        async with transaction(self.sessions) as session:
            job = await self._job(session, principal, request.id, lock=True)
            if job.status != "uploading":
                raise FailedPrecondition("the file is already complete")
            if request.sequence != job.chunks:
                raise InvalidArgument.single("sequence", f"expected chunk {job.chunks}")
            if job.size_bytes + len(request.data) > MAX_BYTES:
                raise InvalidArgument.single("data", f"files of at most {MAX_BYTES} bytes")
            session.add(
                models.ImportChunk(import_id=job.id, sequence=job.chunks, data=request.data)
            )
            job.chunks += 1
            job.size_bytes += len(request.data)
            job.touched_at = clock.now()
            if not request.last:
                return job_to_pb(job)
            if job.format == FORWARDED:  # already normalized and mapped by its parent
                job.status = "ready"
                return job_to_pb(job)
        # The whole file is there: look at it once (encoding, delimiter, headers).
        async with self.file(request.id, job.format) as path:
            try:
                if job.format == "csv":
                    encoding, delimiter, headers = await asyncio.to_thread(
                        tabular.inspect_csv, path
                    )
                    await asyncio.to_thread(tabular.check_csv, path, encoding, delimiter)
                else:
                    encoding, delimiter = "", ""
                    await asyncio.to_thread(tabular.check_xlsx, path, self.xlsx_limits)
                    headers = await asyncio.to_thread(tabular.inspect_xlsx, path)
            except tabular.Refused as exc:
                raise InvalidArgument.single("file", f"{job.file_name}: {exc}") from exc
            except Exception as exc:  # a damaged file is the user's to fix, not a 500
                raise InvalidArgument.single("file", f"cannot read the file: {exc}") from exc
        if not any(headers):
            raise InvalidArgument.single("file", "the first row must hold the column names")
        headers = [h or f"column {i + 1}" for i, h in enumerate(headers)]
        async with transaction(self.sessions) as session:
            job = await self._job(session, principal, request.id, lock=True)
            job.encoding, job.delimiter, job.headers = encoding, delimiter, headers
            job.mapping = tabular.suggest(headers)
            job.status = "ready"
            job.touched_at = clock.now()
            return job_to_pb(job)

    async def _refuse(self, principal: Principal, job_id: str, exc: InvalidArgument) -> None:
        with contextlib.suppress(NotFound):
            async with transaction(self.sessions) as session:
                job = await self._job(session, principal, job_id, lock=True)
                if job.status != "uploading":
                    return
                job.status = "failed"
                job.error = "; ".join(f"{v.field}: {v.description}" for v in exc.violations)[:1000]
                job.finished_at = clock.now()
                await self._drop_file(session, job.id)

    async def expire_abandoned(self) -> list[str]:
        """Ends uploads nobody touched for `import_abandoned_after` (an upload never
        finished, or a file never imported) and removes their files; returns their ids."""
        cutoff = clock.now() - timedelta(seconds=self.settings.import_abandoned_after)
        async with transaction(self.sessions) as session:
            expired = list(
                await session.scalars(
                    sa.update(models.ImportJob)
                    .where(
                        models.ImportJob.status.in_(("uploading", "ready")),
                        sa.func.coalesce(models.ImportJob.touched_at, models.ImportJob.created_at)
                        < cutoff,
                    )
                    .values(
                        status="expired",
                        error="abandoned: not started within "
                        f"{self.settings.import_abandoned_after / 3600:g} hours of the last upload",
                        finished_at=clock.now(),
                    )
                    .returning(models.ImportJob.id)
                )
            )
            if expired:
                await session.execute(
                    sa.delete(models.ImportChunk).where(models.ImportChunk.import_id.in_(expired))
                )
        if expired:
            log.info("expired %d abandoned import uploads", len(expired))
        return expired

    @contextlib.asynccontextmanager
    async def file(self, job_id: str, file_format: str) -> AsyncIterator[Path]:
        """The uploaded file in a temporary file, written chunk by chunk."""
        with tempfile.TemporaryDirectory(prefix="crm-import-") as folder:
            # openpyxl goes by the file name's extension.
            path = Path(folder) / f"upload.{file_format}"
            with path.open("wb") as out:
                sequence = 0
                while True:
                    async with transaction(self.sessions) as session:
                        data = await session.scalar(
                            sa.select(models.ImportChunk.data).where(
                                models.ImportChunk.import_id == job_id,
                                models.ImportChunk.sequence == sequence,
                            )
                        )
                    if data is None:
                        break
                    out.write(data)
                    sequence += 1
            yield path

    def _configure(
        self,
        job: models.ImportJob,
        mapping: list[pb.ColumnMapping],
        policy: str,
        default_country: str,
    ) -> None:
        violations: list[FieldViolation] = []
        if job.status not in ("ready",):
            raise FailedPrecondition(f"the import is {job.status}")
        if job.format == FORWARDED:
            if policy and policy not in POLICIES:
                raise InvalidArgument.single("duplicate_policy", "skip, update or create")
            job.duplicate_policy = policy or job.duplicate_policy or "skip"
            return
        if mapping:
            new = dict(job.mapping)
            for i, item in enumerate(mapping):
                if item.column not in job.headers:
                    violations.append(FieldViolation(f"mapping[{i}].column", "no such column"))
                elif item.field and item.field not in tabular.FIELDS:
                    violations.append(
                        FieldViolation(f"mapping[{i}].field", f"one of {', '.join(tabular.FIELDS)}")
                    )
                else:
                    new[item.column] = item.field
            job.mapping = new
        used = [f for f in job.mapping.values() if f]
        if not {"email", "phone", "first_name", "last_name", "name"} & set(used):
            violations.append(FieldViolation("mapping", "map at least a name, email or phone"))
        if policy and policy not in POLICIES:
            violations.append(FieldViolation("duplicate_policy", "skip, update or create"))
        if default_country:
            try:
                job.default_country = normalize_country(default_country, "default_country")
            except InvalidArgument as exc:
                violations.extend(exc.violations)
        if violations:
            raise InvalidArgument(violations)
        job.duplicate_policy = policy or job.duplicate_policy or "skip"
        job.touched_at = clock.now()

    async def preview(self, principal: Principal, request: pb.PreviewImportRequest) -> pb.ImportJob:
        """A dry run over the whole file: the counts and the first rows' fate, nothing written."""
        async with transaction(self.sessions) as session:
            job = await self._job(session, principal, request.id, lock=True)
            self._configure(
                job, list(request.mapping), request.duplicate_policy, request.default_country
            )
        counts: dict[str, int] = dict.fromkeys(("total", *ACTION_COUNT.values()), 0)
        shown: list[pb.PreviewRow] = []
        limit = request.rows or PREVIEW_ROWS
        index = await self._load_index(principal)
        forward = self._forwardable(request.allowed_regions)
        async for batch in self._batches(job, principal, index, 0, forward):
            for row in batch:
                # Planned again in file order, so a row sees the rows above it.
                self._plan(row, job.duplicate_policy, index)
                counts["total"] += 1
                counts[ACTION_COUNT[row.action]] += 1
                if len(shown) < limit:
                    shown.append(
                        pb.PreviewRow(
                            row=row.number,
                            action=row.action,
                            contact_json=json.dumps(row.contact, ensure_ascii=False),
                            error="; ".join(f"{c}: {e}" if c else e for c, _, e in row.errors),
                            region=row.region,
                        )
                    )
                if row.action == "create":  # later rows with the same email are duplicates
                    contact = to_message(row.contact)
                    contact.id = f"row-{row.number}"
                    index.add(contact)
        counts["processed"] = counts["total"]
        result = job_to_pb(job, shown)
        result.counts.CopyFrom(pb.ImportCounts(**counts))
        return result

    def _forwardable(self, regions: Any) -> set[str]:
        unknown = [r for r in regions if r not in self.regions]
        if unknown:
            raise InvalidArgument.single("allowed_regions", f"unknown region(s) {unknown}")
        return set(regions) - {self.region}

    async def split(
        self, principal: Principal, request: pb.SplitImportRequest
    ) -> AsyncIterator[pb.SplitImportChunk]:
        """The rows of other (allowed) regions, normalized, as JSON lines per region."""
        async with transaction(self.sessions) as session:
            job = await self._job(session, principal, request.id, lock=True)
            if job.format == FORWARDED:
                raise FailedPrecondition("a forwarded import is not split again")
            self._configure(
                job, list(request.mapping), request.duplicate_policy, request.default_country
            )
        forward = self._forwardable(request.allowed_regions)
        buffers: dict[str, list[bytes]] = {}
        sizes: dict[str, int] = {}
        async for batch in self._rows(job, principal, 0, forward):
            for row in batch:
                if row.action != "forward":
                    continue
                line = json.dumps(
                    {"row": row.number, "contact": row.contact, "sources": row.sources},
                    ensure_ascii=False,
                )
                buffers.setdefault(row.region, []).append(line.encode() + b"\n")
                sizes[row.region] = sizes.get(row.region, 0) + len(line) + 1
                if sizes[row.region] >= MAX_CHUNK // 2:
                    lines = buffers.pop(row.region)
                    sizes.pop(row.region)
                    yield pb.SplitImportChunk(
                        region=row.region, data=b"".join(lines), rows=len(lines)
                    )
        for region, lines in buffers.items():
            yield pb.SplitImportChunk(region=region, data=b"".join(lines), rows=len(lines))

    async def start(self, principal: Principal, request: pb.StartImportRequest) -> pb.ImportJob:
        violations = [
            FieldViolation(f"child_ids[{i}]", "not an import id of another region")
            for i, child in enumerate(request.child_ids)
            if not is_valid_id(child) or region_of(child) in (self.region, "")
        ]
        if violations:
            raise InvalidArgument(violations)
        async with transaction(self.sessions) as session:
            job = await self._job(session, principal, request.id, lock=True)
            self._configure(
                job, list(request.mapping), request.duplicate_policy, request.default_country
            )
            job.child_ids = list(request.child_ids)
            job.status = "running"
            job.counts = {}
            job.resume_after = 0
            self.wake.set()
            return job_to_pb(job)

    async def get(self, principal: Principal, job_id: str) -> pb.ImportJob:
        async with transaction(self.sessions) as session:
            return job_to_pb(await self._job(session, principal, job_id))

    async def cancel(self, principal: Principal, job_id: str) -> pb.ImportJob:
        async with transaction(self.sessions) as session:
            job = await self._job(session, principal, job_id, lock=True)
            if job.status in ("uploading", "ready"):
                job.status = "cancelled"
                job.finished_at = clock.now()
                await session.execute(
                    sa.delete(models.ImportChunk).where(models.ImportChunk.import_id == job.id)
                )
            elif job.status == "running":
                job.cancel_requested = True  # the worker stops after the current batch
            return job_to_pb(job)

    async def errors(
        self, principal: Principal, job_id: str
    ) -> AsyncIterator[pb.ImportErrorReport]:
        """The error report in file order, in pieces of about REPORT_PIECE bytes: read
        from the database as a stream, so neither side holds a large report whole."""
        async with transaction(self.sessions) as session:
            await self._job(session, principal, job_id)
            rows = await session.stream(
                sa.select(
                    models.ImportRowError.row,
                    models.ImportRowError.column,
                    models.ImportRowError.value,
                    models.ImportRowError.error,
                )
                .where(models.ImportRowError.import_id == job_id)
                .order_by(models.ImportRowError.row, models.ImportRowError.seq)
                .execution_options(yield_per=500)
            )
            piece = pb.ImportErrorReport()
            size = 0
            async for item in rows:
                piece.rows.add(row=item.row, column=item.column, value=item.value, error=item.error)
                size += len(item.column) + len(item.value) + len(item.error) + 16
                if size >= REPORT_PIECE:
                    yield piece
                    piece, size = pb.ImportErrorReport(), 0
            if piece.rows:
                yield piece

    # ---------------------------------------------------------------- the pipeline

    async def _placement(self, principal: Principal) -> ResidencyPolicy:
        stub = self.downstream.peers.stub("contacts", policy_pb2_grpc.PolicyServiceStub)
        policy = await self.downstream.call(
            "contacts", stub.GetTenantPolicy, policy_pb2.GetTenantPolicyRequest(), principal
        )
        return ResidencyPolicy(
            default_region=policy.default_region or "us",
            overrides=dict(policy.residency_overrides),
        )

    async def _load_index(self, principal: Principal) -> Index:
        index = Index()
        token = ""
        while True:
            reply = await self.downstream.call(
                "contacts",
                self.downstream.contacts.ListContacts,
                cpb.ListContactsRequest(page_size=200, page_token=token),
                principal,
            )
            for hit in reply.hits:
                index.add(hit.contact)
            token = reply.next_page_token
            if not token:
                return index

    async def _rows(
        self, job: models.ImportJob, principal: Principal, resume_after: int, forward: set[str]
    ) -> AsyncIterator[list[Row]]:
        """Normalized rows, a batch at a time; rows of another region are "forward" when
        that region is in `forward`, else errors."""
        residency = await self._placement(principal)
        async with self.file(job.id, job.format) as path:
            rows: Iterator[Row] = (
                _forwarded_rows(path)
                if job.format == FORWARDED
                else (
                    normalize_row(number, cells, job.headers, job.mapping, job.default_country)
                    for number, cells in tabular.iter_rows(
                        path, job.format, job.encoding, job.delimiter
                    )
                )
            )
            while True:
                batch = await asyncio.to_thread(
                    _take, rows, self.settings.import_batch_size, resume_after
                )
                if not batch:
                    return
                for row in batch:
                    if row.errors:
                        continue
                    country = row.contact.get("country", "")
                    target = region_for_country(country or None, residency, self.regions)
                    if target == self.region:
                        continue
                    if target in forward:
                        row.action, row.region = "forward", target
                    else:
                        row.errors.append(
                            (
                                row.sources.get("country", ("", ""))[0],
                                country,
                                f"contacts from {country or 'no country'} are stored in region "
                                f"{target}; the tenant's access policy does not let users of "
                                f"{job.home_region or self.region} write there",
                            )
                        )
                yield batch

    async def _batches(
        self,
        job: models.ImportJob,
        principal: Principal,
        index: Index,
        resume_after: int,
        forward: set[str],
    ) -> AsyncIterator[list[Row]]:
        """Normalized rows with their planned action, a batch at a time."""
        async for batch in self._rows(job, principal, resume_after, forward):
            for row in batch:
                self._plan(row, job.duplicate_policy, index)
            yield batch

    def _plan(self, row: Row, policy: str, index: Index) -> None:
        if row.action == "forward":
            return
        if row.errors:
            row.action = "error"
            return
        row.existing = index.find(row)
        if row.existing is None or policy == "create":
            row.action = "create"
        elif policy == "update":
            row.action = "update"
        else:
            row.action = "skip"

    def _item(self, row: Row) -> cpb.ImportContactItem | None:
        """The contacts call for a planned row; None when an update changes nothing."""
        message = to_message(row.contact)
        if row.action == "create":
            return cpb.ImportContactItem(contact=message)
        assert row.existing is not None
        message.id = row.existing.id
        paths = [
            name
            for name, present in (
                ("first_name", row.contact.get("first_name")),
                ("last_name", row.contact.get("last_name")),
                ("tags", row.contact.get("tags")),
                ("lifecycle_stage", row.contact.get("lifecycle_stage")),
                ("language", row.contact.get("language")),
            )
            if present
        ]
        # Emails and phones are added to what the contact has, never replaced.
        emails = list(dict.fromkeys([*row.existing.emails, *message.emails]))
        phones = list(dict.fromkeys([*row.existing.phones, *message.phones]))
        if emails != list(row.existing.emails):
            del message.emails[:]
            message.emails.extend(emails)
            paths.append("emails")
        if phones != list(row.existing.phones):
            del message.phones[:]
            message.phones.extend(phones)
            paths.append("phones")
        if not paths:
            return None
        return cpb.ImportContactItem(
            contact=message, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )

    async def _write(
        self, job: models.ImportJob, principal: Principal, rows: list[Row], index: Index
    ) -> None:
        """A group of rows in one contacts call (one transaction there; each row all or
        nothing). The key names the rows, so a resumed job replays the same group's answer
        and a group planned differently after a crash is a new request."""
        items = [(row, self._item(row)) for row in rows]
        calls = [(row, item) for row, item in items if item is not None]
        if not calls:
            return
        numbers = ",".join(str(row.number) for row, _ in calls)
        key = f"import:{job.id}:{hashlib.sha256(numbers.encode()).hexdigest()[:32]}"
        reply = await self.downstream.call(
            "contacts",
            self.downstream.contacts.ImportContacts,
            cpb.ImportContactsRequest(items=[item for _, item in calls]),
            principal.with_changes(idempotency_key=key),
            deadline=self.settings.import_write_timeout,
        )
        for (row, _), result in zip(calls, reply.results, strict=True):
            if result.errors:
                row.errors.extend(located(row, e.field, e.description) for e in result.errors)
                row.action = "error"
            elif row.action == "create":
                index.add(result.contact)

    async def _run_batch(
        self, job: models.ImportJob, principal: Principal, batch: list[Row], index: Index
    ) -> None:
        """Writes a batch in concurrent groups; rows sharing an email or phone go in later
        waves, so the second sees the first (and is a duplicate, not a second contact)."""
        pending = [row for row in batch if row.action in ("create", "update")]
        limit = asyncio.Semaphore(self.settings.import_concurrency)
        size = self.settings.import_group_size

        async def guarded(rows: list[Row]) -> None:
            async with limit:
                await self._write(job, principal, rows, index)

        while pending:
            wave: list[Row] = []
            later: list[Row] = []
            claimed: set[str] = set()
            for row in pending:
                if claimed & set(row.keys):
                    later.append(row)
                else:
                    claimed.update(row.keys)
                    wave.append(row)
            await asyncio.gather(*(guarded(wave[i : i + size]) for i in range(0, len(wave), size)))
            pending = []
            for row in later:  # re-plan against what the wave just wrote
                self._plan(row, job.duplicate_policy, index)
                if row.action in ("create", "update"):
                    pending.append(row)

    async def run(self) -> None:
        """Runs imports started in this region; a lease lets one replica own a job and
        another resume it (after the last finished batch) if that replica dies. Now and
        then it also expires abandoned uploads."""
        swept = 0.0
        while True:
            try:
                if asyncio.get_running_loop().time() - swept >= self.settings.import_sweep_interval:
                    swept = asyncio.get_running_loop().time()
                    await self.expire_abandoned()
                job_id = await self._claim()
                if job_id:
                    await self._process(job_id)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("import worker pass failed")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.settings.worker_interval)

    async def _claim(self) -> str:
        now = clock.now()
        async with transaction(self.sessions) as session:
            job = await session.scalar(
                sa.select(models.ImportJob)
                .where(
                    models.ImportJob.status == "running",
                    sa.or_(
                        models.ImportJob.claimed_until.is_(None),
                        models.ImportJob.claimed_until < now,
                    ),
                )
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if job is None:
                return ""
            job.claimed_until = now + timedelta(minutes=2)
            return job.id

    async def _process(self, job_id: str) -> None:
        async with transaction(self.sessions) as session:
            job = await session.get(models.ImportJob, job_id)
            assert job is not None
        # The importer's rights; for a forwarded job their home region and grant too, so
        # contacts audits each write here as a transfer.
        principal = Principal(
            tenant_id=job.tenant_id,
            user_id=job.user_id,
            roles=tuple(job.roles),
            team=job.team,
            home_region=job.home_region or self.region,
            cross_region_basis=job.cross_region_basis,
        )
        counts = {k: int(v) for k, v in (job.counts or {}).items()}
        forward = {region_of(child) for child in job.child_ids}
        try:
            index = await self._load_index(principal)
            async for batch in self._batches(job, principal, index, job.resume_after, forward):
                await self._run_batch(job, principal, batch, index)
                async with transaction(self.sessions) as session:
                    current = await session.get(models.ImportJob, job_id, with_for_update=True)
                    assert current is not None
                    for row in batch:
                        key = ACTION_COUNT[row.action]
                        counts[key] = counts.get(key, 0) + 1
                        counts["processed"] = counts.get("processed", 0) + 1
                        for seq, (column, value, error) in enumerate(row.errors):
                            session.add(
                                models.ImportRowError(
                                    import_id=job_id,
                                    row=row.number,
                                    seq=seq,
                                    column=column,
                                    value=value[:500],
                                    error=error[:1000],
                                )
                            )
                    current.counts = {**counts, "total": counts.get("processed", 0)}
                    current.resume_after = batch[-1].number
                    current.claimed_until = clock.now() + timedelta(minutes=2)
                    if current.cancel_requested:
                        current.status = "cancelled"
                        current.finished_at = clock.now()
                        await self._drop_file(session, job_id)
                        return
            async with transaction(self.sessions) as session:
                current = await session.get(models.ImportJob, job_id, with_for_update=True)
                assert current is not None
                current.status = "completed"
                current.finished_at = clock.now()
                current.counts = {**counts, "total": counts.get("processed", 0)}
                await self._drop_file(session, job_id)
        except Unavailable as exc:
            # Contacts is down: keep the job; the lease runs out and it resumes.
            log.warning("import %s paused: %s", job_id, exc)
        except Exception as exc:
            log.exception("import %s failed", job_id)
            async with transaction(self.sessions) as session:
                current = await session.get(models.ImportJob, job_id, with_for_update=True)
                if current is not None:
                    current.status = "failed"
                    current.error = str(exc)[:1000]
                    current.finished_at = clock.now()

    async def _drop_file(self, session: AsyncSession, job_id: str) -> None:
        """The file holds personal data; once the job ends only counts and errors stay."""
        await session.execute(
            sa.delete(models.ImportChunk).where(models.ImportChunk.import_id == job_id)
        )


def _take(rows: Iterator[Row], count: int, resume_after: int) -> list[Row]:
    """The next `count` rows after row `resume_after` (reading and normalizing them is
    CPU work, so it runs in a thread)."""
    taken = []
    for row in rows:
        if row.number <= resume_after:
            continue
        taken.append(row)
        if len(taken) >= count:
            break
    return taken


def _forwarded_rows(path: Path) -> Iterator[Row]:
    """The rows another region's import normalized and sent here (JSON lines)."""
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                item = json.loads(line)
                sources = {k: (v[0], v[1]) for k, v in item.get("sources", {}).items()}
                yield Row(int(item["row"]), contact=dict(item["contact"]), sources=sources)


__all__ = ["UTC", "Importer", "date"]
