"""Tenant settings: custom field definitions and the residency/access policy."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_api.crm.policy.v1 import policy_pb2
from crm_gateway import answers, schemas
from crm_gateway.access import Caller, caller, delete_in_every_region
from crm_gateway.problems import Problem

router = APIRouter(tags=["settings"])


def _require(who: Caller, *roles: str) -> None:
    if not who.principal.has_role(*roles):
        # Like a record one may not see: the endpoint does not exist for this role.
        raise Problem(404, "Not found")


@router.post(
    "/v1/custom-fields",
    status_code=201,
    summary="Define (or redefine) a custom field",
    **answers.ok(answers.CustomField, 201),
)
async def define_custom_field(
    body: schemas.CustomFieldIn, who: Caller = Depends(caller)
) -> dict[str, Any]:
    _require(who, "admin")
    definition = pb.CustomFieldDefinition(**body.model_dump())
    # Definitions are not personal data: every region gets the same one.
    results = await asyncio.gather(
        *(
            who.stub("contacts", "contacts", region).DefineCustomField(
                pb.DefineCustomFieldRequest(definition=definition),
                metadata=who.principal.to_metadata(),
                timeout=who.timeout,
            )
            for region in who.gateway.regions
        )
    )
    return schemas.to_json(results[0])


@router.delete(
    "/v1/custom-fields/{key}",
    status_code=204,
    summary="Delete a custom field definition",
    description="The values records hold stay stored and are still returned under "
    "custom_fields, but are no longer validated or offered; a write may clear them (null) "
    "but not set them. Defining the key again brings them back into use.",
)
async def delete_custom_field(
    key: str,
    who: Caller = Depends(caller),
    entity: str = Query("contact", pattern="^(contact|company)$"),
) -> Response:
    _require(who, "admin")

    async def delete(region: str, metadata: Any) -> Any:
        return await who.stub("contacts", "contacts", region).DeleteCustomField(
            pb.DeleteCustomFieldRequest(entity=entity, key=key),
            metadata=metadata,
            timeout=who.timeout,
        )

    await delete_in_every_region(who, delete)
    return Response(status_code=204)


@router.get(
    "/v1/custom-fields", summary="Custom field definitions", **answers.ok(answers.CustomFields)
)
async def list_custom_fields(
    who: Caller = Depends(caller), entity: str = "contact"
) -> dict[str, Any]:
    region = who.principal.home_region
    reply = await who.stub("contacts", "contacts", region).ListCustomFields(
        pb.ListCustomFieldsRequest(entity=entity),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return {"data": [schemas.to_json(d) for d in reply.definitions]}


@router.get(
    "/v1/compliance/policies",
    tags=["compliance"],
    summary="Residency and access policy",
    **answers.ok(answers.Policy),
)
async def get_policy(who: Caller = Depends(caller)) -> dict[str, Any]:
    _require(who, "admin", "compliance_officer")
    who.gateway.forget_policy(who.principal.tenant_id)
    return schemas.to_json(await who.gateway.policy(who.principal))


@router.put(
    "/v1/compliance/policies",
    tags=["compliance"],
    summary="Replace the residency and access policy",
    **answers.ok(answers.Policy),
)
async def put_policy(body: schemas.PolicyIn, who: Caller = Depends(caller)) -> dict[str, Any]:
    _require(who, "admin", "compliance_officer")
    policy = policy_pb2.TenantPolicy(
        default_region=body.default_region,
        residency_overrides=body.residency_overrides,
        access_grants=[policy_pb2.AccessGrant(**g.model_dump()) for g in body.access_grants],
        retention_rules=[policy_pb2.RetentionRule(**r.model_dump()) for r in body.retention_rules],
    )
    principal = who.principal
    # The policy holds no personal data; every region keeps a copy so that each can
    # check placement locally. Writing it is idempotent, so a retry completes it.
    results = await asyncio.gather(
        *(
            who.stub("contacts", "policy", region).PutTenantPolicy(
                policy_pb2.PutTenantPolicyRequest(policy=policy),
                metadata=principal.to_metadata(),
                timeout=who.timeout,
            )
            for region in who.gateway.regions
        )
    )
    who.gateway.forget_policy(principal.tenant_id)
    return schemas.to_json(results[0])
