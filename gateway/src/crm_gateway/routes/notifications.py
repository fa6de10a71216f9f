"""/v1/notifications (inbox, preferences, the tenant's default working hours, delivery log),
/v1/templates, /v1/campaigns, the public unsubscribe link /public/unsubscribe/{token} and
inbound SMS from a region's SMS provider, /public/sms/{region}.

A user's notifications live in the region of what they are about (a task in br gives a
notification in br), so the inbox lists the caller's home region unless `region=` names
more; templates and preferences are tenant configuration written to every region.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import grpc
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import Field

from crm_api.crm.notifications.v1 import notifications_pb2 as pb
from crm_gateway import answers, schemas
from crm_gateway.access import (
    Caller,
    Gateway,
    caller,
    current_gateway,
    idempotency_key,
    in_every_region,
    region_of_id,
    require_role,
)
from crm_gateway.pagination import Hit, merged_page
from crm_gateway.problems import Problem, invalid
from crm_kit.context import Principal
from crm_kit.ids import is_valid_id

router = APIRouter()


def _stub(who: Caller, region: str) -> Any:
    return who.stub("notifications", "notifications", region)


class MarkReadIn(schemas.Strict):
    ids: list[str] = Field(default_factory=list, max_length=500)
    all: bool = False


class PreferenceIn(schemas.Strict):
    kind: str = Field(max_length=100)
    channels: list[str] = Field(default_factory=list, max_length=10)


class PreferencesIn(schemas.Strict):
    preferences: list[PreferenceIn] = Field(max_length=50)


class WorkingHoursIn(schemas.Strict):
    # Checked by the service, which names the bad field (HH:MM, start < end, days 1..7).
    start: str = Field("", max_length=20)
    end: str = Field("", max_length=20)
    days: list[schemas.Weekday] = Field(default_factory=list, max_length=50)


class TemplateIn(schemas.Strict):
    subject: str = Field(max_length=20_000)
    body_text: str = Field(max_length=20_000)
    body_html: str = Field("", max_length=20_000)


class SegmentIn(schemas.Strict):
    query: str = Field("", max_length=200)
    owner_id: str = Field("", max_length=200)
    tag: str = Field("", max_length=100)
    lifecycle_stage: str = Field("", max_length=50)
    source: str = Field("", max_length=50)
    country: str = Field("", max_length=2)
    company_id: str = Field("", max_length=100)


class CampaignIn(schemas.Strict):
    name: str = Field(max_length=200)
    purpose: str = Field(max_length=64)
    template_kind: str = Field(max_length=80)
    segment: SegmentIn = Field(default_factory=SegmentIn)
    channel: str = Field("email", pattern="^(email|sms)$", description="email or sms")
    # The contacts' region (a campaign reaches one region's contacts).
    region: str = ""


# ------------------------------------------------------------------ inbox


@router.get(
    "/v1/notifications",
    tags=["notifications"],
    summary="The caller's in-app inbox",
    **answers.ok(answers.Inbox),
)
async def list_notifications(
    who: Caller = Depends(caller),
    unread_only: bool = False,
    region: str | None = None,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
) -> dict[str, Any]:
    regions = who.regions_param(region)
    metadata = {r: await who.metadata(r) for r in regions}

    async def fetch(r: str, token: str) -> tuple[list[Hit], bool]:
        reply = await _stub(who, r).ListNotifications(
            pb.ListNotificationsRequest(unread_only=unread_only, page_size=limit, page_token=token),
            metadata=metadata[r],
            timeout=who.timeout,
        )
        hits = [Hit(r, 0.0, n.id, n.id, n) for n in reply.notifications]
        return hits, bool(reply.next_page_token)

    items, next_cursor = await merged_page(regions, cursor, limit, fetch)
    unread = await _unread(who, regions, metadata)
    return {
        "data": [schemas.to_json(n) for n in items],
        "next_cursor": next_cursor,
        "unread": unread,
        "regions": regions,
    }


async def _unread(who: Caller, regions: list[str], metadata: dict[str, Any]) -> int:
    replies = await asyncio.gather(
        *(
            _stub(who, r).CountUnread(
                pb.CountUnreadRequest(), metadata=metadata[r], timeout=who.timeout
            )
            for r in regions
        )
    )
    return sum(reply.unread for reply in replies)


@router.get(
    "/v1/notifications/unread-count",
    tags=["notifications"],
    summary="Unread notifications",
    **answers.ok(answers.UnreadCount),
)
async def unread_count(who: Caller = Depends(caller), region: str | None = None) -> dict[str, Any]:
    regions = who.regions_param(region)
    metadata = {r: await who.metadata(r) for r in regions}
    return {"unread": await _unread(who, regions, metadata), "regions": regions}


@router.post(
    "/v1/notifications/read",
    tags=["notifications"],
    summary="Mark notifications read",
    **answers.ok(answers.Marked),
)
async def mark_read(
    body: MarkReadIn, who: Caller = Depends(caller), region: str | None = None
) -> dict[str, Any]:
    if not body.all and not body.ids:
        raise invalid("ids", "name the notifications to mark read, or send all: true")
    by_region: dict[str, list[str]] = {}
    for i, notification_id in enumerate(body.ids):
        by_region.setdefault(region_of_id(notification_id, f"ids[{i}]"), []).append(notification_id)
    regions = who.regions_param(region) if body.all else list(by_region)
    marked = 0
    for r in regions:
        reply = await _stub(who, r).MarkRead(
            pb.MarkReadRequest(ids=by_region.get(r, []), all=body.all),
            metadata=await who.metadata(r),
            timeout=who.timeout,
        )
        marked += reply.marked
    return {"marked": marked}


@router.post(
    "/v1/notifications/{notification_id}/read",
    tags=["notifications"],
    summary="Mark one read",
    **answers.ok(answers.Marked),
)
async def mark_one_read(notification_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    r = region_of_id(notification_id)
    reply = await _stub(who, r).MarkRead(
        pb.MarkReadRequest(ids=[notification_id]),
        metadata=await who.metadata(r),
        timeout=who.timeout,
    )
    return {"marked": reply.marked}


@router.get(
    "/v1/notifications/preferences",
    tags=["notifications"],
    summary="The caller's channels",
    **answers.ok(answers.Preferences),
)
async def get_preferences(who: Caller = Depends(caller)) -> dict[str, Any]:
    r = who.principal.home_region
    reply = await _stub(who, r).GetPreferences(
        pb.GetPreferencesRequest(), metadata=await who.metadata(r), timeout=who.timeout
    )
    return schemas.to_json(reply)


@router.put(
    "/v1/notifications/preferences",
    tags=["notifications"],
    summary="Which channels the caller wants per kind of notification",
    **answers.ok(answers.Preferences),
)
async def put_preferences(body: PreferencesIn, who: Caller = Depends(caller)) -> dict[str, Any]:
    request = pb.PutPreferencesRequest(
        preferences=[pb.Preference(kind=p.kind, channels=p.channels) for p in body.preferences]
    )

    async def put(r: str, metadata: Any) -> Any:
        return await _stub(who, r).PutPreferences(request, metadata=metadata, timeout=who.timeout)

    return schemas.to_json((await in_every_region(who, put))[0])


@router.get(
    "/v1/notifications/working-hours",
    tags=["notifications"],
    summary="The tenant's default working hours (for users who set none, and campaigns)",
    **answers.ok(answers.WorkingHours),
)
async def get_working_hours(who: Caller = Depends(caller)) -> dict[str, Any]:
    r = who.principal.home_region
    reply = await _stub(who, r).GetWorkingHours(
        pb.GetWorkingHoursRequest(), metadata=await who.metadata(r), timeout=who.timeout
    )
    return schemas.to_json(reply)


@router.put(
    "/v1/notifications/working-hours",
    tags=["notifications"],
    summary="Set the tenant's default working hours",
    **answers.ok(answers.WorkingHours),
)
async def put_working_hours(body: WorkingHoursIn, who: Caller = Depends(caller)) -> dict[str, Any]:
    if not who.principal.has_role("admin"):
        # Like settings.py: the write does not exist for other roles.
        raise Problem(404, "Not found")
    request = pb.PutWorkingHoursRequest(
        working_hours=pb.WorkingHours(start=body.start, end=body.end, days=body.days)
    )

    async def put(r: str, metadata: Any) -> Any:
        return await _stub(who, r).PutWorkingHours(request, metadata=metadata, timeout=who.timeout)

    # Tenant configuration, not personal data: every region keeps the same default, so
    # each region's dispatcher decides locally.
    return schemas.to_json((await in_every_region(who, put))[0])


@router.get(
    "/v1/notifications/deliveries",
    tags=["notifications"],
    summary="The delivery log: each planned message and every attempt",
    **answers.ok(answers.NotificationDeliveries),
)
async def list_deliveries(
    who: Caller = Depends(caller),
    recipient_id: str = "",
    event_id: str = "",
    status: str = "",
    campaign_id: str = "",
    region: str | None = None,
    limit: int = Query(100, ge=1, le=500),
) -> dict[str, Any]:
    regions = who.regions_param(region)
    data: list[dict[str, Any]] = []
    for r in regions:
        reply = await _stub(who, r).ListDeliveries(
            pb.ListDeliveriesRequest(
                recipient_id=recipient_id,
                event_id=event_id,
                status=status,
                campaign_id=campaign_id,
                page_size=limit,
            ),
            metadata=await who.metadata(r),
            timeout=who.timeout,
        )
        data.extend(schemas.to_json(d) for d in reply.deliveries)
    return {"data": data, "regions": regions}


# ------------------------------------------------------------------ templates


@router.get(
    "/v1/templates",
    tags=["templates"],
    summary="Message templates (and the defaults)",
    **answers.ok(answers.Templates),
)
async def list_templates(
    who: Caller = Depends(caller), kind: str = "", locale: str = "", include_builtin: bool = True
) -> dict[str, Any]:
    r = who.principal.home_region
    reply = await _stub(who, r).ListTemplates(
        pb.ListTemplatesRequest(kind=kind, locale=locale, include_builtin=include_builtin),
        metadata=await who.metadata(r),
        timeout=who.timeout,
    )
    return {"data": [schemas.to_json(t) for t in reply.templates]}


@router.put(
    "/v1/templates/{kind}/{locale}",
    tags=["templates"],
    summary="Save the tenant's template for one kind and locale (refused if it does not render)",
    **answers.ok(answers.Template),
)
async def put_template(
    kind: str, locale: str, body: TemplateIn, who: Caller = Depends(caller)
) -> dict[str, Any]:
    require_role(who, "admin")
    request = pb.PutTemplateRequest(
        template=pb.Template(
            kind=kind,
            locale=locale,
            subject=body.subject,
            body_text=body.body_text,
            body_html=body.body_html,
        )
    )

    async def put(r: str, metadata: Any) -> Any:
        return await _stub(who, r).PutTemplate(request, metadata=metadata, timeout=who.timeout)

    return schemas.to_json((await in_every_region(who, put))[0])


@router.delete(
    "/v1/templates/{kind}/{locale}",
    status_code=204,
    tags=["templates"],
    summary="Back to the shipped default",
)
async def delete_template(kind: str, locale: str, who: Caller = Depends(caller)) -> Response:
    require_role(who, "admin")
    request = pb.DeleteTemplateRequest(kind=kind, locale=locale)

    async def delete(r: str, metadata: Any) -> Any:
        return await _stub(who, r).DeleteTemplate(request, metadata=metadata, timeout=who.timeout)

    await in_every_region(who, delete)
    return Response(status_code=204)


# ------------------------------------------------------------------ campaigns


@router.post(
    "/v1/campaigns",
    status_code=201,
    tags=["campaigns"],
    summary="Send a template to a consented segment of one region's contacts",
    **answers.ok(answers.Campaign, 201),
)
async def create_campaign(
    body: CampaignIn,
    response: Response,
    who: Caller = Depends(caller),
    key: str | None = Header(None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    require_role(who, "admin", "manager")
    r = who.regions_param(body.region)[0]
    created = await _stub(who, r).CreateCampaign(
        pb.CreateCampaignRequest(
            campaign=pb.Campaign(
                name=body.name,
                purpose=body.purpose,
                template_kind=body.template_kind,
                segment=pb.Segment(**body.segment.model_dump()),
                channel=body.channel,
            )
        ),
        metadata=await who.metadata(r, idempotency_key(key)),
        timeout=who.timeout,
    )
    response.headers["Location"] = f"/v1/campaigns/{created.id}"
    return schemas.to_json(created)


@router.get(
    "/v1/campaigns",
    tags=["campaigns"],
    summary="Campaigns and their counts",
    **answers.ok(answers.Campaigns),
)
async def list_campaigns(
    who: Caller = Depends(caller), region: str | None = None
) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for r in who.regions_param(region):
        reply = await _stub(who, r).ListCampaigns(
            pb.ListCampaignsRequest(), metadata=await who.metadata(r), timeout=who.timeout
        )
        data.extend(schemas.to_json(c) for c in reply.campaigns)
    return {"data": data}


@router.get(
    "/v1/campaigns/{campaign_id}",
    tags=["campaigns"],
    summary="Progress and counts",
    **answers.ok(answers.Campaign),
)
async def get_campaign(campaign_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    r = region_of_id(campaign_id)
    reply = await _stub(who, r).GetCampaign(
        pb.GetCampaignRequest(id=campaign_id), metadata=await who.metadata(r), timeout=who.timeout
    )
    return schemas.to_json(reply)


# ------------------------------------------------------------------ greeting rules


class GreetingRuleIn(schemas.Strict):
    enabled: bool = True
    channel: str = Field("email", pattern="^(email|sms)$", description="email or sms")
    purpose: str = Field(max_length=64, description="consent purpose, e.g. greetings")
    local_time: str = Field("10:00", max_length=5, description="HH:MM in the contact's zone")


@router.put(
    "/v1/greetings/{kind}",
    tags=["campaigns"],
    summary="Greet consented contacts on their birthday (kind: birthday)",
    **answers.ok(answers.GreetingRule),
)
async def put_greeting_rule(
    kind: str, body: GreetingRuleIn, who: Caller = Depends(caller)
) -> dict[str, Any]:
    require_role(who, "admin")
    request = pb.PutGreetingRuleRequest(rule=pb.GreetingRule(kind=kind, **body.model_dump()))

    async def put(r: str, metadata: Any) -> Any:
        return await _stub(who, r).PutGreetingRule(request, metadata=metadata, timeout=who.timeout)

    # Tenant configuration: every region greets its own contacts by the same rule.
    return schemas.to_json((await in_every_region(who, put))[0])


@router.get(
    "/v1/greetings",
    tags=["campaigns"],
    summary="The tenant's greeting rules",
    **answers.ok(answers.GreetingRules),
)
async def list_greeting_rules(who: Caller = Depends(caller)) -> dict[str, Any]:
    r = who.principal.home_region
    reply = await _stub(who, r).ListGreetingRules(
        pb.ListGreetingRulesRequest(), metadata=await who.metadata(r), timeout=who.timeout
    )
    return {"data": [schemas.to_json(rule) for rule in reply.rules]}


# ------------------------------------------------------------------ public


def _token_route(token: str) -> tuple[str, str]:
    """(tenant, region) read from the token for routing; the service checks its signature."""
    try:
        body = token.split(".", 1)[0]
        tenant, contact_id, _, _ = json.loads(
            base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        )
    except (ValueError, TypeError) as exc:
        raise Problem(404, "Not found", "this unsubscribe link is not valid") from exc
    if not isinstance(contact_id, str) or not is_valid_id(contact_id):
        raise Problem(404, "Not found", "this unsubscribe link is not valid")
    return str(tenant), contact_id.split("_", 1)[0]


async def _unsubscribe(token: str, gateway: Gateway) -> str:
    if len(token) > 1000:
        raise Problem(404, "Not found", "this unsubscribe link is not valid")
    tenant, region = _token_route(token)
    if region not in gateway.regions:
        raise Problem(404, "Not found", "this unsubscribe link is not valid")
    principal = Principal(tenant_id=tenant, user_id="public:unsubscribe", home_region=region)
    reply = await gateway.clients.stub("notifications", "notifications", region).Unsubscribe(
        pb.UnsubscribeRequest(token=token),
        metadata=principal.to_metadata(),
        timeout=gateway.timeout,
    )
    return str(reply.purpose)


@router.post(
    "/public/unsubscribe/{token}",
    tags=["public"],
    summary="One-click unsubscribe",
    **answers.ok(answers.Unsubscribed),
)
async def unsubscribe_post(
    token: str, gateway: Gateway = Depends(current_gateway)
) -> dict[str, Any]:
    return {"unsubscribed": True, "purpose": await _unsubscribe(token, gateway)}


@router.get(
    "/public/unsubscribe/{token}",
    tags=["public"],
    summary="The unsubscribe link of a campaign message",
    **answers.file(200, "text/html"),
)
async def unsubscribe_get(token: str, gateway: Gateway = Depends(current_gateway)) -> HTMLResponse:
    await _unsubscribe(token, gateway)
    return HTMLResponse(
        "<!DOCTYPE html><html><body><p>You are unsubscribed. "
        "You will receive no more of these messages.</p></body></html>"
    )


MAX_SMS_BODY = 10_000


@router.post(
    "/public/sms/{region}",
    tags=["public"],
    summary="Inbound SMS from the region's SMS provider (a STOP reply opts out)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["from"],
                        "properties": {
                            "from": {"type": "string", "description": "E.164 sender"},
                            "to": {"type": "string"},
                            "text": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
    **answers.ok(answers.SmsReceived),
)
async def receive_sms(
    region: str,
    request: Request,
    gateway: Gateway = Depends(current_gateway),
    timestamp: str = Header("", alias="X-Crm-Timestamp", max_length=20),
    signature: str = Header("", alias="X-Crm-Signature", max_length=200),
) -> dict[str, Any]:
    if region not in gateway.regions:
        raise Problem(404, "Not found", f"no region {region}")
    body = await request.body()
    if len(body) > MAX_SMS_BODY:
        raise invalid("body", f"at most {MAX_SMS_BODY} bytes")
    if not timestamp or not signature:
        raise Problem(401, "Unauthorized", "sign with X-Crm-Timestamp and X-Crm-Signature")
    try:
        reply = await gateway.clients.stub("notifications", "notifications", region).ReceiveSms(
            pb.ReceiveSmsRequest(body=body, timestamp=timestamp, signature=signature),
            timeout=gateway.timeout,
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.PERMISSION_DENIED:
            raise Problem(401, "Unauthorized", error.details() or "bad signature") from error
        raise
    return schemas.to_json(reply)
