"""The caseload's tiny inline SVG of a patient's latest totals: :func:`sparkline_svg`."""

from __future__ import annotations

from collections.abc import Sequence

from monitoring.charts._style import ACCENT, AXIS, SCALE_MAX, SCALE_MIN, _f1, _finite


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
