"""Unit tests for crm_contacts.duplicates."""

from __future__ import annotations

import random

import pytest

from crm_contacts.duplicates import (
    DuplicateCandidate,
    DuplicateMatch,
    find_duplicates,
    score_pair,
)


def person(
    id: str,
    first: str,
    last: str,
    emails: tuple[str, ...] = (),
    phones: tuple[str, ...] = (),
    companies: tuple[str, ...] = (),
) -> DuplicateCandidate:
    return DuplicateCandidate(id, first, last, emails, phones, companies)


def test_same_email_scores_one() -> None:
    a = person("c2", "Anna", "Müller", emails=("anna@example.de",))
    b = person("c1", "A.", "Mueller-Schmidt", emails=("ANNA@example.de",))
    match = score_pair(a, b)
    assert match == DuplicateMatch("c1", "c2", 1.0, ("same_email",))


def test_same_phone_scores_095() -> None:
    a = person("a", "Ivan", "Petrov", phones=("+79123456789",))
    b = person("b", "Vanya", "P", phones=("+79123456789",))
    assert score_pair(a, b) == DuplicateMatch("a", "b", 0.95, ("same_phone",))


def test_similar_name_and_company() -> None:
    a = person("a", "Anna", "Müller", companies=("Siemens AG",))
    b = person("b", "anna", "muller", companies=("SIEMENS",))
    match = score_pair(a, b)
    assert match is not None
    assert match.reasons == ("similar_name", "same_company")
    assert match.score == 0.9


def test_token_order_does_not_matter() -> None:
    a = person("a", "Müller", "Anna", companies=("Acme",))
    b = person("b", "anna", "muller", companies=("Acme Inc.",))
    match = score_pair(a, b)
    assert match is not None
    assert match.score == 0.9


def test_slightly_different_name_same_company_scores_lower() -> None:
    a = person("a", "Jonathan", "Smith", companies=("Globex",))
    b = person("b", "Jonathon", "Smith", companies=("Globex Corporation",))
    match = score_pair(a, b)
    assert match is not None
    assert match.reasons == ("similar_name", "same_company")
    assert 0.86 <= match.score < 0.9


def test_name_only_without_companies() -> None:
    a = person("a", "Priya", "Raman")
    b = person("b", "priya", "RAMAN")
    match = score_pair(a, b)
    assert match is not None
    assert match.reasons == ("similar_name",)
    assert 0.6 <= match.score <= 0.65


def test_name_only_across_scripts() -> None:
    match = score_pair(person("a", "Иван", "Петров"), person("b", "Ivan", "Petrov"))
    assert match is not None
    assert match.reasons == ("similar_name",)


def test_same_name_different_companies_is_not_a_duplicate() -> None:
    a = person("a", "Maria", "Silva", companies=("Itaú",))
    b = person("b", "Maria", "Silva", companies=("Petrobras",))
    assert score_pair(a, b) is None


def test_same_company_different_people_is_not_a_duplicate() -> None:
    a = person("a", "Maria", "Silva", companies=("Petrobras",))
    b = person("b", "João", "Souza", companies=("Petrobras",))
    assert score_pair(a, b) is None


def test_name_only_below_95_is_not_enough() -> None:
    assert score_pair(person("a", "Jon", "Smith"), person("b", "John", "Smyth")) is None


def test_reasons_combine_and_score_takes_strongest() -> None:
    a = person("a", "Anna", "Müller", emails=("anna@x.de",), phones=("+49301234567",))
    b = person("b", "Anna", "Muller", emails=("anna@x.de",), phones=("+49301234567",))
    match = score_pair(a, b)
    assert match == DuplicateMatch("a", "b", 1.0, ("same_email", "same_phone", "similar_name"))


def test_empty_names_never_match_on_name() -> None:
    assert score_pair(person("a", "", ""), person("b", "", "")) is None


REALISTIC = [
    person("c01", "Anna", "Müller", ("anna.mueller@siemens.com",), (), ("Siemens AG",)),
    person("c02", "Anna", "Mueller", ("ANNA.MUELLER@siemens.com",), (), ()),
    person("c03", "João", "Silva", (), ("+5511987654321",), ("Itaú Unibanco",)),
    person("c04", "Joao", "Silva", ("joao@gmail.com",), ("+5511987654321",), ()),
    person("c05", "Rajesh", "Kumar", (), (), ("Infosys Ltd",)),
    person("c06", "Kumar", "Rajesh", (), (), ("Infosys",)),
    person("c07", "Maria", "Garcia", (), (), ("Telefónica",)),
    person("c08", "Maria", "Garcia", (), (), ("Santander",)),
    person("c09", "Mehmet", "Y\u0131lmaz", (), (), ()),
    person("c10", "Mehmet", "Yilmaz", (), (), ()),
    person("c11", "Olga", "Ivanova", ("olga@yandex.ru",), ("+79123456789",), ()),
    person("c12", "Pierre", "Dubois", (), (), ("Airbus",)),
]


