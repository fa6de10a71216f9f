"""Working hours: the tenant's default (set by an admin through the gateway, in every
region) applies in each person's own zone to users who set none and to campaign
contacts, users' own hours win; and a message held over a DST change arrives at the
right local hour, through the real dispatcher and SMTP.

The last test moves the shared clock months ahead (to the next spring-forward in New
York), so it stays last in this file.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from crm_api.crm.contacts.v1 import contacts_pb2
from crm_api.crm.notifications.v1 import notifications_pb2 as pb
from crm_api.crm.tasks.v1 import tasks_pb2
from crm_kit import clock
from crm_notifications.quiet import Schedule, WorkingHours

ALL_WEEK = [1, 2, 3, 4, 5, 6, 7]


def _fields(response) -> set[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return {e["field"] for e in response.json()["errors"]}


async def test_an_admin_sets_the_tenant_default_for_every_region(api, token_for, tenant) -> None:  # type: ignore[no-untyped-def]
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    rep = token_for("rep", "sales_rep", "eu", tenant=tenant)
    before = await api.get("/v1/notifications/working-hours", headers=admin)
    assert before.status_code == 200, before.text
    assert before.json() == {
        "start": "09:00",
        "end": "18:00",
        "days": [1, 2, 3, 4, 5],
        "configured": False,
        "updated_by": "",
    }

    bad = await api.put(
        "/v1/notifications/working-hours",
        json={"start": "8am", "end": "24:01", "days": [1, 0]},
        headers=admin,
    )
    assert _fields(bad) == {"start", "end", "days[1]"}
    backwards = await api.put(
        "/v1/notifications/working-hours",
        json={"start": "17:00", "end": "08:00", "days": [1]},
        headers=admin,
    )
    assert _fields(backwards) == {"end"}
    assert "after the start" in backwards.json()["detail"]
    no_days = await api.put(
        "/v1/notifications/working-hours", json={"start": "08:00", "end": "16:00"}, headers=admin
    )
    assert _fields(no_days) == {"days"}
    denied = await api.put(
        "/v1/notifications/working-hours",
        json={"start": "08:00", "end": "16:00", "days": [1]},
        headers=rep,
    )
    assert denied.status_code == 404
    # Nothing was written by the refused requests.
    assert (await api.get("/v1/notifications/working-hours", headers=admin)).json()[
        "configured"
    ] is False

    saved = await api.put(
        "/v1/notifications/working-hours",
        json={"start": "07:30", "end": "16:00", "days": [6, 1, 2, 2]},
        headers=admin,
    )
    assert saved.status_code == 200, saved.text
    assert (saved.json()["start"], saved.json()["days"]) == ("07:30", [1, 2, 6])
    until_midnight = await api.put(
        "/v1/notifications/working-hours",
        json={"start": "07:30", "end": "24:00", "days": [6, 1, 2, 2]},
        headers=admin,
    )
    assert until_midnight.json()["end"] == "24:00", until_midnight.text
    # Every region has it: users whose home is br or us read the same default.
    for region in ("eu", "br", "us"):
        reader = token_for("someone", "sales_rep", region, tenant=tenant)
        got = (await api.get("/v1/notifications/working-hours", headers=reader)).json()
        assert (got["start"], got["end"], got["days"], got["configured"]) == (
            "07:30",
            "24:00",
            [1, 2, 6],
            True,
        ), region
        assert got["updated_by"] == "boss"
    elsewhere = token_for("boss", "admin", "eu", tenant=tenant + "-other")
    other = (await api.get("/v1/notifications/working-hours", headers=elsewhere)).json()
    assert other["configured"] is False  # tenants are isolated


def _hhmm(hour: int) -> str:
    return f"{hour % 24:02d}:00"


def _window(start: int) -> tuple[str, str]:
    """One hour from `start` (local), kept within the day."""
    return _hhmm(start), "24:00" if start % 24 == 23 else _hhmm(start + 1)


async def _set_default(eu, start: str, end: str, days: list[int]) -> None:  # type: ignore[no-untyped-def]
    await eu.notifications.PutWorkingHours(
        pb.PutWorkingHoursRequest(working_hours=pb.WorkingHours(start=start, end=end, days=days)),
        metadata=eu.meta(),
        timeout=10,
    )


def _schedule(start: str, end: str, days: list[int]) -> Schedule:
    return Schedule(time.fromisoformat(start), time.fromisoformat(end), tuple(days))


def _default_window_closed_now(*zones: str) -> tuple[str, str, dict[str, datetime]]:
    """A one-hour tenant window, every day, that is closed now in each of `zones` and
    opens there at another instant than the built-in 09:00-18:00 Monday-Friday would
    (so a dispatcher ignoring the default could not pass by luck)."""
    now = clock.now()
    first = now.astimezone(ZoneInfo(zones[0])).hour
    for ahead in range(3, 8):
        start, end = _window(first + ahead)
        default = _schedule(start, end, ALL_WEEK)
        opens = {}
        for name in zones:
            ours = WorkingHours.of(name, default=default)
            builtin = WorkingHours.of(name)
            if ours.is_open(now) or ours.next_open(now) == builtin.next_open(now):
                break
            opens[name] = ours.next_open(now)
        else:
            return start, end, opens
    raise AssertionError("no suitable window")  # unreachable for two zones 12 hours apart


async def _deferred(db, tenant: str, recipient: str):  # type: ignore[no-untyped-def]
    return await db(
        "SELECT * FROM deliveries WHERE tenant_id=$1 AND recipient_id=$2 AND channel='email'"
        " AND deferred_reason='quiet_hours' AND status='pending'",
        tenant,
        recipient,
    )


async def _task(eu, assignee: str, title: str) -> None:  # type: ignore[no-untyped-def]
    await eu.tasks.CreateTask(
        tasks_pb2.CreateTaskRequest(task=tasks_pb2.Task(title=title, assignee_id=assignee)),
        metadata=eu.meta(),
        timeout=10,
    )


async def test_users_without_hours_follow_the_tenant_default_in_their_own_zone(
    eu, mailbox, db, eventually, move_clock
) -> None:  # type: ignore[no-untyped-def]
    tokyo, sao_paulo = "Asia/Tokyo", "America/Sao_Paulo"  # 12 hours apart, no DST
    # Noon in São Paulo, midnight in Tokyo, whatever the hour the suite runs at.
    move_clock.to(move_clock.next_local(sao_paulo, "12:00"))
    start, end, opens = _default_window_closed_now(tokyo, sao_paulo)
    await _set_default(eu, start, end, ALL_WEEK)
    # Aki and Bia set no hours; Caio set his own, open right now where he is.
    unset = {"working_hours_start": "", "working_hours_end": "", "working_days": []}
    aki = await eu.user("aki", time_zone=tokyo, **unset)
    bia = await eu.user("bia", time_zone=sao_paulo, **unset)
    caio = await eu.user(
        "caio",
        time_zone=sao_paulo,
        working_hours_start="11:00",
        working_hours_end="14:00",
        working_days=[],
    )
    assert (aki.working_hours_start, list(aki.working_days)) == ("", [])

    for person in (aki, bia, caio):
        await _task(eu, person.id, f"Quote for {person.id}")
    # Caio's own hours win over the (closed) tenant default: his email comes at once.
    await eventually(lambda: mailbox.to(caio.email), what="Caio's email in his own hours")
    # The others wait for the tenant's window in their own zone: two different instants.
    for person, zone in ((aki, tokyo), (bia, sao_paulo)):
        [held] = await eventually(
            lambda p=person: _deferred(db, eu.tenant, p.id), what=f"{person.id}'s held email"
        )
        assert held["next_attempt_at"] == opens[zone].replace(microsecond=0), person.id
    assert mailbox.to(aki.email) == [] and mailbox.to(bia.email) == []

    first, second = sorted(opens.values())
    assert first == opens[tokyo]  # the window comes to Tokyo 12 hours before São Paulo
    move_clock(first - clock.now() + timedelta(seconds=5))
    [mail] = await eventually(lambda: mailbox.to(aki.email), what="Aki's email at the default")
    assert "Quote for aki" in str(mail["Subject"])
    arrived = parsedate_to_datetime(str(mail["Date"])).astimezone(ZoneInfo(tokyo))
    assert f"{arrived:%H:%M}" == start  # what Aki sees: it came when her day starts
    assert mailbox.to(bia.email) == []
    move_clock(second - clock.now() + timedelta(seconds=5))
    await eventually(lambda: mailbox.to(bia.email), what="Bia's email at the default")


async def _consent(eu, contact_id: str) -> None:  # type: ignore[no-untyped-def]
    await eu.contacts.RecordConsent(
        contacts_pb2.RecordConsentRequest(
            consent=contacts_pb2.Consent(
                contact_id=contact_id,
                purpose="marketing_email",
                lawful_basis="consent",
                status="granted",
                source="web_form",
            )
        ),
        metadata=eu.meta(),
        timeout=10,
    )


async def _campaign(eu, campaign_id: str) -> pb.Campaign:  # type: ignore[no-untyped-def]
    return await eu.notifications.GetCampaign(  # type: ignore[no-any-return]
        pb.GetCampaignRequest(id=campaign_id), metadata=eu.meta(), timeout=10
    )


async def test_a_campaign_contact_follows_the_tenant_default_in_their_zone(
    eu, mailbox, db, eventually, move_clock
) -> None:  # type: ignore[no-untyped-def]
    zone = "Asia/Kolkata"
    move_clock.to(move_clock.next_local(zone, "12:30"))
    start, end, opens = _default_window_closed_now(zone)
    await _set_default(eu, start, end, ALL_WEEK)
    await eu.notifications.PutTemplate(
        pb.PutTemplateRequest(
            template=pb.Template(
                kind="campaign.monsoon",
                locale="en",
                subject="Monsoon offers for {{ contact.first_name }}",
                body_text="Hello {{ contact.first_name }}.",
            )
        ),
        metadata=eu.meta(),
        timeout=10,
    )
    tag = f"monsoon-{eu.tenant}"
    priya = await eu.contact(
        first_name="Priya",
        emails=[f"priya@{eu.tenant}.example"],
        tags=[tag],
        time_zone=zone,
    )
    await _consent(eu, priya.id)
    created = await eu.notifications.CreateCampaign(
        pb.CreateCampaignRequest(
            campaign=pb.Campaign(
                name="Monsoon",
                purpose="marketing_email",
                template_kind="campaign.monsoon",
                segment=pb.Segment(tag=tag),
            )
        ),
        metadata=eu.meta(),
        timeout=10,
    )
    progress = await eventually(
        lambda: _deferred_campaign(eu, created.id), what="the campaign message to be held"
    )
    assert (progress.deferred, progress.sent) == (1, 0)
    [held] = await _deferred(db, eu.tenant, priya.id)
    assert held["next_attempt_at"] == opens[zone].replace(microsecond=0)
    assert mailbox.to(priya.emails[0]) == []

    move_clock(opens[zone] - clock.now() + timedelta(seconds=5))
    [mail] = await eventually(lambda: mailbox.to(priya.emails[0]), what="the campaign email")
    assert str(mail["Subject"]) == "Monsoon offers for Priya"
    arrived = parsedate_to_datetime(str(mail["Date"])).astimezone(ZoneInfo(zone))
    assert f"{arrived:%H:%M}" == start


async def _deferred_campaign(eu, campaign_id: str) -> pb.Campaign | None:  # type: ignore[no-untyped-def]
    reply = await _campaign(eu, campaign_id)
    return reply if reply.deferred else None


def _next_spring_forward(zone: ZoneInfo, after: datetime) -> datetime:
    """Noon of the first day after `after` whose UTC offset is larger than the day
    before's (the Sunday clocks go forward), in `zone`."""
    day = after.astimezone(zone).replace(hour=12, minute=0, second=0, microsecond=0)
    for _ in range(400):
        following = (day + timedelta(days=1)).astimezone(UTC).astimezone(zone)
        following = following.replace(hour=12)
        before, later = day.utcoffset(), following.utcoffset()
        if before is not None and later is not None and later > before:
            return following
        day = following
    raise AssertionError(f"no daylight saving time in {zone}")


