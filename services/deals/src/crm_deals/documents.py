"""Document templates (sandboxed Jinja2 HTML) and the documents rendered from them.

A template is tenant configuration; a document is personal data (it carries the
client's name and address), stored as HTML and PDF in the deal's region and deleted
when the person is erased. Templates are checked when saved: one that does not parse
or does not render against a sample deal is refused, so a stage move never meets a
broken template by surprise.

Template variables (all always present; empty strings where the deal has no value):
  deal      id, title, amount, currency, stage, stage_id, pipeline_id, status, source,
            expected_close_date, description, custom_fields (a mapping), owner_id
  contact   id, first_name, last_name, name, email, emails, phone, phones, language,
            address {street, city, postal_code, state, country}, address_lines
  company   id, name, domain, address {...}, address_lines
  tenant    the template's variables_json (e.g. payment details); `vars` is the same
  amount_formatted  the amount in the template's locale ("1.299,90 €")
  today     today's date in the template's locale; document {id, date}
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.contacts.v1 import contacts_pb2
from crm_api.crm.deals.v1 import deals_pb2 as pb
from crm_api.crm.events.v1 import deals_pb2 as events
from crm_deals import models, money
from crm_deals.access import get_deal_row, visible
from crm_deals.convert import amount_text, document_to_pb, template_to_pb, timestamp
from crm_deals.links import Directory
from crm_deals.pipelines import TEMPLATE_KEY_RE
from crm_kit.clock import now
from crm_kit.context import Principal
from crm_kit.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from crm_kit.ids import new_id, region_of
from crm_kit.messaging import Outbox
from crm_kit.peers import system_principal

log = logging.getLogger(__name__)

MAX_BODY = 200_000
MAX_NAME = 200
DEFAULT_LOCALE = "en"
ADDRESS_FIELDS = ("street", "city", "postal_code", "state", "country")

# Tenant admins write templates: the sandbox keeps them away from Python internals,
# autoescape keeps a contact's "<script>" name inert, and StrictUndefined turns a
# misspelt variable into an error instead of a silently blank invoice line.
_env = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)

# reportlab keeps process-wide state (fonts, caches); render one PDF at a time.
_pdf_lock = threading.Lock()


class _SampleFields(dict[str, str]):
    """Custom fields of the sample deal a template is checked against: any key exists,
    because each deal carries its own tenant-defined fields."""

    def __missing__(self, key: str) -> str:
        return f"[{key}]"


# ---------------------------------------------------------------- context


def _address(address: contacts_pb2.Address | None) -> dict[str, str]:
    return {name: getattr(address, name) if address else "" for name in ADDRESS_FIELDS}


def _address_lines(address: Mapping[str, str]) -> list[str]:
    city = " ".join(p for p in (address["postal_code"], address["city"]) if p)
    return [
        line for line in (address["street"], city, address["state"], address["country"]) if line
    ]


def person(contact: contacts_pb2.Contact | None) -> dict[str, Any]:
    address = _address(contact.address if contact else None)
    first = contact.first_name if contact else ""
    last = contact.last_name if contact else ""
    emails = list(contact.emails) if contact else []
    phones = list(contact.phones) if contact else []
    return {
        "id": contact.id if contact else "",
        "first_name": first,
        "last_name": last,
        "name": " ".join(p for p in (first, last) if p),
        "email": emails[0] if emails else "",
        "emails": emails,
        "phone": phones[0] if phones else "",
        "phones": phones,
        "language": contact.language if contact else "",
        "address": address,
        "address_lines": _address_lines(address),
    }


def organisation(company: contacts_pb2.Company | None) -> dict[str, Any]:
    address = _address(company.address if company else None)
    return {
        "id": company.id if company else "",
        "name": company.name if company else "",
        "domain": company.domain if company else "",
        "address": address,
        "address_lines": _address_lines(address),
    }


def build_context(
    *,
    deal: Mapping[str, Any],
    contact: Mapping[str, Any],
    company: Mapping[str, Any],
    variables: Mapping[str, Any],
    amount: Decimal | None,
    currency: str,
    locale: str,
    today: date,
    document_id: str,
) -> dict[str, Any]:
    return {
        "deal": dict(deal),
        "contact": dict(contact),
        "company": dict(company),
        "tenant": dict(variables),
        "vars": dict(variables),
        "amount_formatted": (
            money.display(amount, currency, locale) if amount is not None and currency else ""
        ),
        "today": format_date(today, format="long", locale=locale),
        "document": {"id": document_id, "date": today.isoformat()},
    }


def deal_context(row: models.Deal, stage: models.Stage | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "amount": amount_text(row),
        "currency": row.currency,
        "stage": stage.name if stage else "",
        "stage_id": row.stage_id,
        "pipeline_id": row.pipeline_id,
        "status": row.status,
        "source": row.source,
        "expected_close_date": (
            row.expected_close_date.isoformat() if row.expected_close_date else ""
        ),
        "description": row.description,
        "custom_fields": dict(row.custom_fields),
        "owner_id": row.owner_id,
    }


def sample_context(variables: Mapping[str, Any], locale: str) -> dict[str, Any]:
    """A made-up deal with every variable set, to check a template when it is saved."""
    amount = Decimal("1234.50")
    sample_contact = contacts_pb2.Contact(
        id="eu_00000000000000000000000000",
        first_name="Erika",
        last_name="Mustermann",
        emails=["erika@example.com"],
        phones=["+4930123456"],
        address=contacts_pb2.Address(
            street="Musterstraße 1", city="Berlin", postal_code="10115", country="DE"
        ),
        language="de",
    )
    sample_company = contacts_pb2.Company(
        id="eu_00000000000000000000000001",
        name="Example GmbH",
        domain="example.com",
        address=sample_contact.address,
    )
    return build_context(
        deal={
            "id": "eu_00000000000000000000000002",
            "title": "Sample deal",
            "amount": "1234.50",
            "currency": "EUR",
            "stage": "Proposal",
            "stage_id": "sample-stage",
            "pipeline_id": "sample-pipeline",
            "status": "open",
            "source": "web_form",
            "expected_close_date": "2030-01-31",
            "description": "Sample description",
            "custom_fields": _SampleFields(),
            "owner_id": "sample-owner",
        },
        contact=person(sample_contact),
        company=organisation(sample_company),
        variables=variables,
        amount=amount,
        currency="EUR",
        locale=locale,
        today=date(2030, 1, 1),
        document_id="eu_00000000000000000000000003",
    )


# ---------------------------------------------------------------- rendering


def render(body: str, context: Mapping[str, Any]) -> str:
    return _env.from_string(body).render(context)


async def load_pdf_libraries() -> None:
    """A background task: imports xhtml2pdf and reportlab (about 3 s of CPU) once the
    service is serving, so the first stage move that renders a document after a start
    does not spend that time inside its caller's deadline (it did, and timed out)."""
    await asyncio.to_thread(_import_pdf_libraries)


