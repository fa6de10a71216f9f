"""/v1/imports (contacts from CSV or XLSX, as a background job in your home region) and
/v1/exports (contacts and deals as CSV or XLSX, with the list filters, audited).

Uploads are forwarded in chunks as they arrive, so the gateway never holds a file
whole; exports are written to a temporary file page by page.

Each imported row goes to its region like any contact. The job runs in the importer's
home region; at start the gateway, the one component that reaches every region, asks
it for the rows of the other regions the importer may write to (normalized, streamed)
and hands them to an import job of each such region, which writes and counts them
there. Progress, counts, the error report and cancelling cover the job and those
regional parts together; `regions` shows each part.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import io
import json
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from google.protobuf import timestamp_pb2
from pydantic import Field
from starlette.background import BackgroundTask

from crm_api.crm.contacts.v1 import contacts_pb2 as cpb
from crm_api.crm.deals.v1 import deals_pb2 as dpb
from crm_api.crm.integrations.v1 import integrations_pb2 as pb
from crm_gateway import answers, schemas
from crm_gateway.access import Caller, caller, region_of_id
from crm_gateway.pagination import Hit, merged_page
from crm_gateway.problems import Problem, invalid
from crm_kit.spreadsheet import safe_row

router = APIRouter(tags=["imports and exports"])

CHUNK = 1024 * 1024


def _stub(who: Caller, region: str) -> Any:
    return who.stub("integrations", "integrations", region)


# ---------------------------------------------------------------- imports


async def file_chunks(request: Request) -> AsyncIterator[bytes]:
    """The uploaded file in chunks: a multipart `file` part or the raw body (also for
    attachments; Starlette parses a form once and keeps it)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise invalid("file", "send the file in a part named 'file'")
        while data := await upload.read(CHUNK):
            yield data
        return
    buffer = b""
    async for piece in request.stream():
        buffer += piece
        while len(buffer) >= CHUNK:
            yield buffer[:CHUNK]
            buffer = buffer[CHUNK:]
    if buffer:
        yield buffer


@router.post(
    "/v1/imports",
    status_code=201,
    summary="Upload a CSV or XLSX of contacts; returns the headers and a suggested mapping",
    **answers.ok(answers.ImportJob, 201),
)
async def create_import(
    request: Request,
    who: Caller = Depends(caller),
    file_name: str = Query("import.csv", max_length=300),
    format: str = Query("", pattern="^(|csv|xlsx)$"),
) -> Any:
    region = who.principal.home_region
    metadata = who.principal.to_metadata()
    job = await _stub(who, region).CreateImport(
        pb.CreateImportRequest(file_name=file_name, format=format),
        metadata=metadata,
        timeout=who.timeout,
    )
    try:
        job = await _send_file(who, region, metadata, job.id, request)
    except BaseException:
        # Refused (too large, empty, unreadable) or the client went away: the chunks
        # already stored hold personal data and must not stay behind.
        with contextlib.suppress(grpc.aio.AioRpcError):
            await _stub(who, region).CancelImport(
                pb.CancelImportRequest(id=job.id), metadata=metadata, timeout=who.timeout
            )
        raise
    return _job_json(job)


async def _send_file(
    who: Caller, region: str, metadata: Any, job_id: str, request: Request
) -> pb.ImportJob:
    sequence = 0
    previous: bytes | None = None
    # One chunk is held back so the last one can be sent with last=true.
    async for data in file_chunks(request):
        if previous is not None:
            await _stub(who, region).UploadImportChunk(
                pb.UploadImportChunkRequest(id=job_id, sequence=sequence, data=previous),
                metadata=metadata,
                timeout=max(who.timeout, 30),
            )
            sequence += 1
        previous = data
    if previous is None:
        raise invalid("file", "the file is empty")
    job: pb.ImportJob = await _stub(who, region).UploadImportChunk(
        pb.UploadImportChunkRequest(id=job_id, sequence=sequence, data=previous, last=True),
        metadata=metadata,
        timeout=max(who.timeout, 60),
    )
    return job


def _job_json(job: pb.ImportJob) -> dict[str, Any]:
    data = schemas.to_json(job)
    data["mapping"] = {m.column: m.field for m in job.mapping}
    for row in data.get("preview", []):
        row["contact"] = json.loads(row.pop("contact_json") or "{}")
    return data


class ImportRunIn(schemas.Strict):
    mapping: dict[str, str] = Field(
        default_factory=dict, description="column -> field ('' ignores the column)"
    )
    duplicate_policy: str = Field("skip", pattern="^(skip|update|create)$")
    default_country: str = ""
    rows: int = Field(20, ge=1, le=500, description="preview rows shown (dry run only)")


