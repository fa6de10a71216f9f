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


def test_every_kind_ships_all_seven_locales() -> None:
    shipped = {(t.kind, t.locale) for t in templates.builtins()}
    kinds = (*templates.KINDS, *templates.GREETING_KINDS)
    assert shipped == {(k, loc) for k in kinds for loc in templates.SHIPPED_LOCALES}
    assert set(templates.SHIPPED_LOCALES) == {"en", "pt-BR", "de", "ru", "hi", "gu", "fa"}


@pytest.mark.parametrize("locale", templates.SHIPPED_LOCALES)
def test_a_deal_won_without_an_amount_reads_as_a_sentence(locale: str) -> None:
    # A web-form deal has no amount yet: no "worth ." and no empty "()" in the details.
    shipped = templates.builtin("deal.won", locale)
    assert shipped is not None
    context = templates.sample_context("deal.won", locale)
    context["deal"] = {**context["deal"], "amount": "", "currency": ""}
    rendered = templates.render(shipped, context, zone=ZoneInfo("UTC"))
    plain = rendered.text.replace("\u200f", "").replace("\u2068", "").replace("\u2069", "")
    assert " ." not in plain and "()" not in plain and "worth" not in plain
    with_amount = templates.render(
        shipped, templates.sample_context("deal.won", locale), zone=ZoneInfo("UTC")
    )
    assert with_amount.text != rendered.text


def test_russian_formats_money_and_dates_the_russian_way() -> None:
    shipped = templates.builtin("deal.won", "ru")
    assert shipped is not None
    context = templates.sample_context("deal.won", "ru")
    context["deal"] = {**context["deal"], "amount": "1234567.5", "currency": "RUB"}
    rendered = templates.render(shipped, context, zone=ZoneInfo("Europe/Moscow"))
    assert rendered.subject.startswith("Сделка выиграна")
    # Babel's ru: a no-break space between thousands, a comma before the kopecks.
    assert "1\xa0234\xa0567,50\xa0₽" in rendered.text


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
