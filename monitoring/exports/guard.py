"""The formula-injection guard for CSV and XLSX cells (OWASP "CSV injection").

Text cells that start with ``= + - @``, a tab or a carriage return get a leading apostrophe, so
a spreadsheet shows them instead of running them; numbers stay numbers.
"""

from __future__ import annotations

import pandas as pd

#: OWASP CSV injection: a cell starting with one of these may be run as a formula by a spreadsheet.
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


def guard_cell(value: object) -> object:
    """``value`` with a leading apostrophe if it is text a spreadsheet could run as a formula.

    Only text is changed: a negative number is a number, not a formula, and stays one.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
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
        risky = is_text & column.where(is_text, "").astype(str).str.startswith(FORMULA_PREFIXES)
        if risky.any():
            column = column.astype(object)
            column[risky] = "'" + column[risky].astype(str)
        out[name] = column
    return out
