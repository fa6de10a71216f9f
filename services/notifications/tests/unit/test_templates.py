"""Templates: shipped defaults render in every locale; a bad template is refused on save
with the field named; Persian renders right to left."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from crm_kit.errors import InvalidArgument
from crm_notifications import templates
from crm_notifications.templates import TemplateText


@pytest.mark.parametrize("shipped", templates.builtins(), ids=lambda t: f"{t.kind}-{t.locale}")
def test_every_shipped_default_renders_with_sample_data(shipped: TemplateText) -> None:
    assert templates.validate(shipped).locale == shipped.locale
    rendered = templates.render(
        shipped, templates.sample_context(shipped.kind, shipped.locale), zone=ZoneInfo("UTC")
    )
    assert rendered.subject and rendered.text
    assert rendered.rtl == (shipped.locale == "fa")


def test_every_kind_ships_all_six_locales() -> None:
    shipped = {(t.kind, t.locale) for t in templates.builtins()}
    assert shipped == {(k, loc) for k in templates.KINDS for loc in templates.SHIPPED_LOCALES}


def _refused(template: TemplateText) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as raised:
        templates.validate(template)
    return {v.field: v.description for v in raised.value.violations}


def test_a_template_that_does_not_render_is_refused_naming_the_field() -> None:
    unknown_variable = TemplateText("task.created", "de", "Aufgabe", "{{ task.titel }}")
    assert "body_text" in _refused(unknown_variable)
    broken_syntax = TemplateText("task.created", "de", "{% if task %}", "ok")
    assert "subject" in _refused(broken_syntax)
    bad_filter_use = TemplateText("deal.won", "en", "x", "ok", "{{ deal.amount|nosuchfilter }}")
    assert "body_html" in _refused(bad_filter_use)


def test_the_sandbox_refuses_reaching_into_python() -> None:
    escape = TemplateText("automation", "en", "x", "{{ message.__class__.__mro__ }}")
    assert "body_text" in _refused(escape)


def test_kind_and_locale_are_checked() -> None:
    violations = _refused(TemplateText("task.deleted", "xx-NOPE", "", "body"))
    assert {"kind", "locale", "subject"} <= set(violations)


def test_locale_is_stored_canonical_and_campaign_kinds_are_free_form() -> None:
    saved = templates.validate(
        TemplateText("campaign.spring-sale", "pt_br", "Olá {{ contact.first_name }}", "Oi")
    )
    assert (saved.kind, saved.locale) == ("campaign.spring-sale", "pt-BR")


def test_html_values_are_escaped_and_text_is_not() -> None:
    template = TemplateText("automation", "en", "Note", "{{ message }}", "<p>{{ message }}</p>")
    context = {**templates.sample_context("automation", "en"), "message": "<b>Tom & Jerry</b>"}
    rendered = templates.render(template, context, zone=ZoneInfo("UTC"))
    assert "<p>&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;</p>" in rendered.html
    assert rendered.text == "<b>Tom & Jerry</b>"


def test_money_and_dates_follow_the_locale_and_zone() -> None:
    template = TemplateText(
        "deal.won", "hi", "x", "{{ deal.amount|money(deal.currency) }} {{ task.due_at|date }}"
    )
    context = templates.sample_context("deal.won", "hi")
    context["deal"] = {**context["deal"], "amount": "1234567.5", "currency": "INR"}
    rendered = templates.render(template, context, zone=ZoneInfo("Asia/Kolkata"))
    assert rendered.text.startswith("₹12,34,567.50")


def test_locale_fallback_chain() -> None:
    assert templates.locale_chain("pt-PT") == ["pt-PT", "pt", "pt-BR", "en"]
    assert templates.locale_chain("de-AT") == ["de-AT", "de", "en"]
