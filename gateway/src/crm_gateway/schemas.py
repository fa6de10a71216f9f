"""JSON bodies of the public API, and their mapping to and from protobuf messages.

Pydantic checks shape and types (unknown fields are refused by name); the owning
service checks meaning (valid email, phone, country, custom field types).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import BaseModel, ConfigDict, Field

from crm_api.crm.contacts.v1 import contacts_pb2 as pb

_TEXT = 2000
# Integer bounds: what protobuf carries (int32/int64) and what the domain allows.
INT64_MAX = 2**63 - 1
# A stage's time limit: at most a year (the deals service's own bound).
MAX_TIME_LIMIT_HOURS = 24 * 366
# A logged call or meeting: at most a day.
MAX_DURATION_SECONDS = 86_400
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# An ISO weekday (1 = Monday … 7 = Sunday): the services check the day and name it
# alongside the other fields; here it only has to fit the int32 that carries it.
Weekday = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddressIn(Strict):
    street: str = Field("", max_length=_TEXT)
    city: str = Field("", max_length=_TEXT)
    postal_code: str = Field("", max_length=_TEXT)
    state: str = Field("", max_length=_TEXT)
    country: str = Field(
        "", max_length=100, description="ISO 3166-1 code or English name; decides the region"
    )


class ImportantDateIn(Strict):
    kind: str = Field(description="birthday, contract_end, anniversary or other")
    date: str = Field(description="YYYY-MM-DD")
    label: str = Field("", max_length=200)


class CompanyLinkIn(Strict):
    company_id: str
    role: str = Field("", max_length=100, description="e.g. accountant, buyer, director")


class ContactIn(Strict):
    first_name: str = Field("", max_length=_TEXT)
    last_name: str = Field("", max_length=_TEXT)
    emails: list[str] = Field(default_factory=list, max_length=20)
    phones: list[str] = Field(
        default_factory=list, max_length=20, description="as typed; stored as E.164"
    )
    address: AddressIn = Field(default_factory=AddressIn)
    time_zone: str = Field("", description="IANA zone; defaults from the country")
    language: str = Field("", description="BCP 47, e.g. pt-BR")
    owner_id: str = ""
    owner_team: str = ""
    source: str = Field(
        "", description="manual, web_form, import, call, email, referral, event, other"
    )
    lifecycle_stage: str = Field("", description="lead, prospect, customer, churned")
    tags: list[str] = Field(default_factory=list, max_length=50)
    important_dates: list[ImportantDateIn] = Field(default_factory=list, max_length=50)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    companies: list[CompanyLinkIn] = Field(default_factory=list, max_length=50)


class CompanyIn(Strict):
    name: str = Field("", max_length=_TEXT)
    domain: str = Field("", max_length=255)
    industry: str = Field("", max_length=200)
    address: AddressIn = Field(default_factory=AddressIn)
    phones: list[str] = Field(default_factory=list, max_length=20)
    owner_id: str = ""
    owner_team: str = ""
    tags: list[str] = Field(default_factory=list, max_length=50)
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class NoteIn(Strict):
    kind: str = Field("note", description="note, call, email or meeting")
    body: str = Field("", max_length=20_000)
    occurred_at: str | None = Field(None, description="RFC 3339; defaults to now")
    direction: str = Field("", max_length=20)
    subject: str = Field("", max_length=500)
    duration_seconds: int = Field(0, ge=0, le=MAX_DURATION_SECONDS)


class ConsentIn(Strict):
    purpose: str = Field(description="e.g. marketing_email")
    lawful_basis: str = Field("consent")
    status: str = Field(description="granted or withdrawn")
    source: str = Field("", max_length=100)


class MergeIn(Strict):
    merged_id: str = Field(description="the duplicate folded into the contact in the path")


class CustomFieldIn(Strict):
    entity: str = "contact"
    key: str
    label: str
    type: str
    options: list[str] = Field(default_factory=list)
    required: bool = False


class AccessGrantIn(Strict):
    from_region: str
    to_region: str
    legal_basis: str


class RetentionRuleIn(Strict):
    rule: str = Field(description="delete_inactive_leads or anonymize_lost_deals")
    after_months: int = Field(ge=1, le=1200)


class PolicyIn(Strict):
    default_region: str
    residency_overrides: dict[str, str] = Field(default_factory=dict)
    access_grants: list[AccessGrantIn] = Field(default_factory=list)
    retention_rules: list[RetentionRuleIn] = Field(default_factory=list)


def _with_custom_fields_json(data: dict[str, Any]) -> dict[str, Any]:
    if "custom_fields" in data:
        data["custom_fields_json"] = json.dumps(data.pop("custom_fields"), default=str)
    return data


def contact_message(body: ContactIn, *, only_set: bool = False) -> tuple[pb.Contact, list[str]]:
    """The Contact message and the JSON names of the fields the client sent."""
    data = _with_custom_fields_json(body.model_dump(exclude_unset=only_set))
    return json_format.ParseDict(data, pb.Contact()), sorted(data)


def company_message(body: CompanyIn, *, only_set: bool = False) -> tuple[pb.Company, list[str]]:
    data = _with_custom_fields_json(body.model_dump(exclude_unset=only_set))
    return json_format.ParseDict(data, pb.Company()), sorted(data)


def to_json(message: Message) -> dict[str, Any]:
    data = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    if "custom_fields_json" in data:
        data["custom_fields"] = json.loads(data.pop("custom_fields_json") or "{}")
    for key in ("version",):
        if key in data:
            data[key] = int(data[key])
    return data


class MoneyIn(Strict):
    amount: str = Field(description='decimal string, e.g. "1299.90" (never a float)')
    currency: str = Field(description="ISO 4217, e.g. EUR")


class StageIn(Strict):
    name: str
    win_probability: int = Field(0, ge=0, le=100)
    time_limit_hours: int = Field(0, ge=0, le=MAX_TIME_LIMIT_HOURS)
    kind: str = Field("open", description="open, won or lost")
    document_template_key: str = ""
    required_fields: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="deal custom fields a deal must have to enter the stage",
    )


class PipelineIn(Strict):
    name: str
    stages: list[StageIn] = Field(min_length=2, max_length=50)


class StagePatchIn(StageIn):
    id: str = Field(
        "",
        max_length=64,
        description="an existing stage of this pipeline (kept, with its deals); "
        "empty for a new one",
    )


class PipelinePatchIn(Strict):
    name: str | None = None
    stages: list[StagePatchIn] | None = Field(
        None,
        min_length=2,
        max_length=50,
        description="the complete new list in order: a stage left out is removed "
        "(refused while it holds deals); left out, the stages stay as they are",
    )


class DealIn(Strict):
    title: str = Field("", max_length=500)
    contact_id: str = ""
    company_id: str = ""
    owner_id: str = ""
    owner_team: str = ""
    source: str = ""
    pipeline_id: str = ""
    stage_id: str = ""
    amount: MoneyIn | None = None
    expected_close_date: str = ""
    description: str = Field("", max_length=20_000)
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class StageMoveIn(Strict):
    stage_id: str
    expected_version: int = Field(0, ge=0, le=INT64_MAX)
    lost_reason: str = ""
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class ExchangeRateIn(Strict):
    currency: str
    rate: str
    valid_on: str


class DealSettingsIn(Strict):
    reporting_currency: str
    lost_reasons: list[str] | None = Field(
        None,
        max_length=100,
        description="lost-reason categories reports count (others count as 'other'); "
        "left out, the current list stays",
    )


class DocumentTemplateIn(Strict):
    name: str = ""
    body: str = Field(max_length=200_000)
    variables: dict[str, Any] = Field(default_factory=dict)
    locale: str = "en"


class PaymentIn(Strict):
    amount: str = Field(description='decimal string, e.g. "400.00", greater than zero')
    currency: str = Field("", description="the deal's currency (the default); no other")
    paid_on: str = Field("", description="YYYY-MM-DD, not in the future; default today")
    method: str = Field("other", description="cash, card, bank_transfer, pix or other")
    note: str = Field("", max_length=1000)


class ReversePaymentIn(Strict):
    reason: str = Field(max_length=1000, description="why the entry was wrong")


class GenerateDocumentIn(Strict):
    template_key: str


class TaskIn(Strict):
    title: str = Field("", max_length=500)
    description: str = Field("", max_length=20_000)
    assignee_id: str = ""
    deal_id: str = ""
    contact_id: str = ""
    priority: str = ""
    kind: str = ""
    due_at: str | None = Field(None, description="RFC 3339 with offset")
    due_local: str = Field(
        "", description="YYYY-MM-DDTHH:MM in time_zone (default: the assignee's)"
    )
    time_zone: str = ""


class TriggerIn(Strict):
    event_type: str
    conditions: dict[str, str] = Field(default_factory=dict)


class ActionIn(Strict):
    type: str
    title: str = ""
    description: str = ""
    priority: str = ""
    assignee: str = ""
    due: str = ""
    field: str = ""
    value: str = ""
    recipients: list[str] = Field(default_factory=list)
    message: str = ""


class AutomationRuleIn(Strict):
    name: str
    enabled: bool = True
    trigger: TriggerIn
    actions: list[ActionIn] = Field(min_length=1, max_length=20)


class UserIn(Strict):
    display_name: str = ""
    email: str = ""
    team: str = ""
    manager_id: str = ""
    job_roles: list[str] = Field(default_factory=list)
    time_zone: str = ""
    locale: str = ""
    working_hours_start: str = ""
    working_hours_end: str = ""
    working_days: list[Weekday] = Field(default_factory=list, max_length=50)
    phone: str = ""
    home_region: str = Field("", description="the region the user works in, e.g. br")


def message_from(body: BaseModel, message: Message, *, only_set: bool = False) -> list[str]:
    """Fills `message` from a body (custom_fields → custom_fields_json); returns the field names."""
    data = _with_custom_fields_json(body.model_dump(exclude_unset=only_set, exclude_none=True))
    json_format.ParseDict(data, message)
    return sorted(data)
