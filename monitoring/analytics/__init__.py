"""Alliance analytics: trait-like level, state-like deviation, ruptures, repairs, declines.

A pure Python package (numpy, pandas; no Django) implementing docs/methods.md::

    from monitoring.analytics import analyse, AnalysisConfig
    analysis = analyse(scores, AnalysisConfig())
    analysis.sessions, analysis.levels, analysis.events, analysis.patterns, analysis.clinic

Column names are constants in :mod:`monitoring.analytics.columns`; the simulator used by the
tests and the demo data is :mod:`monitoring.analytics.simulate`.
"""

from __future__ import annotations

from monitoring.analytics import columns
from monitoring.analytics.analysis import Analysis, analyse
from monitoring.analytics.clinic import ClinicParameters, ScaleParameters, known_case_clinic
from monitoring.analytics.columns import KINDS, SCALE_LABELS, SCALES
from monitoring.analytics.config import PRESETS, AnalysisConfig
from monitoring.analytics.scoring import (
    WAI_SR_ITEMS,
    WAI_SR_SUBSCALES,
    AnalyticsInputError,
    check_scores,
    score_items,
    score_items_wide,
)

__all__ = [
    "KINDS",
    "PRESETS",
    "SCALES",
    "SCALE_LABELS",
    "WAI_SR_ITEMS",
    "WAI_SR_SUBSCALES",
    "Analysis",
    "AnalysisConfig",
    "AnalyticsInputError",
    "ClinicParameters",
    "ScaleParameters",
    "analyse",
    "check_scores",
    "columns",
    "known_case_clinic",
    "score_items",
    "score_items_wide",
]
