"""Deals: validation, storage, listing and stage moves.

Every function takes the caller's Principal and scopes its queries to the tenant and
to what the caller may see (crm_deals.access). A deal lives in its contact's region
(the gateway routes by the contact id); the contact must exist there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.deals.v1 import deals_pb2 as pb
from crm_api.crm.events.v1 import deals_pb2 as events
from crm_deals import documents, fx, models, money, payments, pipelines
from crm_deals.access import get_deal_row, resolve_owner, visible
from crm_deals.convert import amount_text, deal_to_pb, timestamp
from crm_deals.links import Directory
from crm_kit import teams
from crm_kit.clock import now
from crm_kit.context import Principal
from crm_kit.errors import (
    Conflict,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from crm_kit.ids import is_valid_id, new_id, region_of
from crm_kit.messaging import Outbox
from crm_kit.ownership import Reassignable

SOURCES = ("manual", "web_form", "import", "call", "email", "referral", "event", "other")
STATUSES = pipelines.KINDS
MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
MAX_REASON = 1_000
MAX_CUSTOM_FIELDS = 100
MAX_CUSTOM_KEY = 64
MAX_CUSTOM_TEXT = 2_000
MAX_PAGE = 200
DEFAULT_PAGE = 50
# Who may move a deal out of a won or lost stage.
REOPENERS = ("manager", "admin")

# Fields a client may name in an update mask (the stage moves only via MoveDeal).
UPDATABLE = frozenset(
    {
        "title",
        "contact_id",
        "company_id",
        "owner_id",
        "owner_team",
        "source",
        "amount",
        "expected_close_date",
        "lost_reason",
        "description",
        "custom_fields_json",
    }
)


# ---------------------------------------------------------------- validation


def _text(value: str, field: str, limit: int, violations: list[FieldViolation]) -> str:
    value = value.strip()
    if len(value) > limit:
        violations.append(FieldViolation(field, f"at most {limit} characters"))
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_custom_fields(
    raw: str, field: str, violations: list[FieldViolation]
) -> dict[str, Any] | None:
    """A JSON object of scalars; null values delete a field when merged."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        violations.append(FieldViolation(field, "must be a JSON object"))
        return None
    if len(data) > MAX_CUSTOM_FIELDS:
        violations.append(FieldViolation(field, f"at most {MAX_CUSTOM_FIELDS} fields"))
    for key, value in data.items():
        if not key.strip() or len(key) > MAX_CUSTOM_KEY:
            violations.append(
                FieldViolation(f"{field}.{key}", f"names are 1 to {MAX_CUSTOM_KEY} characters")
            )
        if value is not None and not isinstance(value, (str, int, float, bool)):
            violations.append(FieldViolation(f"{field}.{key}", "a string, number, boolean or null"))
        elif isinstance(value, float) and not math.isfinite(value):
            violations.append(FieldViolation(f"{field}.{key}", "not a finite number"))
        elif isinstance(value, str) and len(value) > MAX_CUSTOM_TEXT:
            violations.append(
                FieldViolation(f"{field}.{key}", f"at most {MAX_CUSTOM_TEXT} characters")
            )
    return data


