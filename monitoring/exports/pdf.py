"""PDF reports (WeasyPrint) and the small SVG charts they carry.

The dashboards draw plotly figures in the browser; a PDF has no browser, and rendering plotly to
SVG needs kaleido or a headless chromium. The reports only need a line chart and a histogram, so
they are drawn here as plain SVG from the numbers (pure functions, no Django), which WeasyPrint
renders as vectors: sharp in print, small files, no extra process.

Only numbers formatted here and text passed through ``html.escape`` go into the markup, so the
SVG strings are safe to insert into a template unescaped.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from monitoring.charts import ACCENT, AXIS, GRID, INK, MARKERS, MUTED

if TYPE_CHECKING:
    import pandas as pd

    from clinics.models import Clinic
    from monitoring.exports.base import Exporter, ExportFilters

# WeasyPrint logs every layout step at INFO, which would drown the server log in one line per page.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

FONT = "DejaVu Sans, Liberation Sans, sans-serif"
SCALE_MIN, SCALE_MAX = 1.0, 5.0


def _num(v: float) -> str:
    return f"{v:.1f}"


def _marker(kind: str, x: float, y: float) -> str:
    """A marker whose shape, not only its colour, tells the kind (as on the dashboard)."""
    _, symbol, colour, _ = MARKERS.get(kind, ("", "circle", INK, 12))
    r = 5.0
    if symbol.startswith("triangle-down"):
        pts = f"{_num(x - r)},{_num(y - r)} {_num(x + r)},{_num(y - r)} {_num(x)},{_num(y + r)}"
        fill = "none" if symbol.endswith("open") else colour
        return f'<polygon points="{pts}" fill="{fill}" stroke="{colour}" stroke-width="1.5"/>'
    if symbol == "triangle-up":
        pts = f"{_num(x - r)},{_num(y + r)} {_num(x + r)},{_num(y + r)} {_num(x)},{_num(y - r)}"
        return f'<polygon points="{pts}" fill="{colour}" stroke="{colour}" stroke-width="1.5"/>'
    if symbol == "diamond":
        pts = (
            f"{_num(x)},{_num(y - r)} {_num(x + r)},{_num(y)} {_num(x)},{_num(y + r)} {_num(x - r)},{_num(y)}"
        )
        return f'<polygon points="{pts}" fill="{colour}" stroke="{colour}" stroke-width="1"/>'
    if symbol == "x":
        return (
            f'<path d="M{_num(x - r)},{_num(y - r)}L{_num(x + r)},{_num(y + r)}M{_num(x - r)},{_num(y + r)}'
            f'L{_num(x + r)},{_num(y - r)}" stroke="{colour}" stroke-width="2.5"/>'
        )
    return f'<circle cx="{_num(x)}" cy="{_num(y)}" r="{_num(r - 0.5)}" fill="none" stroke="{colour}" stroke-width="2"/>'


def trajectory_svg(
    *,
    points: Sequence[tuple[int, float]],
    level: float | None,
    events: Sequence[tuple[int, float, str]] = (),
    title: str = "",
    width: int = 680,
    height: int = 250,
) -> str:
    """A line chart of scores (1-5) by session number, with the long-run level and flag markers.

    ``points`` are (session, score) pairs (NaN scores break the line), ``level`` the patient's
    long-run level (person mean) drawn as a dashed line, ``events`` (session, score, kind) drawn as markers in
    the dashboard's shapes and colours with a legend of the kinds present.
    """
    left, right, top, bottom = 34.0, 14.0, 10.0, 52.0
    plot_w, plot_h = width - left - right, height - top - bottom
    valid = [(int(s), float(v)) for s, v in points if v is not None and math.isfinite(float(v))]
    sessions = sorted({s for s, _ in points} | {s for s, _, _ in events})
    label = html.escape(title or "Scores per session")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" font-family="{FONT}" font-size="10"><title>{label}</title>'
    ]
    if not sessions:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="{MUTED}">No answers yet.</text></svg>'
        )
        return "".join(parts)
    lo, hi = sessions[0], sessions[-1]
    span = max(hi - lo, 1)

    def px(s: float) -> float:
        return left + (plot_w / 2 if hi == lo else (s - lo) * plot_w / span)

    def py(v: float) -> float:
        v = min(max(v, SCALE_MIN), SCALE_MAX)
        return top + (SCALE_MAX - v) * plot_h / (SCALE_MAX - SCALE_MIN)

    for tick in range(1, 6):
        y = py(tick)
        parts.append(
            f'<line x1="{left}" y1="{_num(y)}" x2="{width - right}" y2="{_num(y)}" stroke="{GRID}"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{_num(y + 3.5)}" text-anchor="end" fill="{MUTED}">{tick}</text>'
        )
    step = max(1, math.ceil(len(range(lo, hi + 1)) / 16))
    for s in range(lo, hi + 1, step):
        parts.append(
            f'<text x="{_num(px(s))}" y="{_num(top + plot_h + 14)}" text-anchor="middle" fill="{MUTED}">{s}</text>'
        )
    parts.append(
        f'<text x="{_num(left + plot_w / 2)}" y="{_num(top + plot_h + 27)}" text-anchor="middle" fill="{MUTED}">Session</text>'
    )
    parts.append(
        f'<line x1="{left}" y1="{_num(top + plot_h)}" x2="{width - right}" y2="{_num(top + plot_h)}" stroke="{AXIS}"/>'
    )
    if level is not None and math.isfinite(level):
        y = py(level)
        parts.append(
            f'<line x1="{left}" y1="{_num(y)}" x2="{width - right}" y2="{_num(y)}" stroke="{MUTED}" '
            f'stroke-width="1.2" stroke-dasharray="5 3"/>'
        )
    # The line breaks where a score is missing, so a gap is never drawn as a trend.
    segments: list[list[tuple[int, float]]] = [[]]
    by_session = dict(valid)
    for s in sorted({s for s, _ in points}):
        if s in by_session:
            segments[-1].append((s, by_session[s]))
        elif segments[-1]:
            segments.append([])
    for segment in segments:
        if len(segment) > 1:
            pts = " ".join(f"{_num(px(s))},{_num(py(v))}" for s, v in segment)
            parts.append(
                f'<polyline points="{pts}" fill="none" stroke="{ACCENT}" stroke-width="2" stroke-linejoin="round"/>'
            )
    for s, v in valid:
        parts.append(f'<circle cx="{_num(px(s))}" cy="{_num(py(v))}" r="2.6" fill="{ACCENT}"/>')
    kinds: list[str] = []
    for s, v, kind in events:
        if math.isfinite(v):
            parts.append(_marker(kind, px(s), py(v)))
        if kind not in kinds:
            kinds.append(kind)
    # Legend: the series, the level, then each kind of flag shown.
    x, y = left, height - 10.0
    legend = [
        ("line", "Score"),
        *([("level", "Long-run level")] if level is not None else []),
        *[(k, MARKERS[k][0] if k in MARKERS else k) for k in kinds],
    ]
    for key, name in legend:
        if key == "line":
            parts.append(
                f'<line x1="{_num(x)}" y1="{_num(y - 3)}" x2="{_num(x + 16)}" y2="{_num(y - 3)}" stroke="{ACCENT}" stroke-width="2"/>'
            )
        elif key == "level":
            parts.append(
                f'<line x1="{_num(x)}" y1="{_num(y - 3)}" x2="{_num(x + 16)}" y2="{_num(y - 3)}" stroke="{MUTED}" '
                f'stroke-width="1.2" stroke-dasharray="5 3"/>'
            )
        else:
            parts.append(_marker(key, x + 8, y - 3))
        parts.append(f'<text x="{_num(x + 21)}" y="{_num(y)}" fill="{INK}">{html.escape(name)}</text>')
        x += 28 + 6.2 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def count_grid(*, peak: int, left: float, right: float, top: float, plot_h: float) -> list[str]:
    """An SVG count axis from 0 to ``peak`` (at most six ticks): grid lines and their numbers."""
    parts = []
    for tick in range(0, peak + 1, max(1, math.ceil(peak / 5))):
        y = top + plot_h - tick * plot_h / peak
        parts.append(f'<line x1="{left}" y1="{_num(y)}" x2="{right}" y2="{_num(y)}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{left - 6}" y="{_num(y + 3.5)}" text-anchor="end" fill="{MUTED}">{tick}</text>'
        )
    return parts


def histogram_svg(
    *,
    values: Sequence[float],
    title: str,
    x_label: str,
    lo: float = SCALE_MIN,
    hi: float = SCALE_MAX,
    bins: int = 16,
    width: int = 680,
    height: int = 200,
) -> str:
    """A histogram of ``values`` on [lo, hi] (by default the 1-5 scale in quarter points)."""
    left, right, top, bottom = 34.0, 14.0, 10.0, 36.0
    plot_w, plot_h = width - left - right, height - top - bottom
    counts = [0] * bins
    for v in values:
        if v is None or not math.isfinite(v):
            continue
        i = min(bins - 1, max(0, int((float(v) - lo) / (hi - lo) * bins)))
        counts[i] += 1
    peak = max(counts) or 1
    label = html.escape(f"{title}: {len(values)} patients")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" font-family="{FONT}" font-size="10"><title>{label}</title>'
    ]
    parts.extend(count_grid(peak=peak, left=left, right=width - right, top=top, plot_h=plot_h))
    bar_w = plot_w / bins
    for i, n in enumerate(counts):
        if n:
            h = n * plot_h / peak
            parts.append(
                f'<rect x="{_num(left + i * bar_w + 1)}" y="{_num(top + plot_h - h)}" width="{_num(bar_w - 2)}" '
                f'height="{_num(h)}" fill="{ACCENT}"/>'
            )
    for tick in range(int(lo), int(hi) + 1):
        x = left + (tick - lo) * plot_w / (hi - lo)
        parts.append(
            f'<text x="{_num(x)}" y="{_num(top + plot_h + 14)}" text-anchor="middle" fill="{MUTED}">{tick}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{_num(top + plot_h)}" x2="{width - right}" y2="{_num(top + plot_h)}" stroke="{AXIS}"/>'
    )
    parts.append(
        f'<text x="{_num(left + plot_w / 2)}" y="{_num(top + plot_h + 28)}" text-anchor="middle" fill="{MUTED}">'
        f"{html.escape(x_label)}</text></svg>"
    )
    return "".join(parts)


def report_html(*, exporter: Exporter, clinic: Clinic, filters: ExportFilters, frame: pd.DataFrame) -> str:
    """The report as HTML: the exporter's template with the header context every report shares."""
    from django.contrib.auth import get_user_model
    from django.template.loader import render_to_string
    from django.utils import timezone

    therapist = ""
    if filters.therapist_id:
        user = get_user_model().objects.filter(pk=filters.therapist_id).first()
        if user is not None:
            therapist = user.get_full_name() or user.email  # type: ignore[attr-defined]
    words = filters.describe()
    if therapist and not filters.pseudonymise:
        words.insert(0, f"Therapist: {therapist}")
    context: dict[str, Any] = {
        "clinic": clinic,
        "title": exporter.verbose_name,
        "description": exporter.description,
        "filters": words,
        "pseudonymised": filters.pseudonymise,
        "generated_at": timezone.localtime(),
        **exporter.pdf_context(clinic=clinic, filters=filters, frame=frame),
    }
    return render_to_string(exporter.pdf_template, context)


def report_pdf(*, exporter: Exporter, clinic: Clinic, filters: ExportFilters, frame: pd.DataFrame) -> bytes:
    """Render the exporter's PDF report (A4, page numbers, the filters in the header)."""
    from django.conf import settings
    from weasyprint import HTML

    markup = report_html(exporter=exporter, clinic=clinic, filters=filters, frame=frame)
    return HTML(string=markup, base_url=str(settings.BASE_DIR)).write_pdf()  # type: ignore[no-any-return]
