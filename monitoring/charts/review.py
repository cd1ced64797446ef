"""The "review together" charts: the patient's own course, for therapist and patient to look at
in a session (as feedback-informed practice does), in the patient's words.

No flags, thresholds, baselines or clinic comparisons: only what the patient answered, on the
answer scale they used, and for symptom measures which way is better. Each builder returns a
:class:`Chart` like the others (figure, plain-words summary, data table).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import pandas as pd

from monitoring.analytics import columns as c
from monitoring.analytics.outcomes import MeasureSpec
from monitoring.charts._style import (
    ACCENT,
    HEIGHT,
    INK,
    THERAPIST,
    Chart,
    _axis_style,
    _chart,
    _date,
    _empty_chart,
    _f1,
    _layout,
    _session_axis,
    _title,
)

#: The WAI-SR's answers (1-5), as the patient saw them on the form.
ANSWER_WORDS = ("Seldom", "Sometimes", "Fairly often", "Very often", "Always")
#: The alliance scales in the patient's words; the total first and strongest.
ALLIANCE_WORDS = {
    c.TOTAL: "All together",
    c.GOAL: "What we are working towards",
    c.TASK: "How we are working on it",
    c.BOND: "How we get on",
}
#: A symptom measure's plain name (the code's own name follows in brackets).
MEASURE_WORDS = {"phq9": "Low mood", "gad7": "Worry and anxiety"}
_LINES = {
    c.TOTAL: (ACCENT, "solid", "circle", 3),
    c.GOAL: ("#0072b2", "dot", "square", 1.5),
    c.TASK: (THERAPIST, "dash", "diamond", 1.5),
    c.BOND: ("#009e73", "dashdot", "triangle-up", 1.5),
}
_SYMPTOM_COLOURS = (ACCENT, THERAPIST, "#009e73", "#0072b2")


def _when(number: int, dates: Mapping[int, date]) -> str:
    day = dates.get(number)
    return f"session {number}" + (f" on {_date(day)}" if day else "")


def review_alliance(*, sessions: pd.DataFrame, session_dates: Mapping[int, date] | None = None) -> Chart:
    """How the sessions felt to the patient: the total and the three parts, on the answer scale.

    ``sessions``: the analysis's ``sessions`` frame of one patient (``scale``, ``session``,
    ``score``)."""
    dates = {int(k): v for k, v in (session_dates or {}).items()}
    rows = (
        sessions[sessions[c.SCALE].isin(list(ALLIANCE_WORDS))].dropna(subset=[c.SCORE])
        if len(sessions)
        else sessions
    )
    total = rows[rows[c.SCALE] == c.TOTAL] if len(rows) else rows
    if not len(total):
        return _empty_chart(
            height=HEIGHT,
            y_title="Your answers",
            columns=["Session", "All together"],
            summary="No answers yet: the chart appears after your first form.",
        )
    traces: list[dict[str, Any]] = []
    for scale, name in ALLIANCE_WORDS.items():
        part = rows[rows[c.SCALE] == scale].sort_values(c.SESSION)
        if not len(part):
            continue
        colour, dash, symbol, width = _LINES[scale]
        traces.append(
            {
                "type": "scatter",
                "name": name,
                "x": part[c.SESSION].astype(int).tolist(),
                "y": [round(float(v), 2) for v in part[c.SCORE]],
                "mode": "lines+markers",
                "line": {"color": colour, "width": width, "dash": dash},
                "marker": {"color": colour, "symbol": symbol, "size": 9 if scale == c.TOTAL else 6},
                "hovertemplate": f"{name}: %{{y:.1f}}<extra>Session %{{x}}</extra>",
                "visible": True if scale == c.TOTAL else "legendonly",
            }
        )
    numbers = total[c.SESSION].astype(int).tolist()
    layout = _layout(height=HEIGHT + 60)
    layout.update(
        xaxis=_session_axis(numbers, title=True),
        yaxis={
            **_axis_style(),
            "range": [0.8, 5.2],
            "tickvals": [1, 2, 3, 4, 5],
            "ticktext": [f"{i + 1} {w}" for i, w in enumerate(ANSWER_WORDS)],
            "tickfont": {"color": INK, "size": 13},
            "fixedrange": True,
        },
        margin={"l": 118, "r": 16, "t": 48, "b": 48},
    )
    layout["legend"]["font"] = {"color": INK, "size": 13}
    ordered = total.sort_values(c.SESSION)
    best = ordered.loc[ordered[c.SCORE].idxmax()]
    low = ordered.loc[ordered[c.SCORE].idxmin()]
    last = ordered.iloc[-1]
    first_day, last_day = dates.get(numbers[0]), dates.get(numbers[-1])
    span = f", from {_date(first_day)} to {_date(last_day)}" if first_day and last_day else ""
    summary = (
        f"You answered after {len(numbers)} session{'s' if len(numbers) != 1 else ''}{span}. "
        f"Higher means our work together felt better to you. All together, your answers were "
        f"highest at {_when(int(best[c.SESSION]), dates)} ({_f1(float(best[c.SCORE]))}) and lowest at "
        f"{_when(int(low[c.SESSION]), dates)} ({_f1(float(low[c.SCORE]))}); after the last one, "
        f"{_f1(float(last[c.SCORE]))}. The three parts (what we are working towards, how we are "
        "working on it, how we get on) can be shown from the legend."
    )
    table_rows = []
    wide = rows.pivot_table(index=c.SESSION, columns=c.SCALE, values=c.SCORE, aggfunc="first", observed=True)
    for number in numbers:
        cells = [str(number)]
        for scale in ALLIANCE_WORDS:
            value = wide.at[number, scale] if scale in wide.columns and number in wide.index else None
            cells.append(_f1(float(value)) if value is not None and value == value else "\u2013")
        table_rows.append(cells)
    return _chart(traces, layout, summary, ["Session", *ALLIANCE_WORDS.values()], table_rows)


def review_symptoms(
    *,
    scores: pd.DataFrame,
    measures: Mapping[str, MeasureSpec],
    session_dates: Mapping[int, date] | None = None,
) -> Chart:
    """How the patient has been feeling: each symptom measure's total, with which way is better
    and the line under which most people are not troubled by it (the measure's cut-off).

    ``scores``: ``session``, ``measure``, ``score`` of one episode."""
    dates = {int(k): v for k, v in (session_dates or {}).items()}
    data = scores.dropna(subset=["score"]) if len(scores) else scores
    codes = [code for code in measures if len(data) and (data["measure"] == code).any()]
    if not codes:
        return _empty_chart(
            height=HEIGHT,
            y_title="Score",
            columns=["Session", "Scores"],
            summary="No questionnaires about how you have been feeling yet.",
        )
    traces: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    sentences = []
    for colour, code in zip(_SYMPTOM_COLOURS, codes, strict=False):
        spec = measures[code]
        name = f"{MEASURE_WORDS.get(code, spec.name)} ({spec.name})" if code in MEASURE_WORDS else spec.name
        part = data[data["measure"] == code].sort_values("session")
        x = part["session"].astype(int).tolist()
        y = [round(float(v), 1) for v in part["score"]]
        traces.append(
            {
                "type": "scatter",
                "name": name,
                "x": x,
                "y": y,
                "mode": "lines+markers",
                "line": {"color": colour, "width": 3},
                "marker": {"color": colour, "size": 9},
                "hovertemplate": f"{name}: %{{y:.0f}}<extra>Session %{{x}}</extra>",
            }
        )
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": spec.cutoff,
                "y1": spec.cutoff,
                "line": {"color": colour, "width": 1, "dash": "dot"},
                "layer": "below",
            }
        )
        annotations.append(
            {
                "text": f"{spec.name} {spec.cutoff}",
                "xref": "paper",
                "x": 1,
                "xanchor": "right",
                "y": spec.cutoff,
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"color": colour, "size": 12},
            }
        )
        better = "Lower is better" if spec.higher_is_worse else "Higher is better"
        change = y[-1] - y[0]
        if len(y) == 1:
            moved = f"was {y[0]:.0f} at {_when(x[0], dates)}"
        elif abs(change) >= spec.reliable_change:
            way = "down" if change < 0 else "up"
            moved = (
                f"went {way} from {y[0]:.0f} at {_when(x[0], dates)} to {y[-1]:.0f} at {_when(x[-1], dates)}: "
                f"a change of {abs(change):.0f} (a change of {spec.reliable_change} or more is more than ups "
                "and downs from week to week can explain)"
            )
        else:
            moved = (
                f"was {y[0]:.0f} at {_when(x[0], dates)} and {y[-1]:.0f} at {_when(x[-1], dates)}: "
                f"less than {spec.reliable_change} points apart, within the usual ups and downs"
            )
        sentences.append(
            f"{name} {moved}. {better}; most people scoring under {spec.cutoff} (the dotted line marked "
            f"{spec.name} {spec.cutoff}) are not much troubled by it."
        )
    top = max(measures[code].max_score for code in codes)
    layout = _layout(height=HEIGHT + 60)
    numbers = sorted({int(s) for s in data["session"]})
    layout.update(
        xaxis=_session_axis(numbers, title=True),
        yaxis={
            **_axis_style(),
            "range": [-0.5, top + 0.5],
            "title": _title("Score"),
            "tickfont": {"color": INK, "size": 13},
            "fixedrange": True,
        },
        shapes=shapes,
        annotations=annotations,
        margin={"l": 56, "r": 16, "t": 48, "b": 48},
    )
    layout["legend"]["font"] = {"color": INK, "size": 13}
    wide = data.pivot_table(index="session", columns="measure", values="score", aggfunc="first")
    table_rows = [
        [str(n)]
        + [
            f"{wide.at[n, code]:.0f}"
            if n in wide.index and wide.at[n, code] == wide.at[n, code]
            else "\u2013"
            for code in codes
        ]
        for n in numbers
    ]
    columns = ["Session", *(measures[code].name for code in codes)]
    return _chart(traces, layout, " ".join(sentences), columns, table_rows)
