from __future__ import annotations

import math
from collections.abc import Sequence

from django import template
from django.utils.safestring import SafeString, mark_safe

from monitoring import charts
from monitoring.flags import wording

register = template.Library()
MISSING = "\u2013"  # an en dash for a missing number


@register.simple_tag
def sparkline(values: Sequence[float], level: float | None = None) -> SafeString:
    # Only numbers go into the SVG (charts.sparkline_svg), so it is safe to mark.
    return mark_safe(charts.sparkline_svg(values=values, level=level))  # noqa: S308


@register.filter
def scale_name(scale: str) -> str:
    return wording.SCALE_NAMES.get(scale, scale)


@register.filter
def one_decimal(value: object) -> str:
    """A score to one decimal; a dash for anything missing (None, NaN, or an unset variable)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return MISSING
    return MISSING if math.isnan(number) else f"{number:.1f}"


@register.filter
def get_item(mapping: dict, key: object) -> object:
    return mapping.get(key, "") if isinstance(mapping, dict) else ""
