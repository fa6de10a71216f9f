"""A document in Russian, Greek or Czech comes out readable: PDF's built-in fonts draw
Latin-1 only, so every family is drawn with a DejaVu face that has the letters."""

from __future__ import annotations

import logging

import pytest

from crm_deals.documents import to_pdf

INVOICE = """<html><body>
<h1>Счёт № 42</h1>
<p>Иван Петров, Москва: <b>1 234,50 ₽</b></p>
<p style="font-family: Times">Ελληνικά · <i>Příliš žluťoučký kůň</i></p>
<p><tt>IBAN DE89 3704 0044 0532 0130 00</tt></p>
</body></html>"""


def test_a_russian_invoice_is_drawn_with_fonts_that_have_its_letters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    pdf = to_pdf(INVOICE)
    assert pdf.startswith(b"%PDF")
    # xhtml2pdf names every character no font of the document can draw.
    missing = [r.getMessage() for r in caplog.records if "can draw" in r.getMessage()]
    assert missing == []
    for face in (b"DejaVuSans", b"DejaVuSans-Bold", b"DejaVuSerif", b"DejaVuSansMono"):
        assert b"+" + face in pdf  # embedded (as a subset)
