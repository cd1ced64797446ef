"""The patient's and the therapist's totals and the gap between them: :func:`raters`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from monitoring.analytics import columns as c
from monitoring.charts._style import (
    ACCENT,
    AXIS,
    HEIGHT_PANELS,
    MINUS,
    NEUTRAL_BAR,
    THERAPIST,
    Chart,
    _axis_style,
    _chart,
    _check_one_patient,
    _empty_chart,
    _f1,
    _f2,
    _layout,
    _rows,
    _score_axis,
    _session_axis,
    _signed,
    _title,
)


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
    # Per subscale as well, where both frames have it: the two raters may part on one only.
    for scale in c.SUBSCALES:
        gap = _scale(patient, scale).sub(_scale(therapist, scale)).reindex(both.index)
        if gap.notna().any():
            columns.append(f"{c.SCALE_LABELS[scale]}: difference")
            for row, value in zip(table, gap.to_numpy(dtype=float), strict=True):
                row.append(_signed(value))
    summary = _raters_summary(x, pv, tv, diff, paired)
    return _chart(traces, layout, summary, columns, table)


def _scale(frame: pd.DataFrame | None, scale: str) -> pd.Series:
    """One subscale's score by session (empty when the frame does not have it)."""
    frame = _rows(frame)
    if frame.empty or c.SESSION not in frame.columns or scale not in frame.columns:
        return pd.Series(dtype=float)
    s = pd.Series(
        pd.to_numeric(frame[scale], errors="coerce").to_numpy(dtype=float, na_value=np.nan),
        index=pd.Index(frame[c.SESSION].astype(int).to_numpy(), name=c.SESSION),
    )
    return s[~s.index.duplicated(keep="last")].sort_index()


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


def _totals(frame: pd.DataFrame | None) -> pd.Series:
    frame = _rows(frame)
    if frame.empty or c.SESSION not in frame.columns or c.TOTAL not in frame.columns:
        return pd.Series(dtype=float)
    s = pd.Series(
        pd.to_numeric(frame[c.TOTAL], errors="coerce").to_numpy(dtype=float, na_value=np.nan),
        index=pd.Index(frame[c.SESSION].astype(int).to_numpy(), name=c.SESSION),
    ).dropna()
    return s[~s.index.duplicated(keep="last")].sort_index()
