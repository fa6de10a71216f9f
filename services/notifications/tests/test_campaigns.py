"""Campaigns: only consented contacts of the segment, in their working hours, each
message with an unsubscribe link that withdraws the consent; counts visible; privacy."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from crm_api.crm.contacts.v1 import contacts_pb2
from crm_api.crm.notifications.v1 import notifications_pb2 as pb
from crm_api.crm.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from crm_kit import clock
from crm_notifications.quiet import WorkingHours

ZONE = "Europe/Lisbon"


async def _consent(eu, contact_id: str, status: str) -> None:  # type: ignore[no-untyped-def]
    await eu.contacts.RecordConsent(
        contacts_pb2.RecordConsentRequest(
            consent=contacts_pb2.Consent(
                contact_id=contact_id,
                purpose="marketing_email",
                lawful_basis="consent",
                status=status,
                source="web_form",
            )
        ),
        metadata=eu.meta(),
        timeout=10,
    )


async def _campaign(eu, tag: str) -> pb.Campaign:  # type: ignore[no-untyped-def]
    return await eu.notifications.CreateCampaign(
        pb.CreateCampaignRequest(
            campaign=pb.Campaign(
                name="Spring",
                purpose="marketing_email",
                template_kind="campaign.spring",
                segment=pb.Segment(tag=tag),
            )
        ),
        metadata=eu.meta(),
        timeout=10,
    )


async def _finished(eu, campaign_id: str):  # type: ignore[no-untyped-def]
    reply = await eu.notifications.GetCampaign(
        pb.GetCampaignRequest(id=campaign_id), metadata=eu.meta(), timeout=10
    )
    return reply if reply.status == "done" or (reply.deferred and not reply.pending) else None


async def test_a_campaign_reaches_only_consented_contacts_and_unsubscribe_works(
    eu, cluster, mailbox, db, eventually, move_clock
) -> None:  # type: ignore[no-untyped-def]
    # A weekday evening in Lisbon, after the (built-in) working day: the message waits.
    move_clock.to(move_clock.next_local(ZONE, "20:00", weekdays=(1, 2, 3, 4)))
    await eu.notifications.PutTemplate(
        pb.PutTemplateRequest(
            template=pb.Template(
                kind="campaign.spring",
                locale="en",
                subject="Spring offers for {{ contact.first_name }}",
                body_text="Hello {{ contact.first_name }}, our spring offers are here.",
            )
        ),
        metadata=eu.meta(),
        timeout=10,
    )
    tag = f"spring-{eu.tenant}"
    people = {}
    for name in ("Ada", "Bea", "Cy", "Dan"):
        people[name] = await eu.contact(
            first_name=name,
            emails=[f"{name.lower()}@{eu.tenant}.example"],
            tags=[tag] if name != "Dan" else ["other"],
            time_zone=ZONE,
        )
    await _consent(eu, people["Ada"].id, "granted")  # consented
    await _consent(eu, people["Cy"].id, "granted")
    await _consent(eu, people["Cy"].id, "withdrawn")  # changed their mind
    await _consent(eu, people["Dan"].id, "granted")  # not in the segment
    # Bea never consented.

    campaign = await _campaign(eu, tag)
    progress = await eventually(lambda: _finished(eu, campaign.id), what="the campaign to run")
    assert (progress.matched, progress.skipped_consent) == (3, 2)
    hours = WorkingHours.of(ZONE)
    # Outside Ada's working hours in Lisbon: held, and counted as deferred ...
    assert (progress.deferred, progress.sent) == (1, 0)
    assert mailbox.to(people["Ada"].emails[0]) == []
    # ... until 09:00 the next morning.
    assert f"{hours.next_open(clock.now()).astimezone(hours.zone):%H:%M}" == "09:00"
    move_clock.to(hours.next_open(clock.now()) + timedelta(seconds=30))
    done = await eventually(lambda: _sent(eu, campaign.id), what="the campaign message to be sent")
    assert (done.sent, done.skipped_consent, done.deferred, done.failed) == (1, 2, 0, 0)
    assert done.status == "done"

    [mail] = mailbox.to(people["Ada"].emails[0])
    assert str(mail["Subject"]) == "Spring offers for Ada"
    for other in ("Bea", "Cy", "Dan"):
        assert mailbox.to(people[other].emails[0]) == []
    text = mail.get_body(("plain",)).get_content()
    [link] = re.findall(r"http://\S+/public/unsubscribe/\S+", text)
    assert mail["List-Unsubscribe"] == f"<{link}>"

    # The link is public: no token needed. It withdraws the consent in contacts.
    async with httpx.AsyncClient(timeout=30) as client:
        page = await client.get(link)
        assert page.status_code == 200, page.text
        tampered = await client.get(link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"))
        assert tampered.status_code in (404, 422)
    consents = await eu.contacts.ListConsents(
        contacts_pb2.ListConsentsRequest(contact_id=people["Ada"].id), metadata=eu.meta()
    )
    [current] = [c for c in consents.current if c.purpose == "marketing_email"]
    assert (current.status, current.source) == ("withdrawn", "unsubscribe_link")

    # The next campaign to the same segment reaches nobody.
    again = await _campaign(eu, tag)
    progress = await eventually(lambda: _finished(eu, again.id), what="the second campaign")
    assert (progress.matched, progress.skipped_consent, progress.sent) == (3, 3, 0)
    assert len(mailbox.to(people["Ada"].emails[0])) == 1

    # Privacy: the delivery log holds Ada's address; export shows it, erasure removes it.
    privacy = privacy_pb2_grpc.PrivacyServiceStub(eu.channels[3])
    exported = await privacy.ExportSubject(
        privacy_pb2.ExportSubjectRequest(contact_id=people["Ada"].id), metadata=eu.meta()
    )
    kinds = {r.kind for r in exported.records}
    assert {"delivery", "delivery_attempt"} <= kinds
    assert any(
        r.data["address"] == people["Ada"].emails[0]
        for r in exported.records
        if r.kind == "delivery"
    )
    erased = await privacy.EraseSubject(
        privacy_pb2.EraseSubjectRequest(contact_id=people["Ada"].id), metadata=eu.meta()
    )
    assert {e.kind: e.count for e in erased.erased}["delivery"] == 1
    assert await db("SELECT 1 FROM deliveries WHERE contact_id=$1", people["Ada"].id) == []
    assert await db("SELECT 1 FROM delivery_attempts WHERE contact_id=$1", people["Ada"].id) == []


async def _sent(eu, campaign_id: str):  # type: ignore[no-untyped-def]
    reply = await eu.notifications.GetCampaign(
        pb.GetCampaignRequest(id=campaign_id), metadata=eu.meta(), timeout=10
    )
    return reply if reply.sent == 1 else None
