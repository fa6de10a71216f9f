"""Tenant-defined custom fields: validating definitions and the values stored on contacts.

Values are returned JSON-ready (they go into a JSONB column): numbers become decimal
strings so no precision is lost to floats, dates become ISO strings.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from crm_contacts.normalize import normalize_email, normalize_phone
from crm_kit.errors import FieldViolation, InvalidArgument

__all__ = [
    "FieldDefinition",
    "FieldType",
    "validate_definition",
    "validate_values",
]

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_LABEL_LENGTH = 100
MAX_OPTIONS = 200
MAX_OPTION_LENGTH = 100
MAX_TEXT_LENGTH = 10_000
MAX_URL_LENGTH = 2048
# Longest plain-notation number we store; guards against "1e999999" expanding.
MAX_NUMBER_LENGTH = 64
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_INTEGER_STRING = re.compile(r"^[+-]?\d+$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_VALUES_FIELD = "custom_fields"


class FieldType(StrEnum):
    """The kinds of value a custom field holds."""

    TEXT = "text"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATE = "date"
    SELECT = "select"
    MULTI_SELECT = "multi_select"
    EMAIL = "email"
    URL = "url"
    PHONE = "phone"


_CHOICE_TYPES = frozenset({FieldType.SELECT, FieldType.MULTI_SELECT})
_TYPE_VALUES = frozenset(t.value for t in FieldType)


@dataclass(frozen=True)
class FieldDefinition:
    """A validated custom field definition."""

    key: str
    label: str
    type: FieldType
    options: tuple[str, ...] = ()
    required: bool = False


# ---------------------------------------------------------------------------- definitions


def validate_definition(raw: Mapping[str, Any], field_prefix: str = "") -> FieldDefinition:
    """Validate a definition as a client sent it; all problems are reported at once.

    Attributes other than key, label, type, options and required are ignored, so a
    client echoing back stored metadata (ids, timestamps) is not rejected.
    """

    def path(name: str) -> str:
        return f"{field_prefix}.{name}" if field_prefix else name

    violations: list[FieldViolation] = []

    key = raw.get("key")
    if not isinstance(key, str) or not key:
        violations.append(FieldViolation(path("key"), "is required"))
    elif not KEY_PATTERN.match(key):
        violations.append(
            FieldViolation(
                path("key"),
                "must start with a lowercase letter and contain only a-z, 0-9 and _ "
                "(at most 63 characters)",
            )
        )

    label = raw.get("label")
    label_text = label.strip() if isinstance(label, str) else ""
    if not label_text:
        violations.append(FieldViolation(path("label"), "is required"))
    elif len(label_text) > MAX_LABEL_LENGTH:
        violations.append(
            FieldViolation(path("label"), f"must be at most {MAX_LABEL_LENGTH} characters")
        )

    field_type: FieldType | None = None
    raw_type = raw.get("type")
    if isinstance(raw_type, str) and raw_type in _TYPE_VALUES:
        field_type = FieldType(raw_type)
    else:
        known = ", ".join(t.value for t in FieldType)
        violations.append(
            FieldViolation(path("type"), f"unknown type {raw_type!r}; expected one of: {known}")
        )

    required = raw.get("required", False)
    if required is None:
        required = False
    if not isinstance(required, bool):
        violations.append(FieldViolation(path("required"), "must be true or false"))

    options = _validate_options(raw.get("options"), field_type, path, violations)

    if violations:
        raise InvalidArgument(violations)
    assert isinstance(key, str) and field_type is not None  # narrowed by the checks above
    return FieldDefinition(
        key=key, label=label_text, type=field_type, options=options, required=bool(required)
    )


def _validate_options(
    raw_options: Any,
    field_type: FieldType | None,
    path: Callable[[str], str],
    violations: list[FieldViolation],
) -> tuple[str, ...]:
    """Check options against the type: choice types need them, others must have none."""
    if raw_options is None:
        raw_options = []
    if isinstance(raw_options, str) or not isinstance(raw_options, list | tuple):
        violations.append(FieldViolation(path("options"), "must be a list of strings"))
        return ()
    if field_type is None:
        return ()  # the type is already reported; options cannot be judged without it
    if field_type not in _CHOICE_TYPES:
        if raw_options:
            violations.append(
                FieldViolation(path("options"), f"a {field_type.value} field has no options")
            )
        return ()
    if not 1 <= len(raw_options) <= MAX_OPTIONS:
        violations.append(
            FieldViolation(path("options"), f"must have between 1 and {MAX_OPTIONS} options")
        )
        return ()
    options: list[str] = []
    seen: set[str] = set()
    for index, option in enumerate(raw_options):
        text = option.strip() if isinstance(option, str) else ""
        where = path(f"options[{index}]")
        if not text:
            violations.append(FieldViolation(where, "must be a non-empty string"))
        elif len(text) > MAX_OPTION_LENGTH:
            violations.append(
                FieldViolation(where, f"must be at most {MAX_OPTION_LENGTH} characters")
            )
        elif text.casefold() in seen:
            # Case-insensitive, because values are matched case-insensitively.
            violations.append(FieldViolation(where, f"duplicate option {text!r}"))
        else:
            seen.add(text.casefold())
            options.append(text)
    return tuple(options)


# ---------------------------------------------------------------------------- values


class _BadValue(Exception):
    """Problems inside one field value, each as (sub-path such as `[2]` or "", description)."""

    def __init__(self, description: str, suffix: str = "") -> None:
        super().__init__(description)
        self.problems: list[tuple[str, str]] = [(suffix, description)]

    @classmethod
    def many(cls, problems: list[tuple[str, str]]) -> _BadValue:
        error = cls(problems[0][1], problems[0][0])
        error.problems = problems
        return error


def validate_values(
    values: Mapping[str, Any],
    definitions: Mapping[str, FieldDefinition],
    *,
    partial: bool = False,
    default_country: str | None = None,
) -> dict[str, Any]:
    """Validate and normalize custom field values; returns JSON-ready values by key.

    `None` clears a value and is returned as `None` so an update can remove the key.
    A required field may never be cleared; when `partial` is False (create/replace)
    it must also be present. `partial` (patch) only relaxes presence, because a
    required field cleared by a patch would leave the contact invalid all the same.
    """
    violations: list[FieldViolation] = []
    result: dict[str, Any] = {}
    for key, value in values.items():
        where = f"{_VALUES_FIELD}.{key}"
        definition = definitions.get(key)
        if definition is None and _is_empty(value):
            # Clearing a value left behind by a deleted definition is always allowed.
            result[key] = None
            continue
        if definition is None:
            violations.append(FieldViolation(where, _unknown_field_message(definitions)))
            continue
        if _is_empty(value):
            if definition.required:
                violations.append(FieldViolation(where, "is required"))
            else:
                result[key] = None
            continue
        try:
            result[key] = _normalize_value(value, definition, where, default_country)
        except _BadValue as exc:
            violations.extend(FieldViolation(where + sub, text) for sub, text in exc.problems)
        except InvalidArgument as exc:
            violations.extend(exc.violations)
    if not partial:
        for key, definition in definitions.items():
            if definition.required and key not in values:
                violations.append(FieldViolation(f"{_VALUES_FIELD}.{key}", "is required"))
    if violations:
        raise InvalidArgument(violations)
    return result


def _unknown_field_message(definitions: Mapping[str, FieldDefinition]) -> str:
    if not definitions:
        return "unknown custom field; no custom fields are defined"
    return "unknown custom field; defined fields are: " + ", ".join(sorted(definitions))


def _is_empty(value: Any) -> bool:
    """None, a blank string or an empty list all mean "no value"."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list | tuple) and not value


