"""Charts of the clinic report: forms completed per month and the spread of long-run levels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from monitoring.charts._style import (
    _MISSING,
    ACCENT,
    EARLY_BAR,
    HEIGHT,
    Chart,
    _axis_style,
    _chart,
    _finite,
    _layout,
    _title,
)


def completion_by_month(*, months: Sequence[str], held: Sequence[int], completed: Sequence[int]) -> Chart:
    """Sessions held and patient forms completed per month, with the completion rate in hover
    and in the table. ``months`` are labels such as "2026-09"."""
    columns = ["Month", "Sessions held", "Forms completed", "Completion"]
    rates = [(c / h if h else None) for h, c in zip(held, completed, strict=True)]
    rows = [
        [m, str(h), str(c), _MISSING if r is None else f"{r:.0%}"]
        for m, h, c, r in zip(months, held, completed, rates, strict=True)
    ]
    layout = _layout(height=HEIGHT)
    layout["hovermode"] = "x unified"
    layout["barmode"] = "overlay"
    layout["xaxis"] = {**_axis_style(), "type": "category", "tickangle": 0, "automargin": True}
    layout["yaxis"] = {**_axis_style(), "title": _title("Sessions"), "rangemode": "tozero"}
    if not months:
        return _chart([], layout, "No sessions in this period.", columns, [])
    # "2026-09" -> "Sep 26": short enough for a year of months side by side.
    names = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    months = [f"{names[int(m[5:7]) - 1]} {m[2:4]}" if len(m) == 7 else m for m in months]
    traces: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": "Sessions held",
            "x": list(months),
            "y": list(held),
            "marker": {"color": EARLY_BAR},
        },
        {
            "type": "bar",
            "name": "Forms completed",
            "x": list(months),
            "y": list(completed),
            "marker": {"color": ACCENT},
            "width": 0.5,
            "customdata": [None if r is None else round(100 * r) for r in rates],
            "hovertemplate": "%{y} forms (%{customdata}% of sessions)<extra></extra>",
        },
    ]
    total_held, total_done = sum(held), sum(completed)
    overall = total_done / total_held if total_held else 0.0
    worst = min((r, m) for m, r in zip(months, rates, strict=True) if r is not None)
    summary = (
        f"{total_done} of {total_held} held sessions have the patient's form ({overall:.0%}) over "
        f"{len(months)} month{'s' if len(months) != 1 else ''}; lowest month {worst[1]} at {worst[0]:.0%}."
    )
    return _chart(traces, layout, summary, columns, rows)


def level_distribution(*, levels: Sequence[float], bins: int = 16) -> Chart:
    """How patients' long-run levels (total alliance, 1-5) are spread across the clinic."""
    values = [float(v) for v in levels if _finite(v)]
    columns = ["Long-run level from", "to", "Patients"]
    layout = _layout(height=HEIGHT)
    layout["showlegend"] = False
    layout["hovermode"] = "closest"
    layout["xaxis"] = {
        **_axis_style(),
        "range": [1, 5],
        "dtick": 0.5,
        "title": _title("Long-run level (total alliance, 1-5)"),
    }
    layout["yaxis"] = {**_axis_style(), "title": _title("Patients"), "rangemode": "tozero"}
    if not values:
        return _chart([], layout, "No patient has answers in this period.", columns, [])
    counts, edges = np.histogram(values, bins=bins, range=(1.0, 5.0))
    centres = (edges[:-1] + edges[1:]) / 2
    traces = [
        {
            "type": "bar",
            "name": "Patients",
            "x": centres.tolist(),
            "y": counts.tolist(),
            "width": float(edges[1] - edges[0]) * 0.92,
            "marker": {"color": ACCENT},
            "hovertemplate": "%{y} patients around %{x:.2f}<extra></extra>",
        }
    ]
    rows = [
        [f"{a:.2f}", f"{b:.2f}", str(int(n))]
        for a, b, n in zip(edges[:-1], edges[1:], counts, strict=True)
        if n
    ]
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    summary = f"{len(values)} patients. Median long-run level {median:.1f}; the middle half between {q1:.1f} and {q3:.1f}."
    return _chart(traces, layout, summary, columns, rows)
