"""Alliance analytics: trait-like level, state-like deviation, ruptures, repairs, declines.

A pure Python package (numpy, pandas; no Django) implementing docs/methods.md::

    from monitoring.analytics import analyse, AnalysisConfig
    analysis = analyse(scores, AnalysisConfig())
    analysis.sessions, analysis.levels, analysis.events, analysis.patterns, analysis.clinic

    from monitoring.analytics import alliance_outcome, episode_outcomes   # outcome measures

Column names are constants in :mod:`monitoring.analytics.columns`; the simulator used by the
tests and the demo data is :mod:`monitoring.analytics.simulate`.
"""

from __future__ import annotations

from monitoring.analytics import columns
from monitoring.analytics.analysis import Analysis, analyse
from monitoring.analytics.clinic import ClinicParameters, ScaleParameters, known_case_clinic
from monitoring.analytics.columns import KINDS, SCALE_LABELS, SCALES
from monitoring.analytics.config import PRESETS, AnalysisConfig
from monitoring.analytics.outcomes import (
    MEASURES,
    AllianceOutcome,
    Estimate,
    MeasureSpec,
    alliance_outcome,
    episode_outcomes,
    expected_recovery,
    not_on_track,
    reliable_change_index,
    score_measure,
)
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
    "MEASURES",
    "PRESETS",
    "SCALES",
    "SCALE_LABELS",
    "WAI_SR_ITEMS",
    "WAI_SR_SUBSCALES",
    "AllianceOutcome",
    "Analysis",
    "AnalysisConfig",
    "AnalyticsInputError",
    "ClinicParameters",
    "Estimate",
    "MeasureSpec",
    "ScaleParameters",
    "alliance_outcome",
    "analyse",
    "check_scores",
    "columns",
    "episode_outcomes",
    "expected_recovery",
    "known_case_clinic",
    "not_on_track",
    "reliable_change_index",
    "score_items",
    "score_items_wide",
    "score_measure",
]
