"""Flag markers on a score line, their hover text, and the flag labels of the data tables.

The hover text of an event (its name, session and the plain explanation of ``analysis.events``)
is shared by the trajectory, the deviation bars and the subscale panels. Besides the kinds of
``analysis.events``, the stored "alliance has stayed low" flags (``LOW_ALLIANCE``; the caller
passes their rows, see :func:`with_low_alliance`) are drawn the same way.
"""

from __future__ import annotations

import html
import textwrap
from typing import Any

import pandas as pd

from monitoring.analytics import columns as c
from monitoring.charts._style import _WRAP, LOW_ALLIANCE, MARKERS, _int, _num, _rows

_MARKER_ORDER = (LOW_ALLIANCE, c.DECLINE, c.SUDDEN_GAIN, c.SUDDEN_LOSS, c.REPAIR, c.UNREPAIRED, c.RUPTURE)

#: Kinds whose flag speaks of a run of sessions (``from_session`` to ``to_session``).
_SPANS = (c.SUDDEN_GAIN, c.SUDDEN_LOSS, LOW_ALLIANCE)


def with_low_alliance(events: pd.DataFrame | None, low_alliance: pd.DataFrame | None) -> pd.DataFrame:
    """``analysis.events`` with the stored "alliance has stayed low" flags of the same patient
    (rows with ``session, scale, kind, explanation, from_session, to_session``, ``kind`` being
    ``low_alliance``; any other kind is ignored)."""
    events, low = _rows(events), _rows(low_alliance)
    if low.empty:
        return events
    low = low[low[c.KIND].astype(str) == LOW_ALLIANCE]
    if events.empty:
        return low.reset_index(drop=True)
    return pd.concat([events.astype({c.KIND: str, c.SCALE: str}), low], ignore_index=True)


def _event_traces(
    ev: pd.DataFrame, rows: pd.DataFrame, *, axes: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    """One marker trace per kind of flag in ``ev`` (one scale's events), on ``rows``' scores;
    ``axes`` (x, y) places them in a panel of small multiples."""
    if ev.empty or rows.empty:
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
                **({"xaxis": axes[0], "yaxis": axes[1]} if axes else {}),
            }
        )
    return traces


def _event_hover(kind: str, e: pd.Series) -> str:
    name = MARKERS[kind][0]
    session = int(e[c.SESSION])
    f, t = _int(e.get(c.FROM_SESSION)), _int(e.get(c.TO_SESSION))
    if kind in _SPANS and f is not None and t is not None:
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
        if kind in _SPANS and f is not None and t is not None:
            label += f" (sessions {f} to {t})"
        out.setdefault(int(e[c.SESSION]), []).append(label)
    return out
