"""A message is delivered with the right content in each shipped locale: by email (text
and HTML) and in the in-app inbox, with dates and money formatted for the recipient."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from babel.numbers import format_currency

from crm_api.crm.deals.v1 import deals_pb2
from crm_api.crm.notifications.v1 import notifications_pb2 as pb
from crm_api.crm.tasks.v1 import tasks_pb2
from crm_kit import clock

SUBJECTS = {
    "en": "New task: Call back",
    "pt-BR": "Nova tarefa: Call back",
    "de": "Neue Aufgabe: Call back",
    "ru": "Новая задача: Call back",
    "hi": "नया कार्य: Call back",
    "gu": "નવું કાર્ય: Call back",
    "fa": "وظیفهٔ جدید: Call back",
}
BABEL = {"en": "en", "pt-BR": "pt_BR", "de": "de", "ru": "ru", "hi": "hi", "gu": "gu", "fa": "fa"}
ZONES = {
    "en": "America/New_York",
    "pt-BR": "America/Sao_Paulo",
    "de": "Europe/Berlin",
    "ru": "Europe/Moscow",
    "hi": "Asia/Kolkata",
    "gu": "Asia/Kolkata",
    "fa": "Asia/Tehran",
}
RLM, FSI, PDI = "\u200f", "\u2068", "\u2069"


def _plain(text: str) -> str:
    return text.replace(RLM, "").replace(FSI, "").replace(PDI, "")


@pytest.mark.parametrize("locale", list(SUBJECTS))
async def test_a_task_reaches_its_assignee_in_their_language(
    eu, mailbox, eventually, locale: str
) -> None:  # type: ignore[no-untyped-def]
    zone = ZONES[locale]
    user = await eu.user(f"rep-{locale.lower()}", locale=locale, time_zone=zone)
    due = (clock.now() + timedelta(days=3)).replace(microsecond=0, second=0)
    request = tasks_pb2.CreateTaskRequest(
        task=tasks_pb2.Task(title="Call back", assignee_id=user.id)
    )
    request.task.due_at.FromDatetime(due)
    task = await eu.tasks.CreateTask(request, metadata=eu.meta(), timeout=10)

    [mail] = await eventually(lambda: mailbox.to(user.email), what=f"{locale} email")
    subject = str(mail["Subject"])
    assert _plain(subject) == SUBJECTS[locale]
    assert mail["Content-Language"] == locale
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    shown_due = format_datetime(due, "medium", tzinfo=ZoneInfo(zone), locale=BABEL[locale])
    assert _plain(shown_due) in _plain(text)
    assert shown_due in html
    if locale == "fa":
        # Right to left: the HTML says so, and every text line starts with an RLM so a
        # line beginning with a Latin title still reads right to left.
        assert 'dir="rtl"' in html and 'lang="fa"' in html
        assert subject.startswith(RLM)
        assert all(line.startswith(RLM) for line in text.strip().splitlines() if line)
        assert f"{FSI}Call back{PDI}" in text
    else:
        assert 'dir="ltr"' in html and RLM not in text

    inbox = await eventually(lambda: _inbox(eu, user.id), what=f"{locale} in-app notification")
    assert [n.task_id for n in inbox] == [task.id]
    assert _plain(inbox[0].title) == SUBJECTS[locale]
    assert inbox[0].locale == locale


async def _inbox(eu, user_id: str) -> list[pb.Notification]:  # type: ignore[no-untyped-def]
    reply = await eu.notifications.ListNotifications(
        pb.ListNotificationsRequest(), metadata=eu.meta(user_id, "sales_rep"), timeout=10
    )
    return list(reply.notifications)


@pytest.mark.parametrize(
    ("locale", "currency", "won"),
    [("hi", "INR", "ने"), ("de", "EUR", "gewonnen"), ("pt-BR", "BRL", "ganhou")],
)
async def test_a_won_deal_tells_the_owners_manager_the_amount_in_their_locale(
    eu, mailbox, eventually, locale: str, currency: str, won: str
) -> None:  # type: ignore[no-untyped-def]
    manager = await eu.user("boss", locale=locale, display_name="Boss")
    owner = await eu.user("seller", manager_id=manager.id, display_name="Sam Seller")
    contact = await eu.contact()
    deal = await eu.deals.CreateDeal(
        deals_pb2.CreateDealRequest(
            deal=deals_pb2.Deal(
                title="Kitchen",
                contact_id=contact.id,
                owner_id=owner.id,
                amount=deals_pb2.Money(amount="123456.50", currency=currency),
            )
        ),
        metadata=eu.meta(),
        timeout=10,
    )
    await eu.deals.MoveDeal(
        deals_pb2.MoveDealRequest(id=deal.id, stage_id="default-won"),
        metadata=eu.meta(),
        timeout=30,
    )
    [mail] = await eventually(lambda: mailbox.to(manager.email), what="deal won email")
    text = mail.get_body(("plain",)).get_content()
    money = format_currency(Decimal("123456.50"), currency, locale=BABEL[locale])
    assert money in text  # e.g. ₹1,23,456.50 in hi, 123.456,50 € in de
    assert "Sam Seller" in text and "Kitchen" in text and won in text
    # The owner is not the recipient: only their manager hears of it.
    assert mailbox.to(owner.email) == []
