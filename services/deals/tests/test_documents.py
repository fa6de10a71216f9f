"""Document templates (checked when saved) and documents generated on entering a stage."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from crm_api.crm.contacts.v1 import contacts_pb2
from crm_api.crm.deals.v1 import deals_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")
INVALID = grpc.StatusCode.INVALID_ARGUMENT

INVOICE = """<html><body>
<h1>Invoice {{ document.id }}</h1>
<p>{{ contact.name }}<br>{% for line in contact.address_lines %}{{ line }}<br>{% endfor %}</p>
<p>{{ deal.custom_fields.service | default(deal.title) }}: {{ amount_formatted }}</p>
<p>Please pay to {{ vars.bank }}, IBAN {{ tenant.iban }}.</p>
<p>{{ today }}</p>
</body></html>"""
PAYMENT_DETAILS = {"iban": "DE89 3704 0044 0532 0130 00", "bank": "Commerzbank Köln"}


def template(body: str = INVOICE, **fields: Any) -> pb.DocumentTemplate:
    values: dict[str, Any] = {
        "key": "invoice",
        "name": "Invoice",
        "body": body,
        "variables_json": json.dumps(PAYMENT_DETAILS),
        "locale": "de_DE",
        **fields,
    }
    return pb.DocumentTemplate(**values)


async def put(client: Any, item: pb.DocumentTemplate, meta: Any = None) -> pb.DocumentTemplate:
    return await client.deals.PutDocumentTemplate(
        pb.PutDocumentTemplateRequest(template=item), metadata=meta or client.admin
    )


async def test_a_template_that_does_not_render_is_refused_when_saved(
    client: Any, refused: Any
) -> None:
    for body in (
        "<p>{% if %}</p>",  # does not parse
        "<p>{{ contact.nmae }}</p>",  # misspelt variable
        "<p>{{ tenant.swift }}</p>",  # a constant the template's variables lack
        "<p>{{ amount_formatted | no_such_filter }}</p>",
        "<p>{{ deal.__class__.__mro__ }}</p>",  # the sandbox refuses internals
        "<p>{{ 1 / 0 }}</p>",
    ):
        assert await refused(put(client, template(body)), INVALID) == {"body"}, body
    fields = await refused(
        put(client, template(key="Invoice 2", variables_json="[]", locale="xx_YY")), INVALID
    )
    assert fields == {"key", "variables_json", "locale"}
    await refused(
        put(client, template(), client.as_("manager", team="t")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    saved = await put(client, template())
    assert (saved.key, saved.locale) == ("invoice", "de_DE")
    assert json.loads(saved.variables_json) == PAYMENT_DETAILS
    listed = await client.deals.ListDocumentTemplates(
        pb.ListDocumentTemplatesRequest(), metadata=client.admin
    )
    assert [t.key for t in listed.templates] == ["invoice"]


async def test_entering_the_payment_stage_generates_the_invoice(
    client: Any, refused: Any, deals_events: Any
) -> None:
    await put(client, template())
    pipeline = await client.pipeline(
        pb.Stage(name="First call", win_probability=10),
        pb.Stage(name="Payment", win_probability=90, document_template_key="invoice"),
        pb.Stage(name="Contract", win_probability=95, document_template_key="contract"),
        pb.Stage(name="Installed", kind="won", win_probability=100),
        pb.Stage(name="Lost", kind="lost"),
    )
    first, payment, contract = (s.id for s in pipeline.stages[:3])
    rep = client.as_("sales_rep", "u-rep", "north")
    contact = await client.contact(
        rep,
        first_name="Jürgen",
        last_name="Fenstermann",
        address=contacts_pb2.Address(
            street="Lindenallee 12", city="Köln", postal_code="50968", country="DE"
        ),
    )
    deal = await client.deal(
        contact.id,
        rep,
        pipeline_id=pipeline.id,
        amount=pb.Money(amount="4890.50", currency="EUR"),
        custom_fields_json=json.dumps({"service": "3 windows, installed"}),
    )
    assert deal.stage_id == first
    none_yet = await client.deals.ListDocuments(
        pb.ListDocumentsRequest(deal_id=deal.id), metadata=rep
    )
    assert list(none_yet.documents) == []

    await client.move(deal.id, payment, rep)
    (document,) = (
        await client.deals.ListDocuments(pb.ListDocumentsRequest(deal_id=deal.id), metadata=rep)
    ).documents
    assert (document.template_key, document.title) == ("invoice", "Invoice")
    assert document.id.startswith("eu_") and document.pdf_size > 0

    html = await client.deals.GetDocumentContent(
        pb.GetDocumentContentRequest(id=document.id, format="html"), metadata=rep
    )
    text = html.content.decode()
    assert html.media_type.startswith("text/html")
    for expected in (
        "Jürgen Fenstermann",
        "Lindenallee 12",
        "50968 Köln",
        "3 windows, installed",
        "4.890,50\xa0€",  # de_DE
        "DE89 3704 0044 0532 0130 00",
        "Commerzbank Köln",
        document.id,
    ):
        assert expected in text, expected
    pdf = await client.deals.GetDocumentContent(
        pb.GetDocumentContentRequest(id=document.id), metadata=rep
    )
    assert pdf.content.startswith(b"%PDF") and pdf.media_type == "application/pdf"
    assert pdf.filename == f"invoice-{document.id}.pdf" and len(pdf.content) == document.pdf_size

    # A stage naming a template the tenant does not have: the move happens, no document.
    moved = await client.move(deal.id, contract, rep)
    assert moved.stage_id == contract
    listed = await client.deals.ListDocuments(
        pb.ListDocumentsRequest(deal_id=deal.id), metadata=rep
    )
    assert len(listed.documents) == 1

    # On demand too; and only for those who may see the deal.
    again = await client.deals.GenerateDocument(
        pb.GenerateDocumentRequest(deal_id=deal.id, template_key="invoice"), metadata=rep
    )
    assert again.deal_id == deal.id and again.id != document.id
    assert await refused(
        client.deals.GenerateDocument(
            pb.GenerateDocumentRequest(deal_id=deal.id, template_key="contract"), metadata=rep
        ),
        INVALID,
    ) == {"template_key"}
    stranger = client.as_("sales_rep", "u-stranger", "south")
    for call in (
        client.deals.GetDocumentContent(
            pb.GetDocumentContentRequest(id=document.id), metadata=stranger
        ),
        client.deals.ListDocuments(pb.ListDocumentsRequest(deal_id=deal.id), metadata=stranger),
    ):
        await refused(call, grpc.StatusCode.NOT_FOUND)
    await refused(
        client.deals.GetDocumentContent(
            pb.GetDocumentContentRequest(id=document.id, format="docx"), metadata=rep
        ),
        INVALID,
    )

    generated = [
        e
        for e in await deals_events("eu", "deals.document.generated")
        if e.tenant_id == client.tenant
    ]
    assert len(generated) == 2
    for envelope in generated:
        raw = envelope.SerializeToString()
        assert b"Fenstermann" not in raw and b"Lindenallee" not in raw
