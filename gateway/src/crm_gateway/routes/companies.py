"""/v1/companies: organisations and their contact persons."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Response
from google.protobuf import field_mask_pb2

from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_gateway import answers, schemas
from crm_gateway.access import Caller, caller, idempotency_key, region_of_id
from crm_gateway.pagination import Hit, merged_page
from crm_gateway.placement import region_for_create
from crm_gateway.problems import invalid

router = APIRouter(prefix="/v1/companies", tags=["companies"])


def _stub(who: Caller, region: str) -> Any:
    return who.stub("contacts", "contacts", region)


@router.post(
    "",
    status_code=201,
    summary="Create a company in the region of its country",
    **answers.ok(answers.Company, 201),
)
async def create_company(
    body: schemas.CompanyIn,
    response: Response,
    who: Caller = Depends(caller),
    key: str | None = Header(None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    region = await region_for_create(who, body.address.country, checked_by_service=True)
    message, _ = schemas.company_message(body)
    company = await _stub(who, region).CreateCompany(
        pb.CreateCompanyRequest(company=message),
        metadata=await who.metadata(region, idempotency_key(key)),
        timeout=who.timeout,
    )
    response.headers["Location"] = f"/v1/companies/{company.id}"
    return schemas.to_json(company)


@router.get("", summary="List and search companies", **answers.ok(answers.CompanyPage))
async def list_companies(
    who: Caller = Depends(caller),
    q: str = Query("", max_length=200),
    owner_id: str = "",
    tag: str = "",
    region: str | None = None,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
) -> dict[str, Any]:
    regions = who.regions_param(region)
    metadata = {r: await who.metadata(r) for r in regions}

    async def fetch(r: str, token: str) -> tuple[list[Hit], bool]:
        reply = await _stub(who, r).ListCompanies(
            pb.ListCompaniesRequest(
                query=q, owner_id=owner_id, tag=tag, page_size=limit, page_token=token
            ),
            metadata=metadata[r],
            timeout=who.timeout,
        )
        return [Hit(r, 0.0, c.id, c.id, c) for c in reply.companies], bool(reply.next_page_token)

    items, next_cursor = await merged_page(regions, cursor, limit, fetch)
    return {
        "data": [schemas.to_json(c) for c in items],
        "next_cursor": next_cursor,
        "regions": regions,
    }


@router.get(
    "/{company_id}", summary="One company with its contact persons", **answers.ok(answers.Company)
)
async def get_company(company_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    region = region_of_id(company_id)
    company = await _stub(who, region).GetCompany(
        pb.GetCompanyRequest(id=company_id),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return schemas.to_json(company)


@router.patch("/{company_id}", summary="Change the fields sent", **answers.ok(answers.Company))
async def update_company(
    company_id: str, body: schemas.CompanyIn, who: Caller = Depends(caller)
) -> dict[str, Any]:
    region = region_of_id(company_id)
    message, fields = schemas.company_message(body, only_set=True)
    if not fields:
        raise invalid("body", "send at least one field to change")
    message.id = company_id
    company = await _stub(who, region).UpdateCompany(
        pb.UpdateCompanyRequest(
            company=message, update_mask=field_mask_pb2.FieldMask(paths=fields)
        ),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return schemas.to_json(company)
