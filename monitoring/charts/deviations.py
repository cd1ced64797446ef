"""Each session's distance from the patient's baseline against the rupture threshold: :func:`deviations`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from monitoring.analytics import columns as c
from monitoring.charts._events import _event_hover
from monitoring.charts._style import (
    AXIS,
    EARLY_BAR,
    HEIGHT,
    MARKERS,
    NEUTRAL_BAR,
    TIMES,
    Chart,
    _axis_style,
    _chart,
    _check_one_patient,
    _column,
    _empty_chart,
    _f1,
    _f2,
    _g,
    _join,
    _layout,
    _scale_rows,
    _session_axis,
    _signed,
    _threshold_label,
    _threshold_shape,
    _title,
)

#: Baseline sessions the rupture rule needs before ``baseline - k * s_used`` applies (methods.md
#: section 4; ``AnalysisConfig.min_baseline``). With fewer, a rupture is a drop from the previous
#: session, so the threshold line of :func:`deviations` does not apply to those bars.
MIN_BASELINE = 3


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
