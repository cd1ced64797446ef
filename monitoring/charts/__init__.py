"""Analysis results -> plotly figure dicts for the therapist's patient page, and the caseload sparkline.

Pure: numpy and pandas only, no Django and no plotly import (the figures are written as the plain
dicts plotly.js reads). Each chart function takes frames of :func:`monitoring.analytics.analyse`
filtered to ONE patient (an episode) and returns a :class:`Chart`:

- ``figure``: ``{"data": [...], "layout": {...}}``, JSON-ready (Python ints, floats, strings, None for
  missing; no NaN), emitted with Django's ``json_script`` and drawn by ``static/js/charts.js`` with the
  vendored strict build of plotly.js (the page's CSP has no 'unsafe-eval'). The JS sets the plotly
  ``config`` (no logo, responsive, no lasso/select).
- ``summary``: the text alternative, in plain clinical English with the numbers.
- ``columns`` / ``rows``: a data table of the same numbers, every cell a string.

Empty inputs (no sessions yet) give a valid Chart saying "No answers yet." rather than an error;
frames holding more than one patient are a programming error (``ValueError``).

Palette: Okabe-Ito hues (colour-blind safe), always paired with a distinct marker shape, on the
site's ink and accent colours (``static/css/bordin.css``); text colours meet WCAG AA on white.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from monitoring.analytics import columns as c

__all__ = ["Chart", "deviations", "raters", "sparkline_svg", "subscales", "trajectory"]

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
MARKERS: Mapping[str, tuple[str, str, str, int]] = {
    c.RUPTURE: ("Rupture", "triangle-down", "#d55e00", 15),
    c.REPAIR: ("Repair", "circle", "#009e73", 13),
    c.UNREPAIRED: ("Not repaired", "x", "#8c1d18", 14),
    c.DECLINE: ("Declining trend", "diamond", "#e69f00", 13),
    c.SUDDEN_GAIN: ("Sudden gain", "triangle-up", "#0072b2", 14),
    c.SUDDEN_LOSS: ("Sudden loss", "triangle-down-open", "#cc79a7", 15),
}
_MARKER_ORDER = (c.DECLINE, c.SUDDEN_GAIN, c.SUDDEN_LOSS, c.REPAIR, c.UNREPAIRED, c.RUPTURE)

#: The four small multiples of :func:`subscales`, in the order of ``columns.SCALES``.
SUBSCALE_PANELS = (c.GOAL, c.TASK, c.BOND, c.AGREEMENT)

#: Baseline sessions the rupture rule needs before ``baseline - k * s_used`` applies (methods.md
#: section 4; ``AnalysisConfig.min_baseline``). With fewer, a rupture is a drop from the previous
#: session, so the threshold line of :func:`deviations` does not apply to those bars.
MIN_BASELINE = 3

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
# Public charts
# --------------------------------------------------------------------------------------------


def trajectory(
    *,
    sessions: pd.DataFrame,
    levels: pd.DataFrame,
    events: pd.DataFrame,
    session_dates: Mapping[int, date] | None = None,
    provisional_lambda: float = 0.80,
) -> Chart:
    """The total score per session against the patient's own usual level, with the flags.

    Inputs are ``analysis.sessions``, ``analysis.levels`` and ``analysis.events`` filtered to one
    patient; rows of other scales are ignored (only ``total`` is drawn). Used columns: sessions
    ``session, scale, score, z, s_used``; levels ``scale, n, level, level_eb, reliability,
    provisional, s_level, ceiling``; events ``session, scale, kind, score, explanation,
    rupture_session, from_session, to_session``. ``session_dates`` maps session numbers to dates
    for the hover text and the table.

    The usual level is the person mean (``levels.level``, the level the state and z of
    ``analysis.sessions`` are measured from), drawn as a horizontal line. While it is provisional
    (EB weight below ``provisional_lambda``, methods.md section 2) a band shows its 95% interval,
    ``level +- 1.96 * s / sqrt(n)``, where ``s`` is the stricter of the patient's own spread
    (``levels.s_level`` = max(within-patient SD, SEM)) and the spread the flag rules used at the
    latest session (``s_used``, floored by the clinic's pooled within-patient SD): a person mean
    from 1-3 sessions is only as good as the session-to-session noise allows (Gumz et al. 2012:
    use the stricter of intra- and inter-individual variability). The EB estimate, shrunk toward
    the clinic mean, is given in the hover text of the line.

    Flag markers sit on the session they were raised at; a sudden gain or loss sits on the middle
    of the jump it describes (between ``from_session`` and ``to_session``).
    """
    _check_one_patient(sessions, levels, events)
    rows = _scale_rows(sessions, c.TOTAL)
    if rows.empty:
        return _empty_chart(
            height=HEIGHT,
            y_title="Alliance (1-5)",
            columns=["Session", "Total", "Flags"],
            summary="No answers yet. The chart appears after the first completed questionnaire.",
        )
    dates = {int(k): v for k, v in (session_dates or {}).items()}
    x = rows[c.SESSION].astype(int).tolist()
    y = rows[c.SCORE].astype(float).tolist()
    n = len(x)
    lev = _level_row(levels, c.TOTAL)
    level = _num(lev, c.LEVEL)
    if level is None:
        level = float(np.mean(y))
    provisional = bool(lev is not None and _truthy(lev.get(c.PROVISIONAL)))
    ev = _scale_rows(events, c.TOTAL)
    flags_by_session = _flag_labels(ev)

    traces: list[dict[str, Any]] = []
    show_level = n > 1  # the mean of one session is that session: nothing to compare with yet
    if provisional and show_level:
        half = _level_halfwidth(lev, rows)
        if half is not None:
            lo, hi = max(SCALE_MIN, level - half), min(SCALE_MAX, level + half)
            xs = [x[0] - 0.3, x[-1] + 0.3]
            traces.append(
                {
                    "type": "scatter",
                    "name": "Level uncertainty",
                    "x": [xs[0], xs[1], xs[1], xs[0]],
                    "y": [lo, lo, hi, hi],
                    "fill": "toself",
                    "fillcolor": BAND,
                    "mode": "lines",
                    "line": {"width": 0},
                    "hoverinfo": "skip",
                }
            )
    level_name = f"Usual level {_f1(level)}"
    # Retrospective (it moves as sessions are added), so the hover says what it is.
    level_hover = f"{level_name}: mean of all {n} sessions{' (provisional)' if provisional else ''}"
    eb = _num(lev, c.LEVEL_EB)
    if provisional and eb is not None:
        level_hover += f"<br>Best estimate allowing for the clinic average: {_f1(eb)}"
    if show_level:
        traces.append(
            {
                "type": "scatter",
                "name": level_name,
                "x": x,
                "y": [level] * n,
                "mode": "lines",
                "line": {"color": LEVEL, "width": 1.5, "dash": "dash"},
                "text": [level_hover] * n,
                "hovertemplate": "%{text}<extra></extra>",
            }
        )
    traces.append(
        {
            "type": "scatter",
            "name": "Total",
            "x": x,
            "y": y,
            "mode": "lines+markers",
            "line": {"color": ACCENT, "width": 2.5},
            "marker": {"color": ACCENT, "size": 7},
            "text": [_score_hover("Total", s, v, dates) for s, v in zip(x, y, strict=True)],
            "hovertemplate": "%{text}<extra></extra>",
        }
    )
    traces.extend(_event_traces(ev, rows))

    layout = _layout(height=HEIGHT)
    layout["xaxis"] = _session_axis(x, title=True)
    layout["yaxis"] = _score_axis("Alliance (1-5)")

    columns = ["Session", *(["Date"] if dates else []), "Total", "Flags"]
    table = [
        [str(s), *([_date(dates.get(s))] if dates else []), _f2(v), "; ".join(flags_by_session.get(s, []))]
        for s, v in zip(x, y, strict=True)
    ]
    summary = _trajectory_summary(rows, lev, ev, level, provisional, provisional_lambda)
    return _chart(traces, layout, summary, columns, table)


def deviations(
    *,
    sessions: pd.DataFrame,
    events: pd.DataFrame,
    k: float,
    min_baseline: int = MIN_BASELINE,
) -> Chart:
    """How far each session's total sits from the patient's baseline, in units of their spread.

    Inputs are ``analysis.sessions`` and ``analysis.events`` filtered to one patient (other scales
    ignored; used columns: sessions ``session, scale, score, baseline, n_baseline, s_used``, events
    ``session, scale, kind, explanation``), the rupture multiplier ``k`` and ``min_baseline`` of
    the config used (``analysis.config.k``, ``analysis.config.min_baseline``).

    The bars are ``(score - baseline) / s_used``: the prospective standardised deviation the
    rupture rule tests (methods.md section 4: a rupture is ``x_t <= baseline - k * s_used``), so a
    bar crosses the dashed line at ``-k`` exactly when the rule's threshold was crossed, and a bar
    never changes when later sessions arrive. The ``z`` column of ``analysis.sessions`` (methods.md
    section 2, deviation from the retrospective person mean over ``max(within SD, SEM)``) is the
    other "units of the patient's spread"; it is not used here because drawn against the rupture
    threshold it would show crossings that raised no flag (and miss some that did), and it moves
    whenever a session is added. The first session has no baseline and no bar; sessions with a
    baseline of fewer than ``min_baseline`` sessions are drawn pale (the threshold does not apply
    yet: an early rupture is a drop from the previous session). Ruptures, by either rule, are
    marked just below their bar.
    """
    _check_one_patient(sessions, events)
    rows = _scale_rows(sessions, c.TOTAL)
    threshold = -float(k)
    columns = ["Session", "Total", "Baseline", "Usual variation", "Deviation (units)", "Note"]
    if rows.empty:
        return _empty_chart(
            height=HEIGHT,
            y_title="Deviation (units of usual variation)",
            columns=columns,
            summary="No answers yet.",
            threshold=threshold,
        )
    x = rows[c.SESSION].astype(int).to_numpy()
    score = rows[c.SCORE].to_numpy(dtype=float)
    baseline = _column(rows, c.BASELINE)
    s_used = _column(rows, c.S_USED)
    n_base = _column(rows, c.N_BASELINE)
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = np.where((s_used > 0) & np.isfinite(baseline), (score - baseline) / s_used, np.nan)
    has = np.isfinite(dev)
    early = has & ~(n_base >= min_baseline)
    below = has & ~early & (dev <= threshold + 1e-9)
    usual = has & ~early & ~below

    def note(i: int) -> str:
        if not has[i]:
            return "First session: no baseline yet" if i == 0 else "No baseline"
        if early[i]:
            return f"Baseline from {int(n_base[i])} session{'s' if n_base[i] != 1 else ''}: threshold not yet used"
        return "Below rupture threshold" if below[i] else ""

    def hover(i: int) -> str:
        if early[i]:
            extra = (
                f"<br>Baseline from only {int(n_base[i])} session{'s' if n_base[i] != 1 else ''}: "
                f"the threshold applies from {min_baseline}."
            )
        else:
            extra = "<br><b>Below the rupture threshold</b>" if below[i] else ""
        direction = "below" if dev[i] < 0 else "above"
        return (
            f"Total {_f1(score[i])}, baseline {_f1(baseline[i])}<br>"
            f"{_f1(abs(score[i] - baseline[i]))} points {direction} = {_f1(abs(dev[i]))} {TIMES} usual "
            f"variation ({_f2(s_used[i])}){extra}"
        )

    traces: list[dict[str, Any]] = []
    for name, mask, colour in (
        ("Deviation", usual, NEUTRAL_BAR),
        ("Below rupture threshold", below, MARKERS[c.RUPTURE][2]),
        ("Too few sessions for threshold", early, EARLY_BAR),
    ):
        if mask.any():
            idx = np.flatnonzero(mask)
            traces.append(
                {
                    "type": "bar",
                    "name": name,
                    "x": x[idx].tolist(),
                    "y": dev[idx].tolist(),
                    "marker": {
                        "color": colour,
                        "line": {"width": 1, "color": AXIS} if colour == EARLY_BAR else {"width": 0},
                    },
                    "text": [hover(int(i)) for i in idx],
                    "hovertemplate": "%{text}<extra></extra>",
                    "textposition": "none",
                }
            )
    ev = _scale_rows(events, c.TOTAL)
    rup = ev[ev[c.KIND].astype(str) == c.RUPTURE] if not ev.empty else ev
    if not rup.empty:
        pos = {s: i for i, s in enumerate(x.tolist())}
        mx, my, mt = [], [], []
        for _, e in rup.iterrows():
            i = pos.get(int(e[c.SESSION]))
            if i is None:
                continue
            tip = dev[i] if has[i] else 0.0
            mx.append(int(x[i]))
            my.append(min(tip, 0.0) - 0.45)
            mt.append(_event_hover(c.RUPTURE, e))
        name, symbol, colour, size = MARKERS[c.RUPTURE]
        traces.append(
            {
                "type": "scatter",
                "name": name,
                "x": mx,
                "y": my,
                "mode": "markers",
                "marker": {
                    "symbol": symbol,
                    "color": colour,
                    "size": size - 2,
                    "line": {"color": "white", "width": 1},
                },
                "text": mt,
                "hovertemplate": "%{text}<extra></extra>",
            }
        )

    finite = dev[has]
    lo = min(threshold - 1.0, float(finite.min()) - 0.8) if finite.size else threshold - 1.0
    hi = max(2.0, float(finite.max()) + 0.5) if finite.size else 2.0
    layout = _layout(height=HEIGHT)
    layout["barmode"] = "overlay"
    layout["bargap"] = 0.35
    layout["xaxis"] = _session_axis(x.tolist(), title=True)
    layout["yaxis"] = {
        **_axis_style(),
        "title": _title("Units of usual variation"),
        "range": [lo, hi],
        "zeroline": True,
        "zerolinecolor": AXIS,
        "zerolinewidth": 1,
        "fixedrange": True,
    }
    layout["shapes"] = [_threshold_shape(threshold)]
    layout["annotations"] = [_threshold_label(threshold)]

    table = [
        [
            str(int(x[i])),
            _f2(score[i]),
            _f2(baseline[i]),
            _f2(s_used[i]),
            _signed(dev[i]),
            note(i),
        ]
        for i in range(x.size)
    ]
    summary = _deviations_summary(x, dev, below, early, has, threshold, min_baseline)
    return _chart(traces, layout, summary, columns, table)


def subscales(*, sessions: pd.DataFrame, events: pd.DataFrame) -> Chart:
    """Small multiples: goal agreement, task agreement, bond, goal and task agreement per session.

    Inputs are ``analysis.sessions`` and ``analysis.events`` filtered to one patient (used
    columns: sessions ``session, scale, score, level, cusum``, events ``session, scale, kind,
    explanation``). Each panel shows the scores with the panel's usual level (``sessions.level``:
    the person mean, or the per-patient trend line when the analysis was detrended). A declining
    trend (the lower CUSUM of methods.md section 4) is marked at the session it was raised, and its
    run-up -- the consecutive sessions before it with a positive CUSUM, where the small drops that
    set it off accumulated -- is shaded.
    """
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
                    "name": "Usual level",
                    "x": x,
                    "y": level.tolist(),
                    "mode": "lines",
                    "xaxis": xa,
                    "yaxis": ya,
                    "line": {"color": LEVEL, "width": 1.5, "dash": "dash"},
                    "text": [f"Usual level {_f1(v)}" for v in level],
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
        dec = _kind_rows(_scale_rows(ev_all, scale), c.DECLINE)
        if dec.empty:
            continue
        cusum = _column(rows, c.CUSUM)
        pos = {s: j for j, s in enumerate(x)}
        mx, my, mt = [], [], []
        floor = 0
        for _, e in dec.sort_values(c.SESSION).iterrows():
            s = int(e[c.SESSION])
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
            flag_cells.setdefault(s, []).append(f"{label}: declining trend")
            mx.append(s)
            my.append(y[j])
            mt.append(_event_hover(c.DECLINE, e))
        if not mx:
            continue
        name, symbol, colour, size = MARKERS[c.DECLINE]
        traces.append(
            _legend_once(
                {
                    "type": "scatter",
                    "name": name,
                    "x": mx,
                    "y": my,
                    "mode": "markers",
                    "xaxis": xa,
                    "yaxis": ya,
                    "marker": {
                        "symbol": symbol,
                        "color": colour,
                        "size": size,
                        "line": {"color": INK, "width": 1},
                    },
                    "text": mt,
                    "hovertemplate": "%{text}<extra></extra>",
                },
                shown,
            )
        )
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
    summary = _subscales_summary(panels, declines, len(all_x))
    return _chart(traces, layout, summary, columns, table)


def raters(*, patient: pd.DataFrame, therapist: pd.DataFrame) -> Chart:
    """The patient's and the therapist's total per session, and the gap between them.

    Both frames have one row per session with columns ``session`` and ``total`` (other columns
    are ignored; a ``patient`` column, if present, must hold one patient). The top panel shows the
    two totals; the bottom panel the difference, patient minus therapist, for sessions both rated
    (positive: the patient rates the alliance higher).
    """
    _check_one_patient(patient)
    _check_one_patient(therapist)
    p = _totals(patient)
    t = _totals(therapist)
    columns = ["Session", "Patient", "Therapist", f"Difference (patient {MINUS} therapist)"]
    if p.empty and t.empty:
        return _empty_chart(
            height=HEIGHT_PANELS, y_title="Alliance (1-5)", columns=columns, summary="No answers yet."
        )
    both = pd.concat({"patient": p, "therapist": t}, axis=1).sort_index()
    x = [int(s) for s in both.index]
    pv = both["patient"].to_numpy(dtype=float)
    tv = both["therapist"].to_numpy(dtype=float)
    diff = pv - tv
    paired = np.isfinite(diff)

    traces: list[dict[str, Any]] = []
    if not p.empty:
        traces.append(
            {
                "type": "scatter",
                "name": "Patient",
                "x": p.index.astype(int).tolist(),
                "y": p.tolist(),
                "mode": "lines+markers",
                "line": {"color": ACCENT, "width": 2.5},
                "marker": {"color": ACCENT, "size": 7, "symbol": "circle"},
                "text": [f"Patient {_f2(v)}" for v in p],
                "hovertemplate": "%{text}<extra></extra>",
            }
        )
    if not t.empty:
        traces.append(
            {
                "type": "scatter",
                "name": "Therapist",
                "x": t.index.astype(int).tolist(),
                "y": t.tolist(),
                "mode": "lines+markers",
                "line": {"color": THERAPIST, "width": 2.5, "dash": "dot"},
                "marker": {"color": THERAPIST, "size": 7, "symbol": "square"},
                "text": [f"Therapist {_f2(v)}" for v in t],
                "hovertemplate": "%{text}<extra></extra>",
            }
        )
    if paired.any():
        idx = np.flatnonzero(paired)
        traces.append(
            {
                "type": "bar",
                "name": "Difference",
                "x": [x[i] for i in idx],
                "y": diff[idx].tolist(),
                "xaxis": "x",
                "yaxis": "y2",
                "marker": {"color": NEUTRAL_BAR},
                "text": [f"Patient {MINUS} therapist {_signed(diff[i])}" for i in idx],
                "hovertemplate": "%{text}<extra></extra>",
                "textposition": "none",
            }
        )
    span = float(np.nanmax(np.abs(diff))) if paired.any() else 1.0
    span = max(1.0, math.ceil(span * 2 + 0.2) / 2)
    layout = _layout(height=HEIGHT_PANELS)
    layout["bargap"] = 0.35
    layout["xaxis"] = {**_session_axis(x, title=True), "anchor": "y2"}
    layout["yaxis"] = {**_score_axis("Alliance (1-5)"), "domain": [0.38, 1.0], "anchor": "x"}
    layout["yaxis2"] = {
        **_axis_style(),
        "domain": [0.0, 0.26],
        "anchor": "x",
        "range": [-span, span],
        "title": _title(f"Patient {MINUS} therapist"),
        "zeroline": True,
        "zerolinecolor": AXIS,
        "fixedrange": True,
    }
    table = [[str(s), _f2(pv[i]), _f2(tv[i]), _signed(diff[i])] for i, s in enumerate(x)]
    summary = _raters_summary(x, pv, tv, diff, paired)
    return _chart(traces, layout, summary, columns, table)


def sparkline_svg(
    *,
    values: Sequence[float],
    level: float | None = None,
    width: int = 96,
    height: int = 24,
) -> str:
    """A tiny inline SVG of the last 12 (at most) totals on the fixed 1-5 scale.

    A polyline of the totals, the level as a faint dashed line, the latest total as a dot;
    ``role="img"`` with an ``aria-label`` such as "Last 8 totals, from 4.1 to 3.2". Missing
    values are skipped. Only numbers produced here go into the markup (every input is converted
    with ``float``/``int``), so the result is safe to ``mark_safe``.
    """
    w = max(16, int(width))
    h = max(8, int(height))
    vals = [float(v) for v in values if v is not None and _finite(v)][-12:]
    pad = 3.0  # room for the dot

    def px(i: int, count: int) -> float:
        return pad if count == 1 else pad + i * (w - 2 * pad) / (count - 1)

    def py(v: float) -> float:
        v = min(max(v, SCALE_MIN), SCALE_MAX)
        return pad + (SCALE_MAX - v) * (h - 2 * pad) / (SCALE_MAX - SCALE_MIN)

    if not vals:
        label = "No answers yet"
    elif len(vals) == 1:
        label = f"One total: {_f1(vals[0])}"
    else:
        label = f"Last {len(vals)} totals, from {_f1(vals[0])} to {_f1(vals[-1])}"
    lev = float(level) if level is not None and _finite(level) else None
    if lev is not None and vals:
        label += f"; usual level {_f1(lev)}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sparkline" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="{label}">'
    ]
    if lev is not None and vals:
        yl = py(lev)
        parts.append(
            f'<line x1="0" y1="{yl:.1f}" x2="{w}" y2="{yl:.1f}" stroke="{AXIS}" stroke-width="1" '
            f'stroke-dasharray="2 2"/>'
        )
    if len(vals) >= 2:
        points = " ".join(f"{px(i, len(vals)):.1f},{py(v):.1f}" for i, v in enumerate(vals))
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{ACCENT}" stroke-width="1.5" '
            f'stroke-linejoin="round" stroke-linecap="round"/>'
        )
    if vals:
        i = len(vals) - 1
        parts.append(f'<circle cx="{px(i, len(vals)):.1f}" cy="{py(vals[-1]):.1f}" r="2.5" fill="{ACCENT}"/>')
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def _trajectory_summary(
    rows: pd.DataFrame,
    lev: pd.Series | None,
    ev: pd.DataFrame,
    level: float,
    provisional: bool,
    provisional_lambda: float,
) -> str:
    n = len(rows)
    last = float(rows[c.SCORE].iloc[-1])
    if n == 1:
        return (
            f"1 session so far, total {_f1(last)}. The patient's usual level and the flags need a "
            f"few more sessions."
        )
    parts = [f"{n} sessions."]
    usual = f"Usual level {_f1(level)}"
    if provisional:
        needed = _sessions_needed(lev, provisional_lambda)
        usual += f" (provisional until about {needed} sessions)" if needed else " (provisional)"
    parts.append(usual + ".")
    # Against the prospective baseline (the level before that session), as the caseload and the
    # flags judge it; the retrospective z (against the mean of all sessions, the latest included)
    # would call a session "close to usual" after a lasting drop has pulled that mean down.
    tail = rows.iloc[-1]
    z = None
    if {c.BASELINE, c.S_USED} <= set(rows.columns) and _finite(tail[c.BASELINE]) and _finite(tail[c.S_USED]):
        z = (last - float(tail[c.BASELINE])) / float(tail[c.S_USED]) if float(tail[c.S_USED]) > 0 else None
    if z is None and c.Z in rows.columns and _finite(tail[c.Z]):
        z = float(tail[c.Z])
    parts.append(f"Latest total {_f1(last)}{', ' + _relative(z) if z is not None else ''}.")
    if lev is not None and _truthy(lev.get(c.CEILING)):
        parts.append("Every answer so far is at the top of the scale, so a rise cannot show.")
    parts.extend(_flag_sentences(ev))
    return " ".join(parts)


def _relative(z: float) -> str:
    if z <= -2:
        return "well below usual"
    if z <= -1:
        return "below usual"
    if z >= 2:
        return "well above usual"
    if z >= 1:
        return "above usual"
    return "close to usual"


def _flag_sentences(ev: pd.DataFrame) -> list[str]:
    """Plain sentences on the ruptures and their outcome, sudden changes and declines."""
    if ev.empty:
        return ["No ruptures or other flags."]
    kinds = ev[c.KIND].astype(str)
    out: list[str] = []
    ruptures = ev[kinds == c.RUPTURE]
    outcome: dict[int, str] = {}
    for _, e in ev[kinds.isin([c.REPAIR, c.UNREPAIRED])].iterrows():
        rs = _int(e.get(c.RUPTURE_SESSION))
        if rs is None:
            continue
        s = int(e[c.SESSION])
        outcome[rs] = (
            f"repaired at session {s}" if str(e[c.KIND]) == c.REPAIR else f"not repaired by session {s}"
        )
    if len(ruptures) == 1:
        s = int(ruptures[c.SESSION].iloc[0])
        out.append(f"One rupture, at session {s}, {outcome.get(s, 'not yet repaired')}.")
    elif len(ruptures) > 1:
        items = [f"session {int(s)} ({outcome.get(int(s), 'not yet repaired')})" for s in ruptures[c.SESSION]]
        out.append(f"{len(ruptures)} ruptures: {_join(items)}.")
    else:
        out.append("No ruptures.")
    for kind, word in ((c.SUDDEN_GAIN, "Sudden gain"), (c.SUDDEN_LOSS, "Sudden loss")):
        rows = ev[kinds == kind]
        if rows.empty:
            continue
        spans = [
            f"between sessions {_int(r.get(c.FROM_SESSION))} and {_int(r.get(c.TO_SESSION))}"
            if _int(r.get(c.FROM_SESSION)) is not None
            else f"at session {int(r[c.SESSION])}"
            for _, r in rows.iterrows()
        ]
        out.append(f"{word}{'s' if len(spans) > 1 else ''} {_join(spans)}.")
    dec = ev[kinds == c.DECLINE]
    if not dec.empty:
        where = _join([str(int(s)) for s in dec[c.SESSION]])
        out.append(f"Declining trend flagged at session{'s' if len(dec) > 1 else ''} {where}.")
    return out


def _deviations_summary(
    x: np.ndarray,
    dev: np.ndarray,
    below: np.ndarray,
    early: np.ndarray,
    has: np.ndarray,
    threshold: float,
    min_baseline: int,
) -> str:
    if not has.any():
        return (
            f"{x.size} session{'s' if x.size != 1 else ''} so far: a baseline needs at least one earlier "
            f"session, so there are no deviations to show yet."
        )
    k = _g(-threshold)
    head = (
        "Distance of each total from this patient's baseline (their usual level before that "
        "session), in units of their usual session-to-session variation."
    )
    if below.any():
        sessions = [str(int(s)) for s in x[below]]
        i = int(np.flatnonzero(below)[np.argmin(dev[below])])
        count = "1 session" if len(sessions) == 1 else f"{len(sessions)} sessions"
        body = (
            f"{count} fell below the rupture threshold ({k} units below baseline): "
            f"session{'s' if len(sessions) > 1 else ''} {_join(sessions)}"
        )
        body += (
            f"; the lowest was session {int(x[i])}, {_f1(-dev[i])} units below."
            if len(sessions) > 1
            else (f", {_f1(-dev[i])} units below.")
        )
    else:
        usable = has & ~early
        if usable.any() and np.nanmin(dev[usable]) < 0:
            i = int(np.flatnonzero(usable)[np.argmin(dev[usable])])
            body = (
                f"No session fell below the rupture threshold ({k} units below baseline); the largest "
                f"drop was {_f1(-dev[i])} units, at session {int(x[i])}."
            )
        else:
            body = f"No session fell below the rupture threshold ({k} units below baseline)."
    if early.any():
        body += (
            f" The first sessions are compared with fewer than {min_baseline} earlier ones, where the "
            "threshold does not apply yet."
        )
    return f"{head} {body}"


def _subscales_summary(
    panels: Mapping[str, pd.DataFrame], declines: list[tuple[str, int, int]], n: int
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
        parts.append(f"Usual levels: {_join(levels)}.")
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
    return " ".join(parts)


def _raters_summary(
    x: list[int], pv: np.ndarray, tv: np.ndarray, diff: np.ndarray, paired: np.ndarray
) -> str:
    n_p, n_t = int(np.isfinite(pv).sum()), int(np.isfinite(tv).sum())
    if n_t == 0:
        return f"No therapist ratings yet; the patient rated {n_p} session{'s' if n_p != 1 else ''}."
    if n_p == 0:
        return f"The therapist rated {n_t} session{'s' if n_t != 1 else ''}; no patient answers yet."
    n_both = int(paired.sum())
    if n_both == 0:
        return "Patient and therapist have not yet rated the same session."
    parts = [f"Patient and therapist both rated {n_both} session{'s' if n_both != 1 else ''}."]
    mean = float(np.mean(diff[paired]))
    if round(abs(mean), 1) == 0:
        parts.append("They rate the alliance about the same on average.")
    else:
        side = "lower" if mean > 0 else "higher"
        parts.append(
            f"The therapist rates the alliance {_f1(abs(mean))} points {side} than the patient on average."
        )
    if n_both > 1:
        idx = np.flatnonzero(paired)
        i = int(idx[np.argmax(np.abs(diff[idx]))])
        if round(abs(diff[i]), 1) > 0:
            who = "patient" if diff[i] > 0 else "therapist"
            parts.append(f"Largest gap {_f1(abs(diff[i]))} points at session {x[i]} ({who} higher).")
    last = int(np.flatnonzero(paired)[-1])
    parts.append(f"Latest shared session {x[last]}: patient {_f1(pv[last])}, therapist {_f1(tv[last])}.")
    return " ".join(parts)


# --------------------------------------------------------------------------------------------
# Building blocks
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


def _event_traces(ev: pd.DataFrame, rows: pd.DataFrame) -> list[dict[str, Any]]:
    if ev.empty:
        return []
    scores = dict(zip(rows[c.SESSION].astype(int), rows[c.SCORE].astype(float), strict=True))
    kinds = ev[c.KIND].astype(str)
    traces = []
    for kind in _MARKER_ORDER:
        sub = ev[kinds == kind]
        if sub.empty:
            continue
        xs: list[float] = []
        ys: list[float] = []
        texts: list[str] = []
        for _, e in sub.iterrows():
            s = int(e[c.SESSION])
            xv, yv = float(s), scores.get(s, _num(e, c.SCORE))
            if kind in (c.SUDDEN_GAIN, c.SUDDEN_LOSS):
                f, t = _int(e.get(c.FROM_SESSION)), _int(e.get(c.TO_SESSION))
                if f is not None and t is not None and f in scores and t in scores:
                    xv, yv = (f + t) / 2, (scores[f] + scores[t]) / 2
            if yv is None:
                continue
            xs.append(xv)
            ys.append(yv)
            texts.append(_event_hover(kind, e))
        name, symbol, colour, size = MARKERS[kind]
        line_colour = colour if symbol.endswith("-open") else "white"
        traces.append(
            {
                "type": "scatter",
                "name": name,
                "x": xs,
                "y": ys,
                "mode": "markers",
                "cliponaxis": False,
                "marker": {
                    "symbol": symbol,
                    "color": colour,
                    "size": size,
                    "line": {"color": line_colour, "width": 1.5 if symbol.endswith("-open") else 1},
                },
                "text": texts,
                "hovertemplate": "%{text}<extra></extra>",
            }
        )
    return traces


def _event_hover(kind: str, e: pd.Series) -> str:
    name = MARKERS[kind][0]
    session = int(e[c.SESSION])
    f, t = _int(e.get(c.FROM_SESSION)), _int(e.get(c.TO_SESSION))
    if kind in (c.SUDDEN_GAIN, c.SUDDEN_LOSS) and f is not None and t is not None:
        head = f"<b>{name}, sessions {f} to {t}</b> (flagged at session {session})"
    else:
        head = f"<b>{name} at session {session}</b>"
    explanation = str(e.get(c.EXPLANATION) or "")
    if not explanation or explanation in ("nan", "<NA>"):
        return head
    lines = textwrap.wrap(explanation, _WRAP)
    return head + "<br>" + "<br>".join(html.escape(line, quote=False) for line in lines)


def _flag_labels(ev: pd.DataFrame) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    if ev.empty:
        return out
    for _, e in ev.iterrows():
        kind = str(e[c.KIND])
        label = MARKERS[kind][0] if kind in MARKERS else kind
        rs = _int(e.get(c.RUPTURE_SESSION))
        if kind in (c.REPAIR, c.UNREPAIRED) and rs is not None:
            label += f" (rupture at session {rs})"
        f, t = _int(e.get(c.FROM_SESSION)), _int(e.get(c.TO_SESSION))
        if kind in (c.SUDDEN_GAIN, c.SUDDEN_LOSS) and f is not None and t is not None:
            label += f" (sessions {f} to {t})"
        out.setdefault(int(e[c.SESSION]), []).append(label)
    return out


def _level_halfwidth(lev: pd.Series | None, rows: pd.DataFrame) -> float | None:
    """Half-width of the 95% interval of the person mean (see :func:`trajectory`)."""
    if lev is None:
        return None
    n = _num(lev, c.N) or float(len(rows))
    spreads = [_num(lev, c.S_LEVEL), _num(lev, c.WITHIN_SD)]
    if c.S_USED in rows.columns:
        spreads.append(float(rows[c.S_USED].iloc[-1]) if _finite(rows[c.S_USED].iloc[-1]) else None)
    known = [s for s in spreads if s is not None and s > 0]
    if not known or n <= 0:
        return None
    return 1.96 * max(known) / math.sqrt(n)


def _sessions_needed(lev: pd.Series | None, provisional_lambda: float) -> int | None:
    """Sessions until the EB weight reaches ``provisional_lambda``.

    ``lam = tau2 / (tau2 + sigma2 / n)`` gives ``sigma2 / tau2 = n (1 - lam) / lam``; the weight
    reaches ``L`` at ``n = L / (1 - L) * sigma2 / tau2``.
    """
    if lev is None:
        return None
    lam, n = _num(lev, c.RELIABILITY), _num(lev, c.N)
    if lam is None or n is None or not 0 < lam < 1 or not 0 < provisional_lambda < 1:
        return None
    ratio = n * (1 - lam) / lam
    needed = math.ceil(provisional_lambda / (1 - provisional_lambda) * ratio - 1e-9)
    return max(needed, int(n) + 1)


def _legend_once(trace: dict[str, Any], shown: set[str]) -> dict[str, Any]:
    """Small multiples repeat the same traces: one legend entry per name, toggling all panels."""
    trace["legendgroup"] = trace["name"]
    trace["showlegend"] = trace["name"] not in shown
    shown.add(trace["name"])
    return trace


def _score_hover(name: str, session: int, value: float, dates: Mapping[int, date]) -> str:
    d = dates.get(session)
    return f"{name} {_f2(value)}" + (f" · {_date(d)}" if d else "")


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


def _totals(frame: pd.DataFrame | None) -> pd.Series:
    frame = _rows(frame)
    if frame.empty or c.SESSION not in frame.columns or c.TOTAL not in frame.columns:
        return pd.Series(dtype=float)
    s = pd.Series(
        pd.to_numeric(frame[c.TOTAL], errors="coerce").to_numpy(dtype=float, na_value=np.nan),
        index=pd.Index(frame[c.SESSION].astype(int).to_numpy(), name=c.SESSION),
    ).dropna()
    return s[~s.index.duplicated(keep="last")].sort_index()


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


# --- Clinic report ------------------------------------------------------------------------------


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
    """How patients' usual levels (total alliance, 1-5) are spread across the clinic."""
    values = [float(v) for v in levels if _finite(v)]
    columns = ["Usual level from", "to", "Patients"]
    layout = _layout(height=HEIGHT)
    layout["showlegend"] = False
    layout["hovermode"] = "closest"
    layout["xaxis"] = {
        **_axis_style(),
        "range": [1, 5],
        "dtick": 0.5,
        "title": _title("Usual level (total alliance, 1-5)"),
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
    summary = f"{len(values)} patients. Median usual level {median:.1f}; the middle half between {q1:.1f} and {q3:.1f}."
    return _chart(traces, layout, summary, columns, rows)
