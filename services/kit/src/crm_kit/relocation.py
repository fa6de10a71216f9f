"""Relocation of a subject's rows between regions, for every service alike.

A service declares which of its tables hold a subject's rows (`OwnedTable`, parents
before children); `RelocationServicer` copies them out exactly, stores a copy under
new ids in another region (remapping the contact and every moved id), and removes the
originals once the gateway's orchestrator has verified the copy. Every step writes an
audit record (kind "relocation") in the region where it happens.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import grpc
import sqlalchemy as sa
from nats.aio.msg import Msg
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.compliance.v1 import compliance_pb2 as pb
from crm_api.crm.compliance.v1 import compliance_pb2_grpc
from crm_api.crm.events.v1 import contacts_pb2 as contact_events
from crm_api.crm.events.v1 import envelope_pb2
from crm_kit.audit import audit_as
from crm_kit.context import Principal, current_principal
from crm_kit.db import transaction
from crm_kit.errors import InvalidArgument, PermissionDenied
from crm_kit.ids import is_valid_id, new_id, region_of
from crm_kit.messaging import Consumer, subject_for

if TYPE_CHECKING:
    from crm_kit.runtime import Runtime


@dataclass(frozen=True)
class OwnedTable:
    """Rows of `model` that belong to a subject.

    `contact_column`: rows whose column holds the contact id (for the contact's own
    table, its primary key). `parent`: (column, table) for rows found through a parent
    table's moved ids. `remap`: other columns holding ids of moved records."""

    model: Any
    contact_column: str = ""
    parent: tuple[str, str] | None = None
    remap: tuple[str, ...] = ()


# Extra work after copy-in or before removal (contacts: new country, id alias).
CopyInHook = Callable[[AsyncSession, dict[str, Any], pb.CopyInRequest], Awaitable[None]]
RemoveHook = Callable[[AsyncSession, pb.RemoveRequest], Awaitable[None]]


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, bytes | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        if tag == "$dt":
            return datetime.fromisoformat(text)
        if tag == "$d":
            return date.fromisoformat(text)
        if tag == "$dec":
            return Decimal(text)
        if tag == "$b64":
            return base64.b64decode(text)
    return value


def encode_row(row: Any) -> str:
    columns = row.__table__.columns
    return json.dumps({c.key: _encode(getattr(row, c.key)) for c in columns}, ensure_ascii=False)


