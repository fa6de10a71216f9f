"""Template rendering: sandboxed, escaped, strict about unknown variables."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from crm_deals import documents


def context(**deal: object) -> dict[str, object]:
    return documents.build_context(
        deal={"title": "<b>Windows</b>", "custom_fields": {}, **deal},
        contact=documents.person(None),
        company=documents.organisation(None),
        variables={"iban": "DE89"},
        amount=Decimal("10.50"),
        currency="EUR",
        locale="en",
        today=date(2026, 11, 22),
        document_id="eu_X",
    )


def test_values_are_escaped_and_missing_people_are_blank() -> None:
    html = documents.render(
        "{{ deal.title }}|{{ contact.name }}|{{ company.name }}|{{ amount_formatted }}|{{ today }}",
        context(),
    )
    assert html == "&lt;b&gt;Windows&lt;/b&gt;|||€10.50|November 22, 2026"


def test_unknown_variables_and_internals_are_errors() -> None:
    with pytest.raises(UndefinedError):
        documents.render("{{ tenant.bic }}", context())
    with pytest.raises(SecurityError):
        documents.render("{{ deal.__class__.__subclasses__() }}", context())


def test_checks_against_the_sample_accept_any_custom_field() -> None:
    body = "{{ deal.custom_fields.measurement_at }} {{ contact.address.city }}"
    assert documents._check_renders(body, {}, "de_DE") is None
    assert "iban" in (documents._check_renders("{{ tenant.iban }}", {}, "en") or "")


def test_pdf_is_made_without_fetching_anything() -> None:
    html = '<html><body><p>Hi</p><img src="http://169.254.169.254/x"><img src="/etc/passwd">'
    pdf = documents.to_pdf(html + "</body></html>")
    assert pdf.startswith(b"%PDF")
    assert b"root:" not in pdf
