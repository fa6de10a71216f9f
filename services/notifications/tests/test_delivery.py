"""Delivery: quiet hours in the recipient's zone, exactly one message per event, recipient
and channel under redelivery, retries with backoff and a dead letter, the HTTP provider."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from crm_api.crm.events.v1 import envelope_pb2
from crm_api.crm.events.v1 import notifications_pb2 as notification_events
from crm_api.crm.events.v1 import tasks_pb2 as task_events
from crm_api.crm.notifications.v1 import notifications_pb2 as pb
from crm_api.crm.tasks.v1 import tasks_pb2
from crm_kit import clock
from crm_notifications.quiet import WorkingHours


async def _task(eu, assignee: str, title: str = "Call back", priority: str = "normal"):  # type: ignore[no-untyped-def]
    return await eu.tasks.CreateTask(
        tasks_pb2.CreateTaskRequest(
            task=tasks_pb2.Task(title=title, assignee_id=assignee, priority=priority)
        ),
        metadata=eu.meta(),
        timeout=10,
    )


async def _inbox(eu, user_id: str) -> list[pb.Notification]:  # type: ignore[no-untyped-def]
    reply = await eu.notifications.ListNotifications(
        pb.ListNotificationsRequest(), metadata=eu.meta(user_id, "sales_rep"), timeout=10
    )
    return list(reply.notifications)


async def test_email_waits_for_the_recipients_working_hours_in_their_zone(
    eu, mailbox, db, eventually, move_clock, attempt_log
) -> None:  # type: ignore[no-untyped-def]
    # 10:00 in São Paulo (UTC-3) is 18:30 in Kolkata (UTC+05:30), whatever the hour the
    # suite runs at: Ana is at work; Ravi's day (21:00-22:00, a half-hour zone) has not
    # begun. Each gives the same hours to the product and to this test.
    move_clock.to(move_clock.next_local("America/Sao_Paulo", "10:00"))
    day = await eu.user(
        "ana", time_zone="America/Sao_Paulo", working_hours_start="09:00", working_hours_end="12:00"
    )
    night = await eu.user(
        "ravi", time_zone="Asia/Kolkata", working_hours_start="21:00", working_hours_end="22:00"
    )
    hours = WorkingHours.of("Asia/Kolkata", "21:00", "22:00", range(1, 8))
    now = clock.now()
    opens = hours.next_open(now)
    assert f"{opens.astimezone(hours.zone):%H:%M}" == "21:00"
    assert opens - now < timedelta(hours=3)  # this evening in Kolkata, not tomorrow

    await _task(eu, day.id)
    await _task(eu, night.id, "Send the quote")
    await eventually(lambda: mailbox.to(day.email), what="the daytime email")
    # Ravi's in-app notification is there at once; the email waits for his morning.
    await eventually(lambda: _inbox(eu, night.id), what="Ravi's in-app notification")
    [held] = await eventually(
        lambda: db(
            "SELECT * FROM deliveries WHERE tenant_id=$1 AND recipient_id=$2 AND channel='email'"
            " AND deferred_reason='quiet_hours'",
            eu.tenant,
            night.id,
        ),
        what="the deferred email",
    )
    assert held["status"] == "pending"
    assert held["next_attempt_at"] == opens.replace(microsecond=0)
    assert mailbox.to(night.email) == []

    move_clock(opens - clock.now() + timedelta(seconds=30))
    [mail] = await eventually(lambda: mailbox.to(night.email), what="the email in the morning")
    assert "Send the quote" in str(mail["Subject"])
    assert await attempt_log(held["id"], 2) == ["deferred", "sent"]


async def test_urgent_tasks_bypass_quiet_hours(eu, mailbox, eventually, move_clock) -> None:  # type: ignore[no-untyped-def]
    move_clock.to(move_clock.next_local("Asia/Tokyo", "03:00"))  # Kenji is asleep
    user = await eu.user(
        "kenji", time_zone="Asia/Tokyo", working_hours_start="09:00", working_hours_end="18:00"
    )
    assert not WorkingHours.of("Asia/Tokyo", "09:00", "18:00").is_open(clock.now())
    await _task(eu, user.id, "Server down", priority="urgent")
    [mail] = await eventually(lambda: mailbox.to(user.email), what="the urgent email")
    assert "Server down" in str(mail["Subject"])


async def test_redelivered_events_give_no_duplicates(
    eu, mailbox, publish, envelope, db, eventually
) -> None:  # type: ignore[no-untyped-def]
    user = await eu.user("dora")
    task = await _task(eu, user.id)
    [first] = await eventually(lambda: mailbox.to(user.email), what="the first email")
    # NATS redelivers the same event (here: published again under other message ids,
    # which JetStream's own de-duplication does not catch).
    event = envelope(
        eu.tenant,
        "tasks.task.created",
        task_events.TaskCreated(task_id=task.id, assignee_id=user.id),
    )
    for copy in ("a", "b", "c"):
        await publish(event, msg_id=f"{event.event_id}-{copy}")
    # A later event for someone else: once it is delivered, the copies were handled.
    marker = await eu.user("mark")
    await _task(eu, marker.id)
    await eventually(lambda: mailbox.to(marker.email), what="the marker email")
    await eventually(
        lambda: _rows(
            db("SELECT 1 FROM deliveries WHERE event_id=$1 AND status='sent'", event.event_id), 2
        ),
        what="the redelivered event's deliveries",
    )
    rows = await db("SELECT channel, status FROM deliveries WHERE event_id=$1", event.event_id)
    assert sorted((r["channel"], r["status"]) for r in rows) == [
        ("email", "sent"),
        ("in_app", "sent"),
    ]
    # Two events about the task (the real one and the replayed one): two emails, not four.
    assert len(mailbox.to(user.email)) == 2
    assert first["Message-ID"] != mailbox.to(user.email)[1]["Message-ID"]
    # The in-app items are written beside the emails, not before them.
    assert await eventually(lambda: _inbox_of(eu, user.id, 2), what="two inbox items")


async def test_an_email_whose_sender_died_mid_send_is_dead_lettered_not_sent_twice(
    eu, mailbox, db, eventually
) -> None:  # type: ignore[no-untyped-def]
    """Found by the fault campaign: a dispatcher SIGKILLed after the SMTP server accepted
    an email but before it recorded the send left the row claimed; when the lease ran
    out another pass sent a second copy. Now the row says it was being sent, and the
    next pass dead-letters it with the reason instead."""
    user = await eu.user("carl")
    await _task(eu, user.id)
    [mail] = await eventually(lambda: mailbox.to(user.email), what="the email")
    [row] = await eventually(
        lambda: db(
            "SELECT id, message_id FROM deliveries WHERE tenant_id=$1 AND channel='email'"
            " AND status='sent'",
            eu.tenant,
        ),
        what="the email recorded as sent",
    )
    assert mail["Message-ID"] == row["message_id"]
    # What the replica leaves when it dies in that moment: the row still claimed, marked
    # as being sent, and its lease run out.
    await db(
        "UPDATE deliveries SET status='pending', sent_at=NULL,"
        " sending_since=now() - interval '1 minute', lease_until=now() - interval '1 second'"
        " WHERE id=$1",
        row["id"],
    )
    [dead] = await eventually(
        lambda: db(
            "SELECT status, last_error, sending_since FROM deliveries"
            " WHERE id=$1 AND status='dead'",
            row["id"],
        ),
        what="the delivery dead-lettered",
    )
    assert "may have been delivered" in dead["last_error"] and dead["sending_since"] is None
    assert len(mailbox.to(user.email)) == 1


async def test_an_email_accepted_while_postgresql_restarts_is_sent_once(
    eu, cluster, mailbox, db, eventually, move_clock
) -> None:  # type: ignore[no-untyped-def]
    user = await eu.user("pia")
    mailbox.held.add(user.email)
    await _task(eu, user.id, "Send the offer")
    await eventually(lambda: user.email in mailbox.arrived, what="the email in flight")
    # The SMTP server accepts the message while the database is down: the dispatcher
    # cannot record it as sent until PostgreSQL is back.
    cluster.postgres.stop()
    try:
        mailbox.held.discard(user.email)
        await eventually(lambda: mailbox.to(user.email), what="the email accepted")
    finally:
        cluster.postgres.start()
    # Recorded once the database is back, within the lease (giving up, the dispatcher
    # would leave the lease to run out and send the email again).
    [row] = await eventually(
        lambda: db(
            "SELECT message_id FROM deliveries WHERE tenant_id=$1 AND channel='email'"
            " AND status='sent'",
            eu.tenant,
        ),
        what="the email recorded as sent",
    )
    move_clock(timedelta(minutes=5))  # long after any lease
    # A later email is delivered: a second copy of the first would have gone before it.
    marker = await eu.user("mona")
    await _task(eu, marker.id)
    await eventually(lambda: mailbox.to(marker.email), what="the marker email")
    [mail] = mailbox.to(user.email)
    assert mail["Message-ID"] == row["message_id"]


async def test_the_http_provider_gets_signed_json_and_a_failing_one_is_dead_lettered(
    eu, receiver, provider_secret, db, eventually, move_clock
) -> None:  # type: ignore[no-untyped-def]
    user = await eu.user("chatty")
    await eu.notifications.PutPreferences(
        pb.PutPreferencesRequest(
            preferences=[pb.Preference(kind="task.created", channels=["chat"])]
        ),
        metadata=eu.meta(user.id, "sales_rep"),
        timeout=10,
    )
    await _task(eu, user.id, "Ping")
    [call] = await eventually(lambda: receiver.for_tenant(eu.tenant), what="the provider call")
    headers = {k.lower(): v for k, v in call["headers"].items()}
    expected = hmac.new(
        provider_secret.encode(),
        headers["x-crm-timestamp"].encode() + b"." + call["body"],
        hashlib.sha256,
    ).hexdigest()
    assert headers["x-crm-signature"] == f"sha256={expected}"
    assert call["json"]["to"] == user.email and "Ping" in call["json"]["subject"]
    assert call["json"]["id"] == headers["idempotency-key"]

    # Now the provider fails for this tenant: retried after 60 s, 120 s, then dead.
    receiver.failing.add(eu.tenant)
    await _task(eu, user.id, "Pong")

    async def calls() -> int:
        return len([c for c in receiver.for_tenant(eu.tenant) if "Pong" in c["json"]["subject"]])

    await eventually(lambda: _equals(calls, 1), what="the first attempt")
    await eventually(
        lambda: db(
            "SELECT 1 FROM deliveries WHERE tenant_id=$1 AND attempts=1 AND status='pending'",
            eu.tenant,
        ),
        what="the first failure recorded",
    )
    move_clock(timedelta(seconds=61))
    await eventually(lambda: _equals(calls, 2), what="the second attempt")
    await eventually(
        lambda: db("SELECT 1 FROM deliveries WHERE tenant_id=$1 AND attempts=2", eu.tenant),
        what="the second failure recorded",
    )
    move_clock(timedelta(seconds=121))
    [dead] = await eventually(
        lambda: db("SELECT * FROM deliveries WHERE tenant_id=$1 AND status='dead'", eu.tenant),
        what="the dead letter",
    )
    assert dead["attempts"] == 3 and "503" in dead["last_error"]
    log = await db(
        "SELECT outcome FROM delivery_attempts WHERE delivery_id=$1 ORDER BY id", dead["id"]
    )
    assert [r["outcome"] for r in log] == ["failed", "failed", "failed", "dead"]
    assert await calls() == 3
    # ... and announced (ids only) as notifications.notification.failed.
    published = await db(
        "SELECT payload FROM outbox WHERE subject = 'crm.eu.notifications.notification.failed'"
    )
    failed = []
    for row in published:
        event = envelope_pb2.Envelope.FromString(row["payload"])
        if event.tenant_id == eu.tenant:
            payload = notification_events.NotificationFailed()
            event.payload.Unpack(payload)
            failed.append((payload.delivery_id, payload.channel, payload.attempts))
    assert failed == [(dead["id"], "chat", 3)]
    # Dead letters are listed in the delivery log API, with their attempts.
    reply = await eu.notifications.ListDeliveries(
        pb.ListDeliveriesRequest(status="dead"), metadata=eu.meta(), timeout=10
    )
    assert [d.id for d in reply.deliveries] == [dead["id"]]
    assert [a.outcome for a in reply.deliveries[0].log] == ["failed", "failed", "failed", "dead"]


async def _equals(count, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(await count() == expected)


async def _rows(query, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await query) == expected


async def _inbox_of(eu, user_id: str, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await _inbox(eu, user_id)) == expected


async def test_sms_goes_to_the_directory_phone_through_its_provider(
    eu, receiver, eventually
) -> None:  # type: ignore[no-untyped-def]
    user = await eu.user("sami", phone="+49 151 12345678")
    assert user.phone == "+4915112345678"
    await eu.notifications.PutPreferences(
        pb.PutPreferencesRequest(
            preferences=[pb.Preference(kind="task.created", channels=["sms"])]
        ),
        metadata=eu.meta(user.id, "sales_rep"),
        timeout=10,
    )
    await _task(eu, user.id, "Call the client")
    [call] = await eventually(lambda: receiver.for_tenant(eu.tenant), what="the SMS provider call")
    assert call["path"] == "/sms"
    assert (call["json"]["channel"], call["json"]["to"]) == ("sms", "+4915112345678")
    assert "Call the client" in call["json"]["text"]
