"""The formula-injection guard for CSV and XLSX cells (OWASP "CSV injection").

Text cells that start with ``= + - @``, a tab, a carriage return or a line feed, or with one of
their look-alikes (fullwidth equals, plus, minus and at, U+FF1D, U+FF0B, U+FF0D, U+FF20, and
the others below), possibly after leading spaces, get a leading apostrophe, so a spreadsheet shows
them instead of running them; numbers stay numbers.
"""

from __future__ import annotations

import re

import pandas as pd

#: OWASP CSV injection: a cell starting with one of these may be run as a formula by a spreadsheet.
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r", "\n")

#: Characters a spreadsheet may read as ``= + - @``: every character whose compatibility form
#: (Unicode NFKC) begins with one of them (Apple Numbers normalises a cell that way, so a fullwidth
#: equals sign starts a formula there), and U+2212 MINUS SIGN, which a spreadsheet may take for a
#: minus. A test checks the NFKC part against every Unicode character.
LOOKALIKE_PREFIXES: tuple[str, ...] = (
    "\uff1d",  # FULLWIDTH EQUALS SIGN
    "\uff0b",  # FULLWIDTH PLUS SIGN
    "\uff0d",  # FULLWIDTH HYPHEN-MINUS
    "\uff20",  # FULLWIDTH COMMERCIAL AT
    "\ufe66",  # SMALL EQUALS SIGN
    "\ufe62",  # SMALL PLUS SIGN
    "\ufe63",  # SMALL HYPHEN-MINUS
    "\ufe6b",  # SMALL COMMERCIAL AT
    "\u207a",  # SUPERSCRIPT PLUS SIGN
    "\u207c",  # SUPERSCRIPT EQUALS SIGN
    "\u208a",  # SUBSCRIPT PLUS SIGN
    "\u208c",  # SUBSCRIPT EQUALS SIGN
    "\u2a75",  # TWO CONSECUTIVE EQUALS SIGNS
    "\u2a76",  # THREE CONSECUTIVE EQUALS SIGNS
    "\ufb29",  # HEBREW LETTER ALTERNATIVE PLUS SIGN
    "\u2212",  # MINUS SIGN
)

# A control character at the very start, or a formula character (or look-alike) after any leading
# whitespace (Calc's CSV import can trim spaces before it evaluates).
_STARTS = "".join(c for c in FORMULA_PREFIXES if not c.isspace()) + "".join(LOOKALIKE_PREFIXES)
_RISKY = re.compile(r"[\t\r\n]|\s*[" + re.escape(_STARTS) + "]")


def is_formula(text: str) -> bool:
    """Whether a spreadsheet could take ``text`` for a formula."""
    return _RISKY.match(text) is not None


def guard_cell(value: object) -> object:
    """``value`` with a leading apostrophe if it is text a spreadsheet could run as a formula.

    Only text is changed: a negative number is a number, not a formula, and stays one.
    """
    if isinstance(value, str) and is_formula(value):
        return "'" + value
    return value


def guard_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell passed through :func:`guard_cell` (vectorised)."""
    out = frame.copy(deep=False)
    for name in out.columns:
        column = out[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(object)
        is_text = column.map(lambda v: isinstance(v, str), na_action="ignore").fillna(False).astype(bool)
        if not is_text.any():
            continue
        risky = is_text & column.where(is_text, "").astype(str).str.match(_RISKY)
        if risky.any():
            column = column.astype(object)
            column[risky] = "'" + column[risky].astype(str)
        out[name] = column
    return out
