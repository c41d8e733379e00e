"""Cells for files staff open in a spreadsheet (CSV and XLSX exports): nothing a spreadsheet would run as a formula.

Every export of text that users or channels typed goes through `csv_safe`; the catalog import undoes it on the way
back in (`unneutralise`), so that an exported file imports unchanged.
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula: text starting with = + - @ (or tab/CR) gets a quote."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def unneutralise(text: str) -> str:
    """The text `csv_safe` was given back: a leading quote before a formula character is dropped."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text


class EchoWriter:
    """csv.writer needs a file; this one hands each encoded row straight back to the generator (streaming)."""

    def write(self, value: str) -> str:
        return value
