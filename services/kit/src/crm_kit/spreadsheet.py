"""Text bound for a spreadsheet: cells that a spreadsheet program would run as a formula.

Every CSV or XLSX the product writes (contact and deal exports, report CSVs, the import
error report, a data subject's export) may hold text that somebody outside typed into a
web form or an import file. Excel, LibreOffice and Google Sheets run a cell that starts
with `=`, `+`, `-` or `@` as a formula, and also one that starts with a tab or a carriage
return followed by one (OWASP "CSV injection"); `=HYPERLINK(...)` then leaks data or
phishes. Such a cell gets a leading apostrophe, which the programs show as text. A plain
number (`-12.5`, a phone number in E.164 `+4930…`) is left as it is.
"""

from __future__ import annotations

from typing import TypeVar

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

T = TypeVar("T")


def _number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def safe_cell(value: T) -> T | str:
    """`value` as a spreadsheet shows it as text; anything but a string is unchanged."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if value[0] not in ("\t", "\r") and _number(value):
        return value
    return "'" + value


def safe_row(values: list[T]) -> list[T | str]:
    return [safe_cell(value) for value in values]
