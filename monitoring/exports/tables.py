"""Frames as text for the PDF templates: a table of strings, a share as a percentage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd


def percent(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "\u2013"
    return "\u2013" if np.isnan(number) else f"{100 * number:.0f}%"


#: PDF column headers of the columns several reports print (a report passes its own for the rest).
HEADERS = {
    "patient": "Patient",
    "external_id": "Record number",
    "therapist": "Therapist",
    "treatment": "Treatment",
    "session": "Session",
    "date": "Date",
    "scale": "Scale",
    "goal": "Goal",
    "task": "Task",
    "bond": "Bond",
    "total": "Total",
    "agreement": "Goal and task",
    "z_total": "z (total)",
    "flags": "Flags",
}

#: A cell of at most this many characters and no space is one token (a date, a number, a short
#: label): its column is never wrapped, so nothing is printed half on one line and half on the next.
TOKEN = 16


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    #: Per column: True when its cells are single tokens that must not wrap (dates, numbers).
    nowrap: list[bool] = field(default_factory=list)

    @property
    def body(self) -> list[list[tuple[str, bool]]]:
        """The rows as (text, nowrap) cells, for the template."""
        flags = self.nowrap or [False] * len(self.columns)
        return [list(zip(row, flags, strict=True)) for row in self.rows]


def pdf_table(frame: pd.DataFrame, *, headers: dict[str, str] | None = None) -> Table:
    """A frame as strings for a PDF table: numbers to two decimals, missing as a dash, headers
    in words (``headers``, then :data:`HEADERS`, else the name with spaces), and columns of
    single tokens (dates, numbers, short codes) marked not to wrap."""

    def text(value: object) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            return "\u2013"
        if isinstance(value, bool | np.bool_):
            return "yes" if value else "no"
        if isinstance(value, float | np.floating):
            return f"{value:.2f}"
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M")
        return str(value)

    rows = [[text(v) for v in row] for row in frame.itertuples(index=False)]
    nowrap = [
        all(len(cell) <= TOKEN and " " not in cell for cell in column) for column in zip(*rows, strict=True)
    ] or [False] * len(frame.columns)
    names = {**HEADERS, **(headers or {})}
    return Table(
        columns=[names.get(str(name), str(name).replace("_", " ")) for name in frame.columns],
        rows=rows,
        nowrap=nowrap,
    )
