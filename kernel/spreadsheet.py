"""Text a spreadsheet would run as a formula (CSV/formula injection) and how it is defused.

Excel, WPS and LibreOffice treat a cell that begins with one of these characters as a
formula, in a CSV as much as in an XLSX. The OWASP rule: prefix such a cell with a single
quote, so the text is shown as typed and never evaluated. Numbers are left alone.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def formula_start(text: str) -> str | None:
    """The character that would make a spreadsheet read `text` as a formula, or None."""
    return text[0] if text.startswith(FORMULA_STARTS) else None


def defuse(value: object) -> object:
    """A cell value safe to write: text that starts like a formula gets a leading quote."""
    if isinstance(value, str) and formula_start(value) is not None:
        return QUOTE + value
    return value
