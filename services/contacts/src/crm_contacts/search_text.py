"""Accent- and script-insensitive search text for pg_trgm indexes.

A contact's `search_document` is folded once when it is written; a query is folded
with `fold_query` and compared to it (trigram similarity or substring).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

import phonenumbers
from unidecode import unidecode

__all__ = ["fold", "fold_query", "phone_digits", "search_document"]

_WHITESPACE = re.compile(r"\s+")
_EMAIL_LOCAL_SEPARATORS = re.compile(r"[._+\-]+")
# What people put between the digits of a phone number.
_PHONE_QUERY = re.compile(r"^\+?[\d\s().\-/]+$")
_MIN_PHONE_DIGITS = 5


def _collapse(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _has_non_latin_letters(text: str) -> bool:
    """True if any letter is outside the Latin script (Devanagari, Arabic, Cyrillic...)."""
    return any(c.isalpha() and not unicodedata.name(c, "").startswith("LATIN") for c in text)


def _transliterate(casefolded: str) -> str:
    # unidecode maps character by character, so a substring of the original always
    # transliterates to a substring of the transliteration; that is what makes a
    # transliterated query match a transliterated document.
    return _collapse(unidecode(casefolded).lower())


def fold(text: str) -> str:
    """Fold text for indexing: NFKC, casefold, accents stripped, whitespace collapsed.

    Latin text becomes plain ASCII ("Müller" → "muller", "Ærø" → "aero"). Text with
    letters from other scripts becomes the casefolded original *and* its
    transliteration ("अनिल" → "अनिल anil"), so users can search in either script.
    """
    casefolded = _collapse(unicodedata.normalize("NFKC", text).casefold())
    if not casefolded:
        return ""
    transliterated = _transliterate(casefolded)
    if _has_non_latin_letters(casefolded):
        # NFC so the original part is stored composed, whatever the client sent.
        original = unicodedata.normalize("NFC", casefolded)
        return _collapse(f"{original} {transliterated}")
    return transliterated


def fold_query(q: str) -> str:
    """Fold a user's query the way documents are folded, keeping only the Latin form.

    Every document contains the transliteration of all its text, so the query's
    transliteration alone matches documents in either script ("अनिल", "anil" and
    "Anil" all find the same contact) without the other script diluting similarity.
    """
    casefolded = _collapse(unicodedata.normalize("NFKC", q).casefold())
    return _transliterate(casefolded) if casefolded else ""


def phone_digits(q: str) -> str | None:
    """The digits of a query that looks like a phone number, else None.

    A phone query has at least 5 digits and only phone punctuation. A leading `00`
    (international prefix) is dropped so it matches the stored E.164 digits.
    """
    text = q.strip()
    if not _PHONE_QUERY.match(text):
        return None
    digits = re.sub(r"\D", "", text)
    if len(digits) < _MIN_PHONE_DIGITS:
        return None
    if not text.startswith("+") and digits.startswith("00") and len(digits) - 2 >= 5:
        digits = digits[2:]
    return digits


def _email_terms(email: str) -> list[str]:
    local = email.split("@", 1)[0]
    # "anna.muller@x.com" should be found by "anna muller" as well.
    return [email, *_EMAIL_LOCAL_SEPARATORS.split(local)]


def _phone_terms(phone: str) -> list[str]:
    """E.164 digits, the national significant number and the national dialling digits.

    The last two let someone find "+79123456789" by typing "9123456789" or
    "8 912 345-67-89", the way they would dial it at home.
    """
    digits = re.sub(r"\D", "", phone)
    terms = [digits] if digits else []
    try:
        number = phonenumbers.parse(phone if phone.startswith("+") else "+" + digits, None)
    except phonenumbers.NumberParseException:
        return terms
    national_significant = str(phonenumbers.national_significant_number(number))
    national = re.sub(
        r"\D", "", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    )
    terms.extend(t for t in (national_significant, national) if len(t) >= 7)
    return terms


def _unique(terms: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    result: list[str] = []
    for term in terms:
        if term and term not in seen:
            seen.add(term)
            result.append(term)
    return result


def search_document(
    *,
    first_name: str,
    last_name: str,
    emails: Sequence[str],
    phones: Sequence[str],
    company_names: Sequence[str],
) -> str:
    """One folded text with everything a user may search a contact by.

    `phones` are expected in E.164 (as `normalize_phone` returns them); anything else
    contributes its digits only.
    """
    terms: list[str] = [fold(first_name), fold(last_name)]
    for email in emails:
        terms.extend(fold(t) for t in _email_terms(email))
    for phone in phones:
        terms.extend(_phone_terms(phone))
    terms.extend(fold(name) for name in company_names)
    return " ".join(_unique(t for t in terms if t))