def test_find_duplicates_on_realistic_list() -> None:
    matches = find_duplicates(REALISTIC)
    by_pair = {(m.a_id, m.b_id): m for m in matches}
    assert set(by_pair) == {("c01", "c02"), ("c03", "c04"), ("c05", "c06"), ("c09", "c10")}
    assert by_pair["c01", "c02"].reasons == ("same_email", "similar_name")
    assert by_pair["c01", "c02"].score == 1.0
    assert by_pair["c03", "c04"].reasons == ("same_phone", "similar_name")
    assert by_pair["c03", "c04"].score == 0.95
    assert by_pair["c05", "c06"].reasons == ("similar_name", "same_company")
    assert by_pair["c09", "c10"].reasons == ("similar_name",)
    # Same name, different employers: two people.
    assert ("c07", "c08") not in by_pair
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)


def test_find_duplicates_threshold() -> None:
    matches = find_duplicates(REALISTIC, threshold=0.9)
    assert {(m.a_id, m.b_id) for m in matches} == {("c01", "c02"), ("c03", "c04"), ("c05", "c06")}


def test_find_duplicates_agrees_with_score_pair() -> None:
    """Blocking must not lose pairs that plain pairwise scoring finds on a small list."""
    expected = []
    for i, a in enumerate(REALISTIC):
        for b in REALISTIC[i + 1 :]:
            match = score_pair(a, b)
            if match is not None and match.score >= 0.6:
                expected.append(match)
    assert sorted(find_duplicates(REALISTIC), key=repr) == sorted(expected, key=repr)


def test_each_pair_reported_once_even_with_many_shared_signals() -> None:
    a = person("b", "Li", "Wei", ("li@x.cn", "wei@x.cn"), ("+8613800138000",), ("Huawei",))
    b = person("a", "Li", "Wei", ("li@x.cn", "wei@x.cn"), ("+8613800138000",), ("Huawei",))
    [match] = find_duplicates([a, b])
    assert (match.a_id, match.b_id) == ("a", "b")
    assert match.reasons == ("same_email", "same_phone", "similar_name", "same_company")


def test_find_duplicates_empty_and_single() -> None:
    assert find_duplicates([]) == []
    assert find_duplicates([person("a", "X", "Y")]) == []


FIRST = [
    "Anna", "Maria", "João", "Rajesh", "Priya", "Olga", "Ivan", "Mehmet", "Fatima", "Chen",
    "Pierre", "Hans", "Lucia", "Ahmed", "Sofia", "Lars", "Ingrid", "Carlos", "Yuki", "Amit",
]  # fmt: skip
LAST = [
    "Müller", "Silva", "Kumar", "Patel", "Ivanova", "Y\u0131lmaz", "Garcia", "Dubois", "Rossi",
    "Nielsen", "Schmidt", "Santos", "Sharma", "Petrov", "Kowalski", "Tanaka", "Haddad",
]  # fmt: skip


@pytest.mark.timeout(120)
def test_find_duplicates_20k_synthetic_candidates() -> None:
    rng = random.Random(20240611)
    candidates = []
    for i in range(20_000):
        first = rng.choice(FIRST)
        last = rng.choice(LAST) + rng.choice(["", "", "a", "son", "ez", "ini", "sky", "er"])
        suffix = f"{i:05d}"
        candidates.append(
            person(
                f"c{suffix}",
                first,
                f"{last}{rng.randrange(1000)}" if rng.random() < 0.9 else last,
                (f"{first.lower()}.{i}@example.com",),
                (f"+1415555{i % 10000:04d}",) if rng.random() < 0.2 else (),
                (f"Company {rng.randrange(2000)}",) if rng.random() < 0.7 else (),
            )
        )
    # Plant known duplicates.
    candidates.append(person("dup-a", "Zoltan", "Kovacs", ("zk@example.hu",)))
    candidates.append(person("dup-b", "Zoltán", "Kovács", ("ZK@example.hu",)))
    matches = find_duplicates(candidates)
    pairs = {(m.a_id, m.b_id) for m in matches}
    assert ("dup-a", "dup-b") in pairs
    assert all(m.a_id < m.b_id for m in matches)
    assert len(pairs) == len(matches)
    assert all(0.6 <= m.score <= 1.0 for m in matches)
