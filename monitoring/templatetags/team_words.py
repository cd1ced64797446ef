"""The team page's numbers in words: shares as "3 of 5 (60%)", durations, signed gaps."""

from __future__ import annotations

from django import template

register = template.Library()
MISSING = "\u2013"  # an en dash for a figure with nothing to count


@register.simple_tag
def share(part: int, whole: int) -> str:
    """'3 of 5 (60%)'; 'none of 0' reads badly, so a dash when there is nothing to count."""
    if not whole:
        return MISSING
    return f"{part} of {whole} ({round(100 * part / whole)}%)"


@register.filter
def duration(hours: float | None) -> str:
    """A time to acknowledge: 'under an hour', '5 hours', '1.5 days'."""
    if hours is None:
        return MISSING
    if hours < 1:
        return "under an hour"
    if hours < 48:
        whole = round(hours)
        return f"{whole} hour{'s' if whole != 1 else ''}"
    days = hours / 24
    return f"{days:.0f} days" if days >= 10 else f"{days:.1f} days"


@register.filter
def gap_words(gap: float | None) -> str:
    """The therapist's mean rating minus the patient's, in words (points on the 1-5 scale)."""
    if gap is None:
        return MISSING
    if round(gap, 2) == 0:
        return "the same as the patients"
    return f"{abs(gap):.2f} {'higher' if gap > 0 else 'lower'} than the patients"
