"""Compliance officers: data-subject requests, legal holds, receipts, the audit trail
and the residency report. Every endpoint answers 404 to other roles (admins included
where the law needs an officer is a tenant decision; here admin is allowed too)."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
from datetime import UTC, datetime
from typing import Any, Literal

import grpc
from fastapi import APIRouter, Depends, Header, Query, Response
from google.protobuf import struct_pb2, timestamp_pb2
from pydantic import BaseModel, Field

from crm_api.crm.compliance.v1 import compliance_pb2, compliance_pb2_grpc
from crm_api.crm.compliance.v1 import privacy_requests_pb2 as pr
from crm_api.crm.policy.v1 import policy_pb2
from crm_gateway import answers, relocation, schemas
from crm_gateway.access import Caller, caller, idempotency_key, region_of_id
from crm_gateway.clients import STUBS
from crm_gateway.problems import Problem, invalid
from crm_kit.errors import InvalidArgument
from crm_kit.placement import ResidencyPolicy, normalize_country, region_for_country
from crm_kit.spreadsheet import safe_row

router = APIRouter(tags=["compliance"])
OFFICER_ROLES = ("compliance_officer", "admin")


def _officer(who: Caller) -> None:
    if not who.principal.has_role(*OFFICER_ROLES):
        # Like a record one may not see: the endpoint does not exist for this role.
        raise Problem(404, "Not found")


def _requests_stub(who: Caller, region: str) -> Any:
    return who.stub("contacts", "privacy_requests", region)


# ------------------------------------------------------------------ privacy requests


class PrivacyRequestIn(BaseModel):
    kind: Literal["export", "erasure", "rectification"]
    contact_id: str | None = Field(default=None, description="the subject, or find by email/phone")
    email: str | None = None
    phone: str | None = None
    changes: dict[str, Any] | None = Field(
        default=None, description="rectification: contact fields to correct"
    )


async def find_subject(who: Caller, email: str | None, phone: str | None) -> str:
    """The one contact with this email or phone in the regions the officer may access."""
    if not email and not phone:
        raise invalid("contact_id", "give contact_id, email or phone")
    regions = await who.accessible_regions()

    async def search(region: str) -> list[pr.Subject]:
        reply = await _requests_stub(who, region).FindSubjects(
            pr.FindSubjectsRequest(email=email or "", phone=phone or ""),
            metadata=await who.metadata(region),
            timeout=who.timeout,
        )
        return list(reply.subjects)

    found = [s for batch in await asyncio.gather(*(search(r) for r in regions)) for s in batch]
    field = "email" if email else "phone"
    if not found:
        raise Problem(
            404, "Not found", f"no contact with this {field} in regions {', '.join(regions)}"
        )
    if len(found) > 1:
        ids = ", ".join(s.contact_id for s in found)
        raise invalid(field, f"{len(found)} contacts match ({ids}); give contact_id")
    return found[0].contact_id


@router.post(
    "/v1/privacy/requests",
    status_code=201,
    summary="Create a data-subject request",
    **answers.ok(answers.PrivacyRequest, 201),
)
async def create_request(
    body: PrivacyRequestIn,
    who: Caller = Depends(caller),
    key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    _officer(who)
    contact_id = body.contact_id or await find_subject(who, body.email, body.phone)
    region = region_of_id(contact_id, "contact_id")
    changes = struct_pb2.Struct()
    if body.changes:
        changes.update(body.changes)
    reply = await _requests_stub(who, region).CreatePrivacyRequest(
        pr.CreatePrivacyRequestRequest(
            kind=body.kind, contact_id=contact_id, changes=changes if body.changes else None
        ),
        metadata=await who.metadata(region, idempotency_key(key)),
        # Erasure calls every service twice (erase, then verify).
        timeout=who.timeout * 4,
    )
    return schemas.to_json(reply)


@router.get(
    "/v1/privacy/requests", summary="Data-subject requests", **answers.ok(answers.PrivacyRequests)
)
async def list_requests(who: Caller = Depends(caller), status: str | None = None) -> dict[str, Any]:
    _officer(who)
    regions = await who.accessible_regions()

    async def one(region: str) -> list[dict[str, Any]]:
        reply = await _requests_stub(who, region).ListPrivacyRequests(
            pr.ListPrivacyRequestsRequest(status=status or ""),
            metadata=await who.metadata(region),
            timeout=who.timeout,
        )
        return [schemas.to_json(r) for r in reply.requests]

    rows = [r for batch in await asyncio.gather(*(one(r) for r in regions)) for r in batch]
    rows.sort(key=lambda r: r.get("created_at", ""), reverse=True)
    return {"data": rows}


@router.get(
    "/v1/privacy/requests/{request_id}",
    summary="One data-subject request",
    **answers.ok(answers.PrivacyRequest),
)
async def get_request(request_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    _officer(who)
    region = region_of_id(request_id)
    reply = await _requests_stub(who, region).GetPrivacyRequest(
        pr.GetPrivacyRequestRequest(id=request_id),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return schemas.to_json(reply)


@router.post(
    "/v1/privacy/requests/{request_id}/retry",
    summary="Run a failed request again",
    **answers.ok(answers.PrivacyRequest),
)
async def retry_request(request_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    _officer(who)
    region = region_of_id(request_id)
    reply = await _requests_stub(who, region).RetryPrivacyRequest(
        pr.RetryPrivacyRequestRequest(id=request_id),
        metadata=await who.metadata(region),
        timeout=who.timeout * 4,
    )
    return schemas.to_json(reply)


@router.get(
    "/v1/privacy/requests/{request_id}/export",
    summary="Download the ZIP (JSON and CSV) of a completed export request (audited)",
    **answers.file(200, "application/zip"),
)
async def download_export(request_id: str, who: Caller = Depends(caller)) -> Response:
    _officer(who)
    region = region_of_id(request_id)
    reply = await _requests_stub(who, region).DownloadExport(
        pr.DownloadExportRequest(id=request_id),
        metadata=await who.metadata(region),
        timeout=who.timeout * 2,
    )
    return Response(
        reply.content,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{reply.filename}"'},
    )


class ReceiptIn(BaseModel):
    receipt: str = Field(description="the receipt exactly as issued (canonical JSON)")
    signature: str = Field(description="its base64 Ed25519 signature")


@router.post(
    "/v1/privacy/receipts/verify",
    summary="Check an erasure receipt's signature",
    **answers.ok(answers.ReceiptCheck),
)
async def verify_receipt(body: ReceiptIn, who: Caller = Depends(caller)) -> dict[str, Any]:
    _officer(who)
    try:
        region = str(json.loads(body.receipt)["region"])
    except (ValueError, KeyError, TypeError):
        return {"valid": False, "reason": "the receipt is not a receipt"}
    if region not in who.gateway.regions:
        return {"valid": False, "reason": "the receipt names no known region"}
    reply = await _requests_stub(who, region).VerifyReceipt(
        pr.VerifyReceiptRequest(receipt=body.receipt, signature=body.signature),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return {"valid": reply.valid, "reason": reply.reason}


class LegalHoldIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.put(
    "/v1/privacy/legal-holds/{contact_id}",
    summary="Put a contact under legal hold",
    **answers.ok(answers.LegalHold),
)
async def set_legal_hold(
    contact_id: str, body: LegalHoldIn, who: Caller = Depends(caller)
) -> dict[str, Any]:
    _officer(who)
    region = region_of_id(contact_id, "contact_id")
    reply = await _requests_stub(who, region).SetLegalHold(
        pr.SetLegalHoldRequest(contact_id=contact_id, reason=body.reason),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return schemas.to_json(reply)


@router.delete("/v1/privacy/legal-holds/{contact_id}", status_code=204, summary="Lift a legal hold")
async def clear_legal_hold(contact_id: str, who: Caller = Depends(caller)) -> Response:
    _officer(who)
    region = region_of_id(contact_id, "contact_id")
    await _requests_stub(who, region).ClearLegalHold(
        pr.ClearLegalHoldRequest(contact_id=contact_id),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return Response(status_code=204)


# ------------------------------------------------------------------ relocation


class RelocationIn(BaseModel):
    contact_id: str
    country: str = Field(description="the person's new country (ISO code or name)")


@router.post(
    "/v1/compliance/relocations",
    summary="Move a person to the region their new country requires (audited)",
    **answers.ok(answers.Relocation, 200),
)
async def relocate_contact(body: RelocationIn, who: Caller = Depends(caller)) -> dict[str, Any]:
    _officer(who)
    old_region = region_of_id(body.contact_id, "contact_id")
    try:
        code = normalize_country(body.country, "country")
        policy = await who.gateway.policy(who.principal)
        target = region_for_country(
            code,
            ResidencyPolicy(
                default_region=policy.default_region or "us",
                overrides=dict(policy.residency_overrides),
            ),
            who.gateway.regions,
        )
    except InvalidArgument as exc:
        raise invalid("country", str(exc.violations[0].description)) from exc
    if target == old_region:
        raise invalid("country", f"{code} is stored in {old_region} already: nothing to move")
    return await relocation.relocate(who, body.contact_id, old_region, target, code)


# ------------------------------------------------------------------ policies


@router.get(
    "/v1/compliance/policies/history",
    summary="Every policy version: who, when, what",
    **answers.ok(answers.PolicyVersions),
)
async def policy_history(who: Caller = Depends(caller)) -> dict[str, Any]:
    _officer(who)
    region = who.principal.home_region
    reply = await who.stub("contacts", "policy", region).ListPolicyVersions(
        policy_pb2.ListPolicyVersionsRequest(),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    versions = [schemas.to_json(v) for v in reply.versions]
    for version in versions:
        version["version"] = int(version["version"])
    return {"data": versions}


@router.get(
    "/v1/compliance/retention/runs",
    summary="What the retention scheduler did",
    **answers.ok(answers.RetentionRuns),
)
async def retention_runs(who: Caller = Depends(caller)) -> dict[str, Any]:
    _officer(who)
    regions = await who.accessible_regions()

    async def one(region: str) -> list[dict[str, Any]]:
        reply = await who.stub("contacts", "policy", region).ListRetentionRuns(
            policy_pb2.ListRetentionRunsRequest(),
            metadata=await who.metadata(region),
            timeout=who.timeout,
        )
        return [{**schemas.to_json(run), "region": region} for run in reply.runs]

    runs = [r for batch in await asyncio.gather(*(one(r) for r in regions)) for r in batch]
    runs.sort(key=lambda r: r.get("ran_at", ""), reverse=True)
    return {"data": runs}


# ------------------------------------------------------------------ audit


def _compliance_stub(who: Caller, service: str, region: str) -> Any:
    # Every service serves crm.compliance.v1.ComplianceService (crm_kit registers it),
    # so every service the gateway knows (STUBS) is asked.
    return compliance_pb2_grpc.ComplianceServiceStub(who.gateway.clients.channel(service, region))


def _ts(value: datetime | None, field: str) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise invalid(field, "give a time zone, e.g. 2026-11-22T10:00:00Z")
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


@router.get(
    "/v1/compliance/audit",
    summary="The audit trail across services and regions",
    **answers.ok(answers.AuditTrail),
)
async def query_audit(
    who: Caller = Depends(caller),
    kind: str | None = Query(
        default=None,
        description="cross_region_access, export, privacy_request, policy_change, "
        "elevated_login, retention, relocation, contact (click-to-call, opt-outs), reassignment",
    ),
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    region: str | None = Query(default=None, description="e.g. eu,br; default: all you may"),
    limit: int = Query(default=200, ge=1, le=1000),
) -> dict[str, Any]:
    _officer(who)
    regions = who.regions_param(region) if region else await who.accessible_regions()
    request = compliance_pb2.QueryAuditRequest(
        kind=kind or "",
        actor_id=actor or "",
        since=_ts(since, "since"),
        until=_ts(until, "until"),
        limit=limit,
    )

    async def one(service: str, r: str) -> list[dict[str, Any]]:
        reply = await _compliance_stub(who, service, r).QueryAudit(
            request, metadata=await who.metadata(r), timeout=who.timeout
        )
        return [schemas.to_json(rec) for rec in reply.records]

    batches = await asyncio.gather(*(one(s, r) for s in STUBS for r in regions))
    records = [rec for batch in batches for rec in batch]
    records.sort(key=lambda rec: rec.get("at", ""), reverse=True)
    return {"data": records[:limit], "regions": regions, "services": list(STUBS)}


@router.get(
    "/v1/compliance/audit/verify",
    summary="Check every audit hash chain",
    **answers.ok(answers.AuditVerification),
)
async def verify_audit(who: Caller = Depends(caller), region: str | None = None) -> dict[str, Any]:
    _officer(who)
    regions = who.regions_param(region) if region else await who.accessible_regions()

    async def one(service: str, r: str) -> dict[str, Any]:
        reply = await _compliance_stub(who, service, r).VerifyAudit(
            compliance_pb2.VerifyAuditRequest(), metadata=await who.metadata(r), timeout=who.timeout
        )
        data = schemas.to_json(reply)
        data["records_checked"] = int(data.get("records_checked", 0))
        for problem in data.get("problems", []):
            problem["seq"] = int(problem["seq"])
        return data

    chains = await asyncio.gather(*(one(s, r) for s in STUBS for r in regions))
    return {"intact": all(c["intact"] for c in chains), "chains": list(chains)}


# ------------------------------------------------------------------ residency


async def residency_report(who: Caller) -> dict[str, Any]:
    """Counts each region computes locally; only numbers leave a region, so every
    region is asked whatever the caller's access grants."""
    metadata = who.principal.to_metadata()

    async def one(service: str, region: str) -> compliance_pb2.CountResidencyResponse | None:
        try:
            reply: compliance_pb2.CountResidencyResponse = await _compliance_stub(
                who, service, region
            ).CountResidency(
                compliance_pb2.CountResidencyRequest(), metadata=metadata, timeout=who.timeout
            )
            return reply
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Problem(
                    503,
                    "Service unavailable",
                    f"{service} in {region} did not answer; the report would be incomplete",
                    headers={"Retry-After": "5"},
                ) from exc
            raise

    regions = who.gateway.regions
    replies = await asyncio.gather(*(one(s, r) for s in STUBS for r in regions))
    report: dict[str, Any] = {
        "tenant_id": who.principal.tenant_id,
        "generated_at": datetime.now(UTC).isoformat(),
        "regions": [],
        "violations": [],
    }
    by_region: dict[str, dict[str, Any]] = {
        r: {"region": r, "services": {}, "subjects": 0, "violations": 0} for r in regions
    }
    for reply in replies:
        if reply is None:
            continue
        entry = by_region[reply.region]
        service = entry["services"].setdefault(reply.service, {})
        for count in reply.counts:
            kind = service.setdefault(count.kind, {"subjects": 0, "records": 0})
            kind["subjects"] += count.subjects
            kind["records"] += count.records
            if count.kind == "contact":
                entry["subjects"] += count.subjects
            if count.required_region != reply.region:
                entry["violations"] += count.records
                report["violations"].append(
                    {
                        "service": reply.service,
                        "kind": count.kind,
                        "stored_in": reply.region,
                        "required_region": count.required_region,
                        "subjects": count.subjects,
                        "records": count.records,
                    }
                )
    report["regions"] = list(by_region.values())
    return report