def _mapping(body: ImportRunIn) -> list[pb.ColumnMapping]:
    return [pb.ColumnMapping(column=c, field=f) for c, f in body.mapping.items()]


async def _forward(
    who: Caller, import_id: str, body: ImportRunIn, region: str, metadata: Any
) -> dict[str, str]:
    """Carries the rows of other regions to an import job there; returns region -> job id.
    Chunks stream through (one held back per region, to mark the last)."""
    children: dict[str, str] = {}
    held: dict[str, bytes] = {}
    sequence: dict[str, int] = {}
    targets: dict[str, Any] = {}
    try:
        stream = _stub(who, region).SplitImport(
            pb.SplitImportRequest(
                id=import_id,
                mapping=_mapping(body),
                duplicate_policy=body.duplicate_policy,
                default_country=body.default_country,
                allowed_regions=await who.accessible_regions(),
            ),
            metadata=metadata,
            timeout=max(who.timeout, 600),
        )
        async for chunk in stream:
            target = chunk.region
            if target not in children:
                targets[target] = await who.metadata(target)  # audited: a transfer
                child = await _stub(who, target).CreateImport(
                    pb.CreateImportRequest(
                        file_name=f"{import_id} ({target})", format="rows", parent_id=import_id
                    ),
                    metadata=targets[target],
                    timeout=who.timeout,
                )
                children[target], sequence[target] = child.id, 0
            if target in held:
                await _upload(who, target, targets[target], children[target], sequence, held)
            held[target] = chunk.data
        for target in list(held):
            await _upload(who, target, targets[target], children[target], sequence, held, True)
        for target, child_id in children.items():
            await _stub(who, target).StartImport(
                pb.StartImportRequest(id=child_id, duplicate_policy=body.duplicate_policy),
                metadata=targets[target],
                timeout=who.timeout,
            )
    except BaseException:
        # Nothing was started here: drop the rows already carried (they are personal data).
        for target, child_id in children.items():
            with contextlib.suppress(grpc.aio.AioRpcError):
                await _stub(who, target).CancelImport(
                    pb.CancelImportRequest(id=child_id),
                    metadata=targets[target],
                    timeout=who.timeout,
                )
        raise
    return children


async def _upload(
    who: Caller,
    target: str,
    metadata: Any,
    child_id: str,
    sequence: dict[str, int],
    held: dict[str, bytes],
    last: bool = False,
) -> None:
    await _stub(who, target).UploadImportChunk(
        pb.UploadImportChunkRequest(
            id=child_id, sequence=sequence[target], data=held.pop(target), last=last
        ),
        metadata=metadata,
        timeout=max(who.timeout, 30),
    )
    sequence[target] += 1


async def _parts(who: Caller, job: pb.ImportJob) -> dict[str, pb.ImportJob | str]:
    """The regional parts of an import: region -> job, or why it cannot be read now."""
    parts: dict[str, pb.ImportJob | str] = {region_of_id(job.id): job}

    async def one(child_id: str) -> None:
        target = region_of_id(child_id)
        try:
            parts[target] = await _stub(who, target).GetImport(
                pb.GetImportRequest(id=child_id),
                metadata=await who.metadata(target),
                timeout=who.timeout,
            )
        except grpc.aio.AioRpcError as exc:
            parts[target] = exc.code().name.lower()
        except Problem as exc:
            parts[target] = exc.detail

    await asyncio.gather(*(one(child_id) for child_id in job.child_ids))
    return parts


COUNTS = ("created", "updated", "skipped", "failed")


def _combined(job: pb.ImportJob, parts: dict[str, pb.ImportJob | str]) -> dict[str, Any]:
    """The import as the user sees it: the home job's rows plus its regional parts'."""
    data = _job_json(job)
    if not job.child_ids:
        return data
    children = [p for p in parts.values() if isinstance(p, pb.ImportJob) and p.id != job.id]
    counts = data["counts"]
    for name in COUNTS:
        counts[name] = getattr(job.counts, name) + sum(getattr(c.counts, name) for c in children)
    counts["processed"] = (
        job.counts.processed - job.counts.forwarded + sum(c.counts.processed for c in children)
    )
    statuses = [p.status if isinstance(p, pb.ImportJob) else "unknown" for p in parts.values()]
    if "running" in statuses or "unknown" in statuses:
        data["status"] = "running"
    elif "failed" in statuses:
        data["status"] = "failed"
    elif "cancelled" in statuses:
        data["status"] = "cancelled"
    data["regions"] = {
        region: (
            {"id": part.id, "status": part.status, "counts": schemas.to_json(part.counts)}
            if isinstance(part, pb.ImportJob)
            else {"status": "unknown", "error": part}
        )
        for region, part in parts.items()
    }
    return data


