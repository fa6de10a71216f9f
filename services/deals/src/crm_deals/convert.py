"""Rows to protobuf messages; the only place that knows both shapes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from google.protobuf import timestamp_pb2

from crm_api.crm.deals.v1 import deals_pb2 as pb
from crm_deals import models, money


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def stage_to_pb(row: models.Stage) -> pb.Stage:
    return pb.Stage(
        id=row.id,
        name=row.name,
        position=row.position,
        win_probability=row.win_probability,
        time_limit_hours=row.time_limit_hours,
        kind=row.kind,
        document_template_key=row.document_template_key,
        required_fields=row.required_fields,
    )


def pipeline_to_pb(row: models.Pipeline, stages: Sequence[models.Stage]) -> pb.Pipeline:
    return pb.Pipeline(
        id=row.id,
        name=row.name,
        is_default=row.is_default,
        stages=[stage_to_pb(s) for s in sorted(stages, key=lambda s: s.position)],
        created_at=timestamp(row.created_at),
    )


def amount_text(row: models.Deal) -> str:
    return money.to_text(row.amount, row.currency) if row.amount is not None else ""


def deal_to_pb(
    row: models.Deal,
    stage_name: str,
    history: Sequence[models.StageChange] = (),
    paid: Decimal = Decimal(0),
) -> pb.Deal:
    has_amount = row.amount is not None and bool(row.currency)
    return pb.Deal(
        id=row.id,
        region=row.id.split("_", 1)[0],
        title=row.title,
        contact_id=row.contact_id,
        company_id=row.company_id,
        owner_id=row.owner_id,
        owner_team=row.owner_team,
        source=row.source,
        pipeline_id=row.pipeline_id,
        stage_id=row.stage_id,
        stage_name=stage_name,
        status=row.status,
        amount=(
            pb.Money(amount=amount_text(row), currency=row.currency)
            if row.amount is not None
            else None
        ),
        expected_close_date=(
            row.expected_close_date.isoformat() if row.expected_close_date else ""
        ),
        lost_reason=row.lost_reason,
        description=row.description,
        custom_fields_json=json.dumps(row.custom_fields, ensure_ascii=False, sort_keys=True),
        history=[
            pb.StageChange(
                from_stage_id=h.from_stage_id,
                to_stage_id=h.to_stage_id,
                moved_by=h.moved_by,
                moved_at=timestamp(h.moved_at),
            )
            for h in history
        ],
        stage_entered_at=timestamp(row.stage_entered_at),
        closed_at=timestamp(row.closed_at),
        created_at=timestamp(row.created_at),
        updated_at=timestamp(row.updated_at),
        version=row.version,
        paid=pb.Money(amount=money.to_text(paid, row.currency), currency=row.currency)
        if has_amount
        else None,
        balance_due=pb.Money(
            amount=money.to_text((row.amount or Decimal(0)) - paid, row.currency),
            currency=row.currency,
        )
        if has_amount
        else None,
        paid_in_full_at=timestamp(row.paid_in_full_at),
    )


def payment_to_pb(row: models.Payment) -> pb.Payment:
    return pb.Payment(
        id=row.id,
        deal_id=row.deal_id,
        amount=pb.Money(amount=money.to_text(row.amount, row.currency), currency=row.currency),
        paid_on=row.paid_on.isoformat(),
        method=row.method,
        note=row.note,
        recorded_by=row.recorded_by,
        recorded_at=timestamp(row.recorded_at),
        reversed_at=timestamp(row.reversed_at),
        reversed_by=row.reversed_by,
        reversal_reason=row.reversal_reason,
    )


def rate_to_pb(row: models.ExchangeRate) -> pb.ExchangeRate:
    return pb.ExchangeRate(
        currency=row.currency,
        quote_currency=row.quote_currency,
        rate=f"{row.rate.normalize():f}",
        valid_on=row.valid_on.isoformat(),
    )


def template_to_pb(row: models.DocumentTemplate) -> pb.DocumentTemplate:
    return pb.DocumentTemplate(
        key=row.key,
        name=row.name,
        body=row.body,
        variables_json=json.dumps(row.variables, ensure_ascii=False, sort_keys=True),
        locale=row.locale,
        updated_at=timestamp(row.updated_at),
    )


def document_to_pb(row: models.Document) -> pb.Document:
    return pb.Document(
        id=row.id,
        deal_id=row.deal_id,
        template_key=row.template_key,
        title=row.title,
        created_at=timestamp(row.created_at),
        pdf_size=len(row.pdf),
    )


def row_to_dict(row: Any, *, skip: Sequence[str] = ()) -> dict[str, Any]:
    """Every column of an ORM row as JSON-ready data (for privacy exports)."""
    data: dict[str, Any] = {}
    for column in row.__table__.columns:
        if column.key in skip:
            continue
        value = getattr(row, column.key)
        if isinstance(value, (datetime, date)):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = f"{value:f}"
        data[column.key] = value
    return data