def merge_custom_fields(existing: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = {**existing, **changes}
    return {key: value for key, value in merged.items() if value is not None}


def check_required_fields(
    stage: models.Stage, fields: dict[str, Any], violations: list[FieldViolation]
) -> None:
    """A stage may ask for custom fields (e.g. the measurement time) before a deal enters
    it; named as the REST body's `custom_fields.<name>`, so a form shows it in place."""
    for name in stage.required_fields:
        value = fields.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            violations.append(
                FieldViolation(f"custom_fields.{name}", f"required to enter stage {stage.name!r}")
            )


def _date(raw: str, field: str, violations: list[FieldViolation]) -> date | None:
    text = raw.strip()
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        violations.append(FieldViolation(field, "expected YYYY-MM-DD"))
        return None


def _link_id(raw: str, field: str, region: str, violations: list[FieldViolation]) -> str:
    value = raw.strip()
    if not value:
        return ""
    if not is_valid_id(value):
        violations.append(FieldViolation(field, f"malformed id {value!r}"))
    elif region_of(value) != region:
        violations.append(
            FieldViolation(
                field,
                f"stored in region {region_of(value)}; a deal lives in its contact's region, "
                f"and this is {region}",
            )
        )
    return value


def validate_fields(
    principal: Principal,
    region: str,
    msg: pb.Deal,
    fields: frozenset[str],
    existing: models.Deal | None,
    violations: list[FieldViolation],
) -> dict[str, Any]:
    """Checks and normalizes the named fields; returns column values."""
    values: dict[str, Any] = {}
    creating = existing is None
    if "title" in fields:
        values["title"] = " ".join(_text(msg.title, "title", MAX_TITLE, violations).split())
        if not values["title"]:
            violations.append(FieldViolation("title", "required"))
    for name in ("contact_id", "company_id"):
        if name in fields:
            values[name] = _link_id(getattr(msg, name), name, region, violations)
    contact_id = values.get("contact_id", existing.contact_id if existing else "")
    company_id = values.get("company_id", existing.company_id if existing else "")
    if ("contact_id" in fields or "company_id" in fields) and not (contact_id or company_id):
        violations.append(FieldViolation("contact_id", "a deal needs a contact or a company"))
    if "source" in fields:
        source = msg.source.strip() or "manual"
        if source not in SOURCES:
            violations.append(FieldViolation("source", f"must be one of {', '.join(SOURCES)}"))
        values["source"] = source
    if "amount" in fields:
        raw_amount = msg.amount.amount.strip()
        raw_currency = msg.amount.currency.strip()
        values["amount"], values["currency"] = None, ""
        if raw_amount or raw_currency:
            currency = ""
            if raw_currency:
                currency = money.currency_code(raw_currency, "amount.currency", violations)
            else:
                violations.append(FieldViolation("amount.currency", "required with an amount"))
            if raw_amount:
                values["amount"] = money.parse_amount(
                    raw_amount, currency, "amount.amount", violations
                )
            else:
                violations.append(FieldViolation("amount.amount", "required with a currency"))
            values["currency"] = currency
    if "expected_close_date" in fields:
        values["expected_close_date"] = _date(
            msg.expected_close_date, "expected_close_date", violations
        )
    if "description" in fields:
        values["description"] = _text(msg.description, "description", MAX_DESCRIPTION, violations)
    if "lost_reason" in fields:
        values["lost_reason"] = _text(msg.lost_reason, "lost_reason", MAX_REASON, violations)
    if "custom_fields_json" in fields:
        custom = parse_custom_fields(msg.custom_fields_json, "custom_fields_json", violations)
        if custom is not None:
            values["custom_fields"] = merge_custom_fields(
                existing.custom_fields if existing else {}, custom
            )
    if "owner_id" in fields or "owner_team" in fields or creating:
        owner = msg.owner_id if "owner_id" in fields else (existing.owner_id if existing else "")
        kept = existing is not None and owner.strip() == existing.owner_id
        team = (
            msg.owner_team
            if "owner_team" in fields
            else (existing.owner_team if existing is not None and kept else "")
        )
        values["owner_id"], values["owner_team"] = resolve_owner(principal, owner, team, violations)
    return values


async def stamp_team(
    session: AsyncSession, principal: Principal, msg: pb.Deal, values: dict[str, Any]
) -> None:
    """The owner's team is the directory's (whoever set the owner: a web form, telephony,
    an admin); the token's only until it is known (crm_kit.teams)."""
    if "owner_id" in values and not msg.owner_team.strip():
        known = await teams.team_of(
            session, models.UserTeam, principal.tenant_id, str(values["owner_id"])
        )
        values["owner_team"] = known or values["owner_team"]


async def check_links(
    directory: Directory,
    principal: Principal,
    values: dict[str, Any],
    existing: models.Deal | None,
    violations: list[FieldViolation],
) -> None:
    """The linked contact and company must exist in this region and be visible to the
    caller (asked of the contacts service; a link that did not change is not re-checked)."""

    def needs_check(name: str) -> str:
        value: str = values.get(name, "")
        unchanged = existing is not None and value == getattr(existing, name)
        malformed = any(v.field == name for v in violations)
        return "" if unchanged or malformed else value

    if contact_id := needs_check("contact_id"):
        contact = await directory.contact(principal, contact_id)
        if contact is None:
            violations.append(FieldViolation("contact_id", "no such contact"))
        elif contact.merged_into_id:
            violations.append(
                FieldViolation(
                    "contact_id", f"the contact was merged into {contact.merged_into_id}"
                )
            )
    if (company_id := needs_check("company_id")) and await directory.company(
        principal, company_id
    ) is None:
        violations.append(FieldViolation("company_id", "no such company"))


# ---------------------------------------------------------------- storage


async def to_pbs(
    session: AsyncSession, rows: Sequence[models.Deal], known_names: dict[str, str] | None = None
) -> list[pb.Deal]:
    """Deals with their stage names, histories and payments, in three queries for any number
    (two when the caller knows the names of their stages)."""
    if not rows:
        return []
    tenant_id = rows[0].tenant_id
    stage_ids = {row.stage_id for row in rows}
    names = (
        known_names
        if known_names is not None and stage_ids <= known_names.keys()
        else await pipelines.stage_names(session, tenant_id, stage_ids)
    )
    changes = await session.scalars(
        sa.select(models.StageChange)
        .where(models.StageChange.deal_id.in_([row.id for row in rows]))
        .order_by(models.StageChange.id)
    )
    history: dict[str, list[models.StageChange]] = {}
    for change in changes:
        history.setdefault(change.deal_id, []).append(change)
    paid = await payments.paid_by_deal(session, [row.id for row in rows])
    return [
        deal_to_pb(
            row, names.get(row.stage_id, ""), history.get(row.id, []), paid.get(row.id, Decimal(0))
        )
        for row in rows
    ]


async def to_pb(session: AsyncSession, row: models.Deal) -> pb.Deal:
    return (await to_pbs(session, [row]))[0]


def _money_fields(row: models.Deal) -> dict[str, str]:
    return {"amount": amount_text(row), "currency": row.currency}


def _close_date_text(row: models.Deal) -> str:
    return row.expected_close_date.isoformat() if row.expected_close_date else ""


# Fields whose change the reporting read models follow (deals.deal.updated).
REPORTED_FIELDS = frozenset(
    {
        "amount",
        "currency",
        "owner_id",
        "owner_team",
        "expected_close_date",
        "source",
        "lost_reason",
    }
)


async def _entered(
    session: AsyncSession,
    principal: Principal,
    outbox: Outbox,
    directory: Directory,
    row: models.Deal,
    stage: models.Stage,
) -> None:
    """What entering a stage causes besides the move itself: won/lost and the document."""
    if stage.kind == "won":
        await outbox.add(
            session,
            principal,
            "deal",
            "won",
            events.DealWon(
                deal_id=row.id,
                pipeline_id=row.pipeline_id,
                owner_id=row.owner_id,
                stage_id=row.stage_id,
                owner_team=row.owner_team,
                source=row.source,
                created_at=timestamp(row.created_at),
                closed_at=timestamp(row.closed_at),
                **_money_fields(row),
            ),
        )
    elif stage.kind == "lost":
        await outbox.add(
            session,
            principal,
            "deal",
            "lost",
            events.DealLost(
                deal_id=row.id,
                pipeline_id=row.pipeline_id,
                owner_id=row.owner_id,
                stage_id=row.stage_id,
                owner_team=row.owner_team,
                source=row.source,
                created_at=timestamp(row.created_at),
                closed_at=timestamp(row.closed_at),
                **_money_fields(row),
            ),
        )
    await documents.on_stage_entry(session, principal, outbox, directory, row, stage)


async def create_deal(
    session: AsyncSession,
    principal: Principal,
    region: str,
    outbox: Outbox,
    directory: Directory,
    msg: pb.Deal,
) -> pb.Deal:
    violations: list[FieldViolation] = []
    values = validate_fields(principal, region, msg, UPDATABLE, None, violations)
    await stamp_team(session, principal, msg, values)
    view: pipelines.PipelineView | None = None
    stage: models.Stage | None = None
    try:
        view = await pipelines.load(session, principal.tenant_id, msg.pipeline_id.strip())
    except NotFound:
        violations.append(FieldViolation("pipeline_id", "no such pipeline"))
    if view is not None:
        stage = view.stage(msg.stage_id) if msg.stage_id else view.first_open
        if stage is None:
            violations.append(
                FieldViolation("stage_id", f"not a stage of pipeline {view.pipeline.id}")
            )
        else:
            if stage.kind == "lost" and not values.get("lost_reason"):
                violations.append(FieldViolation("lost_reason", "required for a lost deal"))
            check_required_fields(stage, values.get("custom_fields", {}), violations)
    await check_links(directory, principal, values, None, violations)
    if violations:
        raise InvalidArgument(violations)
    assert view is not None and stage is not None
    at = now()
    row = models.Deal(
        id=new_id(region),
        tenant_id=principal.tenant_id,
        pipeline_id=view.pipeline.id,
        stage_id=stage.id,
        status=stage.kind,
        stage_entered_at=at,
        closed_at=at if stage.kind != "open" else None,
        created_at=at,
        updated_at=at,
        version=1,
        **values,
    )
    session.add(row)
    await session.flush()
    await outbox.add(
        session,
        principal,
        "deal",
        "created",
        events.DealCreated(
            deal_id=row.id,
            pipeline_id=row.pipeline_id,
            stage_id=row.stage_id,
            owner_id=row.owner_id,
            contact_id=row.contact_id,
            company_id=row.company_id,
            source=row.source,
            owner_team=row.owner_team,
            expected_close_date=_close_date_text(row),
            win_probability=stage.win_probability,
            stage_kind=stage.kind,
            created_at=timestamp(row.created_at),
            lost_reason=await fx.lost_reason_category(session, row.tenant_id, row.lost_reason),
            **_money_fields(row),
        ),
    )
    await _entered(session, principal, outbox, directory, row, stage)
    return await to_pb(session, row)


async def get_deal(session: AsyncSession, principal: Principal, deal_id: str) -> pb.Deal:
    return await to_pb(
        session, await get_deal_row(session, principal, deal_id, via_task="deal.read")
    )


async def update_deal(
    session: AsyncSession,
    principal: Principal,
    region: str,
    directory: Directory,
    msg: pb.Deal,
    mask: Sequence[str],
    outbox: Outbox | None = None,
) -> pb.Deal:
    """Changes the masked fields; `deal.version`, when set, must match (else ABORTED)."""
    paths = {"amount" if path.startswith("amount.") else path for path in mask}
    unknown = sorted(path for path in paths if path not in UPDATABLE)
    if unknown:
        raise InvalidArgument(
            [FieldViolation(path, "unknown or read-only field") for path in unknown]
        )
    if not paths:
        raise InvalidArgument.single("update_mask", "name at least one field to change")
    row = await get_deal_row(session, principal, msg.id, for_update=True)
    if msg.version and msg.version != row.version:
        raise Conflict(
            f"deal {row.id} changed meanwhile (version {row.version}, expected {msg.version})"
        )
    violations: list[FieldViolation] = []
    values = validate_fields(principal, region, msg, frozenset(paths), row, violations)
    await stamp_team(session, principal, msg, values)
    await check_links(directory, principal, values, row, violations)
    if (
        "amount" in paths
        and values.get("currency") != row.currency
        and await payments.has_payments(session, row.id)
    ):
        # Payments are in the deal's currency: a balance over two currencies means nothing.
        violations.append(
            FieldViolation(
                "amount.currency", f"the deal has payments in {row.currency}; keep its currency"
            )
        )
    if violations:
        raise InvalidArgument(violations)
    changed = [name for name, value in values.items() if getattr(row, name) != value]
    if not changed:
        return await to_pb(session, row)
    for name in changed:
        setattr(row, name, values[name])
    row.version += 1
    row.updated_at = now()
    await session.flush()
    if "amount" in changed and outbox is not None:
        await payments.announce_if_paid(session, principal, outbox, row)
    reported = sorted(REPORTED_FIELDS.intersection(changed))
    if outbox is not None and reported:
        await outbox.add(
            session,
            principal,
            "deal",
            "updated",
            events.DealUpdated(
                deal_id=row.id,
                pipeline_id=row.pipeline_id,
                stage_id=row.stage_id,
                owner_id=row.owner_id,
                owner_team=row.owner_team,
                source=row.source,
                expected_close_date=_close_date_text(row),
                changed_fields=reported,
                updated_at=timestamp(row.updated_at),
                lost_reason=await fx.lost_reason_category(session, row.tenant_id, row.lost_reason),
                **_money_fields(row),
            ),
        )
    return await to_pb(session, row)


async def move_deal(
    session: AsyncSession,
    principal: Principal,
    outbox: Outbox,
    directory: Directory,
    request: pb.MoveDealRequest,
) -> pb.Deal:
    row = await get_deal_row(session, principal, request.id, for_update=True)
    # Checked after the row lock: of two moves sent with the same version, the second
    # sees the first one's result and is refused instead of overwriting it.
    if request.expected_version and request.expected_version != row.version:
        raise Conflict(
            f"deal {row.id} changed meanwhile "
            f"(version {row.version}, expected {request.expected_version})"
        )
    violations: list[FieldViolation] = []
    view = await pipelines.load_cached(session, row.tenant_id, row.pipeline_id)
    target = view.stage(request.stage_id)
    if not request.stage_id:
        violations.append(FieldViolation("stage_id", "required"))
    elif target is None:
        violations.append(
            FieldViolation("stage_id", f"not a stage of the deal's pipeline {row.pipeline_id}")
        )
    custom = parse_custom_fields(request.custom_fields_json, "custom_fields_json", violations)
    reason = _text(request.lost_reason, "lost_reason", MAX_REASON, violations)
    if target is not None and target.kind == "lost" and not (reason or row.lost_reason):
        violations.append(FieldViolation("lost_reason", "required when a deal is lost"))
    fields = merge_custom_fields(row.custom_fields, custom or {})
    if target is not None and target.id != row.stage_id:
        check_required_fields(target, fields, violations)
    if violations:
        raise InvalidArgument(violations)
    assert target is not None and custom is not None

    at = now()
    if target.id == row.stage_id:
        # Already there (e.g. a retried move): nothing moves, new custom fields still land.
        if fields != row.custom_fields:
            row.custom_fields = fields
            row.version += 1
            row.updated_at = at
            await session.flush()
        return (await to_pbs(session, [row], {target.id: target.name}))[0]
    if row.status != "open" and not principal.has_role(*REOPENERS):
        raise PermissionDenied(f"deal {row.id} is {row.status}; only a manager may reopen it")

    from_stage_id = row.stage_id
    if target.kind == "lost":
        row.lost_reason = reason or row.lost_reason
    elif row.status == "lost":
        row.lost_reason = ""  # reopened or won after all: the old reason no longer holds
    row.stage_id = target.id
    row.status = target.kind
    row.stage_entered_at = at
    row.closed_at = at if target.kind != "open" else None
    row.custom_fields = fields
    row.version += 1
    row.updated_at = at
    session.add(
        models.StageChange(
            tenant_id=row.tenant_id,
            deal_id=row.id,
            from_stage_id=from_stage_id,
            to_stage_id=target.id,
            moved_by=principal.user_id,
            moved_at=at,
        )
    )
    await session.flush()
    await outbox.add(
        session,
        principal,
        "deal",
        "stage_changed",
        events.DealStageChanged(
            deal_id=row.id,
            pipeline_id=row.pipeline_id,
            from_stage_id=from_stage_id,
            to_stage_id=target.id,
            to_stage_kind=target.kind,
            owner_id=row.owner_id,
            contact_id=row.contact_id,
            win_probability=target.win_probability,
            owner_team=row.owner_team,
            source=row.source,
            expected_close_date=_close_date_text(row),
            created_at=timestamp(row.created_at),
            moved_at=timestamp(at),
            lost_reason=await fx.lost_reason_category(session, row.tenant_id, row.lost_reason),
            **_money_fields(row),
        ),
    )
    await _entered(session, principal, outbox, directory, row, target)
    return (await to_pbs(session, [row], {target.id: target.name}))[0]


# ---------------------------------------------------------------- list


async def list_deals(
    session: AsyncSession, principal: Principal, request: pb.ListDealsRequest
) -> pb.ListDealsResponse:
    """Newest first, keyset-paginated by id: page_token is the last id of the page."""
    page_size = request.page_size or DEFAULT_PAGE
    violations: list[FieldViolation] = []
    if not 1 <= page_size <= MAX_PAGE:
        violations.append(FieldViolation("page_size", f"between 1 and {MAX_PAGE}"))
    deal = models.Deal
    conditions: list[sa.ColumnElement[bool]] = [visible(deal, principal)]
    for name in ("pipeline_id", "stage_id", "owner_id", "contact_id", "company_id"):
        value = getattr(request, name)
        if value:
            conditions.append(getattr(deal, name) == value)
    if request.status:
        if request.status not in STATUSES:
            violations.append(FieldViolation("status", f"one of {', '.join(STATUSES)}"))
        conditions.append(deal.status == request.status)
    if request.page_token:
        if not is_valid_id(request.page_token):
            violations.append(FieldViolation("page_token", "malformed page token"))
        conditions.append(deal.id < request.page_token)
    if violations:
        raise InvalidArgument(violations)
    rows = (
        await session.scalars(
            sa.select(deal).where(*conditions).order_by(deal.id.desc()).limit(page_size + 1)
        )
    ).all()
    more = len(rows) > page_size
    rows = rows[:page_size]
    return pb.ListDealsResponse(
        deals=await to_pbs(session, rows), next_page_token=rows[-1].id if more and rows else ""
    )


def reassignable(outbox: Outbox) -> Reassignable:
    """A leaving user's open deals for crm_kit.ownership; reports follow the
    deal.updated each one announces, as for any owner change."""

    async def team_of(session: AsyncSession, tenant_id: str, user_id: str) -> str:
        return await teams.team_of(session, models.UserTeam, tenant_id, user_id)

    async def announce(session: AsyncSession, principal: Principal, row: Any) -> None:
        await outbox.add(
            session,
            principal,
            "deal",
            "updated",
            events.DealUpdated(
                deal_id=row.id,
                pipeline_id=row.pipeline_id,
                stage_id=row.stage_id,
                owner_id=row.owner_id,
                owner_team=row.owner_team,
                source=row.source,
                expected_close_date=_close_date_text(row),
                changed_fields=["owner_id", "owner_team"],
                updated_at=timestamp(row.updated_at),
                lost_reason=await fx.lost_reason_category(session, row.tenant_id, row.lost_reason),
                **_money_fields(row),
            ),
        )

    return Reassignable(
        kind="deals",
        model=models.Deal,
        is_open=lambda model: model.status == "open",
        team_of=team_of,
        announce=announce,
    )