@router.post(
    "/v1/imports/{import_id}/preview",
    summary="Dry run: what would happen, nothing written",
    **answers.ok(answers.ImportJob),
)
async def preview_import(import_id: str, body: ImportRunIn, who: Caller = Depends(caller)) -> Any:
    region = region_of_id(import_id)
    job = await _stub(who, region).PreviewImport(
        pb.PreviewImportRequest(
            id=import_id,
            mapping=_mapping(body),
            duplicate_policy=body.duplicate_policy,
            default_country=body.default_country,
            rows=body.rows,
            allowed_regions=await who.accessible_regions(),
        ),
        metadata=await who.metadata(region),
        timeout=max(who.timeout, 120),
    )
    return _job_json(job)


@router.post(
    "/v1/imports/{import_id}/start",
    status_code=202,
    summary="Run the import in the background",
    **answers.ok(answers.ImportJob, 202),
)
async def start_import(import_id: str, body: ImportRunIn, who: Caller = Depends(caller)) -> Any:
    region = region_of_id(import_id)
    metadata = await who.metadata(region)
    children = await _forward(who, import_id, body, region, metadata)
    job = await _stub(who, region).StartImport(
        pb.StartImportRequest(
            id=import_id,
            mapping=_mapping(body),
            duplicate_policy=body.duplicate_policy,
            default_country=body.default_country,
            child_ids=list(children.values()),
        ),
        metadata=metadata,
        timeout=who.timeout,
    )
    return _combined(job, await _parts(who, job))


@router.get(
    "/v1/imports/{import_id}",
    summary="Progress and counts (every region's part)",
    **answers.ok(answers.ImportJob),
)
async def get_import(import_id: str, who: Caller = Depends(caller)) -> Any:
    region = region_of_id(import_id)
    job = await _stub(who, region).GetImport(
        pb.GetImportRequest(id=import_id), metadata=await who.metadata(region), timeout=who.timeout
    )
    return _combined(job, await _parts(who, job))