class RelocationServicer(compliance_pb2_grpc.RelocationServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.region = runtime.region
        self.service = runtime.settings.service_name

    @property
    def tables(self) -> list[OwnedTable]:
        return self.runtime.owned_tables

    def _officer(self) -> Principal:
        principal = current_principal()
        if principal is None or not principal.tenant_id:
            raise InvalidArgument.single("metadata", "x-crm-tenant and x-crm-user are required")
        if not principal.has_role("admin", "compliance_officer"):
            raise PermissionDenied("relocation is for compliance officers and admins")
        return principal

    async def _rows(
        self, session: AsyncSession, tenant_id: str, contact_id: str
    ) -> list[tuple[OwnedTable, Any]]:
        found: list[tuple[OwnedTable, Any]] = []
        ids: dict[str, list[Any]] = {}
        for spec in self.tables:
            model = spec.model
            query = sa.select(model).where(model.tenant_id == tenant_id)
            if spec.contact_column:
                query = query.where(getattr(model, spec.contact_column) == contact_id)
            elif spec.parent:
                column, table = spec.parent
                query = query.where(getattr(model, column).in_(ids.get(table, [])))
            rows = list(await session.scalars(query))
            found.extend((spec, row) for row in rows)
            ids[model.__tablename__] = [getattr(row, "id", None) for row in rows]
        return found

    async def CopyOut(
        self, request: pb.CopyOutRequest, context: grpc.aio.ServicerContext
    ) -> pb.CopyOutResponse:
        principal = self._officer()
        region_of(request.contact_id, "contact_id")
        async with transaction(self.runtime.sessions) as session:
            rows = await self._rows(session, principal.tenant_id, request.contact_id)
            await audit_as(
                session, principal, self.region, "relocation.copy_out", request.contact_id
            )
        return pb.CopyOutResponse(
            service=self.service,
            rows=[
                pb.CopiedRow(
                    table=spec.model.__tablename__,
                    id=str(getattr(row, "id", "")),
                    data_json=encode_row(row),
                )
                for spec, row in rows
            ],
        )

    async def CopyIn(
        self, request: pb.CopyInRequest, context: grpc.aio.ServicerContext
    ) -> pb.CopyInResponse:
        principal = self._officer()
        if region_of(request.new_contact_id, "new_contact_id") != self.region:
            raise InvalidArgument.single("new_contact_id", f"must be an id of {self.region}")
        specs = {spec.model.__tablename__: spec for spec in self.tables}
        id_map = {**request.id_map, request.old_contact_id: request.new_contact_id}
        moved: dict[str, str] = {}
        async with transaction(self.runtime.sessions) as session:
            for copied in request.rows:
                spec = specs.get(copied.table)
                if spec is None:
                    raise InvalidArgument.single("rows", f"unknown table {copied.table!r}")
                values = {k: _decode(v) for k, v in json.loads(copied.data_json).items()}
                values["tenant_id"] = principal.tenant_id
                old_id = values.get("id")
                if isinstance(old_id, str) and old_id in id_map:
                    values["id"] = id_map[old_id]  # the contact itself
                elif isinstance(old_id, str):
                    values["id"] = new_id(self.region)
                    moved[old_id] = values["id"]
                    id_map[old_id] = values["id"]
                else:
                    values.pop("id", None)  # database-generated key
                for column in (spec.contact_column, *(spec.parent or ())[:1], *spec.remap):
                    if column and values.get(column) in id_map:
                        values[column] = id_map[values[column]]
                if self.runtime.relocation_copy_in is not None:
                    await self.runtime.relocation_copy_in(session, values, request)
                session.add(spec.model(**values))
                await session.flush()
            await audit_as(
                session, principal, self.region, "relocation.copy_in", request.new_contact_id
            )
        return pb.CopyInResponse(id_map=moved)

    async def Remove(
        self, request: pb.RemoveRequest, context: grpc.aio.ServicerContext
    ) -> pb.RemoveResponse:
        principal = self._officer()
        async with transaction(self.runtime.sessions) as session:
            rows = await self._rows(session, principal.tenant_id, request.contact_id)
            # Record ids name a record in a stored answer; a numeric key would match any digit.
            ids = [request.contact_id]
            ids += [row.id for _, row in rows if is_valid_id(str(getattr(row, "id", "")))]
            for _, row in reversed(rows):  # children first, one by one: no ORM relationships
                await session.delete(row)  # tell the flush about the foreign keys
                await session.flush()
            if self.runtime.relocation_remove is not None:
                await self.runtime.relocation_remove(session, request)
            await forget_answers(session, principal.tenant_id, ids)
            await audit_as(session, principal, self.region, "relocation.remove", request.contact_id)
        return pb.RemoveResponse(removed=len(rows))


async def forget_answers(session: AsyncSession, tenant_id: str, ids: list[str]) -> None:
    """Deletes the stored answers (kept for Idempotency-Key replays) that name a moved
    record: they quote the person (a created contact's name and emails, a note's text),
    and a copy left in the old region breaks residency. A retry of a request answered
    before the move is then handled as a new request, in the region the id names."""
    await session.execute(
        sa.text(
            "DELETE FROM idempotency_keys WHERE tenant_id = :tenant AND EXISTS ("
            " SELECT 1 FROM unnest(CAST(:ids AS bytea[])) AS needle"
            " WHERE position(needle IN response) > 0)"
        ),
        {"tenant": tenant_id, "ids": [i.encode() for i in ids]},
    )


def merge_follower(runtime: Runtime) -> Consumer:
    """Rows about a contact that was merged into another follow the survivor.

    A merge folds one person's two records into one; what the services hold about the
    merged record (tasks, inbox items, deliveries, form submissions, files) is then about
    the survivor, and must move, be exported and be erased with it. Without this, a
    relocation of the survivor left those rows, with the person's name in their titles and
    fields, in the old region. The contacts service re-points its own rows in the merge.

    The answers stored for replays that name the merged record (its creation, a deal
    created for it) quote the person under the merged record's id, where neither an
    erasure nor a relocation of the survivor finds them: they are forgotten."""
    tables = [spec.model for spec in runtime.owned_tables if spec.contact_column == "contact_id"]

    async def follow(session: AsyncSession, envelope: envelope_pb2.Envelope, msg: Msg) -> None:
        merged = contact_events.ContactMerged()
        envelope.payload.Unpack(merged)
        for model in tables:
            await session.execute(
                sa.update(model)
                .where(model.tenant_id == envelope.tenant_id, model.contact_id == merged.merged_id)
                .values(contact_id=merged.survivor_id)
            )
        await forget_answers(session, envelope.tenant_id, [merged.merged_id])

    return Consumer(
        runtime.sessions,
        runtime.nats,
        durable=f"{runtime.settings.service_name}-merges",
        subjects=[subject_for(runtime.region, "contacts", "contact", "merged")],
        handler=follow,
    )


def register_relocation(server: grpc.aio.Server, runtime: Runtime) -> list[str]:
    if not runtime.owned_tables:
        return []
    # Started with the other background tasks (the kit reads the list after registering).
    runtime.background.append(merge_follower(runtime).run)
    compliance_pb2_grpc.add_RelocationServiceServicer_to_server(RelocationServicer(runtime), server)
    return [pb.DESCRIPTOR.services_by_name["RelocationService"].full_name]
