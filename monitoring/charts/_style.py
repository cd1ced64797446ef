"""The charts' shared look and building blocks.

The site's colours and the flag markers (also used by the PDF charts of ``monitoring.exports.pdf``),
sizes, the :class:`Chart` record, the layout, axis and title helpers, the empty chart, the rupture
threshold line; helpers that pick one scale's rows out of the analysis frames; and the number and
word formatting of hovers, summaries and tables.

Palette: Okabe-Ito hues (colour-blind safe), always paired with a distinct marker shape, on the
site's ink and accent colours (``static/css/bordin.css``); text colours meet WCAG AA on white.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from monitoring.analytics import columns as c

# Site colours (static/css/bordin.css) and Okabe-Ito hues for the flags.
INK = "#1f2933"
MUTED = "#52606d"
GRID = "#e4e9ee"
AXIS = "#9aa5b1"
ACCENT = "#1d5c8f"  # the patient's scores
LEVEL = "#52606d"
BAND = "rgba(29, 92, 143, 0.12)"
THERAPIST = "#b36b00"  # Okabe-Ito orange, darkened to 4.5:1 on white so it also works as text
NEUTRAL_BAR = "#8696a7"
EARLY_BAR = "#d3dae1"
DECLINE_SHADE = "rgba(230, 159, 0, 0.16)"

#: kind -> (legend name, marker symbol, colour, size). Shapes differ, so colour is never the only cue.
#: The kind of the stored "alliance has stayed low" flag (its frame rows are passed to the charts
#: beside ``analysis.events``).
LOW_ALLIANCE = "low_alliance"

MARKERS: Mapping[str, tuple[str, str, str, int]] = {
    c.RUPTURE: ("Rupture", "triangle-down", "#d55e00", 15),
    c.REPAIR: ("Repair", "circle", "#009e73", 13),
    c.UNREPAIRED: ("Not repaired", "x", "#8c1d18", 14),
    c.DECLINE: ("Declining trend", "diamond", "#e69f00", 13),
    c.SUDDEN_GAIN: ("Sudden gain", "triangle-up", "#0072b2", 14),
    c.SUDDEN_LOSS: ("Sudden loss", "triangle-down-open", "#cc79a7", 15),
    # A stored flag, not in analysis.events (the absolute signal of docs/methods.md 4.9).
    LOW_ALLIANCE: ("Alliance stayed low", "square-open", "#3b3b3b", 13),
}

SCALE_MIN, SCALE_MAX = 1.0, 5.0
_Y_RANGE = [0.8, 5.2]  # fixed 1-5 with room for markers at the ends
HEIGHT = 320
HEIGHT_PANELS = 420
# Typographic signs, spelled as escapes so they are unmistakable in the source.
MINUS = "\u2212"
TIMES = "\u00d7"
_MISSING = "\u2013"  # en dash in empty table cells
_WRAP = 60


@dataclass(frozen=True)
class Chart:
    """A figure for plotly.js plus its text alternative and data table (cells are strings)."""

    figure: dict[str, Any]
    summary: str
    columns: list[str]
    rows: list[list[str]]


# --------------------------------------------------------------------------------------------
# Figure and layout
# --------------------------------------------------------------------------------------------


def _chart(
    traces: list[dict[str, Any]],
    layout: dict[str, Any],
    summary: str,
    columns: list[str],
    rows: list[list[str]],
) -> Chart:
    return Chart(
        figure=_plain({"data": traces, "layout": layout}), summary=summary, columns=columns, rows=rows
    )


def _empty_chart(
    *, height: int, y_title: str, columns: list[str], summary: str, threshold: float | None = None
) -> Chart:
    layout = _layout(height=height)
    layout["xaxis"] = _session_axis([], title=True)
    if threshold is None:
        layout["yaxis"] = _score_axis(y_title or None)
    else:
        layout["yaxis"] = {
            **_axis_style(),
            "title": _title("Units of usual variation"),
            "range": [threshold - 1.0, 2.0],
            "fixedrange": True,
        }
        layout["shapes"] = [_threshold_shape(threshold)]
    layout["showlegend"] = False
    layout["annotations"] = [
        *layout.get("annotations", []),
        {
            "text": "No answers yet",
            "xref": "paper",
            "yref": "paper",
            "x": 0.5,
            "y": 0.5,
            "showarrow": False,
            "font": {"size": 14, "color": MUTED},
        },
    ]
    return _chart([], layout, summary, columns, [])


def _layout(*, height: int) -> dict[str, Any]:
    return {
        "autosize": True,
        "height": height,
        "margin": {"l": 56, "r": 16, "t": 36, "b": 48},
        "font": {"family": "system-ui, sans-serif", "size": 13, "color": INK},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#ffffff",
        "hovermode": "x unified",
        "hoverdistance": 10,  # px: with many sessions, only the hovered session's points
        "hoverlabel": {
            "bgcolor": "#ffffff",
            "bordercolor": AXIS,
            "font": {"color": INK, "size": 13},
            "align": "left",
        },
        "showlegend": True,
        "legend": {
            "orientation": "h",
            "x": 0,
            "xanchor": "left",
            "y": 1.02,
            "yanchor": "bottom",
            "font": {"size": 12, "color": INK},
            "itemclick": "toggle",
        },
        "dragmode": "zoom",
    }


def _axis_style() -> dict[str, Any]:
    return {
        "showline": True,
        "linecolor": AXIS,
        "ticks": "outside",
        "tickcolor": AXIS,
        "gridcolor": GRID,
        "zeroline": False,
        "tickfont": {"color": MUTED},
    }


def _title(text: str) -> dict[str, Any]:
    return {"text": text, "font": {"color": MUTED, "size": 12}}


def _session_axis(x: Sequence[int], *, title: bool) -> dict[str, Any]:
    first = min(x) if len(x) else 1
    last = max(x) if len(x) else 5
    last = max(last, first + 4)  # leave room to grow while there are only a few sessions
    span = last - first + 1
    step = 1 if span <= 16 else 2 if span <= 32 else 5
    axis = {
        **_axis_style(),
        "range": [first - 0.5, last + 0.5],
        "tick0": 0,
        "dtick": step,
        "showgrid": False,
        "unifiedhovertitle": {"text": "Session %{x}"},
    }
    if title:
        axis["title"] = _title("Session")
    return axis


def _score_axis(title: str | None) -> dict[str, Any]:
    axis = {**_axis_style(), "range": list(_Y_RANGE), "tickvals": [1, 2, 3, 4, 5], "fixedrange": True}
    if title:
        axis["title"] = _title(title)
    return axis


def _threshold_shape(threshold: float) -> dict[str, Any]:
    return {
        "type": "line",
        "xref": "paper",
        "x0": 0,
        "x1": 1,
        "yref": "y",
        "y0": threshold,
        "y1": threshold,
        "line": {"color": MARKERS[c.RUPTURE][2], "width": 1.5, "dash": "dash"},
        "layer": "above",
    }


def _threshold_label(threshold: float) -> dict[str, Any]:
    return {
        "text": f"Rupture threshold ({_minus(threshold)})",
        "xref": "paper",
        "x": 0,
        "xanchor": "left",
        "yref": "y",
        "y": threshold,
        "yanchor": "top",
        "yshift": -2,
        "showarrow": False,
        "font": {"size": 12, "color": "#9b3d00"},
    }


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


def _rows(frame: pd.DataFrame | None) -> pd.DataFrame:
    return frame if frame is not None and not frame.empty else pd.DataFrame()


def _scale_rows(frame: pd.DataFrame | None, scale: str) -> pd.DataFrame:
    """Rows of ``scale`` (all rows if the frame has no scale column) with a score, by session."""
    frame = _rows(frame)
    if frame.empty or c.SESSION not in frame.columns:
        return pd.DataFrame()
    if c.SCALE in frame.columns:
        frame = frame[frame[c.SCALE].astype(str) == scale]
    if c.SCORE in frame.columns and c.KIND not in frame.columns:
        frame = frame[frame[c.SCORE].notna()]
    return frame.sort_values(c.SESSION, kind="stable").reset_index(drop=True)


def _kind_rows(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    if frame.empty or c.KIND not in frame.columns:
        return pd.DataFrame()
    return frame[frame[c.KIND].astype(str) == kind]


def _level_row(levels: pd.DataFrame | None, scale: str) -> pd.Series | None:
    levels = _rows(levels)
    if levels.empty:
        return None
    if c.SCALE in levels.columns:
        levels = levels[levels[c.SCALE].astype(str) == scale]
    return None if levels.empty else levels.iloc[0]


def _check_one_patient(*frames: pd.DataFrame | None) -> None:
    ids: set[Any] = set()
    for frame in frames:
        if frame is not None and not frame.empty and c.PATIENT in frame.columns:
            ids.update(frame[c.PATIENT].astype(object).dropna().unique().tolist())
    if len(ids) > 1:
        raise ValueError(f"charts are drawn for one patient; the frames hold {len(ids)}")


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


# --------------------------------------------------------------------------------------------
# Values and words
# --------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """``value`` with only JSON types: numpy scalars unwrapped, NaN/inf/NA -> None, floats rounded."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return round(f, 4) if math.isfinite(f) else None
    if isinstance(value, str):
        return value
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON-ready: {type(value).__name__}")


def _finite(v: Any) -> bool:
    try:
        return v is not None and v is not pd.NA and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _num(row: pd.Series | None, name: str) -> float | None:
    if row is None or name not in row.index:
        return None
    v = row[name]
    return float(v) if _finite(v) else None


def _int(v: Any) -> int | None:
    return int(v) if _finite(v) else None


def _truthy(v: Any) -> bool:
    return v is not None and v is not pd.NA and bool(v)


def _f1(v: float) -> str:
    s = f"{float(v):.1f}"
    return "0.0" if s == "-0.0" else s


def _f2(v: float) -> str:
    if not _finite(v):
        return _MISSING
    s = f"{float(v):.2f}"
    return "0.00" if s == "-0.00" else s


def _signed(v: float) -> str:
    if not _finite(v):
        return _MISSING
    s = f"{float(v):+.2f}"
    if s in ("+0.00", "-0.00"):
        return "0.00"
    return s.replace("-", MINUS)


def _minus(v: float) -> str:
    return f"{v:g}".replace("-", MINUS)


def _g(v: float) -> str:
    return f"{v:g}"


def _date(d: date | None) -> str:
    return f"{d.day} {d:%b %Y}" if d else _MISSING


def _join(items: Iterable[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