def _import_pdf_libraries() -> None:
    from xhtml2pdf import pisa  # type: ignore[import-untyped]  # noqa: F401

    _use_unicode_fonts()


# PDF's built-in fonts (Helvetica, Times, Courier) draw Latin-1 only: a Russian, Greek or
# Czech invoice came out blank. Every family they answer for is drawn with the DejaVu
# face of the same kind instead (Latin, Greek, Cyrillic), as matplotlib ships them (it is
# a dependency for those files only).
_FAMILIES = {
    "Helvetica": ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSans-BoldOblique"),
    "Times": ("DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSerif-Italic", "DejaVuSerif-BoldItalic"),
    "Courier": (
        "DejaVuSansMono",
        "DejaVuSansMono-Bold",
        "DejaVuSansMono-Oblique",
        "DejaVuSansMono-BoldOblique",
    ),
}
_fonts_ready = False


def _use_unicode_fonts() -> None:
    global _fonts_ready
    if _fonts_ready:
        return
    import importlib.util
    from pathlib import Path

    from reportlab.lib.fonts import addMapping  # type: ignore[import-untyped]
    from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
    from reportlab.pdfbase.ttfonts import TTFont  # type: ignore[import-untyped]
    from xhtml2pdf import default  # type: ignore[import-untyped]

    spec = importlib.util.find_spec("matplotlib")
    assert spec is not None and spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"
    replaced: dict[str, str] = {}
    for builtin, faces in _FAMILIES.items():
        for face in faces:
            pdfmetrics.registerFont(TTFont(face, str(folder / f"{face}.ttf")))
        normal, bold, italic, bold_italic = faces
        for is_bold, is_italic, face in (
            (0, 0, normal),
            (1, 0, bold),
            (0, 1, italic),
            (1, 1, bold_italic),
        ):
            addMapping(normal, is_bold, is_italic, face)
        suffixes = {"": normal, "-bold": bold, "-oblique": italic, "-italic": italic}
        suffixes |= {"-roman": normal, "-boldoblique": bold_italic, "-bolditalic": bold_italic}
        for suffix, face in suffixes.items():
            replaced[f"{builtin}{suffix}".lower()] = face
    for alias, font in list(default.DEFAULT_FONT.items()):
        if font.lower() in replaced:
            default.DEFAULT_FONT[alias] = replaced[font.lower()]
    _fonts_ready = True


