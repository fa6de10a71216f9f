"""/v1/contacts: people, their notes, consents, duplicates and merges."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc
from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import RedirectResponse
from google.protobuf import field_mask_pb2, timestamp_pb2
from pydantic import Field

from crm_api.crm.compliance.v1 import privacy_requests_pb2 as requests_pb
from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_api.crm.integrations.v1 import integrations_pb2 as ipb
from crm_gateway import answers, schemas
from crm_gateway.access import Caller, caller, idempotency_key, region_of_id
from crm_gateway.pagination import Hit, merged_page
from crm_gateway.placement import region_for_create
from crm_gateway.problems import Problem, invalid

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])

# The orders of the contacts list (the contacts service checks them too).
SORTS = ("name", "-name", "created_at", "-created_at")


def _stub(who: Caller, region: str) -> Any:
    return who.stub("contacts", "contacts", region)


@router.post(
    "",
    status_code=201,
    summary="Create a contact in the region of its country",
    **answers.ok(answers.Contact, 201),
)
async def create_contact(
    body: schemas.ContactIn,
    response: Response,
    who: Caller = Depends(caller),
    key: str | None = Header(None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    region = await region_for_create(who, body.address.country, checked_by_service=True)
    message, _ = schemas.contact_message(body)
    contact = await _stub(who, region).CreateContact(
        pb.CreateContactRequest(contact=message),
        metadata=await who.metadata(region, idempotency_key(key)),
        timeout=who.timeout,
    )
    response.headers["Location"] = f"/v1/contacts/{contact.id}"
    return schemas.to_json(contact)


@router.get(
    "", summary="List and search contacts in one or more regions", **answers.ok(answers.ContactPage)
)
async def list_contacts(
    who: Caller = Depends(caller),
    q: str = Query("", max_length=200, description="search names, emails, phones, companies"),
    owner_id: str = "",
    tag: str = "",
    lifecycle_stage: str = "",
    source: str = "",
    country: str = "",
    company_id: str = "",
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    region: str | None = Query(None, description="comma-separated; default: your home region"),
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
    sort: str = Query(
        "",
        description="name, -name, created_at or -created_at (ties by id); "
        "default: newest first, or by relevance when searching",
    ),
) -> dict[str, Any]:
    if sort and sort not in SORTS:
        raise invalid("sort", f"must be one of {', '.join(SORTS)}")
    regions = who.regions_param(region)
    metadata = {r: await who.metadata(r) for r in regions}

    def stamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
        if value is None:
            return None
        ts = timestamp_pb2.Timestamp()
        ts.FromDatetime(value)
        return ts

    async def fetch(r: str, token: str) -> tuple[list[Hit], bool]:
        reply = await _stub(who, r).ListContacts(
            pb.ListContactsRequest(
                query=q,
                owner_id=owner_id,
                tag=tag,
                lifecycle_stage=lifecycle_stage,
                source=source,
                country=country,
                company_id=company_id,
                created_after=stamp(created_after),
                created_before=stamp(created_before),
                page_size=limit,
                page_token=token,
                sort=sort,
            ),
            metadata=metadata[r],
            timeout=who.timeout,
        )
        hits = [Hit(r, h.score, h.contact.id, h.cursor, h) for h in reply.hits]
        return hits, bool(reply.next_page_token)

    if sort:
        items, next_cursor = await merged_page(
            regions,
            cursor,
            limit,
            fetch,
            sort_key=lambda h: str(h.item.sort_key),
            descending=sort.startswith("-"),
        )
    else:
        items, next_cursor = await merged_page(regions, cursor, limit, fetch)
    data = []
    for hit in items:
        contact = schemas.to_json(hit.contact)
        if q:
            contact["score"] = hit.score
        data.append(contact)
    return {"data": data, "next_cursor": next_cursor, "regions": regions}


@router.get(
    "/duplicates",
    summary="Likely duplicates: same email or phone, or similar name and company",
    **answers.ok(answers.Duplicates),
)
async def find_duplicates(
    who: Caller = Depends(caller),
    contact_id: str = "",
    region: str | None = Query(None, description="default: your home region (or the contact's)"),
    min_score: float = Query(0.6, gt=0, le=1),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    target = region_of_id(contact_id, "contact_id") if contact_id else who.regions_param(region)[0]
    reply = await _stub(who, target).FindDuplicates(
        pb.FindDuplicatesRequest(contact_id=contact_id, min_score=min_score, limit=limit),
        metadata=await who.metadata(target),
        timeout=max(who.timeout, 30),
    )
    return {
        "data": [
            {
                "a": schemas.to_json(p.a),
                "b": schemas.to_json(p.b),
                "score": p.score,
                "reasons": list(p.reasons),
            }
            for p in reply.pairs
        ],
        "region": target,
    }


@router.get("/{contact_id}", summary="One contact", **answers.ok(answers.Contact))
async def get_contact(
    contact_id: str, who: Caller = Depends(caller)
) -> dict[str, Any] | RedirectResponse:
    region = region_of_id(contact_id)
    metadata = await who.metadata(region)
    try:
        contact = await _stub(who, region).GetContact(
            pb.GetContactRequest(id=contact_id), metadata=metadata, timeout=who.timeout
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        # A relocated contact: its old id resolves to the new one (permanent redirect).
        try:
            moved = await who.stub("contacts", "privacy_requests", region).ResolveContactAlias(
                requests_pb.ResolveContactAliasRequest(contact_id=contact_id),
                metadata=metadata,
                timeout=who.timeout,
            )
        except grpc.aio.AioRpcError:
            raise exc from None
        return RedirectResponse(f"/v1/contacts/{moved.new_contact_id}", status_code=308)
    return schemas.to_json(contact)


@router.patch(
    "/{contact_id}", summary="Change the fields sent; others stay", **answers.ok(answers.Contact)
)
async def update_contact(
    contact_id: str,
    body: schemas.ContactIn,
    who: Caller = Depends(caller),
    if_match: str | None = Header(None, alias="If-Match", description="the version you read"),
) -> dict[str, Any]:
    region = region_of_id(contact_id)
    message, fields = schemas.contact_message(body, only_set=True)
    if not fields:
        raise invalid("body", "send at least one field to change")
    message.id = contact_id
    expected = 0
    if if_match:
        try:
            expected = int(if_match.strip('"W/'))
        except ValueError as exc:
            raise invalid("If-Match", "expected the contact's version number") from exc
        if not 0 <= expected <= schemas.INT64_MAX:
            raise invalid("If-Match", "expected the contact's version number")
    contact = await _stub(who, region).UpdateContact(
        pb.UpdateContactRequest(
            contact=message,
            update_mask=field_mask_pb2.FieldMask(paths=fields),
            expected_version=expected,
        ),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return schemas.to_json(contact)


@router.post(
    "/{contact_id}/merge",
    summary="Merge a duplicate into this contact",
    **answers.ok(answers.Contact),
)
async def merge_contacts(
    contact_id: str,
    body: schemas.MergeIn,
    who: Caller = Depends(caller),
    key: str | None = Header(None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    region = region_of_id(contact_id)
    if region_of_id(body.merged_id, "merged_id") != region:
        raise invalid("merged_id", "contacts in different regions cannot be merged")
    contact = await _stub(who, region).MergeContacts(
        pb.MergeContactsRequest(survivor_id=contact_id, merged_id=body.merged_id),
        metadata=await who.metadata(region, idempotency_key(key)),
        timeout=who.timeout,
    )
    return schemas.to_json(contact)


@router.post(
    "/{contact_id}/notes",
    status_code=201,
    summary="Add a note or log a call, email or meeting",
    **answers.ok(answers.TimelineEntry, 201),
)
async def add_note(
    contact_id: str,
    body: schemas.NoteIn,
    who: Caller = Depends(caller),
    key: str | None = Header(None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    region = region_of_id(contact_id)
    entry = pb.TimelineEntry(
        contact_id=contact_id,
        kind=body.kind,
        body=body.body,
        direction=body.direction,
        subject=body.subject,
        duration_seconds=body.duration_seconds,
    )
    if body.occurred_at:
        try:
            entry.occurred_at.FromJsonString(body.occurred_at)
        except ValueError as exc:
            raise invalid("occurred_at", "expected an RFC 3339 timestamp") from exc
    created = await _stub(who, region).AddTimelineEntry(
        pb.AddTimelineEntryRequest(entry=entry),
        metadata=await who.metadata(region, idempotency_key(key)),
        timeout=who.timeout,
    )
    return schemas.to_json(created)


@router.get(
    "/{contact_id}/notes",
    summary="The contact's timeline, oldest first",
    **answers.ok(answers.Timeline),
)
async def list_notes(
    contact_id: str,
    who: Caller = Depends(caller),
    limit: int = Query(50, ge=1, le=200),
    cursor: str = "",
) -> dict[str, Any]:
    region = region_of_id(contact_id)
    reply = await _stub(who, region).ListTimeline(
        pb.ListTimelineRequest(contact_id=contact_id, page_size=limit, page_token=cursor),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return {
        "data": [schemas.to_json(e) for e in reply.entries],
        "next_cursor": reply.next_page_token or None,
    }


@router.post(
    "/{contact_id}/consents",
    status_code=201,
    summary="Record a consent given or withdrawn",
    **answers.ok(answers.Consent, 201),
)
async def record_consent(
    contact_id: str,
    body: schemas.ConsentIn,
    who: Caller = Depends(caller),
    key: str | None = Header(None, alias="Idempotency-Key"),
) -> dict[str, Any]:
    region = region_of_id(contact_id)
    consent = await _stub(who, region).RecordConsent(
        pb.RecordConsentRequest(consent=pb.Consent(contact_id=contact_id, **body.model_dump())),
        metadata=await who.metadata(region, idempotency_key(key)),
        timeout=who.timeout,
    )
    return schemas.to_json(consent)


@router.get(
    "/{contact_id}/consents",
    summary="Current consent per purpose, and the history",
    **answers.ok(answers.Consents),
)
async def list_consents(contact_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    region = region_of_id(contact_id)
    reply = await _stub(who, region).ListConsents(
        pb.ListConsentsRequest(contact_id=contact_id),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return {
        "current": [schemas.to_json(c) for c in reply.current],
        "history": [schemas.to_json(c) for c in reply.history],
    }


class ClickToCallIn(schemas.Strict):
    phone: str = Field("", max_length=50, description="one of the contact's numbers")
    provider_id: str = Field("", max_length=100)


@router.post(
    "/{contact_id}/call",
    summary="Click-to-call: the telephony provider connects your phone with the contact's",
    **answers.ok(answers.CallStarted),
)
async def call_contact(
    contact_id: str, body: ClickToCallIn | None = None, who: Caller = Depends(caller)
) -> dict[str, Any]:
    region = region_of_id(contact_id, "contact_id")
    body = body or ClickToCallIn()
    reply = await who.stub("integrations", "integrations", region).StartCall(
        ipb.StartCallRequest(contact_id=contact_id, phone=body.phone, provider_id=body.provider_id),
        metadata=await who.metadata(region),
        # The provider is asked within the call; leave it room to answer.
        timeout=max(who.timeout, 15),
    )
    return schemas.to_json(reply)


__all__ = ["Problem", "router"]
