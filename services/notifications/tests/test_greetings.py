"""Birthday greetings through the gateway: a tenant's rule greets each consented contact
on their birthday in their own language, at 10:00 in their own zone, by email or SMS,
once per year; contacts without consent are not greeted."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from crm_cli.cluster import Cluster
from crm_kit import clock

BERLIN, LISBON = ZoneInfo("Europe/Berlin"), ZoneInfo("Europe/Lisbon")


async def test_contacts_are_greeted_on_their_birthday_in_their_language_and_zone_once(
    cluster: Cluster,
    api: httpx.AsyncClient,
    token_for: Any,
    tenant: str,
    mailbox: Any,
    receiver: Any,
    eventually: Any,
    move_clock: Any,
    db: Any,
) -> None:
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    texting = f"{tenant}-sms"
    admin_b = token_for("boss", "admin", "eu", tenant=texting)

    async def ok(reply: Any, status: int = 200) -> Any:
        response = await reply
        assert response.status_code == status, response.text
        return response.json()

    bad = await api.put(
        "/v1/greetings/birthday",
        json={"purpose": "greetings", "local_time": "23:30"},
        headers=admin,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "local_time"
    unknown = await api.put("/v1/greetings/namesday", json={"purpose": "greetings"}, headers=admin)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "kind"
    rule = await ok(
        api.put(
            "/v1/greetings/birthday",
            json={"channel": "email", "purpose": "greetings", "local_time": "10:00"},
            headers=admin,
        )
    )
    assert (rule["kind"], rule["channel"], rule["enabled"]) == ("birthday", "email", True)
    assert (await ok(api.get("/v1/greetings", headers=admin)))["data"] == [rule]
    await ok(
        api.put(
            "/v1/greetings/birthday",
            json={"channel": "sms", "purpose": "greetings"},
            headers=admin_b,
        )
    )

    # The birthday: two days from now in Berlin (never 29 February).
    day = (clock.now().astimezone(BERLIN) + timedelta(days=2)).date()
    if (day.month, day.day) == (2, 29):
        day += timedelta(days=1)
    born = f"1985-{day:%m-%d}"

    async def person(
        headers: dict[str, str], name: str, language: str, zone: str, consent: bool, **more: Any
    ) -> dict[str, Any]:
        contact = await ok(
            api.post(
                "/v1/contacts",
                json={
                    "first_name": name,
                    "language": language,
                    "time_zone": zone,
                    "address": {"country": "PT" if zone == "Europe/Lisbon" else "DE"},
                    "important_dates": [{"kind": "birthday", "date": born}],
                    **more,
                },
                headers=headers,
            ),
            201,
        )
        if consent:
            await ok(
                api.post(
                    f"/v1/contacts/{contact['id']}/consents",
                    json={"purpose": "greetings", "status": "granted", "source": "shop"},
                    headers=headers,
                ),
                201,
            )
        return contact

    def mail(name: str) -> dict[str, Any]:
        return {"emails": [f"{name.lower()}@{tenant}.example"]}

    jonas = await person(admin, "Jonas", "de", "Europe/Berlin", True, **mail("Jonas"))
    olga = await person(admin, "Ольга", "ru", "Europe/Berlin", True, **mail("Olga"))
    maria = await person(admin, "Maria", "pt-BR", "Europe/Lisbon", True, **mail("Maria"))
    ivan = await person(admin, "Ivan", "ru", "Europe/Berlin", False, **mail("Ivan"))
    asha = await person(admin_b, "Asha", "hi", "Europe/Berlin", True, phones=["+49 151 98765432"])

    # 08:00 in Berlin on the day: the greetings are planned for 10:00 local, not sent yet.
    move_clock.to(datetime.combine(day, time(8, 0), tzinfo=BERLIN))

    async def planned() -> Any:
        rows = await db(
            "SELECT recipient_id, channel, next_attempt_at, status FROM deliveries "
            "WHERE kind = 'greeting.birthday' AND tenant_id = ANY($1::text[])",
            [tenant, texting],
        )
        return rows if len(rows) == 4 else None

    rows = {r["recipient_id"]: r for r in await eventually(planned, what="four greetings")}
    assert ivan["id"] not in rows  # no consent, no greeting
    ten = datetime.combine(day, time(10, 0))
    assert rows[jonas["id"]]["next_attempt_at"] == ten.replace(tzinfo=BERLIN).astimezone(UTC)
    assert rows[maria["id"]]["next_attempt_at"] == ten.replace(tzinfo=LISBON).astimezone(UTC)
    assert rows[asha["id"]]["channel"] == "sms"
    assert mailbox.to(jonas["emails"][0]) == []

    # 10:00 in Berlin: Jonas in German, Olga in Russian, Asha by SMS in Hindi.
    move_clock.to(datetime.combine(day, time(10, 0, 30), tzinfo=BERLIN))
    [to_jonas] = await eventually(lambda: mailbox.to(jonas["emails"][0]), what="Jonas's mail")
    assert str(to_jonas["Subject"]) == "Alles Gute zum Geburtstag, Jonas!"
    assert to_jonas["List-Unsubscribe"]  # the consent can be withdrawn from the message
    [to_olga] = await eventually(lambda: mailbox.to(olga["emails"][0]), what="Olga's mail")
    assert str(to_olga["Subject"]) == "С днём рождения, Ольга!"  # noqa: RUF001
    [sms] = await eventually(lambda: receiver.for_tenant(texting), what="Asha's text")
    assert sms["json"]["to"] == "+4915198765432"
    assert sms["json"]["text"].startswith("जन्मदिन की हार्दिक शुभकामनाएँ, Asha!")
    # In Lisbon it is only 09:00.
    assert mailbox.to(maria["emails"][0]) == []

    move_clock.to(datetime.combine(day, time(11, 0, 30), tzinfo=BERLIN))
    [to_maria] = await eventually(lambda: mailbox.to(maria["emails"][0]), what="Maria's mail")
    assert str(to_maria["Subject"]) == "Feliz aniversário, Maria!"
    assert mailbox.to(ivan["emails"][0]) == []

    # A contact whose consent arrives later that day is still greeted (now, it is past
    # 10:00) — and the passes that plan Paul's greeting do not greet anyone twice.
    paul = await person(admin, "Paul", "en", "Europe/Berlin", True, **mail("Paul"))
    [to_paul] = await eventually(lambda: mailbox.to(paul["emails"][0]), what="Paul's mail")
    assert str(to_paul["Subject"]) == "Happy birthday, Paul!"
    for someone in (jonas, olga, maria):
        assert len(mailbox.to(someone["emails"][0])) == 1
    assert len(receiver.for_tenant(texting)) == 1
    counts = await db(
        "SELECT event_id, count(*) AS n FROM deliveries WHERE kind = 'greeting.birthday' "
        "AND tenant_id = $1 GROUP BY event_id",
        tenant,
    )
    assert {r["event_id"]: r["n"] for r in counts} == {
        f"greeting:birthday:{c['id']}:{day.year}": 1 for c in (jonas, olga, maria, paul)
    }
