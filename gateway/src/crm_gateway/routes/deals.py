"""/v1/pipelines, /v1/deals (stage moves, documents, board), rates and templates."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Response
from google.protobuf import field_mask_pb2
from ulid import ULID

from crm_api.crm.deals.v1 import deals_pb2 as pb
from crm_gateway import answers, schemas
from crm_gateway.access import (
    Caller,
    caller,
    idempotency_key,
    in_every_region,
    region_of_id,
    require_role,
)
from crm_gateway.pagination import Hit, merged_page
from crm_gateway.problems import invalid

router = APIRouter(tags=["deals"])


def _stub(who: Caller, region: str) -> Any:
    return who.stub("deals", "deals", region)


# ---------------------------------------------------------------- pipelines (tenant config)


@router.get(
    "/v1/pipelines",
    summary="The tenant's pipelines (a default one for a new tenant)",
    **answers.ok(answers.Pipelines),
)
async def list_pipelines(who: Caller = Depends(caller)) -> dict[str, Any]:
    region = who.principal.home_region
    reply = await _stub(who, region).ListPipelines(
        pb.ListPipelinesRequest(), metadata=who.principal.to_metadata(), timeout=who.timeout
    )
    return {"data": [schemas.to_json(p) for p in reply.pipelines]}


@router.post(
    "/v1/pipelines",
    status_code=201,
    summary="Create a pipeline with ordered stages",
    **answers.ok(answers.Pipeline, 201),
)
async def create_pipeline(
    body: schemas.PipelineIn, who: Caller = Depends(caller)
) -> dict[str, Any]:
    require_role(who, "admin")
    # The same ids in every region, so deals anywhere refer to one pipeline.
    pipeline = pb.Pipeline(
        id=f"pl_{str(ULID()).lower()}",
        name=body.name,
        stages=[
            pb.Stage(id=f"st_{str(ULID()).lower()}", position=i, **stage.model_dump())
            for i, stage in enumerate(body.stages)
        ],
    )

    async def create(region: str, metadata: Any) -> Any:
        return await _stub(who, region).CreatePipeline(
            pb.CreatePipelineRequest(pipeline=pipeline), metadata=metadata, timeout=who.timeout
        )

    return schemas.to_json((await in_every_region(who, create))[0])


@router.patch(
    "/v1/pipelines/{pipeline_id}",
    summary="Rename the pipeline; add, rename, reorder, change or remove its stages",
    description="Stage ids stay stable, so deals, their history and reports follow a "
    "rename or a move. A stage that still holds deals can be neither removed nor given "
    "another kind (409 naming it). Nothing is written unless every region accepts.",
    **answers.ok(answers.Pipeline),
)
async def update_pipeline(
    pipeline_id: str, body: schemas.PipelinePatchIn, who: Caller = Depends(caller)
) -> dict[str, Any]:
    require_role(who, "admin")
    current = await _stub(who, who.principal.home_region).GetPipeline(
        pb.GetPipelineRequest(id=pipeline_id),
        metadata=who.principal.to_metadata(),
        timeout=who.timeout,
    )
    known = {stage.id for stage in current.stages}
    if body.stages is None:
        stages = list(current.stages)
    else:
        stages = []
        for i, stage in enumerate(body.stages):
            if stage.id and stage.id not in known:
                raise invalid(f"stages[{i}].id", "not a stage of this pipeline")
            fields = stage.model_dump(exclude={"id"})
            # New stages get their id here: the same in every region, as on create.
            stage_id = stage.id or f"st_{str(ULID()).lower()}"
            stages.append(pb.Stage(id=stage_id, position=i, **fields))
    pipeline = pb.Pipeline(
        id=pipeline_id,
        name=current.name if body.name is None else body.name,
        is_default=current.is_default,
        stages=stages,
    )

    def update(validate_only: bool) -> Any:
        async def call(region: str, metadata: Any) -> Any:
            return await _stub(who, region).UpdatePipeline(
                pb.UpdatePipelineRequest(pipeline=pipeline, validate_only=validate_only),
                metadata=metadata,
                timeout=who.timeout,
            )

        return call

    # Every region checks first (a removed stage may hold deals in any of them), so a
    # refusal leaves every region as it was.
    await in_every_region(who, update(True))
    return schemas.to_json((await in_every_region(who, update(False)))[0])


@router.get(
    "/v1/pipelines/{pipeline_id}/board",
    summary="Deals by stage, with totals in the reporting currency",
    **answers.ok(answers.Board),
)
async def board(
    pipeline_id: str,
    who: Caller = Depends(caller),
    owner_id: str = "",
    team: str = Query("", description="only the deals whose owner is in this team"),
    region: str | None = Query(None, description="comma-separated; default: your home region"),
) -> dict[str, Any]:
    regions = who.regions_param(region)
    boards = []
    for r in regions:
        boards.append(
            await _stub(who, r).GetBoard(
                pb.GetBoardRequest(pipeline_id=pipeline_id, owner_id=owner_id, owner_team=team),
                metadata=await who.metadata(r),
                timeout=who.timeout,
            )
        )
    first = boards[0]
    columns = []
    for i, column in enumerate(first.columns):
        # Counts and totals are non-personal aggregates: summing them across regions is fine.
        same = [b.columns[i] for b in boards]
        total = sum((Decimal(c.total.amount or "0") for c in same), Decimal("0"))
        columns.append(
            {
                "stage": schemas.to_json(column.stage),
                "count": sum(int(c.count) for c in same),
                "total": {"amount": str(total), "currency": first.reporting_currency},
                "deals": [schemas.to_json(d) for c in same for d in c.deals],
            }
        )
    missing = sorted({m for b in boards for m in b.missing_rates})
    return {
        "pipeline": schemas.to_json(first.pipeline),
        "reporting_currency": first.reporting_currency,
        "columns": columns,
        "missing_rates": missing,
        "regions": regions,
    }


# ---------------------------------------------------------------- deals


def _deal_region(who: Caller, body: schemas.DealIn) -> str:
    """A deal lives with its contact (or company); otherwise in the caller's home region."""
    if body.contact_id:
        return region_of_id(body.contact_id, "contact_id")
    if body.company_id:
        return region_of_id(body.company_id, "company_id")
    return who.principal.home_region


