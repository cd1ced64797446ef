"""Session scores: one row per patient, session and scale, with the analysis behind each flag and
the session's symptom totals and severity bands."""

from __future__ import annotations

import pandas as pd

import monitoring.exports.columns as cols
from clinics.models import Clinic
from monitoring.analytics import columns as c
from monitoring.exports.base import Exporter, ExportFilters
from monitoring.exports.columns import Column
from monitoring.exports.queries import (
    analysis_for_export,
    in_period,
    join_info,
    symptom_columns,
    symptoms_by_session,
    with_dates,
)


class SessionScores(Exporter):
    identifier = "session_scores"
    verbose_name = "Session scores"
    description = (
        "One row per patient, session and scale: the score, the patient's long-run level, the "
        "session's deviation from it (state and z) and the baseline the flag rules compared with; "
        "then the session's symptom totals and severity bands (phq9, phq9_band, gad7, gad7_band; "
        "empty where not answered)."
    )
    columns = (
        *cols.WHO,
        cols.SESSION,
        cols.DATE_,
        cols.SCALE,
        Column(
            c.T,
            "The count of answered sessions on this scale so far: 1 at the patient's first answered "
            "session. It differs from session where forms are missing (session 5 may be t 4).",
            cols.COUNT,
        ),
        cols.SCORE,
        cols.LEVEL,
        Column(
            c.STATE,
            "score minus level: how far this session sits from the patient's long-run level "
            "(negative: below it).",
            cols.POINT_DIFFERENCE,
        ),
        Column(
            c.Z,
            "state in units of the patient's own session-to-session SD over all their sessions "
            "(floored at the measurement error; methods.md section 2): -2 is a session two of the "
            "patient's usual swings below their level.",
            cols.SD_UNITS,
        ),
        cols.BASELINE,
        Column(c.N_BASELINE, "How many earlier sessions baseline is the mean of.", cols.COUNT),
        cols.S_USED,
        Column(
            c.IN_RUPTURE,
            "true from a rupture up to, not including, its repair, and at the session a rupture "
            "became unrepaired; these sessions are left out of later baselines.",
            cols.BOOLEAN,
        ),
    )

    def documented_columns(self) -> tuple[Column, ...]:
        return (*self.columns, *cols.symptom_columns_documented())

    def output_columns(self, *, pseudonymise: bool) -> list[str]:
        """The alliance columns, then two per symptom measure loaded (its total and band)."""
        return [*super().output_columns(pseudonymise=pseudonymise), *symptom_columns()]

    def frame(self, *, clinic: Clinic, filters: ExportFilters) -> pd.DataFrame:
        period = analysis_for_export(clinic=clinic, filters=filters)
        if period.analysis is None:
            return self.empty(filters=filters)
        rows = with_dates(period.analysis.sessions, period.dates)
        rows = rows[in_period(rows["date"], filters)]
        rows = rows.sort_values(["episode", "session", "scale"], kind="stable")
        symptoms = symptoms_by_session(list(period.info.index))
        rows = rows.merge(symptoms, on=["episode", "session"], how="left")
        bands = [name for name in symptoms.columns if name.endswith("_band")]
        rows[bands] = rows[bands].fillna("")
        columns = [*self.column_names(), *(n for n in symptoms.columns if n not in ("episode", "session"))]
        return join_info(rows, period.info, columns, pseudonymise=filters.pseudonymise)