def _normalize_value(
    value: Any, definition: FieldDefinition, where: str, default_country: str | None
) -> Any:
    match definition.type:
        case FieldType.TEXT:
            return _text(value)
        case FieldType.NUMBER:
            return _number(value)
        case FieldType.INTEGER:
            return _integer(value)
        case FieldType.BOOLEAN:
            return _boolean(value)
        case FieldType.DATE:
            return _date(value)
        case FieldType.SELECT:
            return _choice(value, definition.options)
        case FieldType.MULTI_SELECT:
            return _multi_choice(value, definition.options)
        case FieldType.EMAIL:
            return normalize_email(_string(value, "an email address"), where)
        case FieldType.URL:
            return _url(value)
        case FieldType.PHONE:
            return normalize_phone(_string(value, "a phone number"), default_country, where)
    raise AssertionError(f"unhandled field type {definition.type}")  # pragma: no cover


def _string(value: Any, expected: str) -> str:
    if not isinstance(value, str):
        raise _BadValue(f"expected {expected}")
    return value.strip()


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _BadValue("expected text")
    if len(value) > MAX_TEXT_LENGTH:
        raise _BadValue(f"must be at most {MAX_TEXT_LENGTH} characters")
    return value


def _number(value: Any) -> str:
    # bool is an int subclass; True is never meant as 1 in a form field.
    if isinstance(value, bool):
        raise _BadValue("expected a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _BadValue("expected a finite number")
        # repr gives the shortest string that round-trips: 0.1 → "0.1", not 0.1000…055.
        number = Decimal(repr(value))
    elif isinstance(value, int | Decimal):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise _BadValue("expected a number") from None
    else:
        raise _BadValue("expected a number")
    if not number.is_finite():
        raise _BadValue("expected a finite number")
    # Plain notation: "1E+3" would be a surprise to clients parsing the string.
    text = format(number, "f")
    if len(text) > MAX_NUMBER_LENGTH:
        raise _BadValue(f"number is too long (at most {MAX_NUMBER_LENGTH} characters)")
    return text


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise _BadValue("expected an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        # JSON clients in JavaScript may send 3 as 3.0.
        number = int(value)
    elif isinstance(value, str) and _INTEGER_STRING.match(value.strip()):
        number = int(value.strip())
    else:
        raise _BadValue("expected an integer")
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise _BadValue("integer out of range (must fit in 64 bits)")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _BadValue("expected true or false")


def _date(value: Any) -> str:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    # fromisoformat alone also accepts "20240131" on 3.11; we want one format only.
    if not isinstance(value, str) or not _ISO_DATE.match(value.strip()):
        raise _BadValue("expected a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise _BadValue("not a valid date (YYYY-MM-DD)") from None


def _match_option(value: Any, options: tuple[str, ...]) -> str | None:
    """The defined option matching `value` ignoring case, in its defined spelling."""
    if not isinstance(value, str):
        return None
    wanted = value.strip().casefold()
    return next((option for option in options if option.casefold() == wanted), None)


def _choice(value: Any, options: tuple[str, ...]) -> str:
    option = _match_option(value, options)
    if option is None:
        raise _BadValue("must be one of: " + ", ".join(options))
    return option


def _multi_choice(value: Any, options: tuple[str, ...]) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise _BadValue("expected a list of options")
    chosen: list[str] = []
    problems: list[tuple[str, str]] = []
    for index, item in enumerate(value):
        option = _match_option(item, options)
        if option is None:
            problems.append((f"[{index}]", "must be one of: " + ", ".join(options)))
        elif option not in chosen:
            chosen.append(option)
    if problems:
        raise _BadValue.many(problems)
    return chosen


def _url(value: Any) -> str:
    text = _string(value, "a URL")
    if len(text) > MAX_URL_LENGTH:
        raise _BadValue(f"must be at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() for c in text):
        raise _BadValue("a URL cannot contain spaces")
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        raise _BadValue("not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _BadValue("expected an http or https URL")
    if not host:
        raise _BadValue("expected a URL with a host, e.g. https://example.com")
    return text
