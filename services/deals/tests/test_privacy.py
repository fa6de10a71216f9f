"""A person's erasure reaches their deals; export; and events never carry personal data."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from crm_api.crm.contacts.v1 import contacts_pb2
from crm_api.crm.deals.v1 import deals_pb2 as pb
from crm_api.crm.privacy.v1 import privacy_pb2

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET_TITLE = "Windows for Ms Geheimnis"
SECRET_TEXT = "she works nights, call after 20:00"
SECRET_REASON = "moved to Geheimstadt"
SECRET_FIELD = "Geheimweg 7"
SECRET_NOTE = "paid by her neighbour Herr Geheimrat"


async def setup_deals(client: Any) -> tuple[contacts_pb2.Contact, pb.Deal, pb.Deal]:
    await client.deals.PutDocumentTemplate(
        pb.PutDocumentTemplateRequest(
            template=pb.DocumentTemplate(
                key="offer", name="Offer", body="<p>{{ contact.name }}: {{ deal.title }}</p>"
            )
        ),
        metadata=client.admin,
    )
    contact = await client.contact(first_name="Gerda", last_name="Geheimnis")
    deal = await client.deal(
        contact.id,
        title=SECRET_TITLE,
        description=SECRET_TEXT,
        amount=pb.Money(amount="2500.00", currency="EUR"),
        expected_close_date="2027-03-01",
        custom_fields_json=json.dumps({"site": SECRET_FIELD}),
    )
    await client.deals.RecordPayment(
        pb.RecordPaymentRequest(
            payment=pb.Payment(
                deal_id=deal.id,
                amount=pb.Money(amount="500.00"),
                method="cash",
                note=SECRET_NOTE,
            )
        ),
        metadata=client.admin,
    )
    deal = await client.move(deal.id, "default-lost", lost_reason=SECRET_REASON)
    await client.deals.GenerateDocument(
        pb.GenerateDocumentRequest(deal_id=deal.id, template_key="offer"), metadata=client.admin
    )
    bystander_contact = await client.contact()
    bystander = await client.deal(bystander_contact.id, title="Someone else's windows")
    return contact, deal, bystander


def assert_anonymised(deal: pb.Deal, before: pb.Deal) -> None:
    assert (deal.title, deal.contact_id, deal.description, deal.lost_reason) == (
        "Erased",
        "",
        "",
        "",
    )
    assert json.loads(deal.custom_fields_json) == {}
    # What reporting needs stays.
    assert deal.amount == before.amount and deal.expected_close_date == before.expected_close_date
    assert (deal.stage_id, deal.status, deal.pipeline_id) == (
        before.stage_id,
        before.status,
        before.pipeline_id,
    )
    assert list(deal.history) == list(before.history)
    # The payment stays for the books.
    assert (deal.paid.amount, deal.balance_due.amount) == ("500.00", "2000.00")


async def test_erasing_the_contact_anonymises_their_deals(
    client: Any, eventually: Any, deals_events: Any
) -> None:
    contact, deal, bystander = await setup_deals(client)
    # The contacts service erases the person and announces it; the deals service follows.
    await client.contacts_privacy.EraseSubject(
        privacy_pb2.EraseSubjectRequest(contact_id=contact.id),
        metadata=client.as_("compliance_officer", "u-dpo"),
    )

    async def anonymised() -> pb.Deal | None:
        current = await client.deals.GetDeal(pb.GetDealRequest(id=deal.id), metadata=client.admin)
        return current if current.contact_id == "" else None

    after = await eventually(anonymised, within=20, what="the deal to lose its contact")
    assert_anonymised(after, deal)
    documents = await client.deals.ListDocuments(
        pb.ListDocumentsRequest(deal_id=deal.id), metadata=client.admin
    )
    assert list(documents.documents) == []
    untouched = await client.deals.GetDeal(
        pb.GetDealRequest(id=bystander.id), metadata=client.admin
    )
    assert untouched == bystander
    exported = await client.privacy.ExportSubject(
        privacy_pb2.ExportSubjectRequest(contact_id=contact.id), metadata=client.admin
    )
    assert list(exported.records) == []

    # Events carried ids, enums and amounts only: nothing that describes the person.
    mine = [e for e in await deals_events("eu", "deals.>") if e.tenant_id == client.tenant]
    assert {e.event_type for e in mine} >= {
        "deals.deal.created",
        "deals.deal.stage_changed",
        "deals.deal.lost",
        "deals.document.generated",
        "deals.payment.recorded",
    }
    for envelope in mine:
        raw = envelope.SerializeToString()
        for secret in (
            SECRET_TITLE,
            SECRET_TEXT,
            SECRET_REASON,
            SECRET_FIELD,
            SECRET_NOTE,
            "Geheimnis",
        ):
            assert secret.encode() not in raw, (envelope.event_type, secret)


async def test_export_and_erase_subject_directly(client: Any, refused: Any) -> None:
    contact, deal, bystander = await setup_deals(client)
    request = privacy_pb2.ExportSubjectRequest(contact_id=contact.id)
    await refused(
        client.privacy.ExportSubject(request, metadata=client.as_("sales_rep", "u-rep")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    exported = await client.privacy.ExportSubject(
        request, metadata=client.as_("compliance_officer", "u-dpo")
    )
    assert (exported.service, exported.region) == ("deals", "eu")
    kinds = sorted(r.kind for r in exported.records)
    assert kinds == ["deal", "document", "payment", "stage_change"]
    (paid,) = [r for r in exported.records if r.kind == "payment"]
    assert (paid.data["note"], paid.data["method"]) == (SECRET_NOTE, "cash")
    (record,) = [r for r in exported.records if r.kind == "deal"]
    assert record.id == deal.id and record.data["title"] == SECRET_TITLE
    assert (
        record.data["amount"] == "2500.0000"
        and record.data["custom_fields"]["site"] == SECRET_FIELD
    )
    assert bystander.id not in str(exported)

    erase = privacy_pb2.EraseSubjectRequest(contact_id=contact.id)
    erased = await client.privacy.EraseSubject(erase, metadata=client.admin)
    assert {c.kind: c.count for c in erased.erased} == {
        "deal": 1,
        "document": 1,
        "payment_note": 1,
        "idempotent_response": 0,
    }
    again = await client.privacy.EraseSubject(erase, metadata=client.admin)
    assert {c.kind: c.count for c in again.erased}["deal"] == 0
    after = await client.deals.GetDeal(pb.GetDealRequest(id=deal.id), metadata=client.admin)
    assert_anonymised(after, deal)
    listed = await client.deals.ListPayments(
        pb.ListPaymentsRequest(deal_id=deal.id), metadata=client.admin
    )
    assert [(p.amount.amount, p.note) for p in listed.payments] == [("500.00", "")]


async def test_a_merge_moves_the_deals_to_the_surviving_contact(
    client: Any, eventually: Any
) -> None:
    survivor = await client.contact(first_name="Anna", last_name="Merge")
    duplicate = await client.contact(first_name="Ana", last_name="Merge")
    deal = await client.deal(duplicate.id)
    await client.contacts.MergeContacts(
        contacts_pb2.MergeContactsRequest(survivor_id=survivor.id, merged_id=duplicate.id),
        metadata=client.admin,
    )

    async def moved() -> bool:
        current = await client.deals.GetDeal(pb.GetDealRequest(id=deal.id), metadata=client.admin)
        return current.contact_id == survivor.id

    await eventually(moved, within=20, what="the deal to follow the merge")
