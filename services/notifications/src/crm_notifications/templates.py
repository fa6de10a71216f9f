"""Message templates: per tenant and locale (Jinja2, sandboxed), rendered with Babel
formatting for the recipient's locale and zone, with shipped defaults in en, pt-BR, de,
ru, hi, gu and fa.

Right-to-left locales (fa) get `dir="rtl"` in HTML; in plain text every line starts
with a RIGHT-TO-LEFT MARK and every inserted value is wrapped in FIRST STRONG ISOLATE
... POP DIRECTIONAL ISOLATE, so a Latin name or a number inside a Persian sentence
keeps its place instead of reordering the line around it.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from crm_kit.errors import FieldViolation, InvalidArgument

KINDS = (
    "task.created",
    "task.overdue",
    "reminder.due",
    "deal.won",
    "automation",
    "document.sent",
)
# Kinds addressed to a client, not to the tenant's staff: no internal details appended.
CLIENT_KINDS = ("document.sent",)
# What a user can choose channels for (a client's email is email).
USER_KINDS = tuple(kind for kind in KINDS if kind not in CLIENT_KINDS)
# Messages to contacts (greeting rules), not users' notification kinds.
GREETING_KINDS = ("greeting.birthday",)
CAMPAIGN_KIND = re.compile(r"^campaign\.[a-z0-9][a-z0-9_-]{0,62}$")
SHIPPED_LOCALES = ("en", "pt-BR", "de", "ru", "hi", "gu", "fa")
RLM = "\u200f"
FSI, PDI = "\u2068", "\u2069"
MAX_TEMPLATE = 20_000


def canonical_locale(tag: str) -> str | None:
    """A BCP 47 tag Babel knows, canonical ("pt-br" -> "pt-BR"); None if unknown."""
    try:
        locale = Locale.parse(tag.strip().replace("_", "-"), sep="-")
    except (ValueError, TypeError, UnknownLocaleError):
        return None
    return "-".join(p for p in (locale.language, locale.script, locale.territory) if p)


def babel_locale(tag: str) -> Locale:
    try:
        return Locale.parse(tag.replace("_", "-"), sep="-")
    except (ValueError, TypeError, UnknownLocaleError):
        return Locale.parse("en")


def is_rtl(tag: str) -> bool:
    return babel_locale(tag).character_order == "right-to-left"


def is_kind(kind: str) -> bool:
    return kind in KINDS or kind in GREETING_KINDS or bool(CAMPAIGN_KIND.match(kind))


# ------------------------------------------------------------------ shipped defaults

# Labels the defaults share per locale: (contact, deal, due, reminder kinds).
_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "contact": "Contact",
        "deal": "Deal",
        "due": "Due",
        "birthday": "Birthday",
        "contract_end": "Contract end",
        "anniversary": "Anniversary",
        "date": "Important date",
    },
    "pt-BR": {
        "contact": "Contato",
        "deal": "Negócio",
        "due": "Prazo",
        "birthday": "Aniversário",
        "contract_end": "Fim do contrato",
        "anniversary": "Aniversário de relacionamento",
        "date": "Data importante",
    },
    "de": {
        "contact": "Kontakt",
        "deal": "Deal",
        "due": "Fällig",
        "birthday": "Geburtstag",
        "contract_end": "Vertragsende",
        "anniversary": "Jubiläum",
        "date": "Wichtiges Datum",
    },
    "ru": {
        "contact": "Контакт",
        "deal": "Сделка",
        "due": "Срок",
        "birthday": "День рождения",
        "contract_end": "Окончание договора",
        "anniversary": "Годовщина",
        "date": "Важная дата",
    },
    "hi": {
        "contact": "संपर्क",
        "deal": "सौदा",
        "due": "नियत समय",
        "birthday": "जन्मदिन",
        "contract_end": "अनुबंध समाप्ति",
        "anniversary": "वर्षगांठ",
        "date": "महत्वपूर्ण तिथि",
    },
    "gu": {
        "contact": "સંપર્ક",
        "deal": "સોદો",
        "due": "નિયત સમય",
        "birthday": "જન્મદિવસ",
        "contract_end": "કરાર સમાપ્તિ",
        "anniversary": "વર્ષગાંઠ",
        "date": "મહત્વની તારીખ",
    },
    "fa": {
        "contact": "مخاطب",
        "deal": "معامله",
        "due": "سررسید",
        "birthday": "زادروز",
        "contract_end": "پایان قرارداد",
        "anniversary": "سالگرد",
        "date": "تاریخ مهم",
    },
}

# (subject, first lines of the text) per kind and locale; the details lines follow.
_DEFAULTS: dict[str, dict[str, tuple[str, str]]] = {
    "task.created": {
        "en": ("New task: {{ task.title }}", "You have a new task: {{ task.title }}."),
        "pt-BR": ("Nova tarefa: {{ task.title }}", "Você tem uma nova tarefa: {{ task.title }}."),
        "de": ("Neue Aufgabe: {{ task.title }}", "Sie haben eine neue Aufgabe: {{ task.title }}."),
        "ru": ("Новая задача: {{ task.title }}", "Вам назначена новая задача: {{ task.title }}."),
        "hi": ("नया कार्य: {{ task.title }}", "आपको एक नया कार्य सौंपा गया है: {{ task.title }}।"),
        "gu": ("નવું કાર્ય: {{ task.title }}", "તમને એક નવું કાર્ય સોંપવામાં આવ્યું છે: {{ task.title }}."),
        "fa": ("وظیفهٔ جدید: {{ task.title }}", "یک وظیفهٔ جدید به شما سپرده شد: {{ task.title }}."),
    },
    "task.overdue": {
        "en": (
            "Overdue: {{ task.title }}",
            "The task {{ task.title }} assigned to {{ assignee.name }} is overdue.",
        ),
        "pt-BR": (
            "Tarefa atrasada: {{ task.title }}",
            "A tarefa {{ task.title }} atribuída a {{ assignee.name }} está atrasada.",
        ),
        "de": (
            "Überfällig: {{ task.title }}",
            "Die Aufgabe {{ task.title }} von {{ assignee.name }} ist überfällig.",
        ),
        "ru": (
            "Просрочено: {{ task.title }}",
            "Задача {{ task.title }}, назначенная {{ assignee.name }}, просрочена.",
        ),
        "hi": (
            "समय-सीमा पार: {{ task.title }}",
            "{{ assignee.name }} को सौंपा गया कार्य {{ task.title }} समय-सीमा पार कर चुका है।",
        ),
        "gu": (
            "મુદત વીતી ગઈ: {{ task.title }}",
            "{{ assignee.name }} ને સોંપાયેલા કાર્ય {{ task.title }} ની મુદત વીતી ગઈ છે.",
        ),
        "fa": (
            "سررسید گذشته: {{ task.title }}",
            "مهلت وظیفهٔ {{ task.title }} که به {{ assignee.name }} سپرده شده گذشته است.",
        ),
    },
    "reminder.due": {
        "en": (
            "Reminder: {{ contact.name }}",
            "{{ reminder.label }} of {{ contact.name }} in {{ reminder.days_before }} day(s).",
        ),
        "pt-BR": (
            "Lembrete: {{ contact.name }}",
            "{{ reminder.label }} de {{ contact.name }} em {{ reminder.days_before }} dia(s).",
        ),
        "de": (
            "Erinnerung: {{ contact.name }}",
            "{{ reminder.label }} von {{ contact.name }} in {{ reminder.days_before }} Tag(en).",
        ),
        "ru": (
            "Напоминание: {{ contact.name }}",
            "{{ reminder.label }}: {{ contact.name }}, через {{ reminder.days_before }} дн.",
        ),
        "hi": (
            "अनुस्मारक: {{ contact.name }}",
            "{{ contact.name }} का {{ reminder.label }} {{ reminder.days_before }} दिन में है।",
        ),
        "gu": (
            "રિમાઇન્ડર: {{ contact.name }}",
            "{{ contact.name }} નો {{ reminder.label }} {{ reminder.days_before }} દિવસમાં છે.",
        ),
        "fa": (
            "یادآوری: {{ contact.name }}",
            "{{ reminder.label }} {{ contact.name }} تا {{ reminder.days_before }} روز دیگر است.",
        ),
    },
    "deal.won": {
        "en": (
            "Deal won: {{ deal.title }}",
            "{{ owner.name }} won {{ deal.title }}{% if deal.amount %} worth "
            "{{ deal.amount|money(deal.currency) }}{% endif %}.",
        ),
        "pt-BR": (
            "Negócio ganho: {{ deal.title }}",
            "{{ owner.name }} ganhou {{ deal.title }}{% if deal.amount %} no valor de "
            "{{ deal.amount|money(deal.currency) }}{% endif %}.",
        ),
        "de": (
            "Deal gewonnen: {{ deal.title }}",
            "{{ owner.name }} hat {{ deal.title }}{% if deal.amount %} im Wert von "
            "{{ deal.amount|money(deal.currency) }}{% endif %} gewonnen.",
        ),
        "ru": (
            "Сделка выиграна: {{ deal.title }}",
            "{{ owner.name }}: сделка {{ deal.title }} выиграна{% if deal.amount %} на сумму "
            "{{ deal.amount|money(deal.currency) }}{% endif %}.",
        ),
        "hi": (
            "सौदा जीता: {{ deal.title }}",
            "{{ owner.name }} ने {% if deal.amount %}{{ deal.amount|money(deal.currency) }} का "
            "{% endif %}सौदा "
            "{{ deal.title }} जीता।",
        ),
        "gu": (
            "સોદો જીત્યો: {{ deal.title }}",
            "{{ owner.name }} એ {% if deal.amount %}{{ deal.amount|money(deal.currency) }} નો "
            "{% endif %}સોદો "
            "{{ deal.title }} જીત્યો.",
        ),
        "fa": (
            "معامله برنده شد: {{ deal.title }}",
            "{{ owner.name }} معاملهٔ {{ deal.title }}{% if deal.amount %} به ارزش "
            "{{ deal.amount|money(deal.currency) }}{% endif %} را برنده شد.",
        ),
    },
    # To the contact: no details lines (see builtin).
    "greeting.birthday": {
        "en": (
            "Happy birthday, {{ contact.first_name }}!",
            "Happy birthday, {{ contact.first_name }}! We wish you a wonderful year.",
        ),
        "pt-BR": (
            "Feliz aniversário, {{ contact.first_name }}!",
            "Feliz aniversário, {{ contact.first_name }}! Desejamos a você um ano maravilhoso.",
        ),
        "de": (
            "Alles Gute zum Geburtstag, {{ contact.first_name }}!",
            "Alles Gute zum Geburtstag, {{ contact.first_name }}! Wir wünschen Ihnen ein "
            "wunderbares neues Lebensjahr.",
        ),
        "ru": (
            "С днём рождения, {{ contact.first_name }}!",  # noqa: RUF001 (Cyrillic Es)
            "С днём рождения, {{ contact.first_name }}! Желаем вам прекрасного года.",  # noqa: RUF001
        ),
        "hi": (
            "जन्मदिन की शुभकामनाएँ, {{ contact.first_name }}!",
            "जन्मदिन की हार्दिक शुभकामनाएँ, {{ contact.first_name }}! आपका वर्ष मंगलमय हो।",
        ),
        "gu": (
            "જન્મદિવસની શુભેચ્છા, {{ contact.first_name }}!",
            "જન્મદિવસની હાર્દિક શુભેચ્છા, {{ contact.first_name }}! તમારું વર્ષ મંગલમય રહે.",
        ),
        "fa": (
            "تولدت مبارک، {{ contact.first_name }}!",
            "{{ contact.first_name }} عزیز، تولدت مبارک! سالی سرشار از شادی برایت آرزو داریم.",
        ),
    },
    # A document (an invoice) emailed to the deal's contact, the PDF attached.
    "document.sent": {
        "en": (
            "{{ document.title }}",
            "Dear {{ contact.name }},\n\nplease find {{ document.title }} attached.",
        ),
        "pt-BR": (
            "{{ document.title }}",
            "Prezado(a) {{ contact.name }},\n\nsegue em anexo {{ document.title }}.",
        ),
        "de": (
            "{{ document.title }}",
            "Guten Tag {{ contact.name }},\n\nim Anhang finden Sie {{ document.title }}.",
        ),
        "ru": (
            "{{ document.title }}",
            "Здравствуйте, {{ contact.name }}!\n\nВо вложении {{ document.title }}.",  # noqa: RUF001
        ),
        "hi": (
            "{{ document.title }}",
            "प्रिय {{ contact.name }},\n\n{{ document.title }} संलग्न है।",
        ),
        "gu": (
            "{{ document.title }}",
            "પ્રિય {{ contact.name }},\n\n{{ document.title }} સાથે જોડેલ છે.",
        ),
        "fa": (
            "{{ document.title }}",
            "{{ contact.name }} گرامی،\n\n{{ document.title }} پیوست است.",
        ),
    },
    "automation": {
        "en": ("Automation notice", "{{ message }}"),
        "pt-BR": ("Aviso de automação", "{{ message }}"),
        "de": ("Automatisierungshinweis", "{{ message }}"),
        "ru": ("Уведомление автоматизации", "{{ message }}"),
        "hi": ("स्वचालन सूचना", "{{ message }}"),
        "gu": ("ઓટોમેશન સૂચના", "{{ message }}"),
        "fa": ("اعلان خودکار", "{{ message }}"),
    },
}


def _details(locale: str) -> str:
    labels = _LABELS[locale]
    return (
        "{% if task and task.due_at %}\n"
        + labels["due"]
        + ": {{ task.due_at|datetime }}{% endif %}"
        "{% if contact %}\n" + labels["contact"] + ": {{ contact.name }}{% endif %}"
        "{% if deal %}\n" + labels["deal"] + ": {{ deal.title }}"
        "{% if deal.amount %} ({{ deal.amount|money(deal.currency) }}){% endif %}{% endif %}"
    )


@dataclass(frozen=True)
class TemplateText:
    kind: str
    locale: str
    subject: str
    body_text: str
    body_html: str = ""
    builtin: bool = False


def builtin(kind: str, locale: str) -> TemplateText | None:
    by_locale = _DEFAULTS.get(kind)
    if by_locale is None or locale not in by_locale:
        return None
    subject, text = by_locale[locale]
    details = "" if kind in GREETING_KINDS or kind in CLIENT_KINDS else _details(locale)
    return TemplateText(kind, locale, subject, text + details, "", True)


def builtins() -> list[TemplateText]:
    return [
        t
        for k in (*KINDS, *GREETING_KINDS)
        for loc in SHIPPED_LOCALES
        if (t := builtin(k, loc)) is not None
    ]


def reminder_label(kind: str, locale: str) -> str:
    labels = _LABELS.get(locale) or _LABELS.get(locale.split("-")[0]) or _LABELS["en"]
    return labels.get(kind, labels["date"])


def locale_chain(locale: str) -> list[str]:
    """Where to look for a template, most specific first: pt-BR, pt, en."""
    chain = [locale]
    language = locale.split("-")[0]
    if language != locale:
        chain.append(language)
    # A Portuguese reader without a pt template is better served by pt-BR than by en.
    chain.extend(loc for loc in SHIPPED_LOCALES if loc.split("-")[0] == language)
    chain.append("en")
    return list(dict.fromkeys(chain))


# ------------------------------------------------------------------ rendering


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    locale: str
    rtl: bool


@lru_cache(maxsize=256)
def _environment(locale: str, zone: ZoneInfo, *, escape: bool, rtl_text: bool) -> Any:
    where = babel_locale(locale)

    def finalize(value: Any) -> Any:
        if value is None:
            return ""
        if rtl_text and not escape:
            return f"{FSI}{value}{PDI}"
        return value

    env = SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=escape, finalize=finalize, keep_trailing_newline=False
    )

    def money(amount: Any, currency: str = "") -> str:
        try:
            number = Decimal(str(amount))
        except InvalidOperation:
            return str(amount)
        if not currency:
            return format_decimal(number, locale=where)
        return format_currency(number, currency, locale=where)

    def number(value: Any) -> str:
        try:
            return format_decimal(Decimal(str(value)), locale=where)
        except InvalidOperation:
            return str(value)

    def when(value: Any, style: str = "medium") -> str:
        if not isinstance(value, datetime):
            return str(value)
        return format_datetime(value, style, tzinfo=zone, locale=where)

    def day(value: Any, style: str = "medium") -> str:
        if not isinstance(value, datetime):
            return str(value)
        return format_date(value.astimezone(zone).date(), style, locale=where)

    env.filters.update(money=money, number=number, datetime=when, date=day)
    return env


def _html_page(body: str, locale: str, rtl: bool, footer: str) -> str:
    direction = "rtl" if rtl else "ltr"
    return (
        f'<!DOCTYPE html>\n<html lang="{html.escape(locale)}" dir="{direction}">'
        '<head><meta charset="utf-8"></head>'
        f'<body dir="{direction}" style="font-family:sans-serif">{body}{footer}</body></html>'
    )


def _text_to_html(text: str) -> str:
    return "".join(f"<p>{html.escape(line)}</p>" for line in text.split("\n") if line.strip())


@lru_cache(maxsize=1024)
def _compiled(locale: str, zone: ZoneInfo, escape: bool, rtl_text: bool, source: str) -> Any:
    """Compiling is most of a render's cost; a template's text is its cache key."""
    return _environment(locale, zone, escape=escape, rtl_text=rtl_text).from_string(source)


def render(
    template: TemplateText,
    context: dict[str, Any],
    *,
    zone: ZoneInfo,
    unsubscribe_url: str = "",
) -> Rendered:
    """Renders subject, text and HTML; raises jinja2.TemplateError on a bad template."""
    locale = template.locale
    rtl = is_rtl(locale)
    values = {**context, "unsubscribe_url": unsubscribe_url}
    subject = " ".join(_compiled(locale, zone, False, rtl, template.subject).render(values).split())
    text = _compiled(locale, zone, False, rtl, template.body_text).render(values).strip()
    if template.body_html:
        body_html = _compiled(locale, zone, True, False, template.body_html).render(values)
    else:
        plain = _compiled(locale, zone, False, False, template.body_text).render(values)
        body_html = _text_to_html(plain.strip())
    footer = ""
    if unsubscribe_url:
        text += f"\n\n{unsubscribe_url}"
        footer = f'<p><a href="{html.escape(unsubscribe_url)}">unsubscribe</a></p>'
    if rtl:
        subject = RLM + subject
        text = "\n".join(RLM + line if line else line for line in text.split("\n"))
    return Rendered(subject, text, _html_page(body_html, locale, rtl, footer), locale, rtl)


def sample_context(kind: str, locale: str) -> dict[str, Any]:
    """Data every template must render with when saved (all variables a kind offers)."""
    from datetime import UTC

    due = datetime(2026, 3, 14, 15, 30, tzinfo=UTC)
    return {
        "kind": kind,
        "recipient": {"id": "u-sample", "name": "Alex Example"},
        "assignee": {"id": "u-sample", "name": "Alex Example"},
        "owner": {"id": "u-sample", "name": "Alex Example"},
        "task": {"id": "task", "title": "Call back", "due_at": due, "priority": "normal"},
        "deal": {
            "id": "deal",
            "title": "Kitchen",
            "amount": "12345.67",
            "currency": "EUR",
            "stage": "Won",
        },
        "contact": {
            "id": "contact",
            "name": "Maria Silva",
            "first_name": "Maria",
            "last_name": "Silva",
        },
        "reminder": {
            "kind": "birthday",
            "label": reminder_label("birthday", locale),
            "days_before": 7,
        },
        "message": "Sample message",
        "document": {"id": "document", "title": "Invoice Kitchen"},
        "unsubscribe_url": "https://crm.example/public/unsubscribe/sample",
    }


def validate(template: TemplateText) -> TemplateText:
    """The template with canonical kind and locale, or InvalidArgument naming the field."""
    violations: list[FieldViolation] = []
    kind = template.kind.strip()
    if not is_kind(kind):
        violations.append(
            FieldViolation(
                "kind", f"one of {', '.join((*KINDS, *GREETING_KINDS))} or campaign.<name>"
            )
        )
    locale = canonical_locale(template.locale or "")
    if locale is None:
        violations.append(FieldViolation("locale", "a BCP 47 language tag, e.g. pt-BR"))
    for name in ("subject", "body_text"):
        if not getattr(template, name).strip():
            violations.append(FieldViolation(name, "required"))
    for name in ("subject", "body_text", "body_html"):
        if len(getattr(template, name)) > MAX_TEMPLATE:
            violations.append(FieldViolation(name, f"at most {MAX_TEMPLATE} characters"))
    if violations:
        raise InvalidArgument(violations)
    assert locale is not None
    checked = TemplateText(kind, locale, template.subject, template.body_text, template.body_html)
    context = sample_context(kind, locale)
    zone = ZoneInfo("UTC")
    for name in ("subject", "body_text", "body_html"):
        source = getattr(checked, name)
        if not source:
            continue
        env = _environment(locale, zone, escape=name == "body_html", rtl_text=False)
        try:
            env.from_string(source).render(context)
        except TemplateError as exc:
            violations.append(FieldViolation(name, f"does not render with sample data: {exc}"))
        except Exception as exc:  # a filter fed the wrong type, a sandbox refusal...
            violations.append(FieldViolation(name, f"does not render with sample data: {exc}"))
    if violations:
        raise InvalidArgument(violations)
    return checked
