"""Alliance and symptoms on one timeline: :func:`symptoms`.

Top panel: the total alliance per session against the long-run level, ruptures marked. Bottom
panel: each symptom measure's score (PHQ-9, GAD-7) over the severity bands of the first measure,
its caseness cut-off, and the expected-recovery band for the patient's starting severity. A dotted
line runs through both panels at every rupture, so the therapist sees whether symptoms moved after.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pandas as pd

from monitoring.analytics.outcomes import MeasureSpec
from monitoring.charts._style import (
    ACCENT,
    BAND,
    HEIGHT_PANELS,
    LEVEL,
    MARKERS,
    MUTED,
    THERAPIST,
    Chart,
    _axis_style,
    _chart,
    _date,
    _empty_chart,
    _f1,
    _layout,
    _score_axis,
    _session_axis,
    _title,
)

#: Measure lines: the first measure in the accent colour with circles, the second in orange with
#: diamonds (shape and colour both differ), a third in grey with squares.
_LINES = ((ACCENT, "circle", "solid"), (THERAPIST, "diamond", "dot"), (MUTED, "square", "dash"))
#: Severity bands, lightest (lowest) to darkest, as translucent greys: they sit behind the lines.
_BAND_SHADES = (
    "rgba(82,96,109,0.00)",
    "rgba(82,96,109,0.05)",
    "rgba(82,96,109,0.09)",
    "rgba(82,96,109,0.13)",
    "rgba(82,96,109,0.17)",
)


def symptoms(
    *,
    scores: pd.DataFrame,
    measures: Mapping[str, MeasureSpec],
    expected: pd.DataFrame | None = None,
    alliance: pd.DataFrame | None = None,
    level: float | None = None,
    ruptures: Sequence[int] = (),
    session_dates: Mapping[int, date] | None = None,
) -> Chart:
    """One patient's symptoms beside the alliance.

    ``scores``: ``session``, ``measure``, ``score`` (one episode); ``measures``: the specs, in
    display order (the first gives the bands drawn); ``expected``: ``session``, ``measure``,
    ``expected``, ``upper`` (the expected-recovery band); ``alliance``: ``session``, ``score`` (the
    total); ``level``: the long-run alliance level (person mean); ``ruptures``: sessions with a rupture.
    """
    data = scores.dropna(subset=["score"]) if len(scores) else scores
    codes = [code for code in measures if len(data) and (data["measure"] == code).any()]
    if not codes:
        return _empty_chart(
            height=HEIGHT_PANELS,
            y_title="Symptoms",
            columns=["Session", "Scores"],
            summary="No symptom answers yet. The chart appears after the first PHQ-9 or GAD-7.",
        )
    dates = {int(k): v for k, v in (session_dates or {}).items()}
    sessions = sorted(
        {int(s) for s in data["session"]}
        | ({int(s) for s in alliance["session"]} if alliance is not None and len(alliance) else set())
    )
    first_spec = measures[codes[0]]
    top = max(measures[c].max_score for c in codes)
    traces: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []

    # Top panel: the alliance.
    if alliance is not None and len(alliance):
        ax = alliance["session"].astype(int).tolist()
        ay = alliance["score"].astype(float).tolist()
        if level is not None and len(ax) > 1:
            traces.append(
                {
                    "type": "scatter",
                    "name": f"Long-run alliance level {_f1(level)}",
                    "x": ax,
                    "y": [level] * len(ax),
                    "mode": "lines",
                    "line": {"color": LEVEL, "width": 1.5, "dash": "dash"},
                    "hoverinfo": "skip",
                    "xaxis": "x",
                    "yaxis": "y",
                }
            )
        traces.append(
            {
                "type": "scatter",
                "name": "Alliance",
                "x": ax,
                "y": ay,
                "mode": "lines+markers",
                "line": {"color": ACCENT, "width": 2},
                "marker": {"color": ACCENT, "size": 6},
                "hovertemplate": "Alliance %{y:.1f}<extra></extra>",
                "xaxis": "x",
                "yaxis": "y",
            }
        )
    for number in ruptures:
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": number,
                "x1": number,
                "y0": 0,
                "y1": 1,
                "line": {"color": MARKERS["rupture"][2], "width": 1.5, "dash": "dot"},
                "layer": "below",
            }
        )

    # Bottom panel: severity bands of the first measure, its cut-off, then the measures.
    edges = [start for start, _ in first_spec.bands[1:]] + [first_spec.max_score]
    annotations: list[dict[str, Any]] = []
    for i, ((start, label), end) in enumerate(zip(first_spec.bands, edges, strict=True)):
        annotations.append(
            {
                "text": label,
                "xref": "paper",
                "yref": "y2",
                "x": 1,
                "y": (start + end) / 2,
                "xanchor": "right",
                "showarrow": False,
                "font": {"size": 11, "color": MUTED},
            }
        )
        shapes.append(
            {
                "type": "rect",
                "xref": "paper",
                "yref": "y2",
                "x0": 0,
                "x1": 1,
                "y0": start - 0.5 if start else 0,
                "y1": end - 0.5 if end != first_spec.max_score else end,
                "fillcolor": _BAND_SHADES[min(i, len(_BAND_SHADES) - 1)],
                "line": {"width": 0},
                "layer": "below",
            }
        )
    shapes.append(
        {
            "type": "line",
            "xref": "paper",
            "yref": "y2",
            "x0": 0,
            "x1": 1,
            "y0": first_spec.cutoff - 0.5,
            "y1": first_spec.cutoff - 0.5,
            "line": {"color": MUTED, "width": 1, "dash": "dash"},
            "layer": "below",
        }
    )
    for index, code in enumerate(codes):
        spec = measures[code]
        colour, marker, dash = _LINES[min(index, len(_LINES) - 1)]
        rows = data[data["measure"] == code].sort_values("session")
        x = rows["session"].astype(int).tolist()
        y = rows["score"].astype(float).tolist()
        band = (
            expected[expected["measure"] == code].sort_values("session")
            if expected is not None and len(expected)
            else None
        )
        if band is not None and len(band) > 1:
            bx = band["session"].astype(int).tolist()
            # One shaded band (the first measure's) keeps the panel readable; others get a line.
            if index == 0:
                traces.append(
                    {
                        "type": "scatter",
                        "name": f"{spec.name} expected",
                        "x": bx + bx[::-1],
                        "y": band["upper"].astype(float).tolist()
                        + band["expected"].astype(float).tolist()[::-1],
                        "fill": "toself",
                        "fillcolor": BAND,
                        "mode": "lines",
                        "line": {"width": 0},
                        "hoverinfo": "skip",
                        "xaxis": "x",
                        "yaxis": "y2",
                        "legendgroup": code,
                    }
                )
            traces.append(
                {
                    "type": "scatter",
                    "name": f"{spec.name} expected course",
                    "x": bx,
                    "y": band["expected"].astype(float).tolist(),
                    "mode": "lines",
                    "line": {"color": colour, "width": 1, "dash": "dash"},
                    "hovertemplate": f"{spec.name} expected %{{y:.0f}}<extra></extra>",
                    "xaxis": "x",
                    "yaxis": "y2",
                    "legendgroup": code,
                    "showlegend": index > 0,
                }
            )
        traces.append(
            {
                "type": "scatter",
                "name": spec.name,
                "x": x,
                "y": y,
                "mode": "lines+markers",
                "line": {"color": colour, "width": 2.5, "dash": dash},
                "marker": {"color": colour, "size": 8, "symbol": marker},
                "text": [f"{spec.name} {v:.0f} ({spec.band(v)})" for v in y],
                "hovertemplate": "%{text}<extra></extra>",
                "xaxis": "x",
                "yaxis": "y2",
                "legendgroup": code,
            }
        )

    layout = _layout(height=HEIGHT_PANELS + 60)
    layout["xaxis"] = {**_session_axis(sessions, title=True), "anchor": "y2"}
    layout["yaxis"] = {**_score_axis("Alliance (1-5)"), "domain": [0.66, 1.0], "anchor": "x"}
    layout["yaxis2"] = {
        **_axis_style(),
        "title": _title("Symptom score (higher is worse)"),
        "range": [-0.5, top + 0.5],
        "domain": [0.0, 0.56],
        "anchor": "x",
        "fixedrange": True,
    }
    annotations.append(
        {
            "text": f"{first_spec.name} cut-off {first_spec.cutoff:g}",
            "xref": "paper",
            "yref": "y2",
            "x": 0,
            "y": first_spec.cutoff - 0.5,
            "xanchor": "left",
            "yanchor": "bottom",
            "showarrow": False,
            "font": {"size": 11, "color": MUTED},
        }
    )
    layout["shapes"] = shapes
    layout["annotations"] = annotations

    columns = ["Session", *(["Date"] if dates else []), *(measures[c].name for c in codes), "Alliance"]
    by_measure = {
        code: dict(
            zip(
                data[data["measure"] == code]["session"].astype(int),
                data[data["measure"] == code]["score"].astype(float),
                strict=True,
            )
        )
        for code in codes
    }
    alliance_of = (
        dict(zip(alliance["session"].astype(int), alliance["score"].astype(float), strict=True))
        if alliance is not None and len(alliance)
        else {}
    )
    table = [
        [
            str(s),
            *([_date(dates.get(s))] if dates else []),
            *(f"{by_measure[c][s]:.0f}" if s in by_measure[c] else "\u2013" for c in codes),
            _f1(alliance_of[s]) if s in alliance_of else "\u2013",
        ]
        for s in sessions
    ]
    return _chart(traces, layout, _summary(data, codes, measures, expected, ruptures), columns, table)


def _summary(
    data: pd.DataFrame,
    codes: Sequence[str],
    measures: Mapping[str, MeasureSpec],
    expected: pd.DataFrame | None,
    ruptures: Sequence[int],
) -> str:
    parts = []
    for code in codes:
        spec = measures[code]
        rows = data[data["measure"] == code].sort_values("session")
        first, last = float(rows["score"].iloc[0]), float(rows["score"].iloc[-1])
        s0, s1 = int(rows["session"].iloc[0]), int(rows["session"].iloc[-1])
        if len(rows) == 1:
            parts.append(f"{spec.name} {first:.0f} ({spec.band(first)}) at session {s0}.")
            continue
        change = last - first
        if change <= -spec.reliable_change:
            verdict = "a reliable improvement"
        elif change >= spec.reliable_change:
            verdict = "a reliable deterioration"
        else:
            verdict = f"less than the {spec.reliable_change:g} points that count as reliable change"
        direction = "down" if change < 0 else "up" if change > 0 else "unchanged,"
        text = (
            f"{spec.name} from {first:.0f} ({spec.band(first)}) at session {s0} to {last:.0f} "
            f"({spec.band(last)}) at session {s1}: {direction} {abs(change):.0f}, {verdict}."
        )
        if expected is not None and len(expected):
            row = expected[(expected["measure"] == code) & (expected["session"] == s1)]
            if len(row):
                exp, upper = float(row["expected"].iloc[0]), float(row["upper"].iloc[0])
                on = "not on track (worse than the expected band)" if last > upper else "on track"
                text += f" Expected by now about {exp:.0f} (band up to {upper:.0f}): {on}."
        parts.append(text)
    if ruptures:
        parts.append("Ruptures at session " + ", ".join(str(r) for r in ruptures) + " (dotted lines).")
    return " ".join(parts)
