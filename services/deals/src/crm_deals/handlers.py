"""Event consumers: the deals service follows what happens to contacts.

`contacts.contact.erased` anonymises the person's deals and deletes their documents;
`contacts.contact.merged` re-points the merged contact's deals to the survivor. The
kit's Consumer runs each handler once per event, in the transaction of its inbox row.
"""

from __future__ import annotations

import logging

from nats.aio.msg import Msg
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.events.v1 import contacts_pb2 as contact_events
from crm_api.crm.events.v1 import envelope_pb2
from crm_deals import privacy
from crm_kit.messaging import Consumer, subject_for
from crm_kit.runtime import Runtime

log = logging.getLogger(__name__)

DURABLE = "deals"
ERASED = "contacts.contact.erased"
MERGED = "contacts.contact.merged"


async def handle(session: AsyncSession, envelope: envelope_pb2.Envelope, msg: Msg) -> None:
    if envelope.event_type == ERASED:
        erased = contact_events.ContactErased()
        envelope.payload.Unpack(erased)
        counts = await privacy.anonymise(session, envelope.tenant_id, erased.contact_id)
        log.info("contact erased", extra={"event_id": envelope.event_id, **counts})
    elif envelope.event_type == MERGED:
        merged = contact_events.ContactMerged()
        envelope.payload.Unpack(merged)
        moved = await privacy.repoint(
            session, envelope.tenant_id, merged.merged_id, merged.survivor_id
        )
        log.info("contact merged", extra={"event_id": envelope.event_id, "deals": moved})


def consumer(runtime: Runtime) -> Consumer:
    region = runtime.region
    return Consumer(
        runtime.sessions,
        runtime.nats,
        durable=DURABLE,
        subjects=[
            subject_for(region, "contacts", "contact", "erased"),
            subject_for(region, "contacts", "contact", "merged"),
        ],
        handler=handle,
    )
