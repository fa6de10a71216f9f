"""Unit tests for crm_contacts.custom_fields."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from crm_contacts.custom_fields import (
    FieldDefinition,
    FieldType,
    validate_definition,
    validate_values,
)
from crm_kit.errors import InvalidArgument

# ---------------------------------------------------------------------------- definitions


def fields_of(exc: pytest.ExceptionInfo[InvalidArgument]) -> list[str]:
    return [v.field for v in exc.value.violations]


def test_validate_definition_select() -> None:
    definition = validate_definition(
        {
            "key": "industry",
            "label": " Industry ",
            "type": "select",
            "options": ["Banking", " Retail "],
            "required": True,
        }
    )
    assert definition == FieldDefinition(
        "industry", "Industry", FieldType.SELECT, ("Banking", "Retail"), True
    )


def test_validate_definition_plain_type() -> None:
    definition = validate_definition({"key": "budget", "label": "Budget", "type": "number"})
    assert definition == FieldDefinition("budget", "Budget", FieldType.NUMBER)
    assert definition.options == ()
    assert definition.required is False


@pytest.mark.parametrize("key", ["1abc", "Abc", "a-b", "", "a" * 64, "ümlaut"])
def test_validate_definition_bad_key(key: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_definition({"key": key, "label": "X", "type": "text"})
    assert fields_of(exc) == ["key"]


def test_validate_definition_key_limits() -> None:
    assert validate_definition({"key": "a", "label": "X", "type": "text"}).key == "a"
    long_key = "a" + "b_9" * 20 + "xy"
    assert len(long_key) == 63
    assert validate_definition({"key": long_key, "label": "X", "type": "text"}).key == long_key


def test_validate_definition_collects_all_violations_with_prefix() -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_definition(
            {"key": "Bad Key", "label": "", "type": "colour", "required": "yes"},
            field_prefix="custom_field_definitions[3]",
        )
    assert fields_of(exc) == [
        "custom_field_definitions[3].key",
        "custom_field_definitions[3].label",
        "custom_field_definitions[3].type",
        "custom_field_definitions[3].required",
    ]
    type_violation = exc.value.violations[2]
    assert "multi_select" in type_violation.description


def test_validate_definition_label_too_long() -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_definition({"key": "k", "label": "x" * 101, "type": "text"})
    assert fields_of(exc) == ["label"]


def test_validate_definition_options_rules() -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_definition(
            {
                "key": "tier",
                "label": "Tier",
                "type": "multi_select",
                "options": ["Gold", "", "gold"],
            }
        )
    assert fields_of(exc) == ["options[1]", "options[2]"]

    with pytest.raises(InvalidArgument) as exc:
        validate_definition({"key": "tier", "label": "Tier", "type": "select", "options": []})
    assert fields_of(exc) == ["options"]

    with pytest.raises(InvalidArgument) as exc:
        validate_definition({"key": "tier", "label": "Tier", "type": "select"})
    assert fields_of(exc) == ["options"]

    with pytest.raises(InvalidArgument) as exc:
        validate_definition(
            {"key": "n", "label": "N", "type": "select", "options": [str(i) for i in range(201)]}
        )
    assert fields_of(exc) == ["options"]

    with pytest.raises(InvalidArgument) as exc:
        validate_definition({"key": "n", "label": "N", "type": "text", "options": ["a"]})
    assert fields_of(exc) == ["options"]

    with pytest.raises(InvalidArgument) as exc:
        validate_definition({"key": "n", "label": "N", "type": "select", "options": "a,b"})
    assert fields_of(exc) == ["options"]


def test_validate_definition_200_options_ok() -> None:
    options = [f"o{i}" for i in range(200)]
    definition = validate_definition(
        {"key": "n", "label": "N", "type": "select", "options": options}
    )
    assert len(definition.options) == 200


# ---------------------------------------------------------------------------- values


DEFINITIONS: dict[str, FieldDefinition] = {
    d.key: d
    for d in [
        FieldDefinition("notes", "Notes", FieldType.TEXT),
        FieldDefinition("budget", "Budget", FieldType.NUMBER),
        FieldDefinition("employees", "Employees", FieldType.INTEGER),
        FieldDefinition("vip", "VIP", FieldType.BOOLEAN),
        FieldDefinition("renewal", "Renewal", FieldType.DATE),
        FieldDefinition("industry", "Industry", FieldType.SELECT, ("Banking", "Retail")),
        FieldDefinition(
            "channels", "Channels", FieldType.MULTI_SELECT, ("Email", "Phone", "WhatsApp")
        ),
        FieldDefinition("billing_email", "Billing email", FieldType.EMAIL),
        FieldDefinition("website", "Website", FieldType.URL),
        FieldDefinition("assistant_phone", "Assistant phone", FieldType.PHONE),
    ]
}


def test_validate_values_normalizes_every_type() -> None:
    result = validate_values(
        {
            "notes": "Met at Web Summit\nLisbon",
            "budget": 1250.5,
            "employees": "1200",
            "vip": "true",
            "renewal": "2025-03-31",
            "industry": "banking",
            "channels": ["WhatsApp", "email", "Email"],
            "billing_email": "Billing@ACME.com",
            "website": "https://acme.example.com/about",
            "assistant_phone": "8 (912) 345-67-89",
        },
        DEFINITIONS,
        default_country="RU",
    )
    assert result == {
        "notes": "Met at Web Summit\nLisbon",
        "budget": "1250.5",
        "employees": 1200,
        "vip": True,
        "renewal": "2025-03-31",
        "industry": "Banking",
        "channels": ["WhatsApp", "Email"],
        "billing_email": "billing@acme.com",
        "website": "https://acme.example.com/about",
        "assistant_phone": "+79123456789",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10, "10"),
        (0.1, "0.1"),
        (-3.25, "-3.25"),
        ("  12.50 ", "12.50"),
        ("1e3", "1000"),
        (Decimal("99999999999999999999.123456789"), "99999999999999999999.123456789"),
    ],
)
def test_number_is_returned_as_decimal_string(value: Any, expected: str) -> None:
    result = validate_values({"budget": value}, DEFINITIONS, partial=True)
    assert result == {"budget": expected}
    assert isinstance(result["budget"], str)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("budget", True, "expected a number"),
        ("budget", "abc", "expected a number"),
        ("budget", float("nan"), "expected a finite number"),
        ("budget", float("inf"), "expected a finite number"),
        ("budget", "NaN", "expected a finite number"),
        ("budget", "-Infinity", "expected a finite number"),
        ("budget", "1e999999", "too long"),
        ("budget", [1], "expected a number"),
        ("employees", 1.5, "expected an integer"),
        ("employees", "12.0", "expected an integer"),
        ("employees", False, "expected an integer"),
        ("employees", 2**63, "out of range"),
        ("vip", 1, "expected true or false"),
        ("vip", "yes", "expected true or false"),
        ("renewal", "31/03/2025", "YYYY-MM-DD"),
        ("renewal", "2025-02-30", "not a valid date"),
        ("renewal", "20250331", "YYYY-MM-DD"),
        ("industry", "Mining", "must be one of: Banking, Retail"),
        ("industry", 3, "must be one of"),
        ("channels", "Email", "expected a list of options"),
        ("billing_email", "not-an-email", "not a valid email address"),
        ("billing_email", 42, "expected an email address"),
        ("website", "ftp://acme.example.com", "http or https"),
        ("website", "https://", "with a host"),
        ("website", "acme.example.com", "http or https"),
        ("website", "https://acme.example.com/a b", "spaces"),
        ("assistant_phone", "912 345", "not a valid phone number for country RU"),
        ("notes", 12, "expected text"),
        ("notes", "x" * 10_001, "at most 10000 characters"),
    ],
)
def test_value_errors_name_custom_field(key: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_values({key: value}, DEFINITIONS, partial=True, default_country="RU")
    [violation] = exc.value.violations
    assert violation.field == f"custom_fields.{key}"
    assert message in violation.description


def test_multi_select_bad_items_are_indexed() -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_values({"channels": ["Email", "Fax", 3]}, DEFINITIONS, partial=True)
    assert fields_of(exc) == ["custom_fields.channels[1]", "custom_fields.channels[2]"]


def test_phone_needs_country_without_default() -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_values({"assistant_phone": "030 1234567"}, DEFINITIONS, partial=True)
    [violation] = exc.value.violations
    assert violation.field == "custom_fields.assistant_phone"
    assert "country code" in violation.description
    result = validate_values(
        {"assistant_phone": "030 1234567"}, DEFINITIONS, partial=True, default_country="DE"
    )
    assert result == {"assistant_phone": "+49301234567"}


def test_boolean_and_date_accepted_forms() -> None:
    result = validate_values(
        {"vip": False, "renewal": dt.date(2025, 1, 2), "employees": 7.0},
        DEFINITIONS,
        partial=True,
    )
    assert result == {"vip": False, "renewal": "2025-01-02", "employees": 7}
    assert validate_values({"vip": "FALSE"}, DEFINITIONS, partial=True) == {"vip": False}


def test_unknown_field_lists_defined_fields() -> None:
    definitions = {k: DEFINITIONS[k] for k in ("vip", "budget")}
    with pytest.raises(InvalidArgument) as exc:
        validate_values({"industy": "Banking"}, definitions, partial=True)
    [violation] = exc.value.violations
    assert violation.field == "custom_fields.industy"
    assert violation.description == "unknown custom field; defined fields are: budget, vip"


def test_unknown_field_without_definitions() -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_values({"x": 1}, {})
    assert "no custom fields are defined" in exc.value.violations[0].description


def test_a_deleted_fields_leftover_value_may_be_cleared_but_not_written() -> None:
    assert validate_values({"old_size": None}, DEFINITIONS, partial=True) == {"old_size": None}
    with pytest.raises(InvalidArgument):
        validate_values({"old_size": 44}, DEFINITIONS, partial=True)


def test_null_clears_value() -> None:
    result = validate_values({"notes": None, "channels": [], "budget": ""}, DEFINITIONS)
    assert result == {"notes": None, "channels": None, "budget": None}


REQUIRED = {
    "industry": FieldDefinition(
        "industry", "Industry", FieldType.SELECT, ("Banking", "Retail"), required=True
    ),
    "vip": FieldDefinition("vip", "VIP", FieldType.BOOLEAN, required=True),
    "notes": FieldDefinition("notes", "Notes", FieldType.TEXT),
}


def test_required_fields_missing_on_create() -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_values({"notes": "hi"}, REQUIRED)
    assert sorted(fields_of(exc)) == ["custom_fields.industry", "custom_fields.vip"]
    assert all(v.description == "is required" for v in exc.value.violations)


def test_required_fields_may_be_absent_in_partial_update() -> None:
    assert validate_values({"notes": "hi"}, REQUIRED, partial=True) == {"notes": "hi"}


@pytest.mark.parametrize("partial", [False, True])
def test_required_field_cannot_be_cleared(partial: bool) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_values({"industry": None, "vip": False}, REQUIRED, partial=partial)
    assert fields_of(exc) == ["custom_fields.industry"]


def test_all_violations_collected() -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_values(
            {"budget": "lots", "vip": "maybe", "nope": 1, "billing_email": "x@"},
            DEFINITIONS,
        )
    assert fields_of(exc) == [
        "custom_fields.budget",
        "custom_fields.vip",
        "custom_fields.nope",
        "custom_fields.billing_email",
    ]


def test_results_are_json_ready() -> None:
    import json

    result = validate_values(
        {"budget": Decimal("1.10"), "renewal": "2024-02-29", "channels": ["Phone"]},
        DEFINITIONS,
    )
    assert json.loads(json.dumps(result)) == result
