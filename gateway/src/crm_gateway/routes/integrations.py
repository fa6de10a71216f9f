"""/v1/forms and /public/forms/{key} (lead capture), /v1/api-keys, telephony and email
providers with their public webhooks, /v1/webhooks (outbound), integration settings.

Forms, webhooks and settings are tenant configuration: the gateway writes the same
record (same id, key, secret) to every region. A public submission goes to the region
its country belongs to, like any new contact.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

import grpc
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from crm_api.crm.integrations.v1 import integrations_pb2 as pb
from crm_gateway import answers, schemas
from crm_gateway.access import (
    Caller,
    Gateway,
    caller,
    current_gateway,
    delete_in_every_region,
    in_every_region,
    region_of_id,
    require_role,
)
from crm_gateway.guards import text_problem
from crm_gateway.placement import region_for_create
from crm_gateway.problems import Problem, invalid
from crm_kit.context import Principal
from crm_kit.ids import is_valid_id, new_id

router = APIRouter(tags=["integrations"])
public = APIRouter(tags=["public"])

MAX_FIELDS = 100


def _stub(gateway: Gateway, region: str) -> Any:
    return gateway.clients.stub("integrations", "integrations", region)


# ---------------------------------------------------------------- forms


class FormIn(schemas.Strict):
    name: str = Field(min_length=1, max_length=200)
    field_mapping: dict[str, str] = Field(
        description="submitted field -> first_name, last_name, name, email, phone, country, "
        "city, language, note or deal_title"
    )
    pipeline_id: str
    stage_id: str
    owner: str = Field(description="'user:<id>' or 'team:<team>' (round-robin)")
    honeypot_field: str = ""
    deal_title: str = ""
    source: str = "web_form"
    default_country: str = ""
    active: bool = True
    rate_limit_per_key: int = Field(60, ge=1, le=100_000, description="per minute")
    rate_limit_per_ip: int = Field(10, ge=1, le=100_000, description="per minute and address")


def _form_json(form: pb.Form) -> dict[str, Any]:
    data = schemas.to_json(form)
    data.pop("tenant_id", None)
    data["submit_url"] = f"/public/forms/{form.key}"
    return data


async def _put_form(who: Caller, form: pb.Form) -> pb.Form:
    async def put(region: str, metadata: Any) -> Any:
        return await _stub(who.gateway, region).PutForm(
            pb.PutFormRequest(form=form), metadata=metadata, timeout=who.timeout
        )

    results: list[pb.Form] = await in_every_region(who, put)
    return results[0]


@router.post(
    "/v1/forms",
    status_code=201,
    summary="Define a web form (lead capture)",
    **answers.ok(answers.Form, 201),
)
async def create_form(body: FormIn, response: Response, who: Caller = Depends(caller)) -> Any:
    require_role(who, "admin")
    home = who.principal.home_region
    form = pb.Form(id=new_id(home), key=f"{home}-{secrets.token_hex(12)}", **body.model_dump())
    created = await _put_form(who, form)
    response.headers["Location"] = f"/v1/forms/{created.id}"
    return _form_json(created)


@router.put(
    "/v1/forms/{form_id}",
    summary="Replace a form's definition (its key stays)",
    **answers.ok(answers.Form),
)
async def replace_form(form_id: str, body: FormIn, who: Caller = Depends(caller)) -> Any:
    require_role(who, "admin")
    current = await _stub(who.gateway, who.principal.home_region).GetForm(
        pb.GetFormRequest(id=form_id), metadata=who.principal.to_metadata(), timeout=who.timeout
    )
    form = pb.Form(id=form_id, key=current.key, **body.model_dump())
    return _form_json(await _put_form(who, form))


@router.delete(
    "/v1/forms/{form_id}",
    status_code=204,
    summary="Delete a form: its public URL answers 404 from now on",
    description="Submissions already received still become their contact and deal; the "
    "leads it brought in stay.",
)
async def delete_form(form_id: str, who: Caller = Depends(caller)) -> Response:
    require_role(who, "admin")

    async def delete(region: str, metadata: Any) -> Any:
        return await _stub(who.gateway, region).DeleteForm(
            pb.DeleteFormRequest(id=form_id), metadata=metadata, timeout=who.timeout
        )

    await delete_in_every_region(who, delete)
    return Response(status_code=204)


@router.get("/v1/forms", summary="The tenant's forms", **answers.ok(answers.Forms))
async def list_forms(who: Caller = Depends(caller)) -> Any:
    reply = await _stub(who.gateway, who.principal.home_region).ListForms(
        pb.ListFormsRequest(), metadata=who.principal.to_metadata(), timeout=who.timeout
    )
    return {"data": [_form_json(f) for f in reply.forms]}


@router.get("/v1/forms/{form_id}", summary="One form", **answers.ok(answers.Form))
async def get_form(form_id: str, who: Caller = Depends(caller)) -> Any:
    form = await _stub(who.gateway, who.principal.home_region).GetForm(
        pb.GetFormRequest(id=form_id), metadata=who.principal.to_metadata(), timeout=who.timeout
    )
    return _form_json(form)


@router.get(
    "/v1/forms/submissions/{submission_id}",
    summary="A submission: its status, the contact and deal it became, its attribution",
    **answers.ok(answers.Submission),
)
async def get_submission(submission_id: str, who: Caller = Depends(caller)) -> Any:
    region = region_of_id(submission_id)
    reply = await _stub(who.gateway, region).GetSubmission(
        pb.GetSubmissionRequest(id=submission_id),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return schemas.to_json(reply)


async def _submitted_fields(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            data = await request.json()
        except ValueError as exc:
            raise invalid("body", "malformed JSON") from exc
        if not isinstance(data, dict):
            raise invalid("body", "a JSON object of field names to values")
        items = list(data.items())
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form(max_files=0)
        items = list(form.multi_items())
    else:
        raise Problem(
            415,
            "Unsupported media type",
            "send application/json or application/x-www-form-urlencoded",
        )
    if len(items) > MAX_FIELDS:
        raise invalid("body", f"at most {MAX_FIELDS} fields")
    fields: dict[str, str] = {}
    for name, value in items:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise invalid(str(name), "a text value")
        # JSON and form-encoded text was checked by the guard; multipart parts only here.
        problem = text_problem(str(name)) or text_problem(str(value))
        if problem is not None:
            raise invalid(str(name), problem)
        fields[str(name)[:100]] = str(value)
    return fields


@public.post(
    "/public/forms/{key}",
    status_code=201,
    summary="Submit a web form (JSON or form-encoded); 202 when it is completed later",
    response_model=None,
    responses={
        201: {"model": answers.Submitted, "description": "completed"},
        202: {
            "model": answers.Submitted,
            "description": "stored; completed when a busy service is back",
        },
    },
)
async def submit_form(
    key: str,
    request: Request,
    gateway: Gateway = Depends(current_gateway),
    user_agent: str = Header("", alias="User-Agent"),
    referer: str = Header("", alias="Referer"),
) -> Any:
    region = key.split("-", 1)[0]
    if region not in gateway.regions:
        raise Problem(404, "Not found", "no such form")
    fields = await _submitted_fields(request)
    client_ip = request.client.host if request.client else ""
    try:
        form = await _stub(gateway, region).ResolveFormKey(
            pb.ResolveFormKeyRequest(key=key, client_ip=client_ip), timeout=gateway.timeout
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise Problem(
                429, "Too many requests", error.details() or "", headers={"Retry-After": "60"}
            ) from error
        raise
    principal = Principal(
        tenant_id=form.tenant_id, user_id="public-form", roles=("integration",), home_region=region
    )
    country_field = next((f for f, t in form.field_mapping.items() if t == "country"), "")
    country = fields.get(country_field, "").strip() if country_field else ""
    try:
        target = await region_for_create(
            Caller(principal=principal, gateway=gateway), country or form.default_country
        )
    except Problem as problem:
        raise invalid(country_field or "country", problem.detail) from problem
    # The person submits their own data to the region it belongs to: not a transfer.
    metadata = principal.with_changes(home_region=target).to_metadata()
    submission = await _stub(gateway, target).SubmitForm(
        pb.SubmitFormRequest(
            form_id=form.id,
            fields=fields,
            client_ip=client_ip,
            user_agent=user_agent[:500],
            referrer=referer[:2000],
            submission_id=new_id(target),
        ),
        metadata=metadata,
        timeout=max(gateway.timeout, 15),
    )
    body = {"id": submission.id, "status": submission.status}
    if submission.status == "pending":
        return JSONResponse(body, status_code=202, headers={"Retry-After": "30"})
    return body


# ---------------------------------------------------------------- API keys


class ApiKeyIn(schemas.Strict):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1, description="e.g. contacts:read, deals:write, *")


@router.post(
    "/v1/api-keys",
    status_code=201,
    summary="Create an API key (the secret is shown once)",
    **answers.ok(answers.ApiKeyCreated, 201),
)
async def create_api_key(body: ApiKeyIn, who: Caller = Depends(caller)) -> Any:
    require_role(who, "admin")
    reply = await _stub(who.gateway, who.principal.home_region).CreateApiKey(
        pb.CreateApiKeyRequest(name=body.name, scopes=body.scopes),
        metadata=who.principal.to_metadata(),
        timeout=who.timeout,
    )
    return {**schemas.to_json(reply.key), "secret": reply.secret}


@router.get(
    "/v1/api-keys", summary="The tenant's API keys (no secrets)", **answers.ok(answers.ApiKeys)
)
async def list_api_keys(who: Caller = Depends(caller)) -> Any:
    require_role(who, "admin")

    async def list_in(region: str, metadata: Any) -> Any:
        return await _stub(who.gateway, region).ListApiKeys(
            pb.ListApiKeysRequest(), metadata=metadata, timeout=who.timeout
        )

    replies = await in_every_region(who, list_in)
    return {"data": [schemas.to_json(k) for reply in replies for k in reply.keys]}


@router.delete("/v1/api-keys/{key_id}", summary="Revoke an API key", **answers.ok(answers.ApiKey))
async def revoke_api_key(key_id: str, who: Caller = Depends(caller)) -> Any:
    require_role(who, "admin")
    region = region_of_id(key_id)
    reply = await _stub(who.gateway, region).RevokeApiKey(
        pb.RevokeApiKeyRequest(id=key_id), metadata=who.principal.to_metadata(), timeout=who.timeout
    )
    return schemas.to_json(reply)


# ---------------------------------------------------------------- telephony and email


class ProviderIn(schemas.Strict):
    kind: str = Field(pattern="^(telephony|email)$")
    name: str = Field("", max_length=200)
    default_owner_id: str = ""
    default_country: str = ""
    call_url: str = Field(
        "",
        max_length=2000,
        description="telephony: where click-to-call requests are POSTed (signed with the "
        "call_secret shown once)",
    )


@router.post(
    "/v1/integrations/providers",
    status_code=201,
    summary="Connect a telephony or inbound-email provider (the secret is shown once)",
    **answers.ok(answers.ProviderCreated, 201),
)
async def create_provider(body: ProviderIn, who: Caller = Depends(caller)) -> Any:
    require_role(who, "admin")
    reply = await _stub(who.gateway, who.principal.home_region).CreateProvider(
        pb.CreateProviderRequest(**body.model_dump()),
        metadata=who.principal.to_metadata(),
        timeout=who.timeout,
    )
    data = schemas.to_json(reply)
    data["webhook_url"] = (
        f"/public/{'telephony' if body.kind == 'telephony' else 'email'}/{reply.id}"
    )
    return data


def _provider_secret(authorization: str, secret_header: str) -> str:
    secret = secret_header or authorization.partition(" ")[2]
    if not secret.strip():
        raise Problem(
            401,
            "Unauthorized",
            "send the provider secret in X-Integration-Secret",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return secret.strip()


def _provider_region(provider_id: str, gateway: Gateway) -> str:
    if not is_valid_id(provider_id) or provider_id.split("_", 1)[0] not in gateway.regions:
        raise Problem(404, "Not found", "no such provider")
    return provider_id.split("_", 1)[0]


async def _provider_call(method: Any, request: Any, gateway: Gateway) -> Any:
    try:
        return await method(request, timeout=max(gateway.timeout, 15))
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.PERMISSION_DENIED:
            raise Problem(401, "Unauthorized", "unknown provider or wrong secret") from error
        raise


class CallIn(schemas.Strict):
    call_id: str = Field("", max_length=200)
    direction: str = Field(pattern="^(inbound|outbound)$")
    from_: str = Field(alias="from", max_length=50)
    to: str = Field(max_length=50)
    duration: int = Field(0, ge=0, le=86_400)
    recording_url: str = Field("", max_length=2000)
    status: str = Field("", pattern="^(|completed|missed|busy|no_answer)$")
    started_at: str = ""
    # The CRM user id of the agent who made or took the call (reports credit them).
    user_id: str = Field("", max_length=200)


@public.post(
    "/public/telephony/{provider_id}",
    summary="Call events from a telephony provider",
    **answers.ok(answers.CallRecord),
)
async def telephony_event(
    provider_id: str,
    body: CallIn,
    gateway: Gateway = Depends(current_gateway),
    authorization: str = Header("", include_in_schema=False),
    x_integration_secret: str = Header("", alias="X-Integration-Secret"),
) -> Any:
    region = _provider_region(provider_id, gateway)
    request = pb.LogCallRequest(
        provider_id=provider_id,
        secret=_provider_secret(authorization, x_integration_secret),
        external_id=body.call_id,
        direction=body.direction,
        from_number=body.from_,
        to_number=body.to,
        duration_seconds=body.duration,
        recording_url=body.recording_url,
        status=body.status,
        user_id=body.user_id,
    )
    if body.started_at:
        try:
            request.started_at.FromJsonString(body.started_at)
        except ValueError as exc:
            raise invalid("started_at", "an RFC 3339 timestamp") from exc
    reply = await _provider_call(_stub(gateway, region).LogCall, request, gateway)
    return schemas.to_json(reply)


class EmailIn(schemas.Strict):
    message_id: str = Field("", max_length=500)
    from_: str = Field(alias="from", max_length=500)
    to: str = Field("", max_length=500)
    subject: str = Field("", max_length=1000)
    body: str = Field("", max_length=100_000)


@public.post(
    "/public/email/{provider_id}",
    summary="Inbound emails from an email provider",
    **answers.ok(answers.EmailRecord),
)
async def email_event(
    provider_id: str,
    body: EmailIn,
    gateway: Gateway = Depends(current_gateway),
    authorization: str = Header("", include_in_schema=False),
    x_integration_secret: str = Header("", alias="X-Integration-Secret"),
) -> Any:
    region = _provider_region(provider_id, gateway)
    request = pb.LogEmailRequest(
        provider_id=provider_id,
        secret=_provider_secret(authorization, x_integration_secret),
        message_id=body.message_id,
        from_address=body.from_,
        to_address=body.to,
        subject=body.subject,
        body=body.body,
    )
    reply = await _provider_call(_stub(gateway, region).LogEmail, request, gateway)
    return schemas.to_json(reply)


# ---------------------------------------------------------------- outbound webhooks


class WebhookIn(schemas.Strict):
    url: str = Field(min_length=1, max_length=2000)
    event_types: list[str] = Field(min_length=1, description="e.g. deals.deal.created, deals.*")
    description: str = Field("", max_length=500)
    active: bool = True


async def _put_webhook(who: Caller, hook: pb.Webhook) -> pb.Webhook:
    async def put(region: str, metadata: Any) -> Any:
        return await _stub(who.gateway, region).PutWebhook(
            pb.PutWebhookRequest(webhook=hook), metadata=metadata, timeout=who.timeout
        )

    results: list[pb.Webhook] = await in_every_region(who, put)
    return results[0]


@router.post(
    "/v1/webhooks",
    status_code=201,
    summary="Subscribe a URL to event types",
    **answers.ok(answers.Webhook, 201),
)
async def create_webhook(body: WebhookIn, who: Caller = Depends(caller)) -> Any:
    require_role(who, "admin")
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    hook = pb.Webhook(id=new_id(who.principal.home_region), secret=secret, **body.model_dump())
    return schemas.to_json(await _put_webhook(who, hook))


@router.put(
    "/v1/webhooks/{webhook_id}",
    summary="Change a subscription; active=true re-enables",
    **answers.ok(answers.WebhookOut),
)
async def replace_webhook(webhook_id: str, body: WebhookIn, who: Caller = Depends(caller)) -> Any:
    require_role(who, "admin")
    hook = pb.Webhook(id=webhook_id, **body.model_dump())
    data = schemas.to_json(await _put_webhook(who, hook))
    data.pop("secret", None)
    return data


@router.get(
    "/v1/webhooks", summary="The tenant's webhook subscriptions", **answers.ok(answers.Webhooks)
)
async def list_webhooks(who: Caller = Depends(caller)) -> Any:
    require_role(who, "admin")
    reply = await _stub(who.gateway, who.principal.home_region).ListWebhooks(
        pb.ListWebhooksRequest(), metadata=who.principal.to_metadata(), timeout=who.timeout
    )
    return {"data": [schemas.to_json(h) for h in reply.webhooks]}


@router.delete(
    "/v1/webhooks/{webhook_id}",
    status_code=204,
    summary="Delete a subscription: nothing more is delivered, its delivery log goes",
)
async def delete_webhook(webhook_id: str, who: Caller = Depends(caller)) -> Response:
    require_role(who, "admin")

    async def delete(region: str, metadata: Any) -> Any:
        return await _stub(who.gateway, region).DeleteWebhook(
            pb.DeleteWebhookRequest(id=webhook_id), metadata=metadata, timeout=who.timeout
        )

    await delete_in_every_region(who, delete)
    return Response(status_code=204)


@router.get(
    "/v1/webhooks/{webhook_id}/deliveries",
    summary="The delivery log (every region), newest first",
    **answers.ok(answers.WebhookDeliveries),
)
async def list_deliveries(
    webhook_id: str, who: Caller = Depends(caller), limit: int = Query(100, ge=1, le=500)
) -> Any:
    require_role(who, "admin")

    async def list_in(region: str, metadata: Any) -> Any:
        return await _stub(who.gateway, region).ListDeliveries(
            pb.ListDeliveriesRequest(webhook_id=webhook_id, page_size=limit),
            metadata=metadata,
            timeout=who.timeout,
        )

    replies = await in_every_region(who, list_in)
    items = [d for reply in replies for d in reply.deliveries]
    items.sort(key=lambda d: (d.created_at.ToDatetime(), d.id), reverse=True)
    return {"data": [schemas.to_json(d) for d in items[:limit]]}


@router.post(
    "/v1/webhooks/deliveries/{delivery_id}/replay",
    summary="Send a delivery again, now",
    **answers.ok(answers.WebhookDelivery),
)
async def replay_delivery(delivery_id: str, who: Caller = Depends(caller)) -> Any:
    require_role(who, "admin")
    region = region_of_id(delivery_id)
    reply = await _stub(who.gateway, region).ReplayDelivery(
        pb.ReplayDeliveryRequest(id=delivery_id),
        metadata=who.principal.to_metadata(),
        timeout=who.timeout,
    )
    return schemas.to_json(reply)


class SettingsIn(schemas.Strict):
    allow_private_webhook_targets: bool = False
    # Exports of contacts and deals answer 403 to sales reps (a rep who leaves takes
    # no copy of the client base).
    forbid_sales_rep_exports: bool = False


@router.put(
    "/v1/integrations/settings",
    summary="Tenant settings of integrations",
    **answers.ok(answers.IntegrationSettings),
)
async def put_settings(body: SettingsIn, who: Caller = Depends(caller)) -> Any:
    require_role(who, "admin")
    settings = pb.IntegrationSettings(**body.model_dump())

    async def put(region: str, metadata: Any) -> Any:
        return await _stub(who.gateway, region).PutIntegrationSettings(
            pb.PutIntegrationSettingsRequest(settings=settings),
            metadata=metadata,
            timeout=who.timeout,
        )

    return schemas.to_json((await in_every_region(who, put))[0])


@router.get(
    "/v1/integrations/settings",
    summary="Tenant settings of integrations",
    **answers.ok(answers.IntegrationSettings),
)
async def get_settings(who: Caller = Depends(caller)) -> Any:
    reply = await _stub(who.gateway, who.principal.home_region).GetIntegrationSettings(
        pb.GetIntegrationSettingsRequest(),
        metadata=who.principal.to_metadata(),
        timeout=who.timeout,
    )
    return schemas.to_json(reply)
