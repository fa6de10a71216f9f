"""Unit tests for crm_contacts.search_text."""

from __future__ import annotations

import pytest

from crm_contacts.search_text import fold, fold_query, phone_digits, search_document


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Müller", "muller"),
        ("José", "jose"),
        ("Ærø", "aero"),
        ("Łódź", "lodz"),
        ("Straße", "strasse"),
        ("  Anna \t  MARIA\n", "anna maria"),
        ("".join(chr(ord(c) + 0xFEE0) for c in "Fullwidth"), "fullwidth"),  # NFKC
        ("", ""),
    ],
)
def test_fold_latin(text: str, expected: str) -> None:
    assert fold(text) == expected


@pytest.mark.parametrize(
    ("text", "original", "transliteration"),
    [
        ("अनिल", "अनिल", "anil"),
        ("મિતેશ", "મિતેશ", "mitesh"),
        ("مریم", "مریم", "mrym"),
        ("Иван", "иван", "ivan"),
    ],
)
def test_fold_non_latin_keeps_both_scripts(text: str, original: str, transliteration: str) -> None:
    assert fold(text) == f"{original} {transliteration}"


def test_fold_query_matches_folded_document() -> None:
    document = search_document(
        first_name="Anna",
        last_name="Müller",
        emails=["anna.mueller@example.de"],
        phones=["+49301234567"],
        company_names=["Bäckerei Schmidt GmbH"],
    )
    assert fold_query("muller") in document
    assert fold_query("MÜLLER") in document
    assert fold_query("backerei") in document
    assert fold_query("mueller") in document  # from the email's local part


@pytest.mark.parametrize("query", ["अनिल", "anil", "Anil"])
def test_devanagari_document_found_in_either_script(query: str) -> None:
    document = search_document(
        first_name="अनिल",
        last_name="Sharma",
        emails=[],
        phones=[],
        company_names=[],
    )
    assert "अनिल" in document
    assert "anil" in document
    assert fold_query(query) in document


def test_persian_document_contains_original_and_transliteration() -> None:
    document = search_document(
        first_name="مریم", last_name="رضایی", emails=[], phones=[], company_names=[]
    )
    assert "مریم" in document
    assert "mrym" in document
    assert fold_query("مریم") in document


def test_search_document_emails_and_phones() -> None:
    document = search_document(
        first_name="Ravi",
        last_name="Patel",
        emails=["ravi_k.patel-work@example.in"],
        phones=["+919876543210", "+79123456789"],
        company_names=["Tata Consultancy"],
    )
    tokens = document.split()
    assert "ravi_k.patel-work@example.in" in tokens
    assert {"ravi", "k", "patel", "work"} <= set(tokens)
    assert "919876543210" in tokens  # E.164 without '+'
    assert "9876543210" in tokens  # national significant number
    assert "79123456789" in tokens
    assert "9123456789" in tokens
    assert "89123456789" in tokens  # how it is dialled inside Russia
    assert "tata consultancy" in document
    assert "+" not in document


def test_search_document_tolerates_non_e164_phone() -> None:
    document = search_document(
        first_name="A", last_name="B", emails=[], phones=["12"], company_names=[]
    )
    assert document.split()[-1] == "12"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("+49 (30) 123-4567", "49301234567"),
        ("0049 30 1234567", "49301234567"),
        ("030 1234567", "0301234567"),
        ("8 (912) 345-67-89", "89123456789"),
        ("555.2671", "5552671"),
        ("12345", "12345"),
        ("1234", None),
        ("anna", None),
        ("anna 12345", None),
        ("", None),
    ],
)
def test_phone_digits(query: str, expected: str | None) -> None:
    assert phone_digits(query) == expected


def test_phone_query_digits_found_in_document() -> None:
    document = search_document(
        first_name="Ivan",
        last_name="Petrov",
        emails=[],
        phones=["+79123456789"],
        company_names=[],
    )
    for query in ["+7 912 345-67-89", "8 (912) 345-67-89", "345-67-89", "0079123456789"]:
        digits = phone_digits(query)
        assert digits is not None
        assert digits in document, query
