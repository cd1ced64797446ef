"""Small multiples of the subscales with their declining trends: :func:`subscales`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from monitoring.analytics import columns as c
from monitoring.charts._events import _event_traces, _flag_labels, with_low_alliance
from monitoring.charts._style import (
    _MISSING,
    ACCENT,
    DECLINE_SHADE,
    HEIGHT_PANELS,
    INK,
    LEVEL,
    MARKERS,
    Chart,
    _chart,
    _check_one_patient,
    _column,
    _empty_chart,
    _f1,
    _f2,
    _join,
    _kind_rows,
    _layout,
    _rows,
    _scale_rows,
    _score_axis,
    _session_axis,
)

#: The four small multiples of :func:`subscales`, in the order of ``columns.SCALES``.
SUBSCALE_PANELS = (c.GOAL, c.TASK, c.BOND, c.AGREEMENT)


def subscales(
    *, sessions: pd.DataFrame, events: pd.DataFrame, low_alliance: pd.DataFrame | None = None
) -> Chart:
    """Small multiples: goal agreement, task agreement, bond, goal and task agreement per session.

    Inputs are ``analysis.sessions`` and ``analysis.events`` filtered to one patient (used
    columns: sessions ``session, scale, score, level, cusum``, events ``session, scale, kind,
    explanation``). Each panel shows the scores with the panel's long-run level (``sessions.level``:
    the person mean, or the per-patient trend line when the analysis was detrended). A declining
    trend (the lower CUSUM of methods.md section 4) is marked at the session it was raised, and its
    run-up -- the consecutive sessions before it with a positive CUSUM, where the small drops that
    set it off accumulated -- is shaded. Every other flag of a panel's scale (rupture, repair,
    unrepaired, sudden gain or loss, and the stored "alliance has stayed low" flags passed as
    ``low_alliance``, see :func:`monitoring.charts.trajectory`) is marked on that panel too, with
    its hover text, and named in the table and the summary.
    """
    events = with_low_alliance(events, low_alliance)
    _check_one_patient(sessions, events)
    panels = {scale: _scale_rows(sessions, scale) for scale in SUBSCALE_PANELS}
    labels = [c.SCALE_LABELS[s] for s in SUBSCALE_PANELS]
    columns = ["Session", *labels, "Flags"]
    all_x = sorted({int(s) for rows in panels.values() if not rows.empty for s in rows[c.SESSION].tolist()})
    if not all_x:
        return _empty_chart(height=HEIGHT_PANELS, y_title="", columns=columns, summary="No answers yet.")
    ev_all = _rows(events)
    traces: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    layout = _layout(height=HEIGHT_PANELS)
    layout["margin"] = {"l": 44, "r": 16, "t": 48, "b": 48}
    # 2 x 2 grid: (goal, task) on top, (bond, agreement) below.
    x_domains = ([0.0, 0.47], [0.53, 1.0])
    y_domains = ([0.6, 0.94], [0.0, 0.34])
    declines: list[tuple[str, int, int]] = []
    others: dict[str, list[tuple[str, int]]] = {}  # other flags by name: (panel, session)
    flag_cells: dict[int, list[str]] = {}
    shown: set[str] = set()
    for i, scale in enumerate(SUBSCALE_PANELS):
        row, col = divmod(i, 2)
        suffix = "" if i == 0 else str(i + 1)
        xa, ya = f"x{suffix}", f"y{suffix}"
        rows = panels[scale]
        label = c.SCALE_LABELS[scale]
        layout[f"xaxis{suffix}"] = {
            **_session_axis(all_x, title=row == 1),
            "domain": x_domains[col],
            "anchor": ya,
            **({"matches": "x"} if i else {}),
        }
        layout[f"yaxis{suffix}"] = {
            **_score_axis(None),
            "domain": y_domains[row],
            "anchor": xa,
        }
        annotations.append(
            {
                "text": f"<b>{label}</b>",
                "xref": f"{xa} domain",
                "yref": f"{ya} domain",
                "x": 0,
                "y": 1,
                "xanchor": "left",
                "yanchor": "bottom",
                "yshift": 4,
                "showarrow": False,
                "font": {"size": 13, "color": INK},
            }
        )
        if rows.empty:
            continue
        x = rows[c.SESSION].astype(int).tolist()
        y = rows[c.SCORE].astype(float).tolist()
        level = _column(rows, c.LEVEL)
        if not np.isfinite(level).any():
            level = np.full(len(y), float(np.mean(y)))
        traces.append(
            _legend_once(
                {
                    "type": "scatter",
                    "name": "Long-run level",
                    "x": x,
                    "y": level.tolist(),
                    "mode": "lines",
                    "xaxis": xa,
                    "yaxis": ya,
                    "line": {"color": LEVEL, "width": 1.5, "dash": "dash"},
                    "text": [f"Long-run level {_f1(v)}" for v in level],
                    "hovertemplate": "%{text}<extra></extra>",
                },
                shown,
            )
        )
        traces.append(
            _legend_once(
                {
                    "type": "scatter",
                    "name": "Score",
                    "x": x,
                    "y": y,
                    "mode": "lines+markers",
                    "xaxis": xa,
                    "yaxis": ya,
                    "line": {"color": ACCENT, "width": 2},
                    "marker": {"color": ACCENT, "size": 5},
                    "text": [f"{label} {_f2(v)}" for v in y],
                    "hovertemplate": "%{text}<extra></extra>",
                },
                shown,
            )
        )
        ev = _scale_rows(ev_all, scale)
        for session, labels in _flag_labels(ev).items():
            flag_cells.setdefault(session, []).extend(f"{label}: {name.lower()}" for name in labels)
        dec = _kind_rows(ev, c.DECLINE)
        cusum = _column(rows, c.CUSUM)
        pos = {s: j for j, s in enumerate(x)}
        floor = 0
        for s in sorted(int(v) for v in (dec[c.SESSION] if not dec.empty else [])):
            j = pos.get(s)
            if j is None:
                continue
            start = j
            while start > floor and cusum[start - 1] > 0:
                start -= 1
            floor = j + 1  # the next decline's run-up starts after this one
            shapes.append(
                {
                    "type": "rect",
                    "xref": xa,
                    "yref": f"{ya} domain",
                    "x0": x[start] - 0.5,
                    "x1": s + 0.5,
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": DECLINE_SHADE,
                    "line": {"width": 0},
                    "layer": "below",
                }
            )
            declines.append((label, s, x[start]))
        # Every flag of the scale: ruptures, repairs, unrepaired, sudden changes, declines and an
        # alliance that stayed low, each with its hover text.
        for trace in _event_traces(ev, rows, axes=(xa, ya)):
            traces.append(_legend_once(trace, shown))
        if not ev.empty:
            for kind, session in zip(ev[c.KIND].astype(str), ev[c.SESSION].astype(int), strict=True):
                if kind != c.DECLINE and kind in MARKERS:
                    others.setdefault(MARKERS[kind][0], []).append((label, int(session)))
    layout["shapes"] = shapes
    layout["annotations"] = annotations
    layout["legend"] = {
        "orientation": "h",
        "x": 1,
        "xanchor": "right",
        "y": 1.02,
        "yanchor": "bottom",
        "font": {"size": 12, "color": INK},
    }

    cells = {scale: dict.fromkeys(all_x, _MISSING) for scale in SUBSCALE_PANELS}
    for scale, rows in panels.items():
        for s, v in zip(rows[c.SESSION].astype(int), rows[c.SCORE].astype(float), strict=True):
            cells[scale][int(s)] = _f2(v)
    table = [
        [str(s), *(cells[scale][s] for scale in SUBSCALE_PANELS), "; ".join(flag_cells.get(s, []))]
        for s in all_x
    ]
    summary = _subscales_summary(panels, declines, len(all_x), others)
    return _chart(traces, layout, summary, columns, table)


def _subscales_summary(
    panels: Mapping[str, pd.DataFrame],
    declines: list[tuple[str, int, int]],
    n: int,
    others: Mapping[str, list[tuple[str, int]]],
) -> str:
    levels = []
    for scale, rows in panels.items():
        if rows.empty:
            continue
        label = c.SCALE_LABELS[scale]
        label = label[0].lower() + label[1:]
        levels.append(f"{label} {_f1(float(rows[c.SCORE].mean()))}")
    parts = [f"{n} session{'s' if n != 1 else ''}."]
    if levels:
        parts.append(f"Long-run levels: {_join(levels)}.")
    if n == 1:
        parts.append("Trends need more sessions.")
    elif declines:
        by_label: dict[str, list[tuple[int, int]]] = {}
        for label, s, start in declines:
            by_label.setdefault(label, []).append((s, start))
        items = []
        for label, found in by_label.items():
            where = _join([str(s) for s, _ in found])
            first_s, first_start = found[0]
            since = f", building since session {first_start}" if first_start < first_s else ""
            items.append(
                f"{label[0].lower() + label[1:]} (flagged at session{'s' if len(found) > 1 else ''} "
                f"{where}{since})"
            )
        parts.append(f"Declining trend in {_join(items)}.")
    else:
        parts.append("No declining trend in any subscale.")
    if others:
        also: list[str] = []
        for name, panels_flagged in others.items():
            by_session: dict[int, list[str]] = {}
            for panel, session in panels_flagged:  # in panel order
                by_session.setdefault(session, []).append(panel[0].lower() + panel[1:])
            also.extend(
                f"{name.lower()} at session {session} ({_join(names)})"
                for session, names in sorted(by_session.items())
            )
        parts.append(f"Also flagged: {'; '.join(also)}.")
    return " ".join(parts)


def _legend_once(trace: dict[str, Any], shown: set[str]) -> dict[str, Any]:
    """Small multiples repeat the same traces: one legend entry per name, toggling all panels."""
    trace["legendgroup"] = trace["name"]
    trace["showlegend"] = trace["name"] not in shown
    shown.add(trace["name"])
    return trace
