"""Rows to protobuf messages and back; the only place that knows both shapes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from google.protobuf import timestamp_pb2

from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_api.crm.policy.v1 import policy_pb2
from crm_contacts import models

ADDRESS_FIELDS = ("street", "city", "postal_code", "state", "country")


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def address_to_dict(address: pb.Address) -> dict[str, str]:
    return {name: getattr(address, name) for name in ADDRESS_FIELDS if getattr(address, name)}


def contact_to_pb(
    row: models.Contact, links: list[tuple[str, str, str]] | None = None, region: str = ""
) -> pb.Contact:
    """`links` are (company_id, role, company_name) of the contact's companies."""
    return pb.Contact(
        id=row.id,
        region=region or row.id.split("_", 1)[0],
        first_name=row.first_name,
        last_name=row.last_name,
        emails=row.emails,
        phones=row.phones,
        address=pb.Address(**row.address),
        time_zone=row.time_zone,
        language=row.language,
        owner_id=row.owner_id,
        owner_team=row.owner_team,
        source=row.source,
        lifecycle_stage=row.lifecycle_stage,
        tags=row.tags,
        important_dates=[pb.ImportantDate(**d) for d in row.important_dates],
        custom_fields_json=json.dumps(row.custom_fields, ensure_ascii=False, sort_keys=True),
        companies=[
            pb.CompanyLink(company_id=cid, role=role, company_name=name)
            for cid, role, name in links or []
        ],
        created_at=timestamp(row.created_at),
        updated_at=timestamp(row.updated_at),
        merged_into_id=row.merged_into_id or "",
        version=row.version,
    )


def company_to_pb(
    row: models.Company, members: list[tuple[str, str, str]] | None = None
) -> pb.Company:
    """`members` are (contact_id, role, display_name)."""
    return pb.Company(
        id=row.id,
        region=row.id.split("_", 1)[0],
        name=row.name,
        domain=row.domain,
        industry=row.industry,
        address=pb.Address(**row.address),
        phones=row.phones,
        owner_id=row.owner_id,
        owner_team=row.owner_team,
        tags=row.tags,
        custom_fields_json=json.dumps(row.custom_fields, ensure_ascii=False, sort_keys=True),
        members=[
            pb.CompanyMember(contact_id=cid, role=role, display_name=name)
            for cid, role, name in members or []
        ],
        created_at=timestamp(row.created_at),
        updated_at=timestamp(row.updated_at),
        version=row.version,
    )


def timeline_to_pb(row: models.TimelineEntry) -> pb.TimelineEntry:
    return pb.TimelineEntry(
        id=row.id,
        contact_id=row.contact_id,
        kind=row.kind,
        body=row.body,
        direction=row.direction,
        subject=row.subject,
        duration_seconds=row.duration_seconds,
        occurred_at=timestamp(row.occurred_at),
        author_id=row.author_id,
        created_at=timestamp(row.created_at),
        attachment_id=row.attachment_id,
    )


def attachment_to_pb(row: models.Attachment) -> pb.Attachment:
    return pb.Attachment(
        id=row.id,
        contact_id=row.contact_id,
        deal_id=row.deal_id,
        filename=row.filename,
        media_type=row.media_type,
        size=row.size,
        sha256=row.sha256,
        uploaded_by=row.uploaded_by,
        created_at=timestamp(row.created_at),
    )


def consent_to_pb(row: models.Consent) -> pb.Consent:
    return pb.Consent(
        id=row.id,
        contact_id=row.contact_id,
        purpose=row.purpose,
        lawful_basis=row.lawful_basis,
        status=row.status,
        source=row.source,
        recorded_at=timestamp(row.recorded_at),
        recorded_by=row.recorded_by,
    )


def field_definition_to_pb(row: models.CustomFieldDefinition) -> pb.CustomFieldDefinition:
    return pb.CustomFieldDefinition(
        entity=row.entity,
        key=row.key,
        label=row.label,
        type=row.type,
        options=row.options,
        required=row.required,
    )


def policy_to_pb(row: models.TenantPolicy) -> policy_pb2.TenantPolicy:
    return policy_pb2.TenantPolicy(
        tenant_id=row.tenant_id,
        default_region=row.default_region,
        residency_overrides=row.residency_overrides,
        access_grants=[policy_pb2.AccessGrant(**grant) for grant in row.access_grants],
        retention_rules=[policy_pb2.RetentionRule(**rule) for rule in row.retention_rules or []],
        version=row.version,
        updated_by=row.updated_by,
        updated_at=timestamp(row.updated_at),
    )


def row_to_dict(row: Any) -> dict[str, Any]:
    """Every column of an ORM row as JSON-ready data (for privacy exports)."""
    data: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        data[column.key] = value.isoformat() if isinstance(value, datetime) else value
    return data
