"""The total score per session against the patient's usual level, with the flags: :func:`trajectory`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from monitoring.analytics import columns as c
from monitoring.charts._events import _event_traces, _flag_labels, with_low_alliance
from monitoring.charts._style import (
    ACCENT,
    BAND,
    HEIGHT,
    LEVEL,
    LOW_ALLIANCE,
    SCALE_MAX,
    SCALE_MIN,
    Chart,
    _chart,
    _check_one_patient,
    _date,
    _empty_chart,
    _f1,
    _f2,
    _finite,
    _int,
    _join,
    _layout,
    _level_row,
    _num,
    _scale_rows,
    _score_axis,
    _session_axis,
    _truthy,
)


def trajectory(
    *,
    sessions: pd.DataFrame,
    levels: pd.DataFrame,
    events: pd.DataFrame,
    session_dates: Mapping[int, date] | None = None,
    provisional_lambda: float = 0.80,
    low_alliance: pd.DataFrame | None = None,
) -> Chart:
    """The total score per session against the patient's own usual level, with the flags.

    Inputs are ``analysis.sessions``, ``analysis.levels`` and ``analysis.events`` filtered to one
    patient; rows of other scales are ignored (only ``total`` is drawn). Used columns: sessions
    ``session, scale, score, z, s_used``; levels ``scale, n, level, level_eb, reliability,
    provisional, s_level, ceiling``; events ``session, scale, kind, score, explanation,
    rupture_session, from_session, to_session``. ``session_dates`` maps session numbers to dates
    for the hover text and the table.

    The line is the long-run level, the person mean (``levels.level``, the trait-like level the
    state and z of ``analysis.sessions`` are measured from; not the "usual level", which is the
    prospective baseline the flags use), drawn as a horizontal line. While it is provisional
    (EB weight below ``provisional_lambda``, methods.md section 2) a band shows its 95% interval,
    ``level +- 1.96 * s / sqrt(n)``, where ``s`` is the stricter of the patient's own spread
    (``levels.s_level`` = max(within-patient SD, SEM)) and the spread the flag rules used at the
    latest session (``s_used``, floored by the clinic's pooled within-patient SD): a person mean
    from 1-3 sessions is only as good as the session-to-session noise allows (Gumz et al. 2012:
    use the stricter of intra- and inter-individual variability). The EB estimate, shrunk toward
    the clinic mean, is given in the hover text of the line.

    Flag markers sit on the session they were raised at; a sudden gain or loss sits on the middle
    of the jump it describes (between ``from_session`` and ``to_session``). ``low_alliance``: the
    patient's stored "alliance has stayed low" flags (not in ``analysis.events``; rows with
    ``session, scale, kind, explanation, from_session, to_session``), drawn with the others.
    """
    events = with_low_alliance(events, low_alliance)
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
    level_name = f"Long-run level {_f1(level)}"
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


# --------------------------------------------------------------------------------------------
# Summary
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
    usual = f"Long-run level {_f1(level)} (mean of all sessions)"
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
        spans = _spans(rows, "between sessions {} and {}", "at session {}")
        out.append(f"{word}{'s' if len(spans) > 1 else ''} {_join(spans)}.")
    dec = ev[kinds == c.DECLINE]
    if not dec.empty:
        where = _join([str(int(s)) for s in dec[c.SESSION]])
        out.append(f"Declining trend flagged at session{'s' if len(dec) > 1 else ''} {where}.")
    low = ev[kinds == LOW_ALLIANCE]
    if not low.empty:
        runs = _spans(low, "sessions {} to {}", "session {}")
        out.append(f"Alliance stayed below the clinic's cut-off: {_join(runs)}.")
    return out


def _spans(rows: pd.DataFrame, span: str, single: str) -> list[str]:
    """Each flag's run of sessions (``from_session`` to ``to_session``, else its own session) in
    ``span``'s words, or its session in ``single``'s where the run is unknown."""
    out = []
    for _, r in rows.iterrows():
        start, end, at = _int(r.get(c.FROM_SESSION)), _int(r.get(c.TO_SESSION)), int(r[c.SESSION])
        out.append(span.format(start, at if end is None else end) if start is not None else single.format(at))
    return out


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


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


def _score_hover(name: str, session: int, value: float, dates: Mapping[int, date]) -> str:
    d = dates.get(session)
    return f"{name} {_f2(value)}" + (f" · {_date(d)}" if d else "")
