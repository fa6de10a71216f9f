"""SMS campaigns through the gateway: only consented contacts, in their working hours,
one message each even across a restart of the service, through the region's SMS
provider (a real local HTTP receiver); opting out by replying STOP (PARAR, СТОП ...) or by
the link in the message withdraws the consent, audited."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import timedelta
from typing import Any

import httpx

from crm_cli.cluster import Cluster
from crm_kit import clock
from crm_notifications.channels import sign
from crm_notifications.quiet import WorkingHours

ZONE = "Europe/Lisbon"


def _restart(cluster: Cluster, name: str) -> None:
    process = next(p for p in cluster.processes if p.name == name)
    process.stop()
    process.start(cluster.log_dir)
    deadline = time.monotonic() + 120
    while not process.healthy():
        assert time.monotonic() < deadline, f"{name} did not restart"
        time.sleep(0.2)


async def test_an_sms_campaign_reaches_consented_contacts_once_and_stop_opts_out(
    cluster: Cluster,
    api: httpx.AsyncClient,
    token_for: Any,
    tenant: str,
    receiver: Any,
    provider_secret: str,
    eventually: Any,
    move_clock: Any,
    db: Any,
) -> None:
    admin = token_for("boss", "admin", "eu", tenant=tenant)

    async def ok(reply: Any, status: int = 200) -> Any:
        response = await reply
        assert response.status_code == status, response.text
        return response.json()

    # A weekday evening in Lisbon, after the working day: the messages wait.
    move_clock.to(move_clock.next_local(ZONE, "20:00", weekdays=(1, 2, 3, 4)))
    await ok(
        api.put(
            "/v1/templates/campaign.windows/en",
            json={
                "subject": "Window week",
                "body_text": "Hi {{ contact.first_name }}, 20% off new windows this week.",
            },
            headers=admin,
        )
    )
    tag = f"windows-{tenant}"
    people: dict[str, Any] = {}
    for name, phone in (
        ("Ana", "+351 912 345 601"),
        ("Bruno", "+351 912 345 602"),
        ("Carla", "+351 912 345 603"),
        ("Duarte", "+351 912 345 604"),
    ):
        people[name] = await ok(
            api.post(
                "/v1/contacts",
                json={
                    "first_name": name,
                    "phones": [phone],
                    "tags": [tag],
                    "time_zone": ZONE,
                    "address": {"country": "PT"},
                },
                headers=admin,
            ),
            201,
        )
        if name != "Bruno":  # Bruno never agreed to marketing texts
            await ok(
                api.post(
                    f"/v1/contacts/{people[name]['id']}/consents",
                    json={"purpose": "marketing_sms", "status": "granted", "source": "shop"},
                    headers=admin,
                ),
                201,
            )

    bad = await api.post(
        "/v1/campaigns",
        json={
            "name": "Fax",
            "purpose": "marketing_sms",
            "template_kind": "campaign.windows",
            "channel": "fax",
        },
        headers=admin,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "channel"
    campaign = await ok(
        api.post(
            "/v1/campaigns",
            json={
                "name": "Window week",
                "purpose": "marketing_sms",
                "template_kind": "campaign.windows",
                "segment": {"tag": tag},
                "channel": "sms",
            },
            headers=admin,
        ),
        201,
    )
    assert campaign["channel"] == "sms"

    async def progress(check: Any) -> Any:
        reply = await api.get(f"/v1/campaigns/{campaign['id']}", headers=admin)
        data = reply.json()
        return data if reply.status_code == 200 and check(data) else None

    held = await eventually(
        lambda: progress(lambda c: c["deferred"] == 3), what="three messages held till morning"
    )
    assert (held["matched"], held["skipped_consent"], held["sent"]) == (4, 1, 0)
    assert receiver.for_tenant(tenant) == []

    # The service restarts overnight; in the morning each consented contact gets one text.
    await asyncio.to_thread(_restart, cluster, "notifications-eu")
    hours = WorkingHours.of(ZONE)
    move_clock.to(hours.next_open(clock.now()) + timedelta(seconds=30))
    done = await eventually(
        lambda: progress(lambda c: c["sent"] == 3), what="the texts to be sent", within=90
    )
    assert (done["sent"], done["skipped_consent"], done["deferred"], done["failed"]) == (
        3,
        1,
        0,
        0,
    )
    texts = {r["json"]["to"]: r for r in receiver.for_tenant(tenant)}
    sent = receiver.for_tenant(tenant)
    assert len(sent) == 3 and all(r["path"] == "/sms" for r in sent)
    phones = {name: people[name]["phones"][0] for name in people}
    assert set(texts) == {phones["Ana"], phones["Carla"], phones["Duarte"]}
    ana = texts[phones["Ana"]]
    assert ana["json"]["text"].startswith("Hi Ana, 20% off new windows this week.")
    stamp = ana["headers"]["X-Crm-Timestamp"]
    assert ana["headers"]["X-Crm-Signature"] == sign(provider_secret, stamp, ana["body"])
    rows = await db("SELECT count(*) AS n FROM deliveries WHERE campaign_id=$1", campaign["id"])
    assert rows[0]["n"] == 3

    # Carla replies "Parar." — the provider posts the reply, signed with its secret.
    async def reply(sender: str, text: str, secret: str = provider_secret) -> httpx.Response:
        body = json.dumps({"from": sender, "to": "+351910000000", "text": text}).encode()
        stamp = str(int(time.time()))
        return await api.post(
            "/public/sms/eu",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Crm-Timestamp": stamp,
                "X-Crm-Signature": sign(secret, stamp, body),
            },
        )

    forged = await reply(phones["Carla"], "STOP", secret="not-the-provider")
    assert forged.status_code == 401
    chat = await ok(reply(phones["Ana"], "Do you also fit doors?"))
    assert chat == {"opt_out": False, "withdrawn": 0}
    stopped = await ok(reply(phones["Carla"], "Parar."))
    assert stopped == {"opt_out": True, "withdrawn": 1}
    carla = await ok(api.get(f"/v1/contacts/{people['Carla']['id']}/consents", headers=admin))
    [current] = [c for c in carla["current"] if c["purpose"] == "marketing_sms"]
    assert (current["status"], current["source"]) == ("withdrawn", "sms_reply")

    # Duarte uses the link in his text instead.
    [link] = re.findall(
        r"http://\S+/public/unsubscribe/\S+", texts[phones["Duarte"]]["json"]["text"]
    )
    page = await api.get(link)
    assert page.status_code == 200, page.text
    duarte = await ok(api.get(f"/v1/contacts/{people['Duarte']['id']}/consents", headers=admin))
    [current] = [c for c in duarte["current"] if c["purpose"] == "marketing_sms"]
    assert (current["status"], current["source"]) == ("withdrawn", "unsubscribe_link")

    # Both withdrawals are on the audit trail.
    audit = await ok(api.get("/v1/compliance/audit?kind=contact", headers=admin))
    withdrawals = {
        (r["record_id"], r["actor_id"]) for r in audit["data"] if r["action"] == "consent.withdraw"
    }
    assert withdrawals == {
        (people["Carla"]["id"], "public:sms"),
        (people["Duarte"]["id"], "public:link"),
    }

    # The next campaign of that purpose reaches Ana only.
    again = await ok(
        api.post(
            "/v1/campaigns",
            json={
                "name": "Last days",
                "purpose": "marketing_sms",
                "template_kind": "campaign.windows",
                "segment": {"tag": tag},
                "channel": "sms",
            },
            headers=admin,
        ),
        201,
    )
    campaign = again
    second = await eventually(
        lambda: progress(lambda c: c["sent"] == 1), what="the second campaign"
    )
    assert (second["matched"], second["skipped_consent"]) == (4, 3)
    assert [r["json"]["to"] for r in receiver.for_tenant(tenant)].count(phones["Ana"]) == 2
