"""The REST surface: /v1/notifications (inbox, unread, mark read, preferences) and
/v1/templates; bad templates and bad preferences are refused with the field named."""

from __future__ import annotations

from datetime import datetime

from crm_api.crm.tasks.v1 import tasks_pb2


def _fields(response) -> set[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return {e["field"] for e in response.json()["errors"]}


async def test_a_template_that_does_not_render_is_refused_on_save(api, token_for, tenant) -> None:  # type: ignore[no-untyped-def]
    admin = token_for("boss", "admin", tenant=tenant)
    bad = await api.put(
        "/v1/templates/task.created/de",
        json={"subject": "Neue Aufgabe", "body_text": "{{ task.titel }}"},
        headers=admin,
    )
    assert _fields(bad) == {"body_text"}
    assert "titel" in bad.json()["detail"]
    broken = await api.put(
        "/v1/templates/task.created/de",
        json={
            "subject": "{% if %}",
            "body_text": "ok",
            "body_html": "<p>{{ deal.amount|nope }}</p>",
        },
        headers=admin,
    )
    assert _fields(broken) == {"subject", "body_html"}
    unknown = await api.put(
        "/v1/templates/task.exploded/xx-QQ", json={"subject": "a", "body_text": "b"}, headers=admin
    )
    assert _fields(unknown) == {"kind", "locale"}
    listed = await api.get("/v1/templates?kind=task.created&locale=de", headers=admin)
    assert [t["builtin"] for t in listed.json()["data"]] == [True]  # nothing was saved
    rep = token_for("rep", "sales_rep", tenant=tenant)
    forbidden = await api.put(
        "/v1/templates/task.created/de", json={"subject": "a", "body_text": "b"}, headers=rep
    )
    assert forbidden.status_code == 403


async def test_a_saved_template_is_used_for_the_recipients_locale(
    api, token_for, eu, mailbox, eventually
) -> None:  # type: ignore[no-untyped-def]
    admin = token_for("boss", "admin", tenant=eu.tenant)
    saved = await api.put(
        "/v1/templates/task.created/de",
        json={
            "subject": "Bitte erledigen: {{ task.title }}",
            "body_text": "Hallo {{ recipient.name }}, {{ task.title }} wartet.",
        },
        headers=admin,
    )
    assert saved.status_code == 200, saved.text
    assert (saved.json()["locale"], saved.json()["builtin"]) == ("de", False)
    user = await eu.user("udo", locale="de-AT", display_name="Udo")
    await eu.tasks.CreateTask(
        tasks_pb2.CreateTaskRequest(task=tasks_pb2.Task(title="Angebot", assignee_id=user.id)),
        metadata=eu.meta(),
        timeout=10,
    )
    [mail] = await eventually(lambda: mailbox.to(user.email), what="the email")
    assert str(mail["Subject"]) == "Bitte erledigen: Angebot"  # de-AT falls back to de
    assert "Hallo Udo, Angebot wartet." in mail.get_body(("plain",)).get_content()


async def test_bad_preferences_are_refused_naming_the_field(api, token_for, tenant) -> None:  # type: ignore[no-untyped-def]
    rep = token_for("rep", "sales_rep", tenant=tenant)
    bad = await api.put(
        "/v1/notifications/preferences",
        json={
            "preferences": [
                {"kind": "task.created", "channels": ["email", "pigeon"]},
                {"kind": "task.exploded", "channels": ["email"]},
            ]
        },
        headers=rep,
    )
    assert _fields(bad) == {"preferences[0].channels[1]", "preferences[1].kind"}
    unchanged = await api.get("/v1/notifications/preferences", headers=rep)
    prefs = {p["kind"]: p["channels"] for p in unchanged.json()["preferences"]}
    assert prefs["task.created"] == ["in_app", "email"]  # nothing half written
    good = await api.put(
        "/v1/notifications/preferences",
        json={"preferences": [{"kind": "task.overdue", "channels": ["in_app", "chat"]}]},
        headers=rep,
    )
    assert good.status_code == 200, good.text
    prefs = {p["kind"]: p["channels"] for p in good.json()["preferences"]}
    assert prefs["task.overdue"] == ["in_app", "chat"]


async def test_the_inbox_lists_counts_and_marks_read(api, token_for, eu, eventually) -> None:  # type: ignore[no-untyped-def]
    user = await eu.user("ines")
    for title in ("First", "Second"):
        await eu.tasks.CreateTask(
            tasks_pb2.CreateTaskRequest(task=tasks_pb2.Task(title=title, assignee_id=user.id)),
            metadata=eu.meta(),
            timeout=10,
        )
    me = token_for(user.id, "sales_rep", tenant=eu.tenant)

    async def listed():  # type: ignore[no-untyped-def]
        page = (await api.get("/v1/notifications", headers=me)).json()
        return page if len(page["data"]) == 2 else None

    page = await eventually(listed, what="two notifications")
    assert page["unread"] == 2
    # Newest first; the two events may be handled in either order, so the order checked
    # is the one of the inbox's own timestamps.
    assert sorted(n["title"] for n in page["data"]) == ["New task: First", "New task: Second"]
    created = [datetime.fromisoformat(n["created_at"]) for n in page["data"]]
    assert created == sorted(created, reverse=True)
    first = next(n for n in page["data"] if n["title"] == "New task: First")
    assert (await api.post(f"/v1/notifications/{first['id']}/read", headers=me)).json() == {
        "marked": 1
    }
    assert (await api.get("/v1/notifications/unread-count", headers=me)).json()["unread"] == 1
    unread = (await api.get("/v1/notifications?unread_only=true", headers=me)).json()
    assert [n["title"] for n in unread["data"]] == ["New task: Second"]
    assert (await api.post("/v1/notifications/read", json={"all": True}, headers=me)).json() == {
        "marked": 1
    }
    # Another user of the tenant sees none of it.
    other = token_for("someone-else", "sales_rep", tenant=eu.tenant)
    assert (await api.get("/v1/notifications", headers=other)).json()["data"] == []
    nothing = await api.post("/v1/notifications/read", json={}, headers=me)
    assert _fields(nothing) == {"ids"}