@router.post(
    "/v1/deals",
    status_code=201,
    summary="Create a deal, stored with its contact",
    **answers.ok(answers.Deal, 201),
)
async def create_deal(
    body: schemas.DealIn,
    response: Response,
    who: Caller = Depends(caller),
    key: str | None = Header(None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    region = _deal_region(who, body)
    if (
        body.contact_id
        and body.company_id
        and region_of_id(body.company_id, "company_id") != region
    ):
        raise invalid("company_id", "the company and the contact are stored in different regions")
    deal = pb.Deal()
    schemas.message_from(body, deal)
    created = await _stub(who, region).CreateDeal(
        pb.CreateDealRequest(deal=deal),
        metadata=await who.metadata(region, idempotency_key(key)),
        timeout=who.timeout,
    )
    response.headers["Location"] = f"/v1/deals/{created.id}"
    return schemas.to_json(created)


@router.get(
    "/v1/deals", summary="List deals in one or more regions", **answers.ok(answers.DealPage)
)
async def list_deals(
    who: Caller = Depends(caller),
    pipeline_id: str = "",
    stage_id: str = "",
    owner_id: str = "",
    contact_id: str = "",
    company_id: str = "",
    status: str = "",
    region: str | None = None,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
) -> dict[str, Any]:
    regions = who.regions_param(region, contact_id=contact_id)
    metadata = {r: await who.metadata(r) for r in regions}

    async def fetch(r: str, token: str) -> tuple[list[Hit], bool]:
        reply = await _stub(who, r).ListDeals(
            pb.ListDealsRequest(
                pipeline_id=pipeline_id,
                stage_id=stage_id,
                owner_id=owner_id,
                contact_id=contact_id,
                company_id=company_id,
                status=status,
                page_size=limit,
                page_token=token,
            ),
            metadata=metadata[r],
            timeout=who.timeout,
        )
        return [Hit(r, 0.0, d.id, d.id, d) for d in reply.deals], bool(reply.next_page_token)

    items, next_cursor = await merged_page(regions, cursor, limit, fetch)
    return {
        "data": [schemas.to_json(d) for d in items],
        "next_cursor": next_cursor,
        "regions": regions,
    }


@router.get(
    "/v1/deals/{deal_id}", summary="One deal with its stage history", **answers.ok(answers.Deal)
)
async def get_deal(deal_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    region = region_of_id(deal_id)
    deal = await _stub(who, region).GetDeal(
        pb.GetDealRequest(id=deal_id), metadata=await who.metadata(region), timeout=who.timeout
    )
    return schemas.to_json(deal)


@router.patch(
    "/v1/deals/{deal_id}",
    summary="Change the fields sent (the stage moves via /stage)",
    **answers.ok(answers.Deal),
)
async def update_deal(
    deal_id: str, body: schemas.DealIn, who: Caller = Depends(caller)
) -> dict[str, Any]:
    region = region_of_id(deal_id)
    deal = pb.Deal(id=deal_id)
    fields = schemas.message_from(body, deal, only_set=True)
    if not fields:
        raise invalid("body", "send at least one field to change")
    updated = await _stub(who, region).UpdateDeal(
        pb.UpdateDealRequest(deal=deal, update_mask=field_mask_pb2.FieldMask(paths=fields)),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return schemas.to_json(updated)


@router.post(
    "/v1/deals/{deal_id}/stage",
    summary="Move the deal to another stage of its pipeline",
    **answers.ok(answers.Deal),
)
async def move_deal(
    deal_id: str,
    body: schemas.StageMoveIn,
    who: Caller = Depends(caller),
    key: str | None = Header(None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    region = region_of_id(deal_id)
    moved = await _stub(who, region).MoveDeal(
        pb.MoveDealRequest(
            id=deal_id,
            stage_id=body.stage_id,
            expected_version=body.expected_version,
            lost_reason=body.lost_reason,
            custom_fields_json=json.dumps(body.custom_fields) if body.custom_fields else "",
        ),
        metadata=await who.metadata(region, idempotency_key(key)),
        timeout=who.timeout,
    )
    return schemas.to_json(moved)


# ---------------------------------------------------------------- payments


@router.post(
    "/v1/deals/{deal_id}/payments",
    status_code=201,
    summary="Record a payment received against the deal (in the deal's currency)",
    **answers.ok(answers.Payment, 201),
)
async def record_payment(
    deal_id: str,
    body: schemas.PaymentIn,
    response: Response,
    who: Caller = Depends(caller),
    key: str | None = Header(None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    region = region_of_id(deal_id)
    payment = pb.Payment(
        deal_id=deal_id,
        amount=pb.Money(amount=body.amount, currency=body.currency),
        paid_on=body.paid_on,
        method=body.method,
        note=body.note,
    )
    recorded = await _stub(who, region).RecordPayment(
        pb.RecordPaymentRequest(payment=payment),
        metadata=await who.metadata(region, idempotency_key(key)),
        timeout=who.timeout,
    )
    response.headers["Location"] = f"/v1/deals/{deal_id}/payments/{recorded.id}"
    return schemas.to_json(recorded)


@router.get(
    "/v1/deals/{deal_id}/payments",
    summary="The deal's payments (reversed ones marked), the total paid and the balance due",
    **answers.ok(answers.Payments),
)
async def list_payments(deal_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    region = region_of_id(deal_id)
    reply = await _stub(who, region).ListPayments(
        pb.ListPaymentsRequest(deal_id=deal_id),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    answer: dict[str, Any] = {"data": [schemas.to_json(p) for p in reply.payments]}
    if reply.HasField("paid"):
        answer["paid"] = schemas.to_json(reply.paid)
        answer["balance_due"] = schemas.to_json(reply.balance_due)
    return answer


@router.post(
    "/v1/deals/{deal_id}/payments/{payment_id}/reverse",
    summary="Reverse a mistaken payment: it stays listed, marked, and no longer counts",
    **answers.ok(answers.Payment),
)
async def reverse_payment(
    deal_id: str,
    payment_id: str,
    body: schemas.ReversePaymentIn,
    who: Caller = Depends(caller),
) -> dict[str, Any]:
    region = region_of_id(deal_id)
    if region_of_id(payment_id, "payment_id") != region:
        raise invalid("payment_id", "not a payment of this deal")
    reversed_ = await _stub(who, region).ReversePayment(
        pb.ReversePaymentRequest(id=payment_id, reason=body.reason, deal_id=deal_id),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return schemas.to_json(reversed_)


# ---------------------------------------------------------------- what a client is worth


async def _client_value(who: Caller, request: pb.GetClientValueRequest, record_id: str) -> Any:
    """Asked of the deals service of the client's region (its deals all live there): the
    contacts service never depends on deals to answer for a contact."""
    region = region_of_id(record_id)
    reply = await _stub(who, region).GetClientValue(
        request, metadata=await who.metadata(region), timeout=who.timeout
    )
    answer = schemas.to_json(reply)
    answer["region"] = region
    return answer


@router.get(
    "/v1/contacts/{contact_id}/value",
    tags=["contacts"],
    summary="What the client is worth: total won and paid to date, in the reporting currency",
    **answers.ok(answers.ClientValue),
)
async def contact_value(contact_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    request = pb.GetClientValueRequest(contact_id=contact_id)
    return dict(await _client_value(who, request, contact_id))


@router.get(
    "/v1/companies/{company_id}/value",
    tags=["companies"],
    summary="What the company is worth: total won and paid to date, in the reporting currency",
    **answers.ok(answers.ClientValue),
)
async def company_value(company_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    request = pb.GetClientValueRequest(company_id=company_id)
    return dict(await _client_value(who, request, company_id))


# ---------------------------------------------------------------- documents


@router.post(
    "/v1/deals/{deal_id}/documents",
    status_code=201,
    summary="Generate a document from a template",
    **answers.ok(answers.Document, 201),
)
async def generate_document(
    deal_id: str, body: schemas.GenerateDocumentIn, who: Caller = Depends(caller)
) -> dict[str, Any]:
    region = region_of_id(deal_id)
    document = await _stub(who, region).GenerateDocument(
        pb.GenerateDocumentRequest(deal_id=deal_id, template_key=body.template_key),
        metadata=await who.metadata(region),
        timeout=max(who.timeout, 30),
    )
    return schemas.to_json(document)


@router.get(
    "/v1/deals/{deal_id}/documents",
    summary="Documents generated for a deal",
    **answers.ok(answers.Documents),
)
async def list_documents(deal_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    region = region_of_id(deal_id)
    reply = await _stub(who, region).ListDocuments(
        pb.ListDocumentsRequest(deal_id=deal_id),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return {"data": [schemas.to_json(d) for d in reply.documents]}


@router.post(
    "/v1/deals/{deal_id}/documents/{document_id}/send",
    status_code=202,
    summary="Email the document to the deal's contact, the PDF attached (sent by notifications)",
    **answers.ok(answers.DocumentSend, 202),
)
async def send_document(
    deal_id: str,
    document_id: str,
    who: Caller = Depends(caller),
    key: str | None = Header(None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    region = region_of_id(deal_id)
    if region_of_id(document_id, "document_id") != region:
        raise invalid("document_id", "not a document of this deal")
    queued = await _stub(who, region).SendDocument(
        pb.SendDocumentRequest(deal_id=deal_id, document_id=document_id),
        metadata=await who.metadata(region, idempotency_key(key)),
        timeout=who.timeout,
    )
    answer = schemas.to_json(queued)
    # The delivery (status, every attempt) as the notifications service logs it.
    answer["deliveries"] = (
        f"/v1/notifications/deliveries?event_id={queued.event_id}&region={region}"
    )
    return answer


@router.get(
    "/v1/documents/{document_id}",
    summary="Download a document as PDF or HTML",
    **answers.file(200, "application/pdf", "text/html"),
)
async def download_document(
    document_id: str,
    who: Caller = Depends(caller),
    format: str = Query("pdf", pattern="^(pdf|html)$"),
) -> Response:
    region = region_of_id(document_id)
    content = await _stub(who, region).GetDocumentContent(
        pb.GetDocumentContentRequest(id=document_id, format=format),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return Response(
        content.content,
        media_type=content.media_type,
        headers={"Content-Disposition": f'attachment; filename="{content.filename}"'},
    )


# ---------------------------------------------------------------- tenant settings for deals


@router.put(
    "/v1/document-templates/{key}",
    summary="Create or replace a document template (Jinja2 HTML)",
    **answers.ok(answers.DocumentTemplate),
)
async def put_template(
    key: str, body: schemas.DocumentTemplateIn, who: Caller = Depends(caller)
) -> dict[str, Any]:
    require_role(who, "admin")
    template = pb.DocumentTemplate(
        key=key,
        name=body.name or key,
        body=body.body,
        variables_json=json.dumps(body.variables),
        locale=body.locale,
    )

    async def put(region: str, metadata: Any) -> Any:
        return await _stub(who, region).PutDocumentTemplate(
            pb.PutDocumentTemplateRequest(template=template), metadata=metadata, timeout=who.timeout
        )

    return schemas.to_json((await in_every_region(who, put))[0])


@router.get(
    "/v1/document-templates", summary="Document templates", **answers.ok(answers.DocumentTemplates)
)
async def list_templates(who: Caller = Depends(caller)) -> dict[str, Any]:
    reply = await _stub(who, who.principal.home_region).ListDocumentTemplates(
        pb.ListDocumentTemplatesRequest(), metadata=who.principal.to_metadata(), timeout=who.timeout
    )
    return {"data": [schemas.to_json(t) for t in reply.templates]}


@router.put(
    "/v1/exchange-rates",
    summary="Record a dated exchange rate to the reporting currency",
    **answers.ok(answers.ExchangeRate),
)
async def put_rate(body: schemas.ExchangeRateIn, who: Caller = Depends(caller)) -> dict[str, Any]:
    require_role(who, "admin", "manager")
    rate = pb.ExchangeRate(currency=body.currency, rate=body.rate, valid_on=body.valid_on)

    async def put(region: str, metadata: Any) -> Any:
        return await _stub(who, region).PutExchangeRate(
            pb.PutExchangeRateRequest(rate=rate), metadata=metadata, timeout=who.timeout
        )

    return schemas.to_json((await in_every_region(who, put))[0])


@router.get("/v1/exchange-rates", summary="Exchange rates", **answers.ok(answers.ExchangeRates))
async def list_rates(who: Caller = Depends(caller)) -> dict[str, Any]:
    reply = await _stub(who, who.principal.home_region).ListExchangeRates(
        pb.ListExchangeRatesRequest(), metadata=who.principal.to_metadata(), timeout=who.timeout
    )
    return {"data": [schemas.to_json(r) for r in reply.rates]}


@router.put(
    "/v1/deal-settings",
    summary="The tenant's reporting currency and lost-reason categories",
    **answers.ok(answers.DealSettings),
)
async def put_settings(
    body: schemas.DealSettingsIn, who: Caller = Depends(caller)
) -> dict[str, Any]:
    require_role(who, "admin")
    reasons = body.lost_reasons
    if reasons is None:  # a PUT of the currency alone keeps the categories
        current = await _stub(who, who.principal.home_region).GetDealSettings(
            pb.GetDealSettingsRequest(), metadata=who.principal.to_metadata(), timeout=who.timeout
        )
        reasons = list(current.lost_reasons)
    settings = pb.DealSettings(reporting_currency=body.reporting_currency, lost_reasons=reasons)

    async def put(region: str, metadata: Any) -> Any:
        return await _stub(who, region).PutDealSettings(
            pb.PutDealSettingsRequest(settings=settings), metadata=metadata, timeout=who.timeout
        )

    return schemas.to_json((await in_every_region(who, put))[0])
