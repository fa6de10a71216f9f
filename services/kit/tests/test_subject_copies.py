"""The rule behind an erasure's search for copies: which identifiers are searched, and
what counts as a copy of them (crm_kit.subject_copies)."""

from __future__ import annotations

import pytest

from crm_api.crm.compliance.v1 import compliance_pb2 as pb
from crm_kit.subject_copies import _applicable, _matchers, _redact_json, subject_terms


def erase(text: str, terms: list[pb.SubjectTerm]) -> str:
    for matcher in _matchers(terms):
        text = matcher.pattern.sub("[erased]", text)
    return text


def test_terms_are_the_full_name_emails_and_phones_never_a_lone_first_name() -> None:
    terms = subject_terms("Ana", "Lima", ["Ana.Lima@Example.org"], ["+5511987654321"])
    assert [(t.kind, t.value) for t in terms] == [
        ("full_name", "Ana Lima"),
        ("full_name", "Lima Ana"),
        ("full_name", "Lima, Ana"),
        ("email", "ana.lima@example.org"),
        ("phone", "5511987654321"),
    ]
    # A first name alone would find everyone called Ana: not searched outside her rows.
    assert subject_terms("Ana", "", [], []) == []
    assert subject_terms("Al", "Li", [], []) == []  # too short to be told apart


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Deal won: Quote request: Jürgen Müller", "Deal won: Quote request: [erased]"),
        ("JÜRGEN  MÜLLER called", "[erased] called"),
        ("Müller, Jürgen", "[erased]"),
        ('{"title": "J\\u00fcrgen M\\u00fcller"}', '{"title": "[erased]"}'),
        ("Jürgen Müllerson is someone else", "Jürgen Müllerson is someone else"),
        ("Anna Müller neither", "Anna Müller neither"),
        ("mail juergen@example.de.", "mail [erased]."),
        ("not adjuergen@example.de", "not adjuergen@example.de"),
        ("call +49 30 1234-567 or 030 1234567", "call [erased] or [erased]"),
        ("order 4930123456789", "order 4930123456789"),
    ],
)
def test_a_copy_is_a_whole_word_match_in_any_case_and_spelling(text: str, expected: str) -> None:
    terms = subject_terms("Jürgen", "Müller", ["juergen@example.de"], ["+49301234567", "301234567"])
    assert erase(text, terms) == expected


def test_a_namesakes_row_keeps_the_name_but_not_the_subjects_email() -> None:
    matchers = _matchers(subject_terms("Ana", "Lima", ["ana@example.org"], []))
    others = _applicable(matchers, "eu_OTHER", "eu_SUBJECT")
    assert _redact_json({"t": "Ana Lima, ana@example.org"}, others) == {"t": "Ana Lima, [erased]"}
    own = _applicable(matchers, "eu_SUBJECT", "eu_SUBJECT")
    assert _redact_json(["Ana Lima"], own) == ["[erased]"]
