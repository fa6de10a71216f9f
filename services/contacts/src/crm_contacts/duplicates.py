"""Duplicate contact detection: pairwise scoring and a blocked search over many contacts.

Scoring (each signal gives a score; a pair's score is the strongest one, and its
reasons list every signal that holds, so a reviewer sees all the evidence):

- `same_email`: a shared email address (compared casefolded) → 1.0
- `same_phone`: a shared phone number (compared by digits) → 0.95
- `similar_name` + `same_company`: folded full names with token-sort similarity ≥ 88
  and a shared company (similarity ≥ 90) → 0.6 + 0.3 * name_similarity (0.864..0.9)
- `similar_name` alone: similarity ≥ 95 and *neither* contact has a company
  → 0.6..0.65 (linear in similarity from 95 to 100); a weak signal, kept just at the
  default threshold so reviewers see it but it sorts below everything else.

Names differing in company (both set, not similar) are never matched on name alone:
two "Maria Silva" at different firms are usually two people.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

from crm_contacts.search_text import fold_query

__all__ = ["DuplicateCandidate", "DuplicateMatch", "find_duplicates", "score_pair"]

NAME_WITH_COMPANY_MIN = 88.0
NAME_ONLY_MIN = 95.0
COMPANY_MIN = 90.0

SAME_EMAIL = "same_email"
SAME_PHONE = "same_phone"
SIMILAR_NAME = "similar_name"
SAME_COMPANY = "same_company"

# Trailing legal forms, so "Acme GmbH" and "ACME" are the same company.
_LEGAL_FORMS = frozenset(
    {
        "ab", "ag", "as", "bv", "co", "company", "corp", "corporation", "gmbh", "inc",
        "kg", "limited", "llc", "llp", "ltd", "ltda", "nv", "oy", "oyj", "plc", "pte",
        "pty", "pvt", "sa", "sarl", "sas", "spa", "srl", "ooo", "eireli", "me", "kk",
    }
)  # fmt: skip
_NON_WORD = re.compile(r"[^\w\s]+")
_NAME_KEY_LENGTH = 3


@dataclass(frozen=True)
class DuplicateCandidate:
    """What duplicate detection needs to know about a contact (normalized values)."""

    id: str
    first_name: str
    last_name: str
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    company_names: tuple[str, ...]


@dataclass(frozen=True)
class DuplicateMatch:
    """A likely duplicate pair; `a_id < b_id`, `score` in 0..1 rounded to 3 places."""

    a_id: str
    b_id: str
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Features:
    """A candidate folded once, so scoring many pairs does no repeated text work."""

    id: str
    emails: frozenset[str]
    phones: frozenset[str]
    name: str  # folded, transliterated, tokens sorted (token_sort_ratio's form)
    companies: tuple[str, ...]


def _sorted_name(first_name: str, last_name: str) -> str:
    # fold_query transliterates, so "Иван Петров" and "Ivan Petrov" compare equal.
    return " ".join(sorted(fold_query(f"{first_name} {last_name}").split()))


@lru_cache(maxsize=65_536)
def _company_key(name: str) -> str:
    # Cached: many contacts share a handful of employers, and folding is the slow part.
    tokens = _NON_WORD.sub(" ", fold_query(name)).split()
    while len(tokens) > 1 and tokens[-1] in _LEGAL_FORMS:
        tokens.pop()
    return " ".join(tokens)


def _features(candidate: DuplicateCandidate) -> _Features:
    phones = (re.sub(r"\D", "", p) for p in candidate.phones)
    companies = (_company_key(c) for c in candidate.company_names)
    return _Features(
        id=candidate.id,
        emails=frozenset(e.strip().casefold() for e in candidate.emails if e.strip()),
        phones=frozenset(p for p in phones if p),
        name=_sorted_name(candidate.first_name, candidate.last_name),
        companies=tuple(dict.fromkeys(c for c in companies if c)),
    )


def _companies_match(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return any(fuzz.ratio(x, y, score_cutoff=COMPANY_MIN) for x in a for y in b)


def _score(a: _Features, b: _Features) -> DuplicateMatch | None:
    reasons: list[str] = []
    scores: list[float] = []
    if a.emails & b.emails:
        reasons.append(SAME_EMAIL)
        scores.append(1.0)
    if a.phones & b.phones:
        reasons.append(SAME_PHONE)
        scores.append(0.95)
    name_similarity = (
        float(fuzz.ratio(a.name, b.name, score_cutoff=NAME_WITH_COMPANY_MIN))
        if a.name and b.name
        else 0.0
    )
    company_match = _companies_match(a.companies, b.companies)
    if name_similarity >= NAME_WITH_COMPANY_MIN:
        reasons.append(SIMILAR_NAME)
    if company_match:
        reasons.append(SAME_COMPANY)
    if name_similarity >= NAME_WITH_COMPANY_MIN and company_match:
        scores.append(0.6 + 0.3 * name_similarity / 100)
    if name_similarity >= NAME_ONLY_MIN and not a.companies and not b.companies:
        scores.append(0.6 + 0.05 * (name_similarity - NAME_ONLY_MIN) / (100 - NAME_ONLY_MIN))
    if not scores:
        return None
    a_id, b_id = sorted((a.id, b.id))
    return DuplicateMatch(a_id, b_id, round(max(scores), 3), tuple(reasons))


def score_pair(a: DuplicateCandidate, b: DuplicateCandidate) -> DuplicateMatch | None:
    """Score two contacts as possible duplicates; None if no signal reaches a threshold."""
    return _score(_features(a), _features(b))


def _pairs_in_groups(groups: Iterable[list[int]], pairs: set[tuple[int, int]]) -> None:
    for members in groups:
        for i, first in enumerate(members):
            for second in members[i + 1 :]:
                if first != second:
                    pairs.add((first, second) if first < second else (second, first))


def _similar_name_pairs(features: Sequence[_Features], pairs: set[tuple[int, int]]) -> None:
    """Add pairs whose names may be similar enough, comparing only within blocks.

    A block is every contact with a name token starting with the same 3 characters
    ("anna muller" is in blocks "ann" and "mul"). Two names ≥ 88 similar almost
    always share such a token prefix; within a block rapidfuzz compares in C with a
    score cutoff, so even a block of thousands costs milliseconds, not a Python loop.
    """
    blocks: dict[str, list[int]] = defaultdict(list)
    for index, f in enumerate(features):
        for key in {token[:_NAME_KEY_LENGTH] for token in f.name.split()}:
            blocks[key].append(index)
    for members in blocks.values():
        if len(members) < 2:
            continue
        names = [features[i].name for i in members]
        for position in range(len(members) - 1):
            matches = process.extract(
                names[position],
                names[position + 1 :],
                scorer=fuzz.ratio,
                score_cutoff=NAME_WITH_COMPANY_MIN,
                limit=None,
            )
            first = members[position]
            for _choice, _similarity, offset in matches:
                second = members[position + 1 + offset]
                if first != second:
                    pairs.add((first, second) if first < second else (second, first))


def find_duplicates(
    candidates: Sequence[DuplicateCandidate], threshold: float = 0.6
) -> list[DuplicateMatch]:
    """All pairs scoring at least `threshold`, best first, each pair once (`a_id < b_id`).

    Only pairs that share an email, a phone or a name block are scored, which keeps
    the work near-linear for realistic data instead of n² pairs.
    """
    features = [_features(c) for c in candidates]
    by_email: dict[str, list[int]] = defaultdict(list)
    by_phone: dict[str, list[int]] = defaultdict(list)
    for index, f in enumerate(features):
        for email in f.emails:
            by_email[email].append(index)
        for phone in f.phones:
            by_phone[phone].append(index)

    pairs: set[tuple[int, int]] = set()
    _pairs_in_groups(by_email.values(), pairs)
    _pairs_in_groups(by_phone.values(), pairs)
    _similar_name_pairs(features, pairs)

    matches: list[DuplicateMatch] = []
    for first, second in pairs:
        if features[first].id == features[second].id:
            continue
        match = _score(features[first], features[second])
        if match is not None and match.score >= threshold:
            matches.append(match)
    matches.sort(key=lambda m: (-m.score, m.a_id, m.b_id))
    return matches
