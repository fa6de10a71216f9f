"""Response models of the public API, for the OpenAPI document (and the clients
generated from it, the web application's types among them).

Most answers are protobuf messages rendered by `schemas.to_json`; their models are
derived from the message descriptors here, so they follow the protos: int64 is a
JSON string (as protobuf's JSON mapping renders it) except where the gateway turns
it into a number, a message field is absent when unset, everything else is always
present. The routes keep returning plain dicts: these models describe the answers,
and tests hold the answers to them.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Response
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from pydantic import BaseModel, ConfigDict, Field, create_model

from crm_api.crm.compliance.v1 import compliance_pb2
from crm_api.crm.compliance.v1 import privacy_requests_pb2 as requests_pb
from crm_api.crm.contacts.v1 import contacts_pb2
from crm_api.crm.deals.v1 import deals_pb2
from crm_api.crm.directory.v1 import directory_pb2
from crm_api.crm.integrations.v1 import integrations_pb2
from crm_api.crm.notifications.v1 import notifications_pb2
from crm_api.crm.policy.v1 import policy_pb2
from crm_api.crm.tasks.v1 import tasks_pb2


class Answer(BaseModel):
    # additionalProperties: false, so an undocumented field fails the schema tests.
    model_config = ConfigDict(extra="forbid")


_INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}
_INT32 = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_SFIXED32,
}
_WELL_KNOWN: dict[str, Any] = {
    "google.protobuf.Timestamp": str,
    "google.protobuf.Duration": str,
    "google.protobuf.FieldMask": str,
    "google.protobuf.Struct": dict[str, Any],
    "google.protobuf.Value": Any,
    "google.protobuf.ListValue": list[Any],
    "google.protobuf.Empty": dict[str, Any],
    "google.protobuf.StringValue": str,
    "google.protobuf.BoolValue": bool,
    "google.protobuf.Int32Value": int,
}
_MODELS: dict[str, type[Answer]] = {}


def _value_type(field: FieldDescriptor) -> Any:
    if field.message_type is not None:
        name = field.message_type.full_name
        if name in _WELL_KNOWN:
            return _WELL_KNOWN[name]
        return proto_model(field.message_type, nested=True)
    if field.type in _INT64:
        return str
    if field.type in _INT32:
        return int
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return float
    if field.type == FieldDescriptor.TYPE_BOOL:
        return bool
    return str  # string, bytes (base64) and enums (their names)


def proto_model(
    message: Any,
    *,
    name: str = "",
    nested: bool = False,
    drop: tuple[str, ...] = (),
    override: dict[str, Any] | None = None,
    add: dict[str, Any] | None = None,
) -> type[Answer]:
    """The model of a message as the gateway answers it.

    Top level (`schemas.to_json`): `custom_fields_json` becomes the object
    `custom_fields` and `version` a number. `override` replaces field types, `add`
    adds fields (type, or (type, default) for an optional one), `drop` removes some.
    """
    descriptor: Descriptor = getattr(message, "DESCRIPTOR", message)
    rendered = {"custom_fields_json", "version"} & set(descriptor.fields_by_name)
    # Nested inside another message, it is rendered as protobuf's JSON mapping has it.
    model_name = name or descriptor.name + ("Nested" if nested and rendered else "")
    if model_name in _MODELS:
        return _MODELS[model_name]
    fields: dict[str, Any] = {}
    for field in descriptor.fields:
        if field.name in drop:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            fields[field.name] = (dict[str, _value_type(value)], ...)  # type: ignore[misc]
            continue
        value_type = _value_type(field)
        if field.is_repeated:
            fields[field.name] = (list[value_type], ...)  # type: ignore[valid-type]
        elif field.has_presence:
            fields[field.name] = (value_type, None)
        else:
            fields[field.name] = (value_type, ...)
    if rendered and not nested:
        if fields.pop("custom_fields_json", None):
            fields["custom_fields"] = (dict[str, Any], ...)
        if "version" in fields:
            fields["version"] = (int, ...)
    for key, kind in (override or {}).items():
        fields[key] = (kind, fields[key][1] if key in fields else ...)
    for key, kind in (add or {}).items():
        fields[key] = kind if isinstance(kind, tuple) else (kind, ...)
    model = create_model(model_name, __base__=Answer, **fields)
    _MODELS[model_name] = model
    return model


def listing(item: Any, name: str, **extra: Any) -> type[Answer]:
    """{"data": [item], …extra} (extra: type, or (type, default) for an optional one)."""
    fields: dict[str, Any] = {"data": (list[item], ...)}
    for key, kind in extra.items():
        fields[key] = kind if isinstance(kind, tuple) else (kind, ...)
    return create_model(name, __base__=Answer, **fields)


def page(item: Any, name: str, **extra: Any) -> type[Answer]:
    """A merged page over regions: data, the next cursor (null on the last) and regions."""
    return listing(item, name, next_cursor=str | None, regions=list[str], **extra)


# ---------------------------------------------------------------- problems


class FieldError(BaseModel):
    field: str = Field(description="the field, e.g. emails[0] or address.country")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of the API is answered."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="each bad field (422), by name"
    )


# ---------------------------------------------------------------- contacts and companies

Contact = proto_model(contacts_pb2.Contact)
ContactHit = proto_model(
    contacts_pb2.Contact, name="ContactHit", add={"score": (float | None, None)}
)
ContactPage = page(ContactHit, "ContactPage")


class DuplicatePair(Answer):
    a: Contact  # type: ignore[valid-type]
    b: Contact  # type: ignore[valid-type]
    score: float
    reasons: list[str]


class Duplicates(Answer):
    data: list[DuplicatePair]
    region: str


TimelineEntry = proto_model(contacts_pb2.TimelineEntry)
Timeline = listing(TimelineEntry, "Timeline", next_cursor=str | None)
Consent = proto_model(contacts_pb2.Consent)
Attachment = proto_model(contacts_pb2.Attachment)
AttachmentList = listing(Attachment, "AttachmentList")


class Consents(Answer):
    current: list[Consent]  # type: ignore[valid-type]
    history: list[Consent]  # type: ignore[valid-type]


Company = proto_model(contacts_pb2.Company)
CompanyPage = page(Company, "CompanyPage")
CustomField = proto_model(contacts_pb2.CustomFieldDefinition, name="CustomField")
CustomFields = listing(CustomField, "CustomFields")
ContactView = proto_model(contacts_pb2.ContactView)
ContactViews = listing(ContactView, "ContactViews")
Policy = proto_model(policy_pb2.TenantPolicy, name="Policy")

# ---------------------------------------------------------------- deals

Pipeline = proto_model(deals_pb2.Pipeline)
Pipelines = listing(Pipeline, "Pipelines")
Deal = proto_model(deals_pb2.Deal)
DealPage = page(Deal, "DealPage")
Stage = proto_model(deals_pb2.Stage)


class MoneyOut(Answer):
    amount: str = Field(description="a decimal string")
    currency: str


class BoardColumn(Answer):
    stage: Stage  # type: ignore[valid-type]
    count: int
    total: MoneyOut
    deals: list[Deal]  # type: ignore[valid-type]


class Board(Answer):
    pipeline: Pipeline  # type: ignore[valid-type]
    reporting_currency: str
    columns: list[BoardColumn]
    missing_rates: list[str]
    regions: list[str]


Document = proto_model(deals_pb2.Document)
Documents = listing(Document, "Documents")
DocumentTemplate = proto_model(deals_pb2.DocumentTemplate)
DocumentTemplates = listing(DocumentTemplate, "DocumentTemplates")
ExchangeRate = proto_model(deals_pb2.ExchangeRate)
ExchangeRates = listing(ExchangeRate, "ExchangeRates")
DealSettings = proto_model(deals_pb2.DealSettings)
Payment = proto_model(deals_pb2.Payment)
ClientValue = proto_model(deals_pb2.ClientValue, add={"region": str})
DocumentSend = proto_model(deals_pb2.DocumentSend, add={"deliveries": str})


class Payments(Answer):
    data: list[Payment]  # type: ignore[valid-type]
    paid: MoneyOut | None = None
    balance_due: MoneyOut | None = None


# ---------------------------------------------------------------- tasks, rules, users

Task = proto_model(tasks_pb2.Task)
TaskPage = page(Task, "TaskPage")
AutomationRule = proto_model(tasks_pb2.AutomationRule)
AutomationRules = listing(AutomationRule, "AutomationRules")
User = proto_model(directory_pb2.User)


class CalendarFeedCreated(Answer):
    url: str
    path: str
    created_at: str


class CalendarFeedRevoked(Answer):
    revoked: bool


class MovedInRegion(Answer):
    region: str
    contacts: int
    deals: int
    tasks: int


class Reassigned(Answer):
    from_user: str
    to_users: list[str]
    moved: list[MovedInRegion]
    total: dict[str, int]


Users = listing(User, "Users")

# ---------------------------------------------------------------- compliance

PrivacyRequest = proto_model(requests_pb.PrivacyRequest)
PrivacyRequests = listing(PrivacyRequest, "PrivacyRequests")
LegalHold = proto_model(requests_pb.LegalHold)


class ReceiptCheck(Answer):
    valid: bool
    reason: str


class Relocation(Answer):
    old_contact_id: str
    new_contact_id: str
    from_region: str
    to_region: str
    moved: dict[str, int] = Field(description="service -> rows moved")


PolicyVersion = proto_model(policy_pb2.PolicyVersion, override={"version": int})
PolicyVersions = listing(PolicyVersion, "PolicyVersions")
RetentionRun = proto_model(policy_pb2.RetentionRun, add={"region": str})
RetentionRuns = listing(RetentionRun, "RetentionRuns")
AuditRecord = proto_model(compliance_pb2.AuditRecord)
AuditTrail = listing(AuditRecord, "AuditTrail", regions=list[str], services=list[str])
ChainProblem = proto_model(compliance_pb2.AuditProblem, override={"seq": int})
AuditChain = proto_model(
    compliance_pb2.VerifyAuditResponse,
    name="AuditChain",
    override={"records_checked": int, "problems": list[ChainProblem]},  # type: ignore[valid-type]
)


class AuditVerification(Answer):
    intact: bool
    chains: list[AuditChain]  # type: ignore[valid-type]


class ResidencyCount(Answer):
    subjects: int
    records: int


class ResidencyRegion(Answer):
    region: str
    services: dict[str, dict[str, ResidencyCount]] = Field(
        description="service -> kind of record -> counts"
    )
    subjects: int
    violations: int


class ResidencyViolation(Answer):
    service: str
    kind: str
    stored_in: str
    required_region: str
    subjects: int
    records: int


class Residency(Answer):
    tenant_id: str
    generated_at: str
    regions: list[ResidencyRegion]
    violations: list[ResidencyViolation]


# ---------------------------------------------------------------- reports


class MissingRate(Answer):
    currency: str
    on: str


class ReportPeriod(Answer):
    from_: str | None = Field(alias="from")
    to: str | None


class ReportFilters(Answer):
    pipeline: list[str]
    owner: list[str]
    team: list[str]


class FunnelRow(Answer):
    pipeline_id: str
    pipeline: str
    stage_id: str
    stage: str
    kind: str
    deals: int
    value: str
    entered: int
    conversion_to_next: str | None


class WinRateRow(Answer):
    deals_won: int
    deals_lost: int
    win_rate: str | None
    value_won: str
    average_deal_size: str | None
    cycle_days_median: int | None
    cycle_days_p90: int | None


class RevenueRow(Answer):
    period: str
    granularity: str
    deals: int
    value: str


class PaymentsRow(Answer):
    period: str
    granularity: str
    payments: int
    value: str = Field(description="received, in the reporting currency")


class ActivityRow(Answer):
    owner_id: str
    calls: int
    tasks_on_time: int
    tasks_late: int
    overdue_now: int
    deals_won: int
    deals_lost: int


class LeadSourceRow(Answer):
    source: str
    deals: int
    won: int
    lost: int
    conversion_to_won: str | None


class LostReasonRow(Answer):
    period: str
    granularity: str
    reason: str
    deals: int
    value: str


class ForecastRow(Answer):
    month: str
    deals: int
    value: str
    weighted: str


ReportName = Literal[
    "funnel",
    "win_rate",
    "revenue",
    "activity",
    "lead_sources",
    "forecast",
    "payments",
    "lost_reasons",
]


class Report(Answer):
    report: ReportName
    regions: list[str]
    reporting_currency: str
    period: ReportPeriod
    filters: ReportFilters
    missing_rates: list[MissingRate]
    data: list[
        FunnelRow
        | WinRateRow
        | RevenueRow
        | PaymentsRow
        | ActivityRow
        | LeadSourceRow
        | ForecastRow
        | LostReasonRow
    ]


class RebuiltRegion(Answer):
    region: str
    events_replayed: int
    events_applied: int


class Rebuild(Answer):
    regions: list[RebuiltRegion]


# ---------------------------------------------------------------- notifications

Notification = proto_model(notifications_pb2.Notification)
Inbox = page(Notification, "Inbox", unread=int)


class UnreadCount(Answer):
    unread: int
    regions: list[str]


class Marked(Answer):
    marked: int


Preferences = proto_model(notifications_pb2.Preferences)
WorkingHours = proto_model(notifications_pb2.WorkingHours)
NotificationDelivery = proto_model(notifications_pb2.Delivery, name="NotificationDelivery")
NotificationDeliveries = listing(NotificationDelivery, "NotificationDeliveries", regions=list[str])
Template = proto_model(notifications_pb2.Template)
Templates = listing(Template, "Templates")
Campaign = proto_model(notifications_pb2.Campaign)
Campaigns = listing(Campaign, "Campaigns")


class Unsubscribed(Answer):
    unsubscribed: bool
    purpose: str


SmsReceived = proto_model(notifications_pb2.ReceiveSmsResponse, name="SmsReceived")
GreetingRule = proto_model(notifications_pb2.GreetingRule)
GreetingRules = listing(GreetingRule, "GreetingRules")


# ---------------------------------------------------------------- integrations

Form = proto_model(integrations_pb2.Form, drop=("tenant_id",), add={"submit_url": str})
Forms = listing(Form, "Forms")
Submission = proto_model(integrations_pb2.Submission)


class Submitted(Answer):
    id: str
    status: str = Field(description="completed, or pending (202) while a service is busy")


ApiKey = proto_model(integrations_pb2.ApiKey)
ApiKeyCreated = proto_model(integrations_pb2.ApiKey, name="ApiKeyCreated", add={"secret": str})
ApiKeys = listing(ApiKey, "ApiKeys")
ProviderCreated = proto_model(
    integrations_pb2.CreateProviderResponse, name="ProviderCreated", add={"webhook_url": str}
)
CallRecord = proto_model(integrations_pb2.CallRecord)
CallStarted = proto_model(integrations_pb2.StartCallResponse, name="CallStarted")
EmailRecord = proto_model(integrations_pb2.EmailRecord)
Webhook = proto_model(integrations_pb2.Webhook)
WebhookOut = proto_model(integrations_pb2.Webhook, name="WebhookOut", drop=("secret",))
Webhooks = listing(Webhook, "Webhooks")
WebhookDelivery = proto_model(integrations_pb2.Delivery, name="WebhookDelivery")
WebhookDeliveries = listing(WebhookDelivery, "WebhookDeliveries")
IntegrationSettings = proto_model(integrations_pb2.IntegrationSettings)
ImportPreviewRow = proto_model(
    integrations_pb2.PreviewRow, drop=("contact_json",), add={"contact": dict[str, Any]}
)
ImportJob = proto_model(
    integrations_pb2.ImportJob,
    override={"mapping": dict[str, str], "preview": list[ImportPreviewRow]},  # type: ignore[valid-type]
    add={"regions": (dict[str, dict[str, Any]] | None, None)},
)


def ok(model: type[BaseModel], status: int = 200, *also: str) -> dict[str, Any]:
    """Route keywords declaring the answer: `@router.get(..., **ok(Contact))`.

    The model documents the JSON answer (the route returns a plain dict); `also` names
    other media types the route may answer with instead, e.g. "text/csv".
    """
    response: dict[str, Any] = {"model": model, "description": "OK"}
    if also:
        response["content"] = {media: {"schema": {"type": "string"}} for media in also}
    return {"response_model": None, "responses": {status: response}}


def file(status: int = 200, *media_types: str) -> dict[str, Any]:
    """Route keywords for an answer that is a file (CSV, PDF, ZIP, HTML…)."""
    content = {media: {"schema": {"type": "string", "format": "binary"}} for media in media_types}
    # A plain Response class: the answer is not JSON.
    return {
        "response_class": Response,
        "responses": {status: {"description": "OK", "content": content}},
    }
