"""What a spreadsheet program would run as a formula is written as text."""

from __future__ import annotations

import pytest

from crm_kit.spreadsheet import safe_cell, safe_row


@pytest.mark.parametrize(
    "value",
    [
        '=HYPERLINK("http://evil.example","x")',
        "+1+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)",
        "\t=1+1",
        "\r=1+1",
        "\t12",  # a tab first is never a plain number
    ],
)
def test_a_cell_a_spreadsheet_would_run_gets_a_leading_apostrophe(value: str) -> None:
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["-12.5", "+4930123456", "Müller", "", "a=b", 7, None])
def test_numbers_text_and_other_values_are_left_alone(value: object) -> None:
    assert safe_cell(value) == value


def test_a_row_is_made_safe_cell_by_cell() -> None:
    assert safe_row(["=1+1", 3, "ok"]) == ["'=1+1", 3, "ok"]