def _csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["region", "service", "kind", "subjects", "records"])
    for entry in report["regions"]:
        for service, kinds in sorted(entry["services"].items()):
            for kind, n in sorted(kinds.items()):
                writer.writerow(
                    safe_row([entry["region"], service, kind, n["subjects"], n["records"]])
                )
    writer.writerow([])
    writer.writerow(["violation: stored_in", "service", "kind", "required_region", "records"])
    for v in report["violations"]:
        writer.writerow(
            safe_row([v["stored_in"], v["service"], v["kind"], v["required_region"], v["records"]])
        )
    return out.getvalue()


def _pdf(report: dict[str, Any]) -> bytes:
    # Imported on first use: xhtml2pdf and reportlab are slow to import.
    from xhtml2pdf import pisa  # type: ignore[import-untyped]
    from xhtml2pdf.config.resources import ResourceAccessPolicy  # type: ignore[import-untyped]

    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(e['region'])}</td><td>{esc(s)}</td><td>{esc(k)}</td>"
        f"<td>{n['subjects']}</td><td>{n['records']}</td></tr>"
        for e in report["regions"]
        for s, kinds in sorted(e["services"].items())
        for k, n in sorted(kinds.items())
    )
    violations = (
        "".join(
            f"<tr><td>{esc(v['stored_in'])}</td><td>{esc(v['service'])}</td><td>{esc(v['kind'])}</td>"
            f"<td>{esc(v['required_region'])}</td><td>{v['records']}</td></tr>"
            for v in report["violations"]
        )
        or "<tr><td colspan='5'>None</td></tr>"
    )
    document = (
        "<html><body><h1>Data residency report</h1>"
        f"<p>Tenant {esc(report['tenant_id'])}, generated {esc(report['generated_at'])}</p>"
        "<h2>Records per region</h2><table border='1'><tr><th>Region</th><th>Service</th>"
        f"<th>Kind</th><th>Subjects</th><th>Records</th></tr>{rows}</table>"
        "<h2>Violations</h2><table border='1'><tr><th>Stored in</th><th>Service</th>"
        f"<th>Kind</th><th>Required region</th><th>Records</th></tr>{violations}</table>"
        "</body></html>"
    )
    out = io.BytesIO()
    status = pisa.CreatePDF(
        document,
        dest=out,
        encoding="utf-8",
        resource_policy=ResourceAccessPolicy.server(None, allow_remote=False),
    )
    if status.err:
        raise Problem(500, "Internal error", "the PDF could not be rendered")
    return out.getvalue()


@router.get(
    "/v1/compliance/residency",
    summary="Residency proof: records per region and misplaced records (JSON, CSV, PDF)",
    **answers.ok(answers.Residency, 200, "text/csv", "application/pdf"),
)
async def residency(
    who: Caller = Depends(caller), format: Literal["json", "csv", "pdf"] = "json"
) -> dict[str, Any] | Response:
    _officer(who)
    report = await residency_report(who)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if format == "csv":
        return Response(
            _csv(report),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="residency-{stamp}.csv"'},
        )
    if format == "pdf":
        content = await asyncio.to_thread(_pdf, report)
        return Response(
            content,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="residency-{stamp}.pdf"'},
        )
    return report
