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


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


def pdf_table(frame: pd.DataFrame) -> Table:
    """A frame as strings for a PDF table: numbers to two decimals, missing as a dash."""

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

    return Table(
        columns=[name.replace("_", " ") for name in frame.columns],
        rows=[[text(v) for v in row] for row in frame.itertuples(index=False)],
    )
