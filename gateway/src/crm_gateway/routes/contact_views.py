"""/v1/contacts/views: saved views of the contacts list (filters and sort).

A view is written in its owner's home region (the contacts service there keeps it) and
is private, or shared with the owner's team. Views hold the list's settings, no personal
data of a contact, so listing asks every region for the caller's own views and those
shared with the caller's team (teammates may live in other regions).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import Field

from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_gateway import answers, schemas
from crm_gateway.access import Caller, caller, in_every_region, region_of_id
from crm_gateway.problems import Problem

router = APIRouter(prefix="/v1/contacts/views", tags=["contacts"])

_FILTERS_DOC = (
    "the list's filters by name: q, stage, tag, country, source, owner, mine, region, "
    "created_from, created_to"
)
_SORT_DOC = "name, -name, created_at or -created_at; empty for the default order"


class ContactViewIn(schemas.Strict):
    name: str = Field(max_length=1000)
    filters: dict[str, str] = Field(default_factory=dict, description=_FILTERS_DOC)
    sort: str = Field("", max_length=100, description=_SORT_DOC)
    shared: bool = Field(False, description="shared with your team; otherwise only yours")


class ContactViewPatch(schemas.Strict):
    name: str | None = Field(None, max_length=1000)
    filters: dict[str, str] | None = Field(None, description=_FILTERS_DOC)
    sort: str | None = Field(None, max_length=100, description=_SORT_DOC)
    shared: bool | None = None


def _stub(who: Caller, region: str) -> Any:
    return who.stub("contacts", "contacts", region)


async def _save(who: Caller, region: str, view: pb.ContactView) -> dict[str, Any]:
    saved = await _stub(who, region).SaveContactView(
        pb.SaveContactViewRequest(view=view),
        metadata=who.principal.to_metadata(),
        timeout=who.timeout,
    )
    return schemas.to_json(saved)


@router.get(
    "", summary="Your saved views and your team's shared ones", **answers.ok(answers.ContactViews)
)
async def list_views(who: Caller = Depends(caller)) -> dict[str, Any]:
    async def list_in(region: str, metadata: Any) -> Any:
        return await _stub(who, region).ListContactViews(
            pb.ListContactViewsRequest(), metadata=metadata, timeout=who.timeout
        )

    replies = await in_every_region(who, list_in)
    views = [schemas.to_json(v) for reply in replies for v in reply.views]
    views.sort(key=lambda v: (v["name"].casefold(), v["id"]))
    return {"data": views}


@router.post(
    "",
    status_code=201,
    summary="Save the list's filters and sort as a view",
    **answers.ok(answers.ContactView, 201),
)
async def create_view(
    body: ContactViewIn, response: Response, who: Caller = Depends(caller)
) -> dict[str, Any]:
    view = pb.ContactView(name=body.name, filters=body.filters, sort=body.sort, shared=body.shared)
    saved = await _save(who, who.principal.home_region, view)
    response.headers["Location"] = f"/v1/contacts/views/{saved['id']}"
    return saved


async def _current(who: Caller, view_id: str) -> tuple[str, pb.ContactView]:
    region = region_of_id(view_id)
    reply = await _stub(who, region).ListContactViews(
        pb.ListContactViewsRequest(), metadata=who.principal.to_metadata(), timeout=who.timeout
    )
    found = next((v for v in reply.views if v.id == view_id), None)
    if found is None:
        raise Problem(404, "Not found", "no such view")
    return region, found


@router.patch(
    "/{view_id}",
    summary="Change a view's name, filters, sort or sharing (its owner only)",
    **answers.ok(answers.ContactView),
)
async def update_view(
    view_id: str, body: ContactViewPatch, who: Caller = Depends(caller)
) -> dict[str, Any]:
    region, view = await _current(who, view_id)
    if body.name is not None:
        view.name = body.name
    if body.filters is not None:
        view.filters.clear()
        view.filters.update(body.filters)
    if body.sort is not None:
        view.sort = body.sort
    if body.shared is not None:
        view.shared = body.shared
    return await _save(who, region, view)


@router.delete("/{view_id}", status_code=204, summary="Delete a view (its owner only)")
async def delete_view(view_id: str, who: Caller = Depends(caller)) -> Response:
    await _stub(who, region_of_id(view_id)).DeleteContactView(
        pb.DeleteContactViewRequest(id=view_id),
        metadata=who.principal.to_metadata(),
        timeout=who.timeout,
    )
    return Response(status_code=204)