@router.post(
    "/v1/imports/{import_id}/cancel",
    summary="Stop after the current batch",
    **answers.ok(answers.ImportJob),
)
async def cancel_import(import_id: str, who: Caller = Depends(caller)) -> Any:
    region = region_of_id(import_id)
    job = await _stub(who, region).CancelImport(
        pb.CancelImportRequest(id=import_id),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    for child_id in job.child_ids:
        target = region_of_id(child_id)
        await _stub(who, target).CancelImport(
            pb.CancelImportRequest(id=child_id),
            metadata=await who.metadata(target),
            timeout=who.timeout,
        )
    return _combined(job, await _parts(who, job))


@router.get(
    "/v1/imports/{import_id}/errors",
    summary="The per-row error report (CSV), streamed",
    **answers.file(200, "text/csv"),
)
async def import_errors(import_id: str, who: Caller = Depends(caller)) -> StreamingResponse:
    region = region_of_id(import_id)
    metadata = await who.metadata(region)
    job = await _stub(who, region).GetImport(
        pb.GetImportRequest(id=import_id), metadata=metadata, timeout=who.timeout
    )
    parts = []
    for part_id in [import_id, *job.child_ids]:
        stream = _stub(who, region_of_id(part_id)).GetImportErrors(
            pb.GetImportErrorsRequest(id=part_id),
            metadata=await who.metadata(region_of_id(part_id)),
            timeout=max(who.timeout, 300),
        )
        # The first piece is read before answering, so a refusal is still a problem+json.
        parts.append(await _ErrorRows.open(stream))
    return StreamingResponse(
        _report_lines(parts),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{import_id}-errors.csv"'},
    )


class _ErrorRows:
    """One part's error rows, in file order, a streamed piece at a time."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.rows: list[pb.ImportRowError] = []

    @classmethod
    async def open(cls, stream: Any) -> _ErrorRows:
        rows = cls(stream)
        await rows.fill()
        return rows

    async def fill(self) -> None:
        """Reads pieces until it holds a row, or the stream ends."""
        while not self.rows:
            piece = await self.stream.read()
            if piece is grpc.aio.EOF:
                return
            self.rows = list(piece.rows)
            self.rows.reverse()  # pop() from the end gives the next row

    @property
    def head(self) -> pb.ImportRowError | None:
        return self.rows[-1] if self.rows else None

    async def pop(self) -> pb.ImportRowError:
        row = self.rows.pop()
        if not self.rows:
            await self.fill()
        return row


async def _report_lines(parts: list[_ErrorRows]) -> AsyncIterator[bytes]:
    """One CSV of every part's errors by row number in the uploaded file: the parts are
    each in file order, so merging their heads keeps the whole in order."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "column", "value", "error"])
    yield codecs.BOM_UTF8 + out.getvalue().encode()
    while True:
        heads = [(part.head.row, i) for i, part in enumerate(parts) if part.head is not None]
        if not heads:
            return
        out.seek(0)
        out.truncate()
        # A few hundred lines per write: small enough to stream, large enough to be quick.
        for _ in range(500):
            heads = [(part.head.row, i) for i, part in enumerate(parts) if part.head is not None]
            if not heads:
                break
            row = await parts[min(heads)[1]].pop()
            writer.writerow(safe_row([row.row, row.column, row.value, row.error]))
        yield out.getvalue().encode()


# ---------------------------------------------------------------- exports

CONTACT_COLUMNS = (
    "id",
    "region",
    "first_name",
    "last_name",
    "emails",
    "phones",
    "country",
    "city",
    "owner_id",
    "source",
    "lifecycle_stage",
    "tags",
    "created_at",
)
DEAL_COLUMNS = (
    "id",
    "region",
    "title",
    "contact_id",
    "company_id",
    "owner_id",
    "source",
    "pipeline_id",
    "stage_id",
    "stage_name",
    "status",
    "amount",
    "currency",
    "expected_close_date",
    "created_at",
)


def _contact_row(contact: cpb.Contact) -> list[str]:
    return [
        contact.id,
        contact.region,
        contact.first_name,
        contact.last_name,
        "; ".join(contact.emails),
        "; ".join(contact.phones),
        contact.address.country,
        contact.address.city,
        contact.owner_id,
        contact.source,
        contact.lifecycle_stage,
        "; ".join(contact.tags),
        contact.created_at.ToJsonString(),
    ]


def _deal_row(deal: dpb.Deal) -> list[str]:
    return [
        deal.id,
        deal.region,
        deal.title,
        deal.contact_id,
        deal.company_id,
        deal.owner_id,
        deal.source,
        deal.pipeline_id,
        deal.stage_id,
        deal.stage_name,
        deal.status,
        deal.amount.amount,
        deal.amount.currency,
        deal.expected_close_date,
        deal.created_at.ToJsonString(),
    ]


class _Sink:
    """Rows into a temporary CSV or XLSX file (openpyxl write-only: constant memory)."""

    def __init__(self, kind: str, file_format: str, columns: tuple[str, ...]) -> None:
        self.format = file_format
        folder = Path(tempfile.mkdtemp(prefix="crm-export-"))
        self.path = folder / f"{kind}.{file_format}"
        self.rows = 0
        if file_format == "csv":
            self.handle = self.path.open("w", encoding="utf-8-sig", newline="")
            self.writer = csv.writer(self.handle)
            self.writer.writerow(columns)
        else:
            from openpyxl import Workbook

            self.workbook = Workbook(write_only=True)
            self.sheet = self.workbook.create_sheet(kind)
            self.sheet.append(list(columns))

    def add(self, row: list[str]) -> None:
        safe = safe_row(row)
        if self.format == "csv":
            self.writer.writerow(safe)
        else:
            self.sheet.append(safe)
        self.rows += 1

    def close(self) -> None:
        if self.format == "csv":
            self.handle.close()
        else:
            self.workbook.save(self.path)


def _stamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


async def _check_export_allowed(who: Caller) -> None:
    """The tenant may forbid exports to sales reps (`forbid_sales_rep_exports`)."""
    principal = who.principal
    if not principal.has_role("sales_rep") or principal.has_role("admin", "manager"):
        return
    settings = who.stub("integrations", "integrations", principal.home_region)
    reply = await settings.GetIntegrationSettings(
        pb.GetIntegrationSettingsRequest(),
        metadata=principal.to_metadata(),
        timeout=who.timeout,
    )
    if reply.forbid_sales_rep_exports:
        raise Problem(403, "Forbidden", "this tenant does not allow sales reps to export")


async def _export(
    who: Caller,
    kind: str,
    file_format: str,
    regions: list[str],
    fetch: Any,
    to_row: Any,
    columns: tuple[str, ...],
    filters: dict[str, Any],
) -> FileResponse:
    await _check_export_allowed(who)
    metadata = {r: await who.metadata(r) for r in regions}  # 403 without a grant
    sink = _Sink(kind, file_format, columns)
    counts = dict.fromkeys(regions, 0)
    cursor: str | None = None
    try:
        while True:
            items, cursor = await merged_page(
                regions, cursor, 200, lambda r, t: fetch(r, t, metadata[r])
            )
            for item in items:
                sink.add(to_row(item))
                counts[item.region] += 1
            if not cursor:
                break
    finally:
        sink.close()
    # The audit record goes to each region whose data left it, before the file does.
    for region in regions:
        await _stub(who, region).RecordExport(
            pb.RecordExportRequest(
                kind=kind,
                format=file_format,
                rows=counts[region],
                filters_json=json.dumps(filters, sort_keys=True, default=str),
            ),
            metadata=metadata[region],
            timeout=who.timeout,
        )
    media = (
        "text/csv; charset=utf-8"
        if file_format == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return FileResponse(
        sink.path,
        media_type=media,
        filename=f"{kind}.{file_format}",
        background=BackgroundTask(_remove, sink.path),
    )


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.parent.rmdir()


@router.get(
    "/v1/exports/contacts",
    summary="Contacts as CSV or XLSX, with the list filters",
    **answers.file(
        200, "text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ),
)
async def export_contacts(
    who: Caller = Depends(caller),
    format: str = Query("csv", pattern="^(csv|xlsx)$"),
    q: str = Query("", max_length=200),
    owner_id: str = "",
    tag: str = "",
    lifecycle_stage: str = "",
    source: str = "",
    country: str = "",
    company_id: str = "",
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    region: str | None = Query(None, description="comma-separated; default: your home region"),
) -> FileResponse:
    regions = who.regions_param(region)
    filters = {
        k: v
        for k, v in dict(
            q=q,
            owner_id=owner_id,
            tag=tag,
            lifecycle_stage=lifecycle_stage,
            source=source,
            country=country,
            company_id=company_id,
            created_after=created_after,
            created_before=created_before,
        ).items()
        if v
    }

    async def fetch(r: str, token: str, metadata: Any) -> tuple[list[Hit], bool]:
        reply = await who.stub("contacts", "contacts", r).ListContacts(
            cpb.ListContactsRequest(
                query=q,
                owner_id=owner_id,
                tag=tag,
                lifecycle_stage=lifecycle_stage,
                source=source,
                country=country,
                company_id=company_id,
                created_after=_stamp(created_after),
                created_before=_stamp(created_before),
                page_size=200,
                page_token=token,
            ),
            metadata=metadata,
            timeout=max(who.timeout, 30),
        )
        hits = [Hit(r, h.score, h.contact.id, h.cursor, h.contact) for h in reply.hits]
        return hits, bool(reply.next_page_token)

    return await _export(
        who, "contacts", format, regions, fetch, _contact_row, CONTACT_COLUMNS, filters
    )


@router.get(
    "/v1/exports/deals",
    summary="Deals as CSV or XLSX, with the list filters",
    **answers.file(
        200, "text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ),
)
async def export_deals(
    who: Caller = Depends(caller),
    format: str = Query("csv", pattern="^(csv|xlsx)$"),
    pipeline_id: str = "",
    stage_id: str = "",
    owner_id: str = "",
    contact_id: str = "",
    company_id: str = "",
    status: str = "",
    region: str | None = None,
) -> FileResponse:
    regions = who.regions_param(region)
    filters = {
        k: v
        for k, v in dict(
            pipeline_id=pipeline_id,
            stage_id=stage_id,
            owner_id=owner_id,
            contact_id=contact_id,
            company_id=company_id,
            status=status,
        ).items()
        if v
    }

    async def fetch(r: str, token: str, metadata: Any) -> tuple[list[Hit], bool]:
        reply = await who.stub("deals", "deals", r).ListDeals(
            dpb.ListDealsRequest(
                pipeline_id=pipeline_id,
                stage_id=stage_id,
                owner_id=owner_id,
                contact_id=contact_id,
                company_id=company_id,
                status=status,
                page_size=200,
                page_token=token,
            ),
            metadata=metadata,
            timeout=max(who.timeout, 30),
        )
        return [Hit(r, 0.0, d.id, d.id, d) for d in reply.deals], bool(reply.next_page_token)

    return await _export(who, "deals", format, regions, fetch, _deal_row, DEAL_COLUMNS, filters)


__all__ = ["Problem", "router"]
