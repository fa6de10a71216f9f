"""The relocation orchestrator: moves a subject to the region their new country requires.

Why the gateway, and why this crossing is allowed: cells never replicate personal data
to each other and a service only reaches its own region (crm_kit.peers). When a
person's country changes so that the tenant's residency policy places them in another
region, keeping them where they are would itself break residency; the move is the
legally required transfer. Only the gateway reaches every region, so it runs the move,
on an officer's or admin's explicit request, and every step is audited in the region
where it happens (relocation.copy_out / copy_in / remove, kind "relocation").

Order, so that the data is never in neither region: copy out of the old region, copy
into the new one, verify that the new region holds as many rows per table as the old,
and only then remove the originals (the old contact id becomes an alias of the new).
A failure before removal deletes the partial copy and leaves the old region untouched.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any

import grpc

from crm_api.crm.compliance.v1 import compliance_pb2 as pb
from crm_api.crm.compliance.v1 import compliance_pb2_grpc
from crm_api.crm.privacy.v1 import privacy_pb2
from crm_gateway.access import Caller
from crm_gateway.clients import STUBS
from crm_gateway.problems import Problem
from crm_kit.ids import new_id


def _stub(who: Caller, service: str, region: str) -> Any:
    return compliance_pb2_grpc.RelocationServiceStub(who.gateway.clients.channel(service, region))


def _counts(reply: pb.CopyOutResponse) -> Counter[str]:
    return Counter(row.table for row in reply.rows)


async def _holds_data(who: Caller, service: str, region: str, contact_id: str) -> bool:
    """Whether a service without relocation support holds anything about the subject."""
    if "privacy" not in STUBS[service]:
        return False
    reply = await who.stub(service, "privacy", region).ExportSubject(
        privacy_pb2.ExportSubjectRequest(contact_id=contact_id),
        metadata=await who.metadata(region),
        timeout=who.timeout,
    )
    return bool(reply.records)


async def relocate(
    who: Caller, contact_id: str, old_region: str, new_region: str, country: str
) -> dict[str, Any]:
    new_contact_id = new_id(new_region)
    old_meta = await who.metadata(old_region)
    new_meta = await who.metadata(new_region)
    # 1. Copy out of the old region, every service.
    copies: dict[str, pb.CopyOutResponse] = {}
    for service in STUBS:
        try:
            copies[service] = await _stub(who, service, old_region).CopyOut(
                pb.CopyOutRequest(contact_id=contact_id), metadata=old_meta, timeout=who.timeout
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            if await _holds_data(who, service, old_region, contact_id):
                raise Problem(
                    409,
                    "Conflict",
                    f"{service} holds data about {contact_id} but cannot relocate it; "
                    "nothing was moved",
                ) from exc
    copied: list[str] = []
    id_map: dict[str, str] = {contact_id: new_contact_id}
    try:
        # 2. Copy into the new region; contacts last, so that its rows that point at
        # other services' records (a file on a deal) get their new ids.
        for service, copy in sorted(copies.items(), key=lambda item: item[0] == "contacts"):
            if not copy.rows:
                continue
            copied.append(service)
            reply = await _stub(who, service, new_region).CopyIn(
                pb.CopyInRequest(
                    old_contact_id=contact_id,
                    new_contact_id=new_contact_id,
                    rows=copy.rows,
                    id_map=id_map,
                    country=country,
                ),
                metadata=new_meta,
                timeout=who.timeout,
            )
            id_map.update(reply.id_map)
        # 3. Verify: the new region holds the same rows per table.
        for service in copied:
            check = await _stub(who, service, new_region).CopyOut(
                pb.CopyOutRequest(contact_id=new_contact_id), metadata=new_meta, timeout=who.timeout
            )
            if _counts(check) != _counts(copies[service]):
                raise Problem(
                    500,
                    "Relocation failed",
                    f"{service}: the copy in {new_region} does not match; nothing was removed",
                )
    except BaseException:
        for service in reversed(copied):
            # The original error is what the caller sees; an unremovable copy stays
            # unreferenced (its contact id was never handed out).
            with contextlib.suppress(grpc.aio.AioRpcError):
                await _stub(who, service, new_region).Remove(
                    pb.RemoveRequest(contact_id=new_contact_id),
                    metadata=new_meta,
                    timeout=who.timeout,
                )
        raise
    # 4. Only now remove the originals; contacts last, leaving the old id as an alias.
    for service in reversed(list(copies)):
        await _stub(who, service, old_region).Remove(
            pb.RemoveRequest(contact_id=contact_id, new_contact_id=new_contact_id),
            metadata=old_meta,
            timeout=who.timeout,
        )
    return {
        "old_contact_id": contact_id,
        "new_contact_id": new_contact_id,
        "from_region": old_region,
        "to_region": new_region,
        "moved": {service: len(copy.rows) for service, copy in copies.items()},
    }