def to_pdf(html: str) -> bytes:
    # Imported here rather than at the top, so a process starts serving without waiting
    # for them; load_pdf_libraries has usually loaded them by the first call.
    from xhtml2pdf import pisa  # type: ignore[import-untyped]
    from xhtml2pdf.config.resources import ResourceAccessPolicy  # type: ignore[import-untyped]

    # The rendered HTML is tenant-written: it may fetch nothing, neither over the network
    # (SSRF) nor from the disk; only inline data: URIs (a logo) are read.
    policy = ResourceAccessPolicy.server(None, allow_remote=False)
    out = io.BytesIO()
    with _pdf_lock:
        _use_unicode_fonts()
        status = pisa.CreatePDF(html, dest=out, encoding="utf-8", resource_policy=policy)
    if status.err:
        raise FailedPrecondition(
            f"the document could not be converted to PDF ({status.err} errors)"
        )
    return out.getvalue()


# ---------------------------------------------------------------- templates


def _locale(raw: str, violations: list[FieldViolation]) -> str:
    text = raw.strip() or DEFAULT_LOCALE
    try:
        return str(Locale.parse(text.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        violations.append(FieldViolation("locale", f"{raw!r} is not a known locale, e.g. de_DE"))
        return DEFAULT_LOCALE


def _check_renders(body: str, variables: dict[str, Any], locale: str) -> str | None:
    """Why the template cannot be used, or None when it parses and renders."""
    try:
        _env.from_string(body).render(sample_context(variables, locale))
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    except Exception as exc:  # any error a template can raise means it cannot be used
        return f"does not render against a sample deal: {type(exc).__name__}: {exc}"
    return None


async def put_template(
    session: AsyncSession, principal: Principal, msg: pb.DocumentTemplate
) -> pb.DocumentTemplate:
    if not principal.has_role("admin"):
        raise PermissionDenied("only admins change document templates")
    violations: list[FieldViolation] = []
    if not TEMPLATE_KEY_RE.match(msg.key):
        violations.append(FieldViolation("key", "1 to 64 lower-case letters, digits, '_' or '-'"))
    name = " ".join(msg.name.split()) or msg.key
    if len(name) > MAX_NAME:
        violations.append(FieldViolation("name", f"at most {MAX_NAME} characters"))
    variables: dict[str, Any] = {}
    if msg.variables_json.strip():
        try:
            parsed = json.loads(msg.variables_json)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            variables = parsed
        else:
            violations.append(FieldViolation("variables_json", "must be a JSON object"))
    locale = _locale(msg.locale, violations)
    if not msg.body.strip():
        violations.append(FieldViolation("body", "required"))
    elif len(msg.body) > MAX_BODY:
        violations.append(FieldViolation("body", f"at most {MAX_BODY} characters"))
    elif not violations:
        problem = await asyncio.to_thread(_check_renders, msg.body, variables, locale)
        if problem:
            violations.append(FieldViolation("body", problem))
    if violations:
        raise InvalidArgument(violations)
    row = await session.get(
        models.DocumentTemplate, (principal.tenant_id, msg.key), with_for_update=True
    )
    if row is None:
        row = models.DocumentTemplate(tenant_id=principal.tenant_id, key=msg.key)
        session.add(row)
    row.name = name
    row.body = msg.body
    row.variables = variables
    row.locale = locale
    row.updated_by = principal.user_id
    row.updated_at = now()
    await session.flush()
    return template_to_pb(row)


async def list_templates(
    session: AsyncSession, principal: Principal
) -> pb.ListDocumentTemplatesResponse:
    rows = await session.scalars(
        sa.select(models.DocumentTemplate)
        .where(models.DocumentTemplate.tenant_id == principal.tenant_id)
        .order_by(models.DocumentTemplate.key)
    )
    return pb.ListDocumentTemplatesResponse(templates=[template_to_pb(row) for row in rows])


# ---------------------------------------------------------------- documents


async def generate(
    session: AsyncSession,
    principal: Principal,
    outbox: Outbox,
    directory: Directory,
    deal: models.Deal,
    template: models.DocumentTemplate,
) -> models.Document:
    """Renders `template` for `deal` with the person's data as the contacts service has
    it now, and stores HTML and PDF in the caller's transaction."""
    tenant_id = deal.tenant_id
    # The caller may see the deal but not its contact (another rep's); the document is
    # about the deal, so the person's data is fetched as the system.
    system = system_principal(tenant_id)
    contact = await directory.contact(system, deal.contact_id) if deal.contact_id else None
    company = await directory.company(system, deal.company_id) if deal.company_id else None
    stage = await session.get(models.Stage, (tenant_id, deal.stage_id))
    document_id = new_id(region_of(deal.id))
    context = build_context(
        deal=deal_context(deal, stage),
        contact=person(contact),
        company=organisation(company),
        variables=template.variables,
        amount=deal.amount,
        currency=deal.currency,
        locale=template.locale,
        today=now().date(),
        document_id=document_id,
    )
    try:
        html = await asyncio.to_thread(render, template.body, context)
    except Exception as exc:  # the template met data the sample did not have
        raise FailedPrecondition(
            f"template {template.key!r} does not render for deal {deal.id}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    pdf = await asyncio.to_thread(to_pdf, html)
    row = models.Document(
        id=document_id,
        tenant_id=tenant_id,
        deal_id=deal.id,
        template_key=template.key,
        title=template.name,
        html=html.encode(),
        pdf=pdf,
        created_by=principal.user_id,
        created_at=now(),
    )
    session.add(row)
    await session.flush()
    await outbox.add(
        session,
        principal,
        "document",
        "generated",
        events.DocumentGenerated(document_id=row.id, deal_id=deal.id, template_key=template.key),
    )
    return row


async def on_stage_entry(
    session: AsyncSession,
    principal: Principal,
    outbox: Outbox,
    directory: Directory,
    deal: models.Deal,
    stage: models.Stage,
) -> models.Document | None:
    """The document a stage asks for, generated as the deal enters it."""
    key = stage.document_template_key
    if not key:
        return None
    template = await session.get(models.DocumentTemplate, (deal.tenant_id, key))
    if template is None:
        # The move must not fail because configuration is incomplete.
        log.warning(
            "stage %s asks for document template %r, which the tenant has not defined; "
            "no document for deal %s",
            stage.id,
            key,
            deal.id,
        )
        return None
    return await generate(session, principal, outbox, directory, deal, template)


async def generate_document(
    session: AsyncSession,
    principal: Principal,
    outbox: Outbox,
    directory: Directory,
    request: pb.GenerateDocumentRequest,
) -> pb.Document:
    deal = await get_deal_row(session, principal, request.deal_id, field="deal_id")
    template = await session.get(
        models.DocumentTemplate, (principal.tenant_id, request.template_key)
    )
    if template is None:
        raise InvalidArgument.single("template_key", "no document template with this key")
    return document_to_pb(await generate(session, principal, outbox, directory, deal, template))


async def list_documents(
    session: AsyncSession, principal: Principal, deal_id: str
) -> pb.ListDocumentsResponse:
    await get_deal_row(session, principal, deal_id, field="deal_id")
    doc = models.Document
    rows = await session.execute(
        sa.select(
            doc.id,
            doc.deal_id,
            doc.template_key,
            doc.title,
            doc.created_at,
            sa.func.length(doc.pdf),
        )
        .where(doc.tenant_id == principal.tenant_id, doc.deal_id == deal_id)
        .order_by(doc.id)
    )
    return pb.ListDocumentsResponse(
        documents=[
            pb.Document(
                id=i, deal_id=d, template_key=k, title=t, created_at=timestamp(c), pdf_size=size
            )
            for i, d, k, t, c, size in rows.tuples()
        ]
    )


MEDIA_TYPES = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}


async def get_content(
    session: AsyncSession, principal: Principal, document_id: str, fmt: str
) -> pb.DocumentContent:
    fmt = fmt or "pdf"
    if fmt not in MEDIA_TYPES:
        raise InvalidArgument.single("format", "html or pdf")
    region_of(document_id)
    column = models.Document.pdf if fmt == "pdf" else models.Document.html
    row = (
        await session.execute(
            sa.select(models.Document.template_key, models.Document.title, column)
            .join(models.Deal, models.Deal.id == models.Document.deal_id)
            .where(
                models.Document.id == document_id,
                models.Document.tenant_id == principal.tenant_id,
                visible(models.Deal, principal),
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"document {document_id} not found")
    template_key, title, content = row
    return pb.DocumentContent(
        id=document_id,
        media_type=MEDIA_TYPES[fmt],
        content=content,
        filename=f"{template_key}-{document_id}.{fmt}",
        title=title,
    )