async def test_an_email_held_over_the_spring_forward_weekend_comes_at_nine_new_york_time(
    eu, mailbox, db, eventually, move_clock, attempt_log
) -> None:  # type: ignore[no-untyped-def]
    new_york = ZoneInfo("America/New_York")
    sunday = _next_spring_forward(new_york, clock.now() + timedelta(days=1))
    saturday_evening = datetime.combine(
        sunday.date() - timedelta(days=1), time(20, 0), tzinfo=new_york
    )
    monday_nine = datetime.combine(sunday.date() + timedelta(days=1), time(9), tzinfo=new_york)
    # 09:00 EDT is 13:00 UTC; the Saturday's offset (EST) would have said 14:00.
    assert saturday_evening.utcoffset() == timedelta(hours=-5)
    assert monday_nine.astimezone(UTC).hour == 13

    nina = await eu.user(
        "nina",
        time_zone="America/New_York",
        working_hours_start="09:00",
        working_hours_end="17:00",
        working_days=[1, 2, 3, 4, 5],
    )
    control = await eu.user("otto")  # any time, any day: shows when a pass has run
    move_clock(saturday_evening - clock.now())
    await _task(eu, nina.id, "Sign the lease")
    # The jump makes months of other tests' work due at once: allow for the backlog.
    [held] = await eventually(
        lambda: _deferred(db, eu.tenant, nina.id), within=90, what="the held email"
    )
    assert held["next_attempt_at"] == monday_nine.astimezone(UTC)
    assert mailbox.to(nina.email) == []

    # A minute before nine on Monday (08:59 EDT, 12:59 UTC) it is still held: Otto's
    # email, due then, goes out in a pass that would have taken Nina's too had it been due.
    move_clock(monday_nine - timedelta(minutes=1) - clock.now())
    await _task(eu, control.id, "Control")
    await eventually(lambda: mailbox.to(control.email), within=60, what="Otto's email")
    [still] = await db("SELECT * FROM deliveries WHERE id=$1", held["id"])
    assert (still["status"], still["lease_until"]) == ("pending", None)
    assert mailbox.to(nina.email) == []
    # ... and at nine it arrives, an hour before 14:00 UTC.
    move_clock(monday_nine + timedelta(seconds=5) - clock.now())
    [mail] = await eventually(lambda: mailbox.to(nina.email), within=60, what="the email at nine")
    assert "Sign the lease" in str(mail["Subject"])
    arrived = parsedate_to_datetime(str(mail["Date"]))
    assert (arrived.astimezone(new_york).weekday(), f"{arrived.astimezone(new_york):%H:%M}") == (
        0,
        "09:00",
    )
    assert arrived.astimezone(UTC).hour == 13
    assert await attempt_log(held["id"], 2) == ["deferred", "sent"]
